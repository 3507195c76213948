"""The line recogniser: a small CRNN (convolutions, then a BiLSTM over columns) trained with CTC.

It reads a whole line at once, so symbols that touch, overlap or break apart need no segmentation:
the network emits one distribution over ``CHARSET`` + blank every 4 columns of a 32-px-high line.
Training uses synthetic lines from ``linegen`` (training glyphs only) and is a
``digitlab train line-reader`` command; the shipped weights are in ``weights/line_reader.dlm``.

The network itself is PyTorch (``linenet``), but a reader whose weights have an ONNX twin reads with
onnxruntime and never imports PyTorch: a `digitlab check` run starts a second sooner.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np

from ..models.base import DigitModel, register
from . import CHARSET, CRNN_CHARSET, LINE_HEIGHT
from .crnn_io import MAX_WIDTH, STRIDE, batch_array, encode, greedy, line_crop, prepare_line  # noqa: F401 (re-exported)

_UNSET = object()
UNSEEN = -30.0  # log-probability of the classes the CRNN never learnt (parentheses): never read


def _all_classes(logp: np.ndarray) -> np.ndarray:
    """A CRNN's (T, 1 + len(CRNN_CHARSET)) frames widened to every class of ``CHARSET``."""
    extra = 1 + len(CHARSET) - logp.shape[1]
    return np.pad(logp, ((0, 0), (0, extra)), constant_values=UNSEEN) if extra > 0 else logp


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


@register
class LineReader(DigitModel):
    """Whole-line recogniser. ``X``: a list of line ink maps (any size, 1 = ink); ``y``: their texts."""

    name: ClassVar[str] = "line-reader"
    charset: ClassVar[str] = CRNN_CHARSET  # the symbols it can read
    description: ClassVar[str] = "CRNN + CTC line recogniser for numbers and arithmetic lines"

    def __init__(self, width: int = 24, hidden: int = 96, seed: int = 0) -> None:
        super().__init__(width=width, hidden=hidden, seed=seed)
        self._net = None
        self._weights: bytes | None = None  # the weights loaded, until the network is built from them
        self.payload_sha256: str | None = None  # of the weights loaded; None once fitted again
        self._session = _UNSET

    @property
    def net(self):
        """The PyTorch network (``linenet.LineNet``), built on first use."""
        if self._net is None:
            from .linenet import LineNet, load_weights

            net = LineNet(self.params["width"], self.params["hidden"])
            if self._weights is not None:
                load_weights(net, self._weights)
            self._net = net.eval()
        return self._net

    # Lines are not 28x28 digits: the public API takes lists of line images instead.
    def fit(self, X, y, **kwargs) -> "LineReader":
        if len(X) != len(y) or not len(X):
            raise ValueError("X and y must be non-empty and of the same length")
        if any(set(t) - set(CRNN_CHARSET) for t in y):
            raise ValueError(f"texts may only use {CRNN_CHARSET!r}")
        self.drop_export()
        self._fit(X, y, **kwargs)
        self.fitted_ = True
        return self

    def drop_export(self) -> None:
        """The weights are about to change in place (training): read with PyTorch from now on."""
        self.net  # noqa: B018 (built from the weights loaded before they change)
        self.payload_sha256, self._session = None, None

    def _fit(self, X, y, epochs: int = 3, lr: float = 3e-4, batch_size: int = 32, **_) -> None:
        """Fine-tune on labelled lines (the synthetic pre-training is ``train.train_line_reader``)."""
        from .linenet import fine_tune

        fine_tune(self.net, [prepare_line(x) for x in X], list(y), epochs, lr, batch_size, self.params["seed"])

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

    def frame_log_probs(self, prepared: list[np.ndarray], batch: int = 16) -> list[np.ndarray]:
        """Per-line (T, 16) log-probabilities for lines already passed through ``prepare_line``."""
        self._check_fitted()
        session = self.onnx_session()
        if session is None:
            from .linenet import run
        order = np.argsort([p.shape[1] for p in prepared])  # similar widths batch with little padding
        res: dict[int, np.ndarray] = {}
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x, lengths = batch_array([prepared[j] for j in idx])
            logp = session.run(None, {"x": x})[0] if session is not None else run(self.net, x)
            for k, j in enumerate(idx):
                res[int(j)] = _all_classes(logp[k, : lengths[k]])
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
        if self._net is None and self._weights is not None:
            return self._weights
        from .linenet import weights_bytes

        return weights_bytes(self.net)

    def _restore(self, payload: bytes) -> None:
        self._net, self._weights = None, payload
        self.payload_sha256, self._session = hashlib.sha256(payload).hexdigest(), _UNSET
        if self.onnx_session() is None:
            self.net  # built now: weights that do not fit the network fail on loading, not on reading
