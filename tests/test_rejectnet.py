"""The learned "is this a digit?" model of digitlab.digits.reject: training, shipping, fallback."""

import warnings

import numpy as np
import pytest

from digitlab.digits import reject, rejectnet
from digitlab.models.base import MAGIC
from digitlab.models import available
from digitlab.digits.preprocess import NoDigitFound, preprocess_digit
from digitlab.models import get_model
from digitlab.digits.recognize import predict_images, predict_source
from digitlab.digits.rejectnet import load_reject
from digitlab.training.reject import varied_non_digit
from digitlab.synthetic.renders import non_digit_image, render_user_image


def two_blobs() -> bytes:
    """Filled ellipses from the generator (a seed no benchmark uses) that the CNN reads as a confident 0."""
    return non_digit_image("blobs", np.random.default_rng(1014))


@pytest.fixture
def no_learned_model(monkeypatch, tmp_path):
    monkeypatch.setattr(rejectnet, "NET_WEIGHTS", tmp_path / "missing.dlm")
    rejectnet.net_model.cache_clear()
    yield
    rejectnet.net_model.cache_clear()


def test_train_reject_end_to_end_on_tiny_data(tmp_path, capsys):
    from digitlab.cli import main

    out = tmp_path / "reject.dlm"
    assert main(["train", "reject", "--subset", "150", "--epochs", "1", "--seed", "3", "--out", str(out),
                 "--quiet"]) == 0
    assert "saved reject model" in capsys.readouterr().out
    assert out.read_bytes().startswith(MAGIC)  # the .dlm format: header + safetensors, checksum verified
    model = load_reject(out)
    info = model.metadata["data"]
    assert info["digits"] >= 150 and info["non_digits"] >= 50 and info["non_digit_seed"] == 103
    X = np.stack([preprocess_digit(two_blobs(), reject=False)] * 3)
    p = model.predict_proba(X)
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1)
    assert "reject" not in available()  # never offered as a digit reader


def test_train_reject_refuses_bad_params(capsys):
    from digitlab.cli import main

    assert main(["train", "reject", "--param", "colour=3"]) == 2
    assert "unknown --param colour" in capsys.readouterr().err
    assert main(["train", "reject", "--styles", "1"]) == 2
    assert "--styles do not apply" in capsys.readouterr().err
    assert main(["train", "reject", "--param", "digits=many"]) == 2
    assert "whole numbers" in capsys.readouterr().err


def test_load_reject_refuses_other_models(tmp_path):
    from digitlab.errors import ModelError
    from digitlab.models.files import DEFAULT_MODEL

    with pytest.raises(ModelError, match="not a reject model"):
        load_reject(DEFAULT_MODEL)


def test_shipped_model_is_small_and_calibrated():
    assert rejectnet.NET_WEIGHTS.stat().st_size < 300_000
    loaded = rejectnet.net_model()
    assert loaded is not None, "weights/reject.dlm or its bound in weights/reject.json is missing"
    assert 0 < loaded[1] < 1


def test_learned_model_refuses_a_blob_that_the_shape_checks_let_through():
    model = get_model(None)
    image = preprocess_digit(two_blobs())  # passes the shape bounds
    pred = predict_images(model, image[None])[0]
    assert pred.confidence > 0.9
    reject.check_prediction(image, pred.probabilities)  # and the score
    assert rejectnet.not_digit_probability(preprocess_digit(two_blobs())) > rejectnet.net_model()[1]
    with pytest.raises(NoDigitFound, match="reject model"):
        predict_source(model, two_blobs())


def test_learned_model_accepts_real_digits(mnist_test):
    rng = np.random.default_rng(21)
    bound = rejectnet.net_model()[1]
    images = np.stack([preprocess_digit(render_user_image(im, rng)) for im in mnist_test.images[:60]])
    p = rejectnet.net_model()[0].not_digit(images)
    assert (p <= bound).all(), p.max()


def test_learned_model_refuses_most_varied_non_digits():
    """A fixed set of ~280 of its training generator's non-digits (seeds 0-9, 30 each), not one seed's 40:
    40 at a single seed ranged 0.78-0.95 over seeds 0-19 (0.89 at the seed this test once used).
    Measured on this set: 235 of 276 refused (0.851); 0.877 pooled over seeds 0-19 x 40 (755 images).
    Measure: the loop below, printing ``refused.mean()`` (about 4 s)."""
    images = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        for _ in range(30):
            try:
                images.append(preprocess_digit(varied_non_digit(rng), reject=False))
            except NoDigitFound:
                pass
    assert len(images) >= 250
    loaded = rejectnet.net_model()
    refused = loaded[0].not_digit(np.stack(images)) > loaded[1]
    assert refused.mean() >= 0.82  # 3 points under the measured 0.851


def test_missing_weights_fall_back_to_the_other_checks(no_learned_model):
    assert rejectnet.net_model() is None and rejectnet.not_digit_probability(np.zeros((28, 28))) is None
    rejectnet.check_net(preprocess_digit(two_blobs()))  # nothing to check with: no refusal
    assert 0 <= predict_source(get_model(None), two_blobs()).digit <= 9  # today's checks let it through


def test_weights_that_were_not_calibrated_are_not_used(monkeypatch, tmp_path):
    other = tmp_path / "reject.dlm"
    model = load_reject(rejectnet.NET_WEIGHTS)
    with __import__("torch").no_grad():
        model.net[0].weight.add_(0.01)  # other weights (a retrained model), same bound in reject.json
    model.save(other)
    monkeypatch.setattr(rejectnet, "NET_WEIGHTS", other)
    rejectnet.net_model.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert rejectnet.net_model() is None
        assert any("calibrated" in str(w.message) for w in caught)
    finally:
        rejectnet.net_model.cache_clear()
