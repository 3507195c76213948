"""Train any registered model on MNIST and save it with its provenance (config, data, accuracy)."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from ..datasets.mnist import SHA256, load_mnist, subset, train_val_split
from ..models import create
from ..models.files import models_dir


def train_model(method: str, params: dict, data_dir=None, out=None, subset_n: int | None = None,
                resume: bool = False, progress: bool = True, val_size: int = 5000,
                optdigits_repeat: int = 0, styles: float = 0.0) -> dict | None:
    """Fit ``method`` on the MNIST training set (minus a validation split), test it, save it.

    ``optdigits_repeat`` > 0 adds the 30 optdigits training writers (``tra``, in MNIST format) that
    many times to the training set (other writers' styles); optdigits ``cv`` is then scored as the
    other-writers validation (``metadata["optdigits_cv_accuracy"]``); ``windep`` is never touched.
    ``styles`` > 0 adds stylised copies (flagged 1s, open 4s, crossed 7s, hooked 9s; see ``digitlab.synthetic.styles``)
    of that multiple of the default share of the training digits.
    Returns a summary dict on the process that saved (rank 0), ``None`` on other DDP ranks.
    """
    import torch.distributed as dist

    from ..study.run import tuned_params

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    model = create(method, **{**tuned_params(method), **params})  # `digitlab tune --apply`, then --param
    full = subset(load_mnist("train", data_dir), subset_n)
    test = load_mnist("test", data_dir)
    val_n = min(int(model.params.get("val_size", val_size)), len(full) // 10) if method == "cnn" else 0
    train, val = train_val_split(full, val_n) if val_n else (full, None)
    if optdigits_repeat:
        from ..datasets.mnist import Split, optdigits_as_mnist

        tra = optdigits_as_mnist("tra", data_dir)
        train = Split(np.concatenate([train.images, *[tra.images] * optdigits_repeat]),
                      np.concatenate([train.labels, *[tra.labels] * optdigits_repeat]))
    if styles > 0:
        from ..datasets.mnist import Split
        from ..synthetic.styles import stylised_mnist

        sx, sy = stylised_mnist(train.images, train.labels, np.random.default_rng(1234), scale=styles)
        train = Split(np.concatenate([train.images, sx]), np.concatenate([train.labels, sy]))
    out = Path(out) if out else models_dir() / f"{method}.dlm"
    fit_kw = {}
    if method == "cnn":
        fit_kw = {"progress": progress, "resume": resume, "checkpoint": str(out) + ".ckpt"}
        if val is not None:
            fit_kw.update(X_val=val.images.astype(np.float32) / 255.0, y_val=val.labels)
    t0 = time.perf_counter()
    model.fit(train.images, train.labels, **fit_kw)
    fit_seconds = time.perf_counter() - t0
    if rank != 0:
        return None
    t0 = time.perf_counter()
    acc = float((model.predict(test.images) == test.labels).mean())
    predict_seconds = time.perf_counter() - t0
    import sklearn
    import torch

    if optdigits_repeat:
        from ..datasets.mnist import optdigits_as_mnist

        cv = optdigits_as_mnist("cv", data_dir)
        model.metadata.update({"optdigits_repeat": optdigits_repeat,
                               "optdigits_cv_accuracy": float((model.predict(cv.images) == cv.labels).mean())})
    model.metadata.update({
        "test_accuracy": acc, "fit_seconds": round(fit_seconds, 2), "predict_seconds": round(predict_seconds, 3),
        "train_size": len(train), "val_size": val_n, "styles": styles,
        "data_sha256": {k: v for k, v in SHA256.items()},
        "versions": {"torch": torch.__version__, "sklearn": sklearn.__version__, "python": platform.python_version()},
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
    })
    path = model.save(out)
    ckpt = Path(str(out) + ".ckpt")
    for stale in [ckpt, *ckpt.parent.glob(ckpt.name + ".m*")]:
        stale.unlink(missing_ok=True)  # the finished model supersedes its checkpoints
    return {"path": str(path), "test_accuracy": acc, "fit_seconds": fit_seconds}
