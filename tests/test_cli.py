"""The CLI end to end, as a user runs it (a real subprocess)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitlab.synthetic.renders import render_user_image


def run(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "digitlab", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist_test):
    """PNG and JPEG files rendered from MNIST test digits at other sizes, colours, margins, inverted."""
    d = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(7)
    labels = {}
    for i in range(24):
        raw = render_user_image(mnist_test.images[i], rng, invert=i % 3 == 0, jpeg=i % 2 == 0)
        ext = "jpg" if raw[:2] == b"\xff\xd8" else "png"
        path = d / f"d{i:02d}.{ext}"
        path.write_bytes(raw)
        labels[path.name] = int(mnist_test.labels[i])
    return d, labels


def test_help_on_every_subcommand():
    out = run("--help", check=True).stdout
    for cmd in ("predict", "evaluate", "train", "models"):
        assert cmd in out
        assert run(cmd, "--help", check=True).stdout.startswith("usage:")


def test_predict_text_and_json(digit_files):
    d, labels = digit_files
    proc = run("predict", str(d), check=True)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(labels)
    rows = [line.split("\t") for line in lines]
    correct = sum(int(digit) == labels[os.path.basename(f)] for f, digit, _ in rows)
    assert correct >= len(labels) - 1
    proc = run("predict", "--json", *sorted(str(p) for p in d.iterdir())[:3], check=True)
    for line in proc.stdout.strip().splitlines():
        obj = json.loads(line)
        assert set(obj) == {"file", "digit", "confidence", "probabilities"}
        assert len(obj["probabilities"]) == 10 and abs(sum(obj["probabilities"]) - 1) < 1e-3
        assert obj["digit"] == labels[os.path.basename(obj["file"])]


def test_bad_file_gets_error_line_and_others_still_run(digit_files, tmp_path):
    d, labels = digit_files
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    blank = tmp_path / "blank.png"
    Image.new("L", (60, 60), 255).save(blank)
    good = sorted(d.iterdir())[0]
    proc = run("predict", str(bad), str(good), str(blank))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.png" in proc.stderr and "not an image" in proc.stderr
    assert "blank.png" in proc.stderr and "no digit" in proc.stderr
    assert proc.stdout.count("\n") == 1 and good.name in proc.stdout
    proc = run("predict", "--json", str(bad))
    assert json.loads(proc.stdout)["error"].endswith("not an image (or a format that cannot be read)")


def test_unknown_model_is_one_line_error(digit_files):
    d, _ = digit_files
    proc = run("predict", "--model", "nosuchmodel", str(d))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "nosuchmodel" in proc.stderr


def test_evaluate_subset(mnist_test):
    proc = run("evaluate", "--subset", "500", "--json", check=True)
    result = json.loads(proc.stdout)
    assert result["n"] == 500 and result["accuracy"] > 0.98


def test_train_and_use_a_classic_model(tmp_path, mnist_test):
    out = tmp_path / "lin.dlm"
    run("train", "linear", "--subset", "1000", "--param", "max_iter=30", "--out", str(out), "--quiet", check=True)
    assert out.exists()
    img = tmp_path / "seven.png"
    Image.fromarray(255 - np.pad(mnist_test.images[0], 10)).save(img)
    obj = json.loads(run("predict", "--json", "--model", str(out), str(img), check=True).stdout)
    assert obj["digit"] == 7


@pytest.mark.parametrize("cmd", ["predict", "read", "check"])
def test_folder_without_images_is_an_error(cmd, tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    proc = run(cmd, str(tmp_path))
    assert proc.returncode == 2 and "no image files found" in proc.stderr and "Traceback" not in proc.stderr


def test_cuda_without_gpu_is_one_line_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run("train", "cnn", "--device", "cuda", "--subset", "100", "--epochs", "1", "--quiet")
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "lots"])
def test_train_refuses_a_bad_styles_share(value):
    proc = run("train", "cnn", "--styles", value)
    assert proc.returncode == 2
    assert "--styles: must be a number >= 0" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "much"])
@pytest.mark.parametrize("option", ["--photo", "--warp", "--kern"])
def test_train_refuses_a_bad_photo_or_warp_share(option, value):
    proc = run("train", "line-reader", option, value)
    assert proc.returncode == 2
    assert f"{option}: must be" in proc.stderr and "Traceback" not in proc.stderr


def test_check_reads_without_pytorch_or_scikit_learn():
    """`digitlab check` with the shipped readers runs on onnxruntime alone: importing PyTorch and
    scikit-learn would add a second or two to every run's start-up (the speed target counts it)."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "homework.jpg"
    code = ("import sys; from digitlab.cli import main; rc = main(['check', sys.argv[1]]); "
            "print('heavy:', sorted(m for m in ('torch', 'sklearn') if m in sys.modules)); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, str(example)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "62-34=28" in run.stdout and "heavy: []" in run.stdout, run.stdout
