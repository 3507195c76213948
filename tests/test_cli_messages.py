"""What the CLI says to a newcomer: one file name per error line, a hint when `predict` is given a
number or a sum, labelled fields, a description for every command (through ``cli.main``, in-process)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.cli import build_parser, main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _png(grey: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _number(images) -> bytes:
    """MNIST digits written side by side, dark ink on white paper: a number."""
    row = np.concatenate([np.pad(im, ((0, 0), (2, 2))) for im in images], axis=1)
    return _png(255 - np.pad(row, 20))


@pytest.mark.parametrize("cmd", ["predict", "read", "check"])
def test_an_error_line_names_its_file_once(cmd, tmp_path, capsys):
    bad = tmp_path / "IMG_1331.JPG"
    bad.write_text("not an image")
    assert main([cmd, str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].count("IMG_1331.JPG") == 1, err
    assert "not an image" in err[0]
    assert main([cmd, "--json", str(bad)]) == 2
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == str(bad) and "IMG_1331.JPG" not in line["error"] and "not an image" in line["error"]


def test_worksheet_grade_error_names_its_file_once(tmp_path, capsys):
    photo = tmp_path / "IMG_1331.JPG"
    Image.new("RGB", (300, 400), "white").save(photo, "JPEG")
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"sheet_id": "abc", "problems": []}))
    assert main(["worksheet", "grade", "--key", str(key), "--no-save", str(photo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].count("IMG_1331.JPG") == 1 and "no worksheet found" in err[0], err
    assert main(["worksheet", "grade", "--key", str(key), "--no-save", "--json", str(photo)]) == 2
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == str(photo) and "IMG_1331.JPG" not in line["error"]


def test_predict_on_a_number_points_to_read_and_check(tmp_path, capsys, mnist_test):
    (tmp_path / "number.png").write_bytes(_number(mnist_test.images[[1, 2, 3]]))
    (tmp_path / "seven.png").write_bytes(_png(255 - np.pad(mnist_test.images[0], 10)))
    assert main(["predict", str(tmp_path / "number.png"), str(tmp_path / "seven.png"),
                 str(EXAMPLES / "homework.jpg")]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split("\t")[:2] == [str(tmp_path / "seven.png"), str(mnist_test.labels[0])]
    lines = err.strip().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert "several" in line and "digitlab read" in line and "digitlab check" in line, line
        assert "texture" not in line
    assert main(["predict", "--json", str(tmp_path / "number.png")]) == 2
    obj = json.loads(capsys.readouterr().out)
    assert set(obj) == {"file", "digit", "error"} and obj["digit"] is None and "digitlab read" in obj["error"]


def test_read_labels_its_confidence(capsys):
    assert main(["read", str(EXAMPLES / "number_2026.png")]) == 0
    line = capsys.readouterr().out.strip()
    name, text, conf = line.split("\t")
    assert name.endswith("number_2026.png") and text == "2026"
    assert conf.startswith("confidence ") and 0 <= float(conf.split()[1]) <= 1
    assert main(["read", "--json", str(EXAMPLES / "number_2026.png")]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {"file", "text", "confidence"} <= set(obj) and obj["text"] == "2026"


def test_check_text_is_labelled(capsys):
    assert main(["check", str(EXAMPLES / "homework.jpg")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(EXAMPLES / "homework.jpg")) and "skew " in out[0]
    assert len(out) > 1
    for line in out[1:]:
        assert any(s in line for s in ("correct", "wrong", "unsure", "unreadable")), line
        if " wrong " in line:
            assert "should be" in line


def _commands(parser):
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub, {c.dest: c.help for c in sub._choices_actions}


def test_every_command_has_a_one_line_description(capsys):
    sub, helps = _commands(build_parser())
    assert set(helps) == set(sub.choices)  # every command is listed in `digitlab --help`
    for name, text in helps.items():
        assert text and "\n" not in text, name
        assert "calibrat" not in name  # internal tools are not the user's commands
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in helps:
        assert name in out
