"""The pretrained line recogniser: PP-OCRv6's recognition model, as shipped inside the ``rapidocr`` wheel.

PP-OCRv6 (PaddleOCR, Apache-2.0) was trained on real text lines of many scripts and hands; digitlab
stands on it and puts its own decoding on top. The model's 18,708 characters are mapped onto
``CHARSET`` (a few of its characters to each of ours: "x", "X", "×" and "*" are all a times sign) and each
frame is renormalised over what is left, so the grammar beam search (``decode.py``) receives the
same (T, 1 + len(CHARSET)) log-probabilities as from the CRNN. The mapping and the verdict
calibration are settings of this model, kept beside it in ``weights/ppocr.json``.

The ONNX file is found through the installed ``rapidocr`` package, checked against its SHA-256, and
run with onnxruntime on the CPU (one session a process, two threads).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..digits.preprocess import NoDigitFound
from . import CHARSET, CRNN_CHARSET

SETTINGS = Path(__file__).resolve().parent.parent / "weights" / "ppocr.json"
HEIGHT = 48  # the model's input height
STRIDE = 8  # input columns per output frame
MAX_WIDTH = 2400
FLOOR = 1e-8  # added to every kept class before renormalising: no frame is certain of nothing


def settings() -> dict:
    """The adapter's settings (model file, SHA-256, vocabulary mapping, verdict calibration)."""
    try:
        return json.loads(SETTINGS.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{SETTINGS}: cannot read the PP-OCR settings ({exc})") from None


def model_file(cfg: dict | None = None) -> Path:
    """The ONNX file inside the installed ``rapidocr`` package, after checking its SHA-256."""
    cfg = cfg or settings()
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the PP-OCR recogniser needs the rapidocr package: pip install rapidocr=={cfg['rapidocr']}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / cfg["model"]
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall rapidocr=={cfg['rapidocr']}, whose wheel ships it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != cfg["sha256"]:
        raise ModelError(f"{path}: SHA-256 {digest[:12]}... is not the expected {cfg['sha256'][:12]}...; "
                         f"reinstall rapidocr=={cfg['rapidocr']}")
    return path


def mapping_matrix(vocabulary: list[str], aliases: dict[str, str]) -> np.ndarray:
    """(1 + len(vocabulary) + 1, 1 + len(CHARSET)) 0/1 matrix: model class -> our class.

    The model's classes are blank, its vocabulary, then a space (as rapidocr decodes them); ``aliases``
    maps each of our characters to the model's characters that count as it.
    """
    index = {ch: i + 1 for i, ch in enumerate(vocabulary)}
    m = np.zeros((len(vocabulary) + 2, len(CHARSET) + 1), np.float32)
    m[0, 0] = 1.0
    for ours, theirs in aliases.items():
        if ours not in CHARSET:
            raise ModelError(f"ppocr.json maps onto {ours!r}, which is not in the charset {CHARSET}")
        for ch in theirs:
            if ch in index:
                m[index[ch], CHARSET.index(ours) + 1] = 1.0
    return m


class PPOCRReader:
    """PP-OCRv6 recognition behind the line-reader interface: ``prepare`` a line's ink map, then
    ``frame_log_probs`` gives (T, 1 + len(CHARSET)) log-probabilities per line."""

    name = "ppocr"
    charset = CHARSET  # the symbols it can read

    def __init__(self, cfg: dict | None = None) -> None:
        import onnxruntime as ort

        self.cfg = cfg or settings()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(self.cfg.get("threads", 2))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model_file(self.cfg)), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load the PP-OCR recogniser ({exc})") from None
        vocabulary = self.session.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.matrix = mapping_matrix(vocabulary, self.cfg["aliases"])
        self.input = self.session.get_inputs()[0].name
        self.metadata = self.cfg.get("metadata", {})
        self._lock = threading.Lock()

    # -- pre-processing: a line band's ink map (1 = ink) to the model's input --
    def crop(self, ink: np.ndarray) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the writing in a line's ink map, with a margin as the model was trained on."""
        ink = np.asarray(ink, np.float32)
        if ink.ndim != 2 or ink.size == 0:
            raise NoDigitFound("empty line")
        on = ink > 0.25
        rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        if on.sum() < 4 or not len(rows):
            raise NoDigitFound("no ink in the line")
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        h = y1 - y0
        pad_y, pad_x = max(2, int(0.12 * h)), max(3, int(0.25 * h))
        return int(y0) - pad_y, int(y1) + pad_y, int(x0) - pad_x, int(x1) + pad_x

    def prepare(self, ink: np.ndarray) -> np.ndarray:
        """(3, 48, W) float32 in [-1, 1], dark ink on white paper, as PP-OCR's own pre-processing makes it."""
        y0, y1, x0, x1 = self.crop(ink)
        ink = np.asarray(ink, np.float32)
        top, left = max(0, -y0), max(0, -x0)  # the margin may reach past the band: blank paper there
        padded = np.pad(ink, ((top, max(0, y1 - ink.shape[0])), (left, max(0, x1 - ink.shape[1]))))
        band = padded[y0 + top : y1 + top, x0 + left : x1 + left]
        scale = HEIGHT / band.shape[0]
        w = int(np.clip(round(band.shape[1] * scale), HEIGHT // 2, MAX_WIDTH))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        grey = 1.0 - np.clip(cv2.resize(band, (w, HEIGHT), interpolation=interp), 0, 1)
        return np.repeat(((grey - 0.5) / 0.5)[None], 3, axis=0).astype(np.float32)

    def geometry(self, ink: np.ndarray) -> tuple[float, float]:
        """(x of the first frame's left edge, ink-map columns per frame) for a line: symbol spans."""
        y0, y1, x0, _ = self.crop(ink)
        return float(x0), STRIDE * (y1 - y0) / HEIGHT

    # -- the network and the vocabulary adapter --
    def raw_probs(self, prepared: list[np.ndarray]) -> list[np.ndarray]:
        """The model's own (T, 18710) frame probabilities for prepared lines."""
        out = []
        with self._lock:  # one ONNX session, used by one request at a time
            for x in prepared:
                out.append(self.session.run(None, {self.input: x[None]})[0][0])
        return out

    def frame_log_probs(self, prepared: list[np.ndarray]) -> list[np.ndarray]:
        """Per-line (T, 1 + len(CHARSET)) log-probabilities, renormalised over our characters."""
        out = []
        for p in self.raw_probs(prepared):
            q = p @ self.matrix + FLOOR
            # The classes read before parentheses were are normalised among themselves, so that readings
            # without a parenthesis score exactly as they were calibrated; a parenthesis gets its share of
            # the whole frame (never above 1). A frame's probabilities then add up to a little over 1.
            base = 1 + len(CRNN_CHARSET)
            norm = np.concatenate([np.repeat(q[:, :base].sum(1, keepdims=True), base, 1),
                                   np.repeat(q.sum(1, keepdims=True), q.shape[1] - base, 1)], 1)
            out.append(np.log(q / norm).astype(np.float32))
        return out

    def predict(self, inks) -> list[str]:
        """Greedy readings of line ink maps (no grammar), for quick looks."""
        from .crnn import greedy

        return [greedy(lp) for lp in self.frame_log_probs([self.prepare(i) for i in inks])]


@functools.lru_cache(maxsize=1)
def get_ppocr() -> PPOCRReader:
    """The PP-OCR line reader, loaded once a process."""
    return PPOCRReader()
