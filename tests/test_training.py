"""CNN training: DDP under torchrun, kill -9 safety and resume, ONNX export."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from digitlab.models import load
from helpers import free_port

HERE = Path(__file__).parent


def test_ddp_two_processes_identical_replicas(tmp_path):
    env = {**os.environ, "DIGITLAB_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(HERE / "ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["digest"] == r1["digest"]  # parameters and BatchNorm buffers identical
    assert r0["accuracy"] > 0.7  # learned: chance is 0.1


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "digitlab", "train", "cnn", "--subset", "3000", "--width", "8", "--augment", "none",
            "--out", str(out), "--quiet", *extra]


def test_sigkill_keeps_previous_model_and_resume_works(tmp_path, mnist_train):
    out = tmp_path / "cnn.dlm"
    ckpt = Path(str(out) + ".ckpt")
    subprocess.run(_train_cmd(out, "--epochs", "1"), check=True, capture_output=True, timeout=300)
    before = load(out).metadata["test_accuracy"]

    proc = subprocess.Popen(_train_cmd(out, "--epochs", "6"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), proc.stderr.read().decode()[-2000:]
    time.sleep(np.random.default_rng().uniform(0, 1.0))  # a random moment after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The previous model is intact and loadable; no temp files pass for models.
    assert load(out).metadata["test_accuracy"] == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".dlm") and p != out]

    res = subprocess.run(_train_cmd(out, "--epochs", "6", "--resume"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resumed from" in res.stderr
    model = load(out)
    history = model.metadata["history"][0]
    assert history[-1]["epoch"] == 6 and history[0]["epoch"] == 1  # earlier epochs came from the checkpoint
    assert not ckpt.exists()


def test_time_budget_stops_on_time(mnist_train):
    from digitlab.datasets.mnist import subset
    from digitlab.training.cnn import TrainConfig, train_net

    small = subset(mnist_train, 3000)
    t0 = time.perf_counter()
    train_net(small.images.astype(np.float32) / 255, small.labels,
              TrainConfig(width=8, epochs=100, time_budget=3, augment="none"), progress=False)
    assert time.perf_counter() - t0 < 8


def test_onnx_agrees_with_pytorch(tmp_path, mnist_test):
    ort = pytest.importorskip("onnxruntime")
    from digitlab.digits.export import export_onnx
    from digitlab.models import load
    from digitlab.models.files import DEFAULT_MODEL

    model = load(DEFAULT_MODEL)
    path = export_onnx(model, tmp_path / "m.onnx")
    model.params["inference"] = "fp32"  # the export is of the float nets (the shipped model infers in int8)
    X = mnist_test.images[:1000].astype(np.float32) / 255
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_p = sess.run(None, {"image": X[:, None]})[0]
    torch_p = model.predict_proba(X)
    assert np.abs(onnx_p - torch_p).max() < 1e-4
    assert (onnx_p.argmax(1) == mnist_test.labels[:1000]).mean() > 0.99


def test_bf16_training_and_strided_stem(tmp_path, mnist_train, mnist_test):
    import torch

    from digitlab.datasets.mnist import subset
    from digitlab.errors import DigitlabError
    from digitlab.models import create
    from digitlab.digits.cnn import fused_for_inference
    from digitlab.training.cnn import resolve_precision

    with pytest.raises(DigitlabError, match="unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        with pytest.raises(DigitlabError, match="no native bfloat16"):
            resolve_precision("bf16", torch.device("cpu"))
        pytest.skip("this CPU has no native bfloat16")
    small = subset(mnist_train, 4000)
    model = create("cnn", width=8, epochs=3, augment="none", precision="bf16", stem="stride")
    model.fit(small.images, small.labels, progress=False)
    X = mnist_test.images[:1000]
    assert model.score(X, mnist_test.labels[:1000]) > 0.9
    # The strided stem folds its batch norm like the others, and the file keeps the architecture.
    net = model.net
    x = torch.rand(16, 1, 28, 28)
    assert torch.allclose(fused_for_inference(net)(x), net(x), atol=1e-4)
    again = load(model.save(tmp_path / "m.dlm"))
    assert again.params["stem"] == "stride"
    assert np.allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_augmentation_levels(mnist_test):
    import torch

    from digitlab.errors import DigitlabError
    from digitlab.training.cnn import augment_batch

    x = torch.as_tensor(mnist_test.images[:64].astype(np.float32) / 255).unsqueeze(1)

    def run(level, seed=0):
        return augment_batch(x.clone(), level, torch.Generator().manual_seed(seed))

    assert torch.equal(run("none"), x)
    for level in ("shift", "light", "full"):
        out = run(level)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, run(level)) and not torch.equal(out, run(level, seed=1))  # seeded
    # "shift" only translates: ink is kept and the centre of mass moves by at most the 1.7 px limit.
    # Some MNIST digits touch the border and lose ink when shifted, so mass is checked on the rest.
    out = run("shift")
    img = x[:, 0]
    inner = (img[:, :2].sum((1, 2)) + img[:, -2:].sum((1, 2)) + img[..., :2].sum((1, 2)) + img[..., -2:].sum((1, 2))) == 0
    assert inner.sum() > 40
    mass_in, mass_out = x.sum((1, 2, 3))[inner], out.sum((1, 2, 3))[inner]
    assert torch.allclose(mass_out, mass_in, rtol=1e-3)
    grid = torch.arange(28, dtype=torch.float32)

    def centre(t):
        m = t[:, 0]
        return torch.stack([(m.sum(2) * grid).sum(1) / m.sum((1, 2)), (m.sum(1) * grid).sum(1) / m.sum((1, 2))], 1)

    shift = (centre(out) - centre(x)).abs()
    assert shift.max() < 1.9 and shift.mean() > 0.3
    with pytest.raises(DigitlabError, match="unknown augmentation"):
        run("heavy")
