"""Line readers read together (``reader.read.ReaderEnsemble``), named in the primary reader's file."""

import numpy as np
import pytest

from digitlab.errors import ModelError
from digitlab.reader.crnn import LineReader
from digitlab.reader.glyphs import GlyphBank
from digitlab.reader.read import ReaderEnsemble, get_line_reader, primary, read_lines, with_partners


@pytest.fixture(scope="module")
def inks():
    from digitlab.reader.linegen import training_line

    bank, rng = GlyphBank.load("val", max_per_digit=100), np.random.default_rng(4)
    return [training_line(bank, rng)[0] for _ in range(4)]


def test_the_crnn_is_read_with_the_partner_it_was_calibrated_with():
    model = get_line_reader("line_reader")
    assert isinstance(model, ReaderEnsemble) and len(model.members) == 2
    assert all(isinstance(m, LineReader) for m in model.members)
    assert model.metadata is model.primary.metadata  # the calibration is the primary's
    assert model.metadata["verdict_thresholds"]["ensemble"] == model.metadata["ensemble"] == ["line_reader_warp"]
    alone = get_line_reader("line_reader", ensemble=False)
    assert alone is model.primary and primary(alone) is alone


def test_a_reader_read_with_itself_reads_as_it_does_alone(inks):
    """The ensemble averages its members' N-best lists: two copies of one reader change nothing."""
    alone = get_line_reader("line_reader", ensemble=False)
    twice = read_lines(inks, model=ReaderEnsemble([alone, alone]))
    once = read_lines(inks, model=alone)
    for a, b in zip(twice, once):
        assert a.text == b.text and a.spans == b.spans
        assert [t for t, _ in a.nbest] == [t for t, _ in b.nbest]
        assert np.allclose([p for _, p in a.nbest], [p for _, p in b.nbest], rtol=1e-5)


def test_the_ensemble_mixes_its_members_readings(inks):
    model = get_line_reader("line_reader")
    both = read_lines(inks, model=model, tta=False)
    each = [read_lines(inks, model=m, tta=False) for m in model.members]
    for j, reading in enumerate(both):
        mean = {}
        for member in each:
            for t, p in member[j].nbest:
                mean[t] = mean.get(t, 0.0) + p / 2
        for t, p in reading.nbest:
            assert p == pytest.approx(mean[t], rel=1e-5)
        if reading.text == each[0][j].text:
            assert reading.spans == each[0][j].spans  # symbol positions: the primary's alignment


def test_a_partner_that_is_not_a_line_reader_is_refused():
    with pytest.raises(ModelError, match="not a line-reader model"):
        with_partners(get_line_reader(ensemble=False), ["cnn"])
    assert with_partners(get_line_reader(ensemble=False), []) is get_line_reader(ensemble=False)


def test_calibrate_names_the_partners_and_leaves_the_loaded_reader_alone(tmp_path, capsys):
    from digitlab.arithmetic.calibrate import main
    from digitlab.models import get_model

    out = tmp_path / "reader.dlm"
    main(["--model", "line_reader", "--lines", "50", "--ensemble", "none", "--out", str(out)])
    assert "'ensemble': []" in capsys.readouterr().out
    saved = get_model(str(out))
    assert saved.metadata["ensemble"] == [] and saved.metadata["verdict_thresholds"]["lines"] == 50
    assert isinstance(get_line_reader(str(out)), LineReader)  # no partners: the reader alone
    assert get_line_reader("line_reader").metadata["ensemble"] == ["line_reader_warp"]  # the shipped file is as it was
    with pytest.raises(SystemExit) as exc:
        main(["--model", "line_reader", "--lines", "50", "--ensemble", "cnn", "--out", str(out)])
    assert exc.value.code == 2 and "not a line-reader model" in capsys.readouterr().err


def test_a_reader_trained_from_the_shipped_one_does_not_inherit_its_partner(tmp_path, monkeypatch):
    """Partners are named when a reader is calibrated with them; a warm restart is calibrated alone."""
    import digitlab.arithmetic.calibrate as cal
    from digitlab.reader.train import train_line_reader
    from digitlab.models.files import model_path

    monkeypatch.setattr(cal, "calibrate", lambda model, *a, **k: {"read_with": type(model).__name__})
    out = tmp_path / "warm.dlm"
    train_line_reader(out, seconds=2, init=model_path("line_reader"), progress=False, eval_every=10_000)
    md = get_line_reader(str(out), ensemble=False).metadata
    assert "ensemble" not in md and md["verdict_thresholds"] == {"read_with": "LineReader"}
    assert isinstance(get_line_reader(str(out)), LineReader)
    assert "steps" in LineReader.load(tmp_path / "warm.last.dlm").metadata  # the last model is kept as well


def test_a_second_read_reuses_the_plain_reading_and_reads_as_a_fresh_one(inks, monkeypatch):
    """``check_page`` compares page hypotheses on plain readings, then reads the kept one again with every
    variant: the primary's plain frames are not computed twice, and the N-best lists are the same."""
    model = get_line_reader("line_reader")
    fresh = read_lines(inks, model=model)
    first = read_lines(inks, model=model.primary, tta=False)
    seen = []
    real = LineReader.frame_log_probs
    monkeypatch.setattr(LineReader, "frame_log_probs", lambda self, prepared, **kw: seen.append(len(prepared))
                        or real(self, prepared, **kw))
    again = read_lines(inks, model=model, plain=[r.frames for r in first])
    assert sum(seen) == 6 * len(inks) - len(inks)  # two readers, three variants each, less the plain one
    for a, b in zip(again, fresh):
        assert a.text == b.text and a.spans == b.spans
        assert [t for t, _ in a.nbest][:3] == [t for t, _ in b.nbest][:3]
        # within what batching lines of other widths together (padding) already changes
        assert np.allclose([p for _, p in a.nbest[:3]], [p for _, p in b.nbest[:3]], atol=5e-3)


def test_plain_readings_must_match_the_lines(inks):
    """A caller handing the wrong number of earlier readings is told, not silently read afresh."""
    model = get_line_reader("line_reader")
    first = read_lines(inks[:1], model=model.primary, tta=False)
    with pytest.raises(ValueError, match="readings for"):
        read_lines(inks, model=model, plain=[r.frames for r in first])
