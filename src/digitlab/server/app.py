"""The web app: a FastAPI JSON API and the drawing page, all assets served locally.

Bad input never gives a 500: every error is ``{"error": "..."}`` with a 4xx status.

Work is split by cost so that no request can starve the others:

- light work (``/api/predict``, ``/api/visualize``, ``/api/models``) runs in this process in a small
  bounded thread pool; images are downscaled before preprocessing, so its cost is bounded;
- heavy work (``/api/check``, ``/api/read``) runs in separate worker processes (``HeavyPool``) at
  lower priority with one thread each, behind a bounded queue (503 when full). A request past its
  deadline gets a 504 and its worker process is killed and replaced, so the work stops there.
  Before reading, the image is downscaled and its ink marks counted; too many is a 422.

Every POST documents its request body (multipart upload or JSON) and its response model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from . import access
from .errors import DigitlabError, ImageError, ModelError
from .limits import BODY_TIMEOUT_S, MAX_UPLOAD, body_limit
from .digits.preprocess import NoDigitFound

log = logging.getLogger("digitlab")

STATIC = Path(__file__).parent / "static"
MAX_SIDE = 4096  # refused from the header above this (422)
PREDICT_SIDE = 1024  # a single digit ends up 20x20: larger images are downscaled first
PAGE_SIDE = 2048  # pages and numbers are read at most this large (longest side)
# Separate ink marks (grey-level connected components at PAGE_SIDE) in a page or number: a cheap
# backstop before any reading. Photos of squared or ruled exercise books count 500 to 5,000 (rulings,
# the table, specks: the page reader removes those and has its own, finer limit); a page of dense
# dots 62,500.
MAX_MARKS = int(os.environ.get("DIGITLAB_MAX_MARKS", 20000))
TIMEOUT_S = float(os.environ.get("DIGITLAB_TIMEOUT", 20))
STARTUP_TIMEOUT_S = 120.0  # a heavy worker's start-up (imports, models), not counted in a request's deadline
STARTUP_WAIT_S = 60.0  # how much longer a request waits for a pool whose workers are still starting
_POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("DIGITLAB_WORKERS", 2)), thread_name_prefix="infer")
_QUEUE = threading.BoundedSemaphore(int(os.environ.get("DIGITLAB_QUEUE", 64)))


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


# -- schemas ---------------------------------------------------------------------------------------
_BINARY = WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream",
                          "description": "the image file (PNG, JPEG, GIF, BMP, TIFF, WebP; at most 5 MB, "
                                         f"{MAX_SIDE} px a side)"})
_PIXELS = WithJsonSchema({"anyOf": [{"type": "array", "minItems": 28, "maxItems": 28,
                                     "items": {"type": "array", "minItems": 28, "maxItems": 28,
                                               "items": {"type": "number", "minimum": 0, "maximum": 255}}},
                                    {"type": "null"}],
                          "description": "28x28 array, 0 = background, 255 = ink"})
_IMAGE = "base64 PNG/JPEG, optionally as a data: URL"
_PROFILE = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", examples=["class-3b"],
                 description="a handwriting profile (see /api/profiles): the teacher's, so it needs the "
                             "teacher token when the server listens beyond this machine")


class PredictJSON(BaseModel):
    """JSON body of /api/predict. Shapes and ranges are checked by hand, for clearer messages."""

    image: str | None = Field(None, description=_IMAGE)
    pixels: Annotated[list[list[float]] | None, _PIXELS] = None
    model: str = Field("cnn", description="model name, see /api/models")
    compare: bool = Field(False, description="also answer with every trained model")
    profile: str | None = _PROFILE


class VisualizeJSON(BaseModel):
    image: str | None = Field(None, description=_IMAGE)
    pixels: Annotated[list[list[float]] | None, _PIXELS] = None


class ImageJSON(BaseModel):
    image: str = Field(description=_IMAGE)
    profile: str | None = _PROFILE


class PredictForm(BaseModel):
    file: Annotated[bytes, _BINARY]
    model: str = Field("cnn", description="model name, see /api/models")
    compare: bool = Field(False, description="also answer with every trained model")
    profile: str | None = _PROFILE


class FileForm(BaseModel):
    file: Annotated[bytes, _BINARY]
    profile: str | None = _PROFILE


class DigitAnswer(BaseModel):
    digit: int | None
    confidence: float
    probabilities: list[float]


class PredictResponse(DigitAnswer):
    model: str
    input28: list[list[float]] = Field(description="the 28x28 image the model saw, 0..1")
    compare: dict[str, DigitAnswer] | None = None


class ReadDigit(BaseModel):
    digit: int
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the uploaded image's pixels")


class ReadResponse(BaseModel):
    text: str
    confidence: float = Field(description="probability of this reading (the line reader's, summed over alignments)")
    alternatives: list[str] = Field(default_factory=list, description="the next most likely readings")
    digits: list[ReadDigit]
    bbox: list[int] | None = Field(None, description="the number's box in the uploaded image's pixels")


class CheckLine(BaseModel):
    """One arithmetic line. Tolerant: fields may be added by newer page readers."""

    model_config = ConfigDict(extra="allow")
    expression: str
    value: int | float | None = Field(description="the value of the left side, null if unreadable")
    written_answer: int | float | None
    correct: bool | None
    status: Literal["correct", "wrong", "unsure", "unreadable", "computed"] | None = Field(
        None, description='a verdict, or "computed": an expression with no answer written, and its value')
    layout: Literal["line", "column"] = Field("line", description='"column": a column sum, read row by row')
    confidence: float
    bbox: Annotated[list[int], Field(min_length=4, max_length=4, description="x0, y0, x1, y1")]
    column: int | None = None
    low_confidence: list[int] = Field(default_factory=list, description="positions of uncertain symbols")
    error: str | None = Field(None, description="why the line could not be checked")
    value_exact: str | None = Field(None, description="exact value as a fraction, when not an integer")


class CheckResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    file: str
    skew_degrees: float
    sheet_found: bool | None = None
    lines: list[CheckLine]


class VisualizeLayer(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    type: str
    shape: list[int]
    params: int
    maps: list[list[list[float]]] | None = None


class VisualizePrediction(BaseModel):
    digit: int
    confidence: float


class VisualizeResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    prediction: VisualizePrediction
    probabilities: list[float]
    input: list[list[float]]
    saliency: list[list[float]]
    gradcam: list[list[float]]
    filters: list[list[list[float]]]
    layers: list[VisualizeLayer]
    total_params: int


class ModelInfo(BaseModel):
    name: str
    description: str
    test_accuracy: float | None
    calibrated: bool


class Health(BaseModel):
    status: str
    version: str


class ErrorResponse(BaseModel):
    error: str


def _errors(*codes: int) -> dict:
    text = {400: "malformed request (a broken multipart body, a bad Content-Length)",
            401: "a profile was named without the teacher token", 403: "a profile was named, and pupils' data is "
            "closed (no token beyond loopback) or open to this machine's browser only", 404: "unknown model",
            429: "too many wrong teacher tokens from this address (Retry-After)",
            408: "the request body stopped arriving", 413: "body over its limit (see docs/reliability.md), or a file over 5 MB",
            415: "unsupported content type",
            422: "bad input, or an image that cannot be read as asked", 503: "server busy, try again",
            504: "took longer than the time limit; the work was stopped"}
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


ERRORS = _errors(400, 401, 403, 404, 408, 413, 415, 422, 429, 503, 504)
REQUEST_MODELS = [PredictJSON, VisualizeJSON, ImageJSON, PredictForm, FileForm]


def _drawn_png(strokes: list[list[tuple[int, int]]], size: tuple[int, int]) -> str:
    """A small drawing (dark strokes on white) as a base64 data URL: the documented JSON examples."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("L", size, 255)
    for line in strokes:
        ImageDraw.Draw(img).line(line, fill=0, width=6, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _examples() -> dict[str, dict]:
    """JSON request examples by path, ready for "Try it out" (and for the contract fuzzer)."""
    seven = _drawn_png([[(14, 14), (50, 14), (26, 58)]], (64, 72))
    number = _drawn_png([[(20, 14), (20, 58)], [(44, 14), (80, 14), (56, 58)]], (100, 72))
    line = _drawn_png([[(10, 20), (10, 60)], [(28, 40), (52, 40)], [(40, 28), (40, 52)], [(66, 20), (66, 60)],
                       [(82, 34), (104, 34)], [(82, 46), (104, 46)], [(122, 20), (146, 20), (146, 40), (122, 40),
                                                                     (122, 60), (146, 60)]], (160, 80))
    return {"/api/predict": {"image": seven, "model": "cnn"}, "/api/visualize": {"image": seven},
            "/api/read": {"image": number}, "/api/check": {"image": line}}


def _body(form: type[BaseModel], js: type[BaseModel]) -> dict:
    """openapi_extra declaring the two accepted bodies; the handler parses them by hand."""
    ref = "#/components/schemas/{}"
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"$ref": ref.format(form.__name__)}},
        "application/json": {"schema": {"$ref": ref.format(js.__name__)}},
    }}}


# -- helpers ---------------------------------------------------------------------------------------
def decode_base64(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "image is not valid base64") from None
    if not raw:
        raise ApiError(422, "image is empty")
    if len(raw) > MAX_UPLOAD:
        raise ApiError(413, f"image larger than {MAX_UPLOAD // (1024 * 1024)} MB")
    return raw


def pixels_array(pixels: list[list[float]]) -> np.ndarray:
    try:
        arr = np.asarray(pixels, dtype=np.float64)
    except (ValueError, TypeError):
        raise ApiError(422, "pixels must be a 28x28 array of numbers") from None
    if arr.shape != (28, 28):
        raise ApiError(422, f"pixels must be 28x28, got shape {list(arr.shape)}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise ApiError(422, "pixels must be numbers in [0, 255]")
    return arr


async def run_bounded(fn, *args):
    """Run light blocking work in the thread pool; refuse when too many wait, time out when stuck."""
    if not _QUEUE.acquire(blocking=False):
        raise ApiError(503, "server busy, try again", {"Retry-After": "1"})
    try:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(_POOL, fn, *args), TIMEOUT_S)
    except asyncio.TimeoutError:
        raise ApiError(504, f"inference took longer than {TIMEOUT_S:.0f} s") from None
    finally:
        _QUEUE.release()


def open_image(raw: bytes, work_side: int):
    """The upload as the readers take it, downscaled to at most ``work_side`` px a side.

    Small images come back as the bytes (decoded later by the reader, with its own checks and
    messages); larger ones as a decoded, EXIF-rotated PIL image scaled down (JPEGs decoded at a
    reduced size straight away), colour kept. Returns ``(source, scale)``, ``scale <= 1``.
    """
    import io

    from PIL import Image, ImageOps

    from .io.images import MAX_PIXELS

    try:
        img = Image.open(io.BytesIO(raw))
        w, h = img.size
    except Exception:  # not an image: the reader's loader says so in its own words
        return raw, 1.0
    if max(w, h) <= work_side or w == 0 or h == 0:
        return raw, 1.0
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise ImageError(f"image: image too large ({w}x{h}; at most {MAX_SIDE} px a side)")
    scale = work_side / max(w, h)
    try:
        img.draft(img.mode, (int(w * scale), int(h * scale)))  # JPEG: decode at 1/2, 1/4 or 1/8 size
        img.seek(0)  # animated images: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
        mode = {"P": "RGBA", "PA": "RGBA", "1": "L", "CMYK": "RGB", "YCbCr": "RGB", "La": "LA", "RGBa": "RGBA",
                "I;16": "I", "I;16B": "I", "I;16L": "I", "I;16N": "I"}.get(img.mode)
        if mode:
            img = img.convert(mode)
        iw, ih = img.size
        s = min(1.0, work_side / max(iw, ih))
        if s < 1.0:
            img = img.resize((max(1, round(iw * s)), max(1, round(ih * s))), Image.Resampling.BOX, reducing_gap=2.0)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image: cannot decode image ({exc})") from None
    return img, max(img.size) / max(w, h)


def load_grey(raw: bytes, work_side: int):
    """``open_image`` and the greyscale (1 = white) of it: ``(source, grey, scale)``."""
    from .io.images import load_image

    source, scale = open_image(raw, work_side)
    return source, load_image(source, max_side=MAX_SIDE, name="image"), scale


def count_marks(grey: np.ndarray, limit: int) -> int:
    """Separate ink marks (connected components of the ink mask); more than ``limit`` is a 422.

    Reading costs grow with the marks on the page: a page of dots or squared paper would keep a
    reader busy for minutes. Counting is cheap (about 0.1 s for 2048x2048).
    """
    import cv2

    from .digits.preprocess import ink_map, otsu_mask

    mask = otsu_mask(ink_map(grey)).astype(np.uint8)
    n = cv2.connectedComponents(mask, connectivity=8)[0] - 1
    if n > limit:
        raise ImageError(f"image: too many marks to read as handwriting ({n} separate ink marks, at most {limit}); "
                         "photograph only the written lines, on plain paper")
    return n


def _worded(errors) -> str:
    """pydantic's errors as one short line: ``pixels.0.3: Input should be a valid number; ...``."""
    parts = []
    for err in list(errors)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts)


def _unscale(box, scale: float) -> list[int]:
    return [int(round(v / scale)) for v in box] if scale < 1.0 else [int(v) for v in box]


def _answer(pred) -> dict:
    return {"digit": pred.digit, "confidence": pred.confidence, "probabilities": pred.probabilities}


def _trained_models() -> dict[str, Any]:
    """Registered models that have weights, from the loaded-model cache (files are read once)."""
    from .models.base import REGISTRY
    from .models import available
    from .models import get_model

    out = {}
    for name in available():
        try:
            model = get_model(name)
        except DigitlabError:
            continue
        out[name] = {"model": model, "accuracy": model.metadata.get("test_accuracy"), "cls": REGISTRY[name]}
    return out


# -- light work, in the thread pool ----------------------------------------------------------------
def _profile_model(profile: str | None):
    if not profile:
        return None
    from .profiles import get_profile
    from .profiles.core import check_name

    return get_profile(check_name(profile))


def _predict_work(raw: bytes | None, pixels: np.ndarray | None, model_name: str, compare: bool,
                  profile: str | None = None) -> dict:
    from .models import available
    from .digits.preprocess import preprocess_digit, preprocess_mnist_like
    from .models import get_model
    from .digits.recognize import predict_images, refuse_non_digit
    from .digits.reject import check_shape

    if model_name not in available():  # names only: no file paths, no non-digit models over the API
        raise ModelError(f"unknown model {model_name!r}; choose one of: {', '.join(available())}")
    adapted = _profile_model(profile)
    if pixels is not None:
        image = preprocess_mnist_like(pixels)
        check_shape(image)
    else:
        image = preprocess_digit(open_image(raw, PREDICT_SIDE)[0], max_side=MAX_SIDE, name="image")
    model = get_model(model_name)
    pred = predict_images(model, image[None])[0]
    refuse_non_digit(model, pred)  # the same "no digit found" as `digitlab predict`
    if adapted is not None:  # the shape and score checks above are the base's: a profile only re-reads
        pred = predict_images(adapted, image[None])[0]
    result = {"model": f"profile:{profile}" if adapted else model.name, **_answer(pred),
              "input28": np.round(image, 4).tolist()}
    if compare:
        result["compare"] = {name: _answer(predict_images(m["model"], image[None])[0])
                             for name, m in _trained_models().items()}
    return result


def _visualize_work(raw: bytes | None, pixels: np.ndarray | None) -> dict:
    from .digits.preprocess import preprocess_digit, preprocess_mnist_like
    from .models import get_model
    from .digits.visualize import network_data

    if pixels is not None:
        image = preprocess_mnist_like(pixels)
    else:
        image = preprocess_digit(open_image(raw, PREDICT_SIDE)[0], max_side=MAX_SIDE, name="image")
    return network_data(get_model(None), image)


# -- heavy work, in a worker process ----------------------------------------------------------------
def _read_work(raw: bytes, profile: str | None = None) -> dict:
    from .reader.read import read_number

    adapted = _profile_model(profile)
    source, grey, scale = load_grey(raw, PAGE_SIDE)
    count_marks(grey, MAX_MARKS)
    result = read_number(source, name="image", max_side=MAX_SIDE, profile=adapted)
    for d in result["digits"]:
        d["box"] = _unscale(d["box"], scale)
    result["bbox"] = _unscale(result["bbox"], scale)
    return result


def _check_work(raw: bytes, profile: str | None = None) -> dict:
    from .arithmetic import check_page

    adapted = _profile_model(profile)
    source, grey, scale = load_grey(raw, PAGE_SIDE)
    count_marks(grey, MAX_MARKS)
    result = check_page(source, name="image", max_side=MAX_SIDE, profile=adapted).as_dict()
    if scale < 1.0:  # geometry back in the pixels of the image the user sent
        for line in result.get("lines", []):
            if isinstance(line.get("bbox"), list):
                line["bbox"] = _unscale(line["bbox"], scale)
            if isinstance(line.get("polygon"), list):
                line["polygon"] = [_unscale(p, scale) for p in line["polygon"]]
    return result


def _heavy_worker(conn, warm: bool = True) -> None:
    """A heavy worker process: one job at a time from ``conn``, answered with ("ok"|"err", payload)."""
    with contextlib.suppress(OSError):
        os.nice(int(os.environ.get("DIGITLAB_HEAVY_NICE", 3)))  # predictions first when cores are short
    with contextlib.suppress(Exception):
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    if warm:  # load the models and run each job once now, rather than in the first requests
        examples = _examples()
        for job, path in ((_check_work, "/api/check"), (_read_work, "/api/read")):
            with contextlib.suppress(Exception):
                job(decode_base64(examples[path]["image"]))
    try:
        conn.send(("ready", os.getpid()))  # the deadline of the first job does not count start-up
    except (EOFError, OSError):
        return
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            answer = ("ok", fn(*args))
        except DigitlabError as exc:
            answer = ("err", exc)
        except Exception as exc:  # a bug: logged here, a plain 500 there
            log.exception("heavy worker: unexpected error")
            answer = ("err", RuntimeError(f"{type(exc).__name__}: {exc}"))
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an answer that cannot be pickled
            conn.send(("err", RuntimeError(f"cannot send the answer: {exc}")))


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_hidden():
    """Workers need nothing from ``__main__`` (their code is in this module): keep multiprocessing
    from re-running the main script in them, which breaks scripts without an ``if __name__`` guard."""
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
        try:
            for k in saved:
                main.__dict__[k] = None
            yield
        finally:
            if saved:
                main.__dict__.update(saved)


class _Worker:
    def __init__(self, ctx, warm: bool) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_heavy_worker, args=(child, warm), daemon=True, name="digitlab-heavy")
        with _main_hidden():
            self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        """Wait for the worker's start-up (imports, models) to finish; EOFError if it does not."""
        if not self.ready:
            if not self.conn.poll(timeout):
                raise EOFError("heavy worker did not start")
            self.conn.recv()
            self.ready = True

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


def _context():
    method = os.environ.get("DIGITLAB_START_METHOD", "forkserver")
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":  # workers fork from a server that has already imported these
        ctx.set_forkserver_preload(["digitlab.server", "digitlab.digits.preprocess", "digitlab.digits.recognize", "torch", "cv2"])
    return ctx


class HeavyPool:
    """Worker processes for work whose cost depends on the image: killed and replaced past a deadline.

    ``workers`` processes (started in the background: imports, models, one job of each kind); at
    most ``queue_size`` more requests wait, beyond that 503 at once. Every request is answered
    within ``deadline`` s: it waits for a worker while at least ``min(timeout, 4)`` s would be left
    to run it (else 503, "busy"), then runs at most ``timeout`` s and within the deadline (else 504:
    the worker process is killed, so the work really stops, and a fresh one is started).
    """

    MIN_RUN_S = 4.0

    def __init__(self, workers: int = 1, queue_size: int = 8, timeout: float = 10.0, deadline: float = 14.0,
                 warm: bool = True) -> None:
        self.size, self.timeout, self.deadline, self.warm = max(1, workers), timeout, max(deadline, 0.1), warm
        self.wait = max(0.0, self.deadline - min(timeout, self.MIN_RUN_S))
        self._admit = threading.BoundedSemaphore(self.size + queue_size)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = self._closed = False
        self._threads = ThreadPoolExecutor(self.size + queue_size, thread_name_prefix="heavy-wait")
        self.killed = 0  # workers killed at their deadline (or found dead)
        self._starting = 0  # workers between their launch and their "ready"
        self._ctx = None

    def _add_worker(self) -> None:
        """Start a worker and, once it is ready, offer it to the waiting requests (in a thread)."""
        with self._lock:
            if self._closed:
                return
            if self._ctx is None:
                self._ctx = _context()
            try:
                w = _Worker(self._ctx, self.warm)
            except Exception:
                log.exception("cannot start a heavy worker")
                return
            self._all.add(w)
            self._starting += 1
        try:
            w.wait_ready(STARTUP_TIMEOUT_S)
        except (EOFError, OSError):
            log.error("heavy worker %s did not start", w.process.pid)
            self._retire(w)
            return
        finally:
            with self._lock:
                self._starting -= 1
        self._idle.put(w)

    def _retire(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)

    def start(self) -> None:
        """Start the workers in the background (returns at once; idempotent)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self.size):
            threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for w in workers:
            self._retire(w)
        self._threads.shutdown(wait=False, cancel_futures=True)

    def ready(self, timeout: float = STARTUP_TIMEOUT_S) -> bool:
        """Wait until every worker has started and is idle (for tests and benchmarks)."""
        self.start()
        end = time.monotonic() + timeout
        while self._idle.qsize() < self.size:
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker process (``fn`` must be importable), answered asynchronously."""
        self.start()
        if not self._admit.acquire(blocking=False):
            raise ApiError(503, "server busy with other page checks, try again in a few seconds", {"Retry-After": "5"})
        try:
            future = asyncio.get_running_loop().run_in_executor(self._threads, self._call, fn, args)
        except BaseException:
            self._admit.release()
            raise
        status, payload = await future
        if status == "ok":
            return payload
        raise payload

    def _call(self, fn, args):
        t0 = time.monotonic()
        try:
            while True:
                # A worker that is still starting (the first requests after launch, or after a kill)
                # is not a busy server: its start-up does not count against the wait.
                budget = self.wait + (STARTUP_WAIT_S if self._starting else 0.0)
                try:
                    w = self._idle.get(timeout=min(0.5, max(0.0, budget - (time.monotonic() - t0))))
                except queue.Empty:
                    if time.monotonic() - t0 < budget:
                        continue
                    return "err", ApiError(503, "server busy with other page checks, try again in a few seconds",
                                           {"Retry-After": "5"})
                if w.process.is_alive():
                    break
                log.error("heavy worker %s died while idle", w.process.pid)  # killed from outside (OOM)
                self.killed += 1
                self._retire(w)
                threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()
            limit = max(0.0, min(self.timeout, self.deadline - (time.monotonic() - t0)))
            healthy = False
            try:
                w.conn.send((fn, args))
                if not w.conn.poll(limit):
                    return "err", ApiError(504, f"stopped after {limit:.1f} s: the image is too complex to read "
                                                "in time; send a smaller, cleaner picture of the written lines")
                answer = w.conn.recv()
                healthy = True
                return answer
            except (EOFError, OSError):  # killed from outside (the OOM killer): the request may be retried
                log.error("heavy worker %s died", w.process.pid)
                return "err", ApiError(503, "the worker reading this image stopped; try again in a few seconds",
                                       {"Retry-After": "5"})
            finally:
                if healthy:
                    self._idle.put(w)
                else:
                    self.killed += 1
                    self._retire(w)
                    threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()
        finally:
            self._admit.release()


# -- the request guard ------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its limit: whoever reads it answers 413."""


class Guard:
    """ASGI middleware in front of every route: access first, then the body limit, then the route.

    Pupils' routes are checked (``access.check``) before a byte of the body is read. The body limit
    (``limits.BODY_LIMITS``) is checked from Content-Length when there is one, and counted while the
    body streams either way (chunked bodies have no Content-Length); a pause longer than
    ``BODY_TIMEOUT_S`` while a body arrives is a 408. Refusals close the connection, so the client
    stops sending rather than the server reading the rest of the body only to discard it.
    """

    def __init__(self, app, failures: access.FailureLimiter | None = None) -> None:
        self.app = app
        self.failures = failures or access.FailureLimiter()

    @staticmethod
    async def _refuse(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if access.PUPIL_ROUTES.fullmatch(path):
            try:
                access.check(scope, self.failures)
            except access.Refusal as no:
                return await self._refuse(send, no.status, no.message, no.headers)
        limit = body_limit(method, path)
        lengths = [v for k, v in scope.get("headers") or () if k.lower() == b"content-length"]
        if lengths:
            try:
                length = int(lengths[0])
                if length < 0 or len(set(lengths)) > 1:
                    raise ValueError
            except ValueError:
                return await self._refuse(send, 400, "bad Content-Length")
            if length > limit:
                return await self._refuse(send, 413, f"request body larger than {limit:,} bytes for {path}")
        seen, done, refused = 0, False, False

        async def counted():
            nonlocal seen, done, refused
            if done:  # after the body: the server's disconnect notice, no time limit
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                refused = True
                raise HTTPException(408, f"the request body stopped arriving for {BODY_TIMEOUT_S:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if seen > limit:
                    refused = True
                    raise BodyTooLarge(413, f"request body larger than {limit:,} bytes for {path}")
            else:
                done = True
            return message

        started = False

        async def closing(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if refused:  # the rest of the body is not wanted: close rather than drain it
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted, closing)
        except HTTPException as exc:  # raised by ``counted`` where no handler turned it into an answer
            if started or exc.status_code not in (408, 413):
                raise
            await self._refuse(send, exc.status_code, str(exc.detail))


# -- the app ----------------------------------------------------------------------------------------
def create_app(heavy_workers: int | None = None, heavy_queue: int | None = None,
               heavy_timeout: float | None = None, heavy_deadline: float | None = None) -> FastAPI:
    env = os.environ.get
    heavy = HeavyPool(workers=heavy_workers or int(env("DIGITLAB_HEAVY_WORKERS", 1)),
                      queue_size=heavy_queue if heavy_queue is not None else int(env("DIGITLAB_HEAVY_QUEUE", 8)),
                      timeout=heavy_timeout or float(env("DIGITLAB_HEAVY_TIMEOUT", 10)),
                      deadline=heavy_deadline or float(env("DIGITLAB_HEAVY_DEADLINE", 14)))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        heavy.start()
        try:
            yield
        finally:
            heavy.close()

    app = FastAPI(title="digitlab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Read handwritten digits, numbers and arithmetic. Every POST takes a multipart "
                              "upload (`file`) or JSON (base64 `image`, or 28x28 `pixels` where a single digit is "
                              "read). Errors are `{\"error\": \"...\"}`.")
    app.state.heavy = heavy

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in REQUEST_MODELS:
                comps[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for path, example in _examples().items():
                schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"] = example
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    app.state.token_failures = access.FailureLimiter()  # wrong tokens, shared by the guard and require_teacher
    app.add_middleware(Guard, failures=app.state.token_failures)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(NoDigitFound)
    async def _no_digit(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(ImageError)
    async def _image_error(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(ModelError)
    async def _model_error(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=404 if "no trained model" in str(exc) or "unknown" in str(exc) else 422)

    @app.exception_handler(DigitlabError)
    async def _digitlab_error(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        return JSONResponse({"error": _worded(exc.errors()) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # last resort: still JSON, and logged by uvicorn
        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def _image_input(request: Request) -> tuple[bytes | None, np.ndarray | None, dict]:
        """Accept multipart (file + fields) or JSON (image base64 or 28x28 pixels)."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except Exception as exc:  # a malformed multipart body: the client's fault
                if isinstance(exc, StarletteHTTPException):
                    raise ApiError(exc.status_code, str(exc.detail)) from None
                raise ApiError(422, "cannot parse the multipart body") from None
            upload = form.get("file") or form.get("image")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "multipart upload needs a 'file' field")
            raw = await upload.read(MAX_UPLOAD + 1)
            if len(raw) > MAX_UPLOAD:
                raise ApiError(413, "upload larger than 5 MB")
            if not raw:
                raise ApiError(422, "uploaded file is empty")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return raw, None, fields
        if ctype.startswith("application/json"):
            raw_body = await request.body()  # bounded by the guard (limits.BODY_LIMITS), chunked or not
            try:
                body = json.loads(raw_body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise ApiError(422, "body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(422, "body must be a JSON object")
            try:
                req = PredictJSON(**body)
            except ValidationError as exc:
                raise ApiError(422, f"invalid request: {_worded(exc.errors())}") from None
            if req.pixels is not None:
                return None, pixels_array(req.pixels), body
            if req.image:
                return decode_base64(req.image), None, body
            raise ApiError(422, "give 'image' (base64) or 'pixels' (28x28)")
        raise ApiError(415 if ctype else 422, "send multipart/form-data with a 'file', or JSON")

    def _profile_field(request: Request, fields: dict) -> str | None:
        """The ``profile`` field, if any: a profile is a class's handwriting, so the teacher's rule applies."""
        profile = fields.get("profile")
        if profile is None or profile == "":
            return None
        from .profiles.core import check_name
        from .worksheets.api import require_teacher

        if not isinstance(profile, str):
            raise ApiError(422, "'profile' must be a profile name")
        require_teacher(request)
        try:
            return check_name(profile)
        except DigitlabError as exc:
            raise ApiError(422, str(exc)) from None

    def _flag(value) -> bool:
        return value is True or str(value).lower() in ("1", "true", "yes", "on")

    @app.post("/api/predict", response_model=PredictResponse, responses=ERRORS,
              openapi_extra=_body(PredictForm, PredictJSON),
              summary="Recognise one digit (multipart 'file', JSON base64 'image', or JSON 28x28 'pixels')")
    async def predict(request: Request,
                      model: Annotated[str | None, Query(description="model name (also a body field)")] = None,
                      compare: Annotated[bool | None, Query(description="also answer with every model")] = None):
        raw, pixels, fields = await _image_input(request)
        name = str(fields.get("model") or model or "cnn")
        return await run_bounded(_predict_work, raw, pixels, name, _flag(fields.get("compare") or compare),
                                 _profile_field(request, fields))

    @app.post("/api/read", response_model=ReadResponse, responses=ERRORS, openapi_extra=_body(FileForm, ImageJSON),
              summary="Read a written number: digits left to right with boxes and confidences")
    async def read(request: Request):
        raw, pixels, fields = await _image_input(request)
        if raw is None:
            raise ApiError(422, "give an image, not 28x28 pixels, to read a number")
        return await heavy.run(_read_work, raw, _profile_field(request, fields))

    @app.post("/api/check", response_model=CheckResponse, response_model_exclude_unset=True, responses=ERRORS,
              openapi_extra=_body(FileForm, ImageJSON),
              summary="Check handwritten arithmetic lines (a op b = c) on a page")
    async def check(request: Request):
        raw, _, fields = await _image_input(request)
        if raw is None:
            raise ApiError(422, "give an image of arithmetic lines")
        return await heavy.run(_check_work, raw, _profile_field(request, fields))

    @app.post("/api/visualize", response_model=VisualizeResponse, responses=ERRORS,
              openapi_extra=_body(FileForm, VisualizeJSON),
              summary="Inside the CNN: feature maps, saliency, layers")
    async def visualize(request: Request):
        raw, pixels, _ = await _image_input(request)
        return await run_bounded(_visualize_work, raw, pixels)

    @app.get("/api/models", response_model=list[ModelInfo], responses=_errors(503, 504),
             summary="Trained models and their MNIST test accuracy")
    async def models():
        trained = await run_bounded(_trained_models)  # the first call loads the models: off the event loop
        return [ModelInfo(name=n, description=m["cls"].description, test_accuracy=m["accuracy"],
                          calibrated=m["cls"].has_proba) for n, m in trained.items()]

    @app.get("/api/health", response_model=Health, summary="Liveness")
    async def health():
        return {"status": "ok", "version": __version__}

    @app.get("/report", include_in_schema=False)
    async def report():
        from .study.report import default_report_dir

        # The user's own `digitlab benchmark` run if there is one, else the report shipped with
        # the package (measured on the project's 2-core reference machine).
        path = default_report_dir() / "report.html"
        return FileResponse(path if path.exists() else STATIC / "study_report.html")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    # API docs with no CDN: Swagger UI's files from the fastapi-offline package, served from here (no
    # /redoc: ReDoc loads its logo from a CDN).
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    docs_assets = "/static/docs"

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="digitlab API",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url=f"{docs_assets}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{docs_assets}/swagger-ui.css",
                                   swagger_favicon_url=f"{docs_assets}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect():
        return get_swagger_ui_oauth2_redirect_html()

    from .worksheets.api import install as install_worksheets  # worksheets: /api/worksheets
    install_worksheets(app)
    from .profiles.api import install as install_profiles  # profiles: /api/corrections, /api/profiles
    install_profiles(app)
    app.mount(docs_assets, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _guarded_protocol():
    """uvicorn's own h11 protocol with two more timers, so idle connections cannot hold the server.

    uvicorn closes an idle keep-alive connection only after it has answered a request, and any byte
    resets that timer: a connection that never sends a request, or trickles its head a byte at a
    time, stays open for ever. Here every connection must deliver a whole request head within
    ``HEADER_TIMEOUT_S`` of opening (or of its last answer); and when ``MAX_CONNECTIONS`` are open, a
    new one closes the longest-idle connection that has no request in flight instead of being
    turned away with a 503.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from .limits import HEADER_TIMEOUT_S, MAX_CONNECTIONS

    class GuardedH11Protocol(H11Protocol):
        _head_timer = None
        _idle_since = 0.0

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._wait_for_head()
            others = [c for c in self.connections if c is not self and getattr(c, "_head_timer", None) is not None]
            excess = len(self.connections) - (MAX_CONNECTIONS - 1)  # uvicorn answers 503 at MAX_CONNECTIONS
            for c in sorted(others, key=lambda c: c._idle_since)[:max(0, excess)]:
                c._close_idle()

        def _wait_for_head(self) -> None:
            self._idle_since = self.loop.time()
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._close_idle)

        def _got_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _close_idle(self) -> None:
            self._got_head()
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
                self._got_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for_head()

        def connection_lost(self, exc) -> None:
            self._got_head()
            super().connection_lost(exc)

    return GuardedH11Protocol


def check_serve_settings(host: str) -> None:
    """Refuse to start with a teacher token that could be guessed (``DigitlabError``)."""
    token = access.teacher_token()
    if token is not None:
        problem = access.token_problem(token)
        if problem:
            raise DigitlabError(problem)
    elif not access.is_loopback(host):
        log.warning("listening on %r without a teacher token: the worksheet, correction and profile endpoints "
                    "are closed (403); set one with --teacher-token-file or $DIGITLAB_TEACHER_TOKEN",
                    host or "every interface")


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    import uvicorn

    from .limits import KEEP_ALIVE_S, MAX_CONNECTIONS, MAX_HEADER_BYTES
    from .models import get_model

    # The pupils' routes decide by the bind address: "" (every interface) is not loopback.
    os.environ["DIGITLAB_LISTEN_HOST"] = host
    check_serve_settings(host)
    get_model(None)  # load the default model before accepting requests
    if os.environ.get("DIGITLAB_TORCH_THREADS"):  # PyTorch's own default (one per core) measured best
        import torch

        torch.set_num_threads(int(os.environ["DIGITLAB_TORCH_THREADS"]))
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (f"http://{host or '127.0.0.1'}:{port}/",)).start()
    # uvicorn handles SIGTERM gracefully: stops accepting, finishes in-flight requests.
    uvicorn.run(create_app(), host=host, port=port, timeout_graceful_shutdown=10, http=_guarded_protocol(),
                limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S,
                h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_level="info")
