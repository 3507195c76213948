"""One estimator interface for every method, the registry table, one safe file format.

Importing a model's module registers its class (``@register``); the package (``digitlab.models``)
imports the members on demand and builds or loads a model by name. This module imports no member.

Every model takes images as an (N,28,28) array (uint8 0..255 or float 0..1, MNIST polarity) and
labels as ints, in the scikit-learn style: ``fit(X, y)``, ``predict(X)``, ``predict_proba(X)``,
``save(path)`` and ``load(path)``.

File format (``.dlm``): one line of magic, one line of JSON header, then the payload. The header
holds the model name, its parameters, free metadata and the SHA-256 of the payload, which is
checked on load. Payloads never go through pickle: tensors are safetensors, scikit-learn models
are skops files loaded with an explicit list of trusted types.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ModelError, NotFittedError
from ..io.files import atomic_write

MAGIC = b"DIGITLAB-MODEL 1\n"
REGISTRY: dict[str, type["DigitModel"]] = {}


def register(cls: type["DigitModel"]) -> type["DigitModel"]:
    REGISTRY[cls.name] = cls
    return cls


def check_images(X, name: str = "X") -> np.ndarray:
    """Validate and convert images to float32 (N,28,28) in [0,1]."""
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == 784:
        X = X.reshape(-1, 28, 28)
    if X.ndim != 3 or X.shape[1:] != (28, 28):
        raise ValueError(f"{name} must have shape (N, 28, 28) or (N, 784), got {X.shape}")
    if len(X) == 0:
        raise ValueError(f"{name} is empty")
    if X.dtype == np.uint8:
        return X.astype(np.float32) / 255.0
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if X.min() < 0 or X.max() > 1.0 + 1e-6:
        raise ValueError(f"{name} must be uint8 0..255 or float in [0, 1]")
    return X


def check_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    return y.astype(np.int64)


class DigitModel(ABC):
    """Base class. Subclasses set ``name`` and implement ``_fit``, ``_predict_proba`` and the payload."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    has_proba: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.metadata: dict[str, Any] = {}
        self.fitted_ = False

    # -- public API -------------------------------------------------------------------------
    def fit(self, X, y, **kwargs) -> "DigitModel":
        X = check_images(X)
        y = check_labels(y, len(X))
        self._fit(X, y, **kwargs)
        self.fitted_ = True
        return self

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return self._predict_proba(check_images(X))

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def save(self, path) -> Path:
        self._check_fitted()
        payload = self._payload()
        header = {
            "model": self.name,
            "params": self.params,
            "metadata": self.metadata,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        return atomic_write(path, MAGIC + json.dumps(header).encode() + b"\n" + payload)

    @classmethod
    def load(cls, path) -> "DigitModel":
        """Load a model of this class from ``path`` (checksum verified, no pickle); ``digitlab.models.load``
        loads one of any class."""
        return load_registered(path, expect=cls if cls is not DigitModel else None)

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # -- for subclasses -------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, **kwargs) -> None: ...

    @abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _payload(self) -> bytes: ...

    @abstractmethod
    def _restore(self, payload: bytes) -> None: ...

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"{self.name} model is not fitted yet; call fit() or load a saved model")


def read_header(path) -> tuple[dict, bytes]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc})") from None
    if not raw.startswith(MAGIC):
        raise ModelError(f"{path}: not a digitlab model file")
    try:
        end = raw.index(b"\n", len(MAGIC))
        header = json.loads(raw[len(MAGIC) : end])
        payload = raw[end + 1 :]
        expected = header["sha256"]
        name = header["model"]
    except (ValueError, KeyError, TypeError):
        raise ModelError(f"{path}: damaged model header") from None
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ModelError(f"{path}: checksum mismatch — the model file is corrupted or was modified")
    if not isinstance(name, str):
        raise ModelError(f"{path}: damaged model header")
    return header, payload


def load_registered(path, expect: type[DigitModel] | None = None, parts: tuple[dict, bytes] | None = None) -> DigitModel:
    """Load the model in ``path`` whose class is registered already (``digitlab.models.load`` imports it first).

    ``parts``: the file's ``read_header`` when the caller has read it already.
    """
    header, payload = parts if parts is not None else read_header(path)
    cls = REGISTRY.get(header["model"])
    if cls is None and expect is not None:
        raise ModelError(f"{path}: holds a {header['model']} model, not {expect.name}")
    if cls is None:
        raise ModelError(f"{path}: unknown model type {header['model']!r}")
    if expect is not None and not issubclass(cls, expect):
        raise ModelError(f"{path}: holds a {header['model']} model, not {expect.name}")
    model = cls(**header.get("params", {}))
    model.metadata = header.get("metadata", {})
    try:
        model._restore(payload)
    except ModelError:
        raise
    except Exception as exc:  # a payload that passed the checksum but does not load is still a user error
        raise ModelError(f"{path}: cannot load {header['model']} model ({exc})") from None
    model.fitted_ = True
    return model
