"""The line recogniser: a small CRNN (convolutions, then a BiLSTM over columns) trained with CTC.

It reads a whole line at once, so symbols that touch, overlap or break apart need no segmentation:
the network emits one distribution over ``CHARSET`` + blank every 4 columns of a 32-px-high line.
Training uses synthetic lines from ``linegen`` (training glyphs only) and is a
``digitlab train line-reader`` command; the shipped weights are in ``weights/line_reader.dlm``.
"""

from __future__ import annotations

import hashlib
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

_UNSET = object()
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


def batch_array(lines: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Pad prepared lines to one width; returns the (N,1,32,W) input and the frame count of each line."""
    w = max(l.shape[1] for l in lines)
    w = int(math.ceil(w / STRIDE) * STRIDE)
    x = np.zeros((len(lines), 1, LINE_HEIGHT, w), np.float32)
    for i, l in enumerate(lines):
        x[i, 0, :, : l.shape[1]] = l
    return (x - 0.1) / 0.3, [max(1, l.shape[1] // STRIDE) for l in lines]


def batch_tensor(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_array`` as tensors, for training."""
    x, lengths = batch_array(lines)
    return torch.from_numpy(x), torch.tensor(lengths, dtype=torch.long)


def onnx_twin_name(name: str, sha256: str) -> str:
    """The file name of the ONNX export of a line reader's weights (``digitlab export --onnx``): the
    payload's SHA-256 in the name, so retrained weights never run with a stale export."""
    return f"{name}.{sha256[:16]}.onnx"


def _onnx_session(sha256: str | None):
    """An onnxruntime session on the ONNX twin of the weights with this payload hash, or None."""
    from ..models.files import WEIGHTS_DIR, models_dir

    if not sha256:
        return None
    found = [p for d in (models_dir(), WEIGHTS_DIR) for p in sorted(d.glob(onnx_twin_name("*", sha256)))]
    if not found:
        return None
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 2, 1, 3
    try:
        return ort.InferenceSession(str(found[0]), opts, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged export: PyTorch reads the same weights
        return None


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
        self.payload_sha256: str | None = None  # of the weights loaded; None once fitted again
        self._session = _UNSET

    # Lines are not 28x28 digits: the public API takes lists of line images instead.
    def fit(self, X, y, **kwargs) -> "LineReader":
        if len(X) != len(y) or not len(X):
            raise ValueError("X and y must be non-empty and of the same length")
        if any(set(t) - set(CHARSET) for t in y):
            raise ValueError(f"texts may only use {CHARSET!r}")
        self.drop_export()
        self._fit(X, y, **kwargs)
        self.fitted_ = True
        return self

    def drop_export(self) -> None:
        """The weights are about to change in place (training): read with PyTorch from now on."""
        self.payload_sha256, self._session = None, None

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

    def onnx_session(self):
        """onnxruntime on the ONNX twin of these weights (``onnx_twin_name``, in the models folder or the
        shipped weights), or None: the same frames as PyTorch (within 1e-4) in about a third of the time
        on a CPU, which is most of what a line costs `digitlab check`."""
        if self._session is _UNSET:
            self._session = _onnx_session(self.payload_sha256)
        return self._session

    @torch.inference_mode()
    def frame_log_probs(self, prepared: list[np.ndarray], batch: int = 16) -> list[np.ndarray]:
        """Per-line (T, 16) log-probabilities for lines already passed through ``prepare_line``."""
        self._check_fitted()
        self.net.eval()
        session = self.onnx_session()
        order = np.argsort([p.shape[1] for p in prepared])  # similar widths batch with little padding
        res: dict[int, np.ndarray] = {}
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x, lengths = batch_array([prepared[j] for j in idx])
            logp = session.run(None, {"x": x})[0] if session is not None else self.net(torch.from_numpy(x)).numpy()
            for k, j in enumerate(idx):
                res[int(j)] = logp[k, : lengths[k]]
        return [res[i] for i in range(len(prepared))]

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
        self.payload_sha256, self._session = hashlib.sha256(payload).hexdigest(), _UNSET


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
