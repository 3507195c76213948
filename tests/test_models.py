import numpy as np
import pytest

from digitlab.errors import ModelError, NotFittedError
from digitlab.models import available, create, load

FAST = {
    "cnn": {"epochs": 4, "width": 8, "augment": "light"},
    "linear": {"max_iter": 50},
    "knn": {},
    "svm": {"shift_copies": 0},
    "mlp": {"hidden": [32], "epochs": 5},
    "kmeans": {"clusters": 30},
}


def test_registry_has_every_method():
    assert set(available()) >= {"cnn", "linear", "knn", "svm", "mlp", "kmeans"}


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_predict_save_load(name, small_train, small_test, tmp_path):
    model = create(name, **FAST[name])
    with pytest.raises(NotFittedError):
        model.predict(small_test.images[:2])
    kw = {"progress": False} if name == "cnn" else {}
    model.fit(small_train.images, small_train.labels, **kw)
    proba = model.predict_proba(small_test.images)
    assert proba.shape == (len(small_test), 10)
    assert np.allclose(proba.sum(1), 1, atol=1e-5)
    pred = model.predict(small_test.images)
    assert (pred == proba.argmax(1)).all()
    assert model.score(small_test.images, small_test.labels) > 0.5  # learned something on 2k digits
    path = model.save(tmp_path / f"{name}.dlm")
    again = load(path)
    assert type(again) is type(model) and again.params == model.params
    assert (again.predict(small_test.images) == pred).all()


def test_shifted_copies_are_one_pixel_moves():
    from digitlab.models.classic import SklearnModel

    X = np.zeros((40, 28, 28), np.uint8)
    X[:, 10:14, 10:14] = 255
    Xa, ya = SklearnModel.shifted_copies(X, np.arange(40), copies=1)
    assert Xa.shape == (80, 28, 28) and (ya[40:] == np.arange(40)).all()
    for img in Xa[40:]:
        ys, xs = np.nonzero(img)
        assert abs(ys.min() - 10) + abs(xs.min() - 10) == 1 and img.sum() == X[0].sum()


def test_input_validation():
    model = create("linear")
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.zeros((3, 10, 10)), [0, 1, 2])
    with pytest.raises(ValueError, match="y must"):
        model.fit(np.zeros((3, 28, 28), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="uint8"):
        model.fit(np.full((3, 28, 28), 7.0), [0, 1, 2])


def test_unknown_model_and_bad_params():
    with pytest.raises(ModelError, match="unknown model"):
        create("nope")
    with pytest.raises(ModelError, match="bad parameters"):
        create("knn", kk=3)


def test_tampered_and_foreign_files(tmp_path, small_train):
    model = create("linear", max_iter=20).fit(small_train.images[:300], small_train.labels[:300])
    path = model.save(tmp_path / "m.dlm")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum"):
        load(path)
    (tmp_path / "x.dlm").write_bytes(b"\x80\x04K\x01.")  # a pickle
    with pytest.raises(ModelError, match="not a digitlab model"):
        load(tmp_path / "x.dlm")
    with pytest.raises(ModelError, match="cannot read"):
        load(tmp_path / "missing.dlm")


def test_cnn_ensemble_of_mixed_widths_round_trips(tmp_path, small_test):
    import torch

    from digitlab.models.cnn import CNNClassifier, DigitNet

    torch.manual_seed(0)
    nets = [DigitNet(width=8).eval(), DigitNet(width=12).eval()]
    model = CNNClassifier(width=8, ensemble=2).set_nets(nets)
    proba = model.predict_proba(small_test.images[:50])
    again = load(model.save(tmp_path / "mixed.dlm"))
    assert [n.features[0][0].out_channels for n in again.nets] == [8, 12]
    assert np.allclose(again.predict_proba(small_test.images[:50]), proba, atol=1e-6)
