"""`digitlab tune`, `visualize`, `export` and `quantize` end to end on tiny data (through ``cli.main``,
in-process: seconds each), checking what they write, not only their exit code."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from digitlab.cli import main


def _png(image28: np.ndarray) -> bytes:
    """An MNIST digit as a user's file: dark ink on white paper, with a margin."""
    buf = io.BytesIO()
    Image.fromarray(255 - np.pad(image28, 20)).save(buf, "PNG")
    return buf.getvalue()


def test_tune_writes_its_trials_and_applies_the_best(tmp_path, monkeypatch, capsys, mnist_train):
    from digitlab.study.run import GRIDS, tuned_params

    monkeypatch.setenv("DIGITLAB_TUNED", str(tmp_path / "tuned.json"))
    monkeypatch.setitem(GRIDS, "linear", {"C": [0.01, 0.3]})  # two fits on 300 digits, scored on 5,000
    assert main(["tune", "linear", "--subset", "300", "--out", str(tmp_path / "report"), "--quiet", "--apply"]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "report" / "tuning" / "linear.json").read_text())
    assert result["train_size"] == 300 and result["val_size"] == 5000
    accs = {t["params"]["C"]: t["val_accuracy"] for t in result["trials"]}
    assert set(accs) == {0.01, 0.3} and all(0.5 < a <= 1 for a in accs.values()), accs
    assert accs[0.3] > accs[0.01] + 0.02  # measured 0.893 and 0.840: the grid separates, the best is found
    assert result["best"]["params"]["C"] == 0.3 and result["best"]["val_accuracy"] == max(accs.values())
    assert f"best validation accuracy {max(accs.values()):.2%}" in out
    assert tuned_params("linear")["C"] == 0.3  # --apply: the defaults of `digitlab train linear` from now on
    with Image.open(tmp_path / "report" / "tuning" / "tuning_linear.png") as fig:
        assert fig.format == "PNG" and min(fig.size) > 100


def test_visualize_draws_the_network_for_a_digit(tmp_path, capsys, mnist_test):
    i = int(np.nonzero(mnist_test.labels == 3)[0][0])
    (tmp_path / "three.png").write_bytes(_png(mnist_test.images[i]))
    out_dir = tmp_path / "net"
    assert main(["visualize", str(tmp_path / "three.png"), "--out", str(out_dir)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    pngs = sorted(p for p in out_dir.iterdir() if p.suffix == ".png")
    assert len(pngs) >= 4 and {str(p) for p in pngs} <= set(printed)
    for p in pngs:
        with Image.open(p) as im:
            im.load()
            assert min(im.size) > 50, p
    data = json.loads(next(out_dir.glob("*.json")).read_text())
    probs = np.array(data["probabilities"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-4 and (probs >= 0).all()
    assert data["prediction"]["digit"] == 3 == int(probs.argmax())
    assert np.array(data["input"]).shape == (28, 28)


def test_export_writes_an_onnx_model_that_reads_digits(tmp_path, capsys, mnist_test):
    ort = pytest.importorskip("onnxruntime")
    from digitlab.models import load
    from digitlab.models.files import DEFAULT_MODEL

    assert main(["export", "--out", str(tmp_path / "m.onnx")]) == 2  # a format must be chosen
    assert "--onnx" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()
    assert main(["export", "--onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert str(tmp_path / "m.onnx") in capsys.readouterr().out
    X = mnist_test.images[:200].astype(np.float32) / 255
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    p = sess.run(None, {"image": X[:, None]})[0]
    assert p.shape == (200, 10) and np.allclose(p.sum(1), 1, atol=1e-4)
    assert (p.argmax(1) == mnist_test.labels[:200]).mean() >= 0.98  # measured 1.0 (the shipped CNN)
    model = load(DEFAULT_MODEL)
    model.params["inference"] = "fp32"  # the export is of the float nets
    assert np.abs(p - model.predict_proba(X)).max() < 1e-4


def test_quantize_writes_an_int8_model_calibrated_on_validation_digits(tmp_path, capsys, small_test):
    from digitlab.models import load
    from digitlab.models.files import DEFAULT_MODEL

    float_model = load(DEFAULT_MODEL)  # the shipped CNN is int8 already: its float twin is the input
    float_model.params["inference"] = "fp32"
    float_model.metadata.pop("int8_ranges")
    src = float_model.save(tmp_path / "cnn.dlm")
    before = src.read_bytes()
    assert main(["quantize", "--model", str(src), "--out", str(tmp_path / "q.dlm"), "--calibration", "128"]) == 0
    assert "wrote" in capsys.readouterr().out and src.read_bytes() == before  # --out: the input is left alone
    q = load(tmp_path / "q.dlm")
    assert q.params["inference"] == "int8" and len(q.metadata["int8_ranges"]) == len(q.nets)
    assert q.metadata["int8_calibration"].startswith("128 digits of MNIST train's held-back validation")
    X, y = small_test.images, small_test.labels
    p8, p32 = q.predict_proba(X), float_model.predict_proba(X)
    assert (p8.argmax(1) == y).mean() >= 0.98  # measured 0.996 on these 500 digits (float: 0.996)
    assert (p8.argmax(1) == p32.argmax(1)).mean() >= 0.99 and np.abs(p8 - p32).max() < 0.2
    assert main(["quantize", "--model", "linear", "--out", str(tmp_path / "x.dlm")]) == 2  # only the CNN
    assert "only the CNN" in capsys.readouterr().err


def test_line_readers_read_with_their_onnx_twins_and_export_writes_one(tmp_path, monkeypatch, capsys):
    """The shipped CRNNs run on their ONNX twins (the same frames as PyTorch, within 1e-4); `export`
    writes the twin of a line reader where it is found, and one trained further reads with PyTorch."""
    from digitlab.datasets.pens import load_pendigits, pen_lines
    from digitlab.models import get_model, load
    from digitlab.reader.crnn import LineReader, prepare_line

    inks, texts, _ = pen_lines(load_pendigits("tra"), 6, seed=2)
    lines = [prepare_line(i) for i in inks]
    for name in ("line_reader", "line_reader_warp"):
        model = get_model(name)
        assert model.onnx_session() is not None, f"{name} has no ONNX twin: run `digitlab export --onnx --model {name} --out src/digitlab/weights`"
        fast = model.frame_log_probs(lines)
        slow = LineReader.load(model_path_of(name))
        slow._session = None
        assert all(np.abs(a - b).max() < 1e-4 and a.shape == b.shape for a, b in zip(fast, slow.frame_log_probs(lines)))

    models = tmp_path / "models"
    monkeypatch.setenv("DIGITLAB_MODELS", str(models))
    src = load(model_path_of("line_reader"))
    src.metadata["note"] = "a user's copy"  # the same weights under another name
    src.save(models / "mine.dlm")
    assert main(["export", "--onnx", "--model", "mine"]) == 0
    written = capsys.readouterr().out.split()[-1]
    assert written.startswith(str(models / "mine.")) and written.endswith(".onnx")
    mine = load(models / "mine.dlm")
    assert mine.onnx_session() is not None
    mine.fit(inks[:2], texts[:2], epochs=1)  # its weights change: the twin no longer stands for them
    assert mine.onnx_session() is None and mine.payload_sha256 is None


def model_path_of(name):
    from digitlab.models import model_path

    return model_path(name)


def test_models_lists_every_registered_model_and_its_file(capsys):
    from digitlab.models import REGISTRY, available
    from digitlab.models.files import WEIGHTS_DIR

    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(available()) == set(REGISTRY) and {"cnn", "line-reader", "svm"} <= set(rows)
    assert rows["cnn"]["trained"] == str(WEIGHTS_DIR / "cnn.dlm") and rows["cnn"]["test_accuracy"] > 0.99
    assert rows["line-reader"]["trained"] == str(WEIGHTS_DIR / "line_reader.dlm")  # shipped, under its file name
    assert all(r["description"] for r in rows.values())
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in rows) and f"{rows['cnn']['test_accuracy']:.2%}" in text
