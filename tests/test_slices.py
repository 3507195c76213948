"""Digit slices cut out of lines as the checker cuts them, and the CNN fine-tuned on them."""

import numpy as np
import pytest

from digitlab.models.base import MAGIC
from digitlab.models.cnn import CNNClassifier
from digitlab.reader.glyphs import GlyphBank
from digitlab.reader.read import get_line_reader, read_lines
from digitlab.reader.slices import line_slices
from digitlab.recognize import get_model


@pytest.fixture(scope="module")
def val_bank():
    return GlyphBank.load("val", max_per_digit=100)


def test_line_slices_are_the_digits_of_the_lines(val_bank):
    X, y = line_slices(val_bank, 40, get_line_reader(), np.random.default_rng(5), photo=0.0, progress=False)
    assert X.shape[1:] == (28, 28) and len(X) == len(y) >= 80  # lines hold about 5 digits each
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert set(np.unique(y)) <= set(range(10))
    # The labels are the slices' own digits: a CNN that never saw these lines reads most of them.
    assert (get_model().predict(X) == y).mean() > 0.85


def test_train_slices_end_to_end_on_tiny_data(tmp_path, capsys):
    from digitlab.cli import main

    out = tmp_path / "slice.dlm"
    assert main(["train", "slice-cnn", "--subset", "30", "--epochs", "1", "--seed", "2", "--out", str(out), "--quiet"]) == 0
    assert "saved slice CNN" in capsys.readouterr().out
    assert out.read_bytes().startswith(MAGIC)
    model = get_model(str(out))
    assert isinstance(model, CNNClassifier)
    md = model.metadata
    assert md["train_size"] >= 60 and md["slices"]["lines"] == 30 and 0 <= md["val_slice_accuracy"] <= 1
    p = model.predict_proba(np.zeros((2, 28, 28), np.float32))
    assert p.shape == (2, 10) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_train_slices_refuses_options_that_do_not_apply(capsys):
    from digitlab.cli import main

    assert main(["train", "slice-cnn", "--width", "8"]) == 2
    assert "--width do not apply" in capsys.readouterr().err
    assert main(["train", "slice-cnn", "--epochs", "0"]) == 2
    assert "--epochs must be more than 0" in capsys.readouterr().err


def test_read_lines_takes_the_second_opinion_by_name(val_bank):
    from digitlab.reader.linegen import training_line

    rng = np.random.default_rng(3)
    inks = [training_line(val_bank, rng)[0] for _ in range(3)]
    from digitlab.recognize import DEFAULT_MODEL

    by_name = read_lines(inks, digits=str(DEFAULT_MODEL))
    by_model = read_lines(inks, digits=get_model())
    assert [r.nbest for r in by_name] == [r.nbest for r in by_model]


def test_the_shipped_calibration_names_a_shipped_second_opinion():
    limits = get_line_reader().metadata["verdict_thresholds"]
    assert limits["digits"] == "slice_cnn" and limits["near_misses"] is True
    model = get_model(limits["digits"])
    assert isinstance(model, CNNClassifier)
    md = model.metadata
    # Fine-tuned on slices, and better on validation slices than the CNN it started from.
    assert md["train_size"] > 100_000 and md["val_slice_accuracy"] > md["base_val_slice_accuracy"]
