"""Digit slices cut out of lines as the checker cuts them, and the CNN fine-tuned on them."""

import numpy as np
import pytest

from digitlab.models.base import MAGIC
from digitlab.digits.cnn import CNNClassifier
from digitlab.reader.glyphs import GlyphBank
from digitlab.reader.read import get_line_reader, read_lines
from digitlab.reader.slices import line_slices
from digitlab.models import get_model


@pytest.fixture(scope="module")
def val_bank():
    return GlyphBank.load("val", max_per_digit=100)


def test_line_slices_are_the_digits_of_the_lines(val_bank):
    X, y = line_slices(val_bank, 40, get_line_reader("line_reader"), np.random.default_rng(5), photo=0.0, progress=False)
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
    from digitlab.models.files import DEFAULT_MODEL

    by_name = read_lines(inks, digits=str(DEFAULT_MODEL))
    by_model = read_lines(inks, digits=get_model())
    assert [r.nbest for r in by_name] == [r.nbest for r in by_model]


def test_the_shipped_calibration_names_a_shipped_second_opinion():
    limits = get_line_reader("line_reader").metadata["verdict_thresholds"]
    assert limits["digits"] == "slice_cnn" and limits["near_misses"] is True
    model = get_model(limits["digits"])
    assert isinstance(model, CNNClassifier)
    md = model.metadata
    # Fine-tuned on slices, and better on validation slices than the CNN it started from.
    assert md["train_size"] > 100_000 and md["val_slice_accuracy"] > md["base_val_slice_accuracy"]


def test_operator_slices_keep_every_stroke_of_the_symbol():
    """'=' is two bars and '÷' a bar and two dots: a digit's slice keeps the strokes sharing its rows
    (the tails of other lines are not the digit), an operator's those sharing its columns."""
    from digitlab.reader.rescore import symbol_ink

    crop = np.zeros((40, 30), np.float32)
    crop[14:17, 5:25] = 1  # upper bar
    crop[24:27, 6:24] = 1  # lower bar
    crop[2:5, 27:30] = 1  # a speck in the corner, off the bars' columns
    both = symbol_ink(crop, operator=True)
    assert both[15, 10] > 0 and both[25, 10] > 0 and both[3, 28] == 0
    one = symbol_ink(crop)
    assert (one[15, 10] > 0) != (one[25, 10] > 0)  # as a digit: the largest stroke's rows only


def test_line_slices_of_every_symbol(val_bank):
    from digitlab.reader import CRNN_CHARSET as CHARSET  # the symbols the CRNN reads, and its slices

    X, y = line_slices(val_bank, 30, get_line_reader("line_reader", ensemble=False), np.random.default_rng(6), progress=False,
                       chars=CHARSET)
    assert set(np.unique(y)) <= set(range(len(CHARSET)))
    assert (y == CHARSET.index("=")).sum() >= 12  # most training lines are "a op b = c"
    assert (y >= 10).sum() >= 30 and (y < 10).sum() >= 60


def test_a_grown_head_keeps_the_digits_outputs():
    import torch

    from digitlab.digits.cnn import DigitNet
    from digitlab.reader.slices import _grown_head

    base = get_model().nets[0]
    net = DigitNet(width=base.features[0][0].out_channels, num_classes=15, stem=get_model().params.get("stem", "pool"))
    net.load_state_dict(_grown_head(base.state_dict(), 15))
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x)[:, :10], base.eval()(x), atol=1e-5)


def test_train_a_symbol_slice_cnn_and_read_with_it(tmp_path, capsys, val_bank):
    from digitlab.cli import main
    from digitlab.reader import CRNN_CHARSET as CHARSET  # the symbols the CRNN reads, and its slices
    from digitlab.reader.linegen import problem_tokens, render_tokens
    from digitlab.reader.rescore import symbol_classes

    out = tmp_path / "symbols.dlm"
    assert main(["train", "slice-cnn", "--symbols", "--subset", "30", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert "their operators" in capsys.readouterr().out
    model = get_model(str(out))
    assert model.metadata["classes"] == CHARSET and symbol_classes(model) == CHARSET
    assert symbol_classes(get_model()) == "0123456789"
    assert model.predict_proba(np.zeros((2, 28, 28), np.float32)).shape == (2, 15)
    rng = np.random.default_rng(8)
    inks = [render_tokens(problem_tokens(rng, True), val_bank, rng) for _ in range(3)]
    reader = get_line_reader(ensemble=False)
    for r, q in zip(read_lines(inks, model=reader, digits=str(out)), read_lines(inks, model=reader)):
        assert {t for t, _ in r.nbest} == {t for t, _ in q.nbest}  # re-ranked, and each line's mass kept
        assert np.isclose(sum(p for _, p in r.nbest), sum(p for _, p in q.nbest), rtol=1e-4)
    assert main(["train", "reject", "--symbols"]) == 2
    assert "--symbols do not apply" in capsys.readouterr().err
