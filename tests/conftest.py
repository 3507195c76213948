import os
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("DIGITLAB_ARTIFACTS", ROOT / "artifacts"))


def _mnist(split):
    from digitlab.datasets.mnist import load_mnist

    try:
        return load_mnist(split)
    except DataError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MNIST not available: {exc}")


@pytest.fixture(scope="session")
def mnist_test():
    return _mnist("test")


@pytest.fixture(scope="session")
def mnist_train():
    return _mnist("train")


@pytest.fixture(scope="session")
def small_train(mnist_train):
    from digitlab.datasets.mnist import subset

    return subset(mnist_train, 2000, seed=1)


@pytest.fixture(scope="session")
def small_test(mnist_test):
    from digitlab.datasets.mnist import subset

    return subset(mnist_test, 500, seed=2)


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def rng():
    return np.random.default_rng(0)
