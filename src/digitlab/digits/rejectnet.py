"""The learned "is this a digit?" model of ``digitlab.digits.reject``: a tiny CNN, digit vs not.

It looks at the same preprocessed 28x28 picture the digit models read (``preprocess_digit`` of a
user image), and says how likely it is *not* a digit. Trained by ``digitlab train reject``
(``digitlab.training.reject.train_reject``) on training-side data only:

* digits (class 0): MNIST *train* without the CNN's held-back validation 5k
  (``data.train_val_split``), rendered as user images; optdigits ``tra`` rendered as paper-like
  bitmaps; and degraded training digits (``renders.degrade``: thick, thin, binarised, slanted pens,
  plus marker-thick ones (``marker_digit``), since a thick marker digit is what a blob is confused with);
* non-digits (class 1): ``renders.non_digit_image`` drawn with seed 100 + ``--seed`` (the benchmark
  measures seed 0, the calibration seed 1), and as many again from ``varied_non_digit``
  (``digitlab.training.reject``), a broader generator (filled shapes of every kind, some with holes
  or soft edges, irregular blobs, dots, hatching and scribbles, patterns inside a shape, smooth
  photo-like fields, mixtures), so the model learns "not pen strokes of one digit" rather than this
  project's generator.

MNIST test and optdigits ``windep`` are never read here, and neither is what calibrates the bound
(MNIST's validation 5k, optdigits ``cv``, non-digit seed 1): the bound on the output is chosen by
``python benchmarks/non_digits.py --calibrate`` and kept in ``weights/reject.json``.

The model is saved in the ``.dlm`` format (JSON header, safetensors payload, SHA-256 checked on
load, nothing unpickled) and loaded with :func:`load_reject`; it is not in the registry of digit
models, so it is never offered as a digit reader (``digitlab models``, the web API).
"""

from __future__ import annotations

import functools
import math
import time
from typing import ClassVar

import numpy as np

from ..errors import ModelError, NoDigitFound
from ..models.base import DigitModel, read_header
from ..models.files import WEIGHTS_DIR
from .reject import REASONS, calibration

NAME = "reject"
NET_WEIGHTS = WEIGHTS_DIR / "reject.dlm"  # the shipped model, calibrated in reject.json


# -- the network ------------------------------------------------------------------------------------
def _net(width: int = 16):
    import torch
    from torch import nn

    def block(cin, cout, k=3):
        return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    layers = [*block(1, w, 5), nn.MaxPool2d(2),            # 28 -> 14
              *block(w, 2 * w), nn.MaxPool2d(2),           # 14 -> 7
              *block(2 * w, 3 * w), nn.MaxPool2d(2),       # 7 -> 3
              nn.Flatten(), nn.Dropout(0.2), nn.Linear(3 * w * 9, 1)]
    return nn.Sequential(*layers)


class RejectModel(DigitModel):
    """Tiny CNN: ``predict_proba`` gives (P(digit), P(not a digit)) of preprocessed 28x28 pictures."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "tiny CNN: is this picture a digit at all? (digitlab.digits.reject)"

    def __init__(self, width: int = 16, epochs: float = 8, batch_size: int = 128, lr: float = 3e-3,
                 seed: int = 0) -> None:
        super().__init__(width=width, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        self.net = None

    def _fit(self, X, y, X_val=None, y_val=None, progress: bool = True, **kw) -> None:
        self.net, self.metadata["history"] = _train(X, y.astype(np.float32), self.params, X_val, y_val, progress)

    def not_digit(self, X) -> np.ndarray:
        """P(not a digit) for each picture (N,28,28)."""
        return self.predict_proba(X)[:, 1]

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            p = np.concatenate([torch.sigmoid(self.net(_tensor(X[i : i + 1024]))).numpy()[:, 0]
                                for i in range(0, len(X), 1024)]).astype(np.float64)
        return np.stack([1 - p, p], 1)

    def _payload(self) -> bytes:
        from safetensors.torch import save as st_save

        return st_save({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})

    def _restore(self, payload: bytes) -> None:
        from safetensors.torch import load as st_load

        state = st_load(payload)
        self.net = _net(int(state["0.weight"].shape[0]))
        self.net.load_state_dict(state, strict=True)
        self.net.eval()


def load_reject(path) -> RejectModel:
    """Load a reject model saved by ``digitlab train reject`` (checksum verified, no pickle)."""
    header, payload = read_header(path)
    if header["model"] != NAME:
        raise ModelError(f"{path}: holds a {header['model']} model, not a reject model")
    model = RejectModel(**header.get("params", {}))
    model.metadata = header.get("metadata", {})
    try:
        model._restore(payload)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the reject model ({exc})") from None
    model.fitted_ = True
    return model


# -- the shipped model and its bound (the ``net`` check of digitlab.digits.reject) ----------------------------
@functools.lru_cache(maxsize=1)
def net_model():
    """The learned "is this a digit?" model with its calibrated bound, or None (then today's checks only).

    None where ``weights/reject.dlm`` is missing, where ``reject.json`` has no bound for it, or where
    the bound was set for other weights (a retrained model must be calibrated again; a warning says so).
    """
    bound = calibration().get("net")
    if not bound or not NET_WEIGHTS.exists():
        return None
    if read_header(NET_WEIGHTS)[0]["sha256"] != bound.get("sha256"):
        import warnings

        warnings.warn(f"{NET_WEIGHTS} is not the model weights/reject.json was calibrated for; it is not used "
                      "(run `python benchmarks/non_digits.py --calibrate --write`)", stacklevel=2)
        return None
    return load_reject(NET_WEIGHTS), float(bound["threshold"])


def not_digit_probability(image: np.ndarray, model=None) -> float | None:
    """The learned model's P(not a digit) for one preprocessed 28x28 picture (None: no model)."""
    if model is None:
        loaded = net_model()
        if loaded is None:
            return None
        model = loaded[0]
    return float(model.not_digit(np.asarray(image, np.float32)[None])[0])


def check_net(image: np.ndarray) -> None:
    """Raise ``NoDigitFound`` when the learned model's P(not a digit) is above its calibrated bound.

    Does nothing where the model (``weights/reject.dlm``) or its bound is missing.
    """
    loaded = net_model()
    if loaded is not None and not_digit_probability(image, loaded[0]) > loaded[1]:
        raise NoDigitFound(f"no digit found ({REASONS['net']})")


def _tensor(X: np.ndarray):
    import torch

    return (torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).unsqueeze(1) - 0.13) / 0.3


def _augment(x, y, gen):
    """Light affine jitter for every picture; non-digits may also be flipped or turned (still not digits)."""
    import torch

    from ..training.cnn import augment_batch

    x = augment_batch(x, "light", gen)
    nd = y > 0.5
    flip = nd & (torch.rand(len(x), generator=gen) < 0.5)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    turn = nd & (torch.rand(len(x), generator=gen) < 0.5)
    return torch.where(turn.view(-1, 1, 1, 1), x.transpose(2, 3), x)


def _train(X, y, p, X_val, y_val, progress):
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from ..training.cnn import one_cycle

    torch.manual_seed(p["seed"])
    gen = torch.Generator().manual_seed(p["seed"])
    net = _net(p["width"])
    opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=5e-4)
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).unsqueeze(1)
    yt = torch.as_tensor(y)
    # Classes weigh the same in the loss, whatever their counts.
    w_pos = float((y < 0.5).sum() / max(1, (y > 0.5).sum()))
    steps_per_epoch = math.ceil(len(Xt) / p["batch_size"])
    total = max(1, int(p["epochs"] * steps_per_epoch))
    history, step, t0 = [], 0, time.perf_counter()
    for epoch in range(math.ceil(p["epochs"])):
        net.train()
        order = torch.randperm(len(Xt), generator=gen)
        loss_sum, seen = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"reject epoch {epoch + 1}/{math.ceil(p['epochs'])}",
                   disable=not progress, leave=False, mininterval=0.5)
        for i in bar:
            if step >= total:
                break
            for g in opt.param_groups:
                g["lr"] = one_cycle(step / total, p["lr"])
            idx = order[i * p["batch_size"] : (i + 1) * p["batch_size"]]
            xb = _augment(Xt[idx], yt[idx], gen)
            logit = net((xb - 0.13) / 0.3)[:, 0]
            loss = F.binary_cross_entropy_with_logits(logit, yt[idx], pos_weight=torch.tensor(w_pos))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        bar.close()
        entry = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t0, 1), "train_loss": round(loss_sum / max(seen, 1), 5)}
        if X_val is not None and len(X_val):
            net.eval()
            with torch.inference_mode():
                pv = torch.sigmoid(net(_tensor(X_val))).numpy()[:, 0]
            entry["holdout_error"] = round(float(((pv > 0.5) != (y_val > 0.5)).mean()), 5)
        history.append(entry)
        if progress:
            print("reject " + ", ".join(f"{k}={v}" for k, v in entry.items()), flush=True)
    net.eval()
    return net, history
