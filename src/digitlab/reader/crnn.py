"""The line recogniser: a small CRNN (convolutions, then a BiLSTM over columns) trained with CTC.

It reads a whole line at once, so symbols that touch, overlap or break apart need no segmentation:
the network emits one distribution over ``CHARSET`` + blank every 4 columns of a 32-px-high line.
Training uses synthetic lines from ``linegen`` (training glyphs only) and is a
``digitlab train line-reader`` command; the shipped weights are in ``weights/line_reader.dlm``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from ..errors import ModelError
from ..models.base import DigitModel, register
from ..digits.preprocess import NoDigitFound
from . import CHARSET, LINE_HEIGHT

MAX_WIDTH = 1024  # px after normalisation (about 40 symbols)
STRIDE = 4  # columns per output frame


def line_crop(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): where the writing of a line band is.

    The vertical extent is where the ink mass lies (1.5%..98.5% of it by rows), so a stray ruling
    remnant or the tail of a neighbouring line does not decide the scale.
    """
    ink = np.asarray(ink, np.float32)
    if ink.ndim != 2 or ink.size == 0:
        raise NoDigitFound("empty line")
    mass = np.where(ink > 0.25, ink, 0)
    total = float(mass.sum())
    if total < 4:
        raise NoDigitFound("no ink in the line")
    cum = np.cumsum(mass.sum(axis=1)) / total
    y0, y1 = int(np.searchsorted(cum, 0.015)), int(np.searchsorted(cum, 0.985)) + 1
    pad = max(1, int(0.08 * max(4, y1 - y0)))
    y0, y1 = max(0, y0 - pad), min(ink.shape[0], y1 + pad)
    cols = np.nonzero((ink[y0:y1] > 0.25).any(axis=0))[0]
    if len(cols) == 0:
        raise NoDigitFound("no ink in the line")
    xpad = int(0.25 * (y1 - y0))
    return y0, y1, max(0, int(cols[0]) - xpad), min(ink.shape[1], int(cols[-1]) + 1 + xpad)


def prepare_line(ink: np.ndarray) -> np.ndarray:
    """A line band's ink map (1 = ink) -> (32, W) float32: cropped to the writing, 32 px high."""
    y0, y1, x0, x1 = line_crop(ink)
    band = np.asarray(ink, np.float32)[y0:y1, x0:x1]
    scale = LINE_HEIGHT / band.shape[0]
    w = int(np.clip(round(band.shape[1] * scale), 16, MAX_WIDTH))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.clip(cv2.resize(band, (w, LINE_HEIGHT), interpolation=interp), 0, 1).astype(np.float32)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LineNet(nn.Module):
    """32xW line -> (W/4) frames of log-probabilities over blank + CHARSET."""

    def __init__(self, width: int = 32, hidden: int = 96, num_classes: int = len(CHARSET) + 1) -> None:
        super().__init__()
        c = [width, 2 * width, 3 * width, 3 * width, 4 * width]
        self.cnn = nn.Sequential(
            _block(1, c[0]), nn.MaxPool2d(2),                            # 16 x W/2
            _block(c[0], c[1]), nn.MaxPool2d(2),                         # 8 x W/4
            _block(c[1], c[2]), _block(c[2], c[3]), nn.MaxPool2d((2, 1)),  # 4 x W/4
            _block(c[3], c[4]), nn.MaxPool2d((2, 1)),                    # 2 x W/4
        )
        self.proj = nn.Linear(2 * c[4], 128)
        self.rnn = nn.LSTM(128, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x)  # N, C, 2, T
        n, c, h, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(n, t, c * h)
        f, _ = self.rnn(F.relu(self.proj(f)))
        return F.log_softmax(self.out(f), dim=-1)  # N, T, K


def batch_tensor(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad prepared lines to one width; returns (N,1,32,W) input and the frame count of each line."""
    w = max(l.shape[1] for l in lines)
    w = int(math.ceil(w / STRIDE) * STRIDE)
    x = np.zeros((len(lines), 1, LINE_HEIGHT, w), np.float32)
    for i, l in enumerate(lines):
        x[i, 0, :, : l.shape[1]] = l
    lengths = torch.tensor([max(1, l.shape[1] // STRIDE) for l in lines], dtype=torch.long)
    return torch.from_numpy((x - 0.1) / 0.3), lengths


def encode(text: str) -> list[int]:
    return [CHARSET.index(c) + 1 for c in text]


def greedy(logp: np.ndarray) -> str:
    best = logp.argmax(-1)
    out, prev = [], 0
    for k in best:
        if k != prev and k != 0:
            out.append(CHARSET[k - 1])
        prev = k
    return "".join(out)


@register
class LineReader(DigitModel):
    """Whole-line recogniser. ``X``: a list of line ink maps (any size, 1 = ink); ``y``: their texts."""

    name: ClassVar[str] = "line-reader"
    description: ClassVar[str] = "CRNN + CTC line recogniser for numbers and arithmetic lines"

    def __init__(self, width: int = 24, hidden: int = 96, seed: int = 0) -> None:
        super().__init__(width=width, hidden=hidden, seed=seed)
        self.net = LineNet(width, hidden)

    # Lines are not 28x28 digits: the public API takes lists of line images instead.
    def fit(self, X, y, **kwargs) -> "LineReader":
        if len(X) != len(y) or not len(X):
            raise ValueError("X and y must be non-empty and of the same length")
        if any(set(t) - set(CHARSET) for t in y):
            raise ValueError(f"texts may only use {CHARSET!r}")
        self._fit(X, y, **kwargs)
        self.fitted_ = True
        return self

    def _fit(self, X, y, epochs: int = 3, lr: float = 3e-4, batch_size: int = 32, **_) -> None:
        """Fine-tune on labelled lines (the synthetic pre-training is ``train.train_line_reader``)."""
        prepared = [prepare_line(x) for x in X]
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr)
        rng = np.random.default_rng(self.params["seed"])
        for _ in range(epochs):
            order = rng.permutation(len(prepared))
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                ctc_step(self.net, opt, [prepared[j] for j in idx], [y[j] for j in idx])
        self.net.eval()

    def prepare(self, ink: np.ndarray) -> np.ndarray:
        """A line band's ink map -> this network's input (``prepare_line``)."""
        return prepare_line(ink)

    def geometry(self, ink: np.ndarray) -> tuple[float, float]:
        """(x of the first frame's left edge, ink-map columns per frame) for a line: symbol spans."""
        y0, y1, x0, _ = line_crop(ink)
        return float(x0), STRIDE * (y1 - y0) / LINE_HEIGHT

    @torch.inference_mode()
    def frame_log_probs(self, prepared: list[np.ndarray], batch: int = 16) -> list[np.ndarray]:
        """Per-line (T, 16) log-probabilities for lines already passed through ``prepare_line``."""
        self._check_fitted()
        self.net.eval()
        out: list[np.ndarray] = []
        order = np.argsort([p.shape[1] for p in prepared])  # similar widths batch with little padding
        res: dict[int, np.ndarray] = {}
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x, lengths = batch_tensor([prepared[j] for j in idx])
            logp = self.net(x).numpy()
            for k, j in enumerate(idx):
                res[int(j)] = logp[k, : int(lengths[k])]
        out = [res[i] for i in range(len(prepared))]
        return out

    def predict_proba(self, X) -> list[np.ndarray]:
        return [np.exp(lp) for lp in self.frame_log_probs([prepare_line(x) for x in X])]

    def predict(self, X) -> list[str]:
        return [greedy(lp) for lp in self.frame_log_probs([prepare_line(x) for x in X])]

    def score(self, X, y) -> float:
        return float(np.mean([a == b for a, b in zip(self.predict(X), y)]))

    def _predict_proba(self, X):  # pragma: no cover - the public methods above replace it
        raise NotImplementedError

    def _payload(self) -> bytes:
        return st_save({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})

    def _restore(self, payload: bytes) -> None:
        try:
            self.net.load_state_dict(st_load(payload), strict=True)
        except RuntimeError as exc:
            raise ModelError(f"line-reader weights do not fit the network ({exc})") from None
        self.net.eval()


def ctc_step(net: LineNet, opt, lines: list[np.ndarray], texts: list[str]) -> float:
    net.train()
    x, lengths = batch_tensor(lines)
    targets = torch.tensor([k for t in texts for k in encode(t)], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
    logp = net(x).permute(1, 0, 2)  # T, N, K
    loss = F.ctc_loss(logp, targets, lengths, target_lengths, blank=0, zero_infinity=True)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return float(loss.detach())
