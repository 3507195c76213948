"""The web app: a FastAPI JSON API and the drawing page, all assets served locally.

Bad input never gives a 500: every error is ``{"error": "..."}`` with a 4xx status. Inference runs
in a small bounded thread pool so one heavy request cannot starve the others, with a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .errors import DigitlabError, ImageError, ModelError
from .preprocess import NoDigitFound

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 5 * 1024 * 1024
MAX_SIDE = 4096
TIMEOUT_S = float(os.environ.get("DIGITLAB_TIMEOUT", 20))
_POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("DIGITLAB_WORKERS", 2)), thread_name_prefix="infer")
_QUEUE = threading.BoundedSemaphore(int(os.environ.get("DIGITLAB_QUEUE", 64)))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# -- schemas ---------------------------------------------------------------------------------------
class PredictJSON(BaseModel):
    image: str | None = Field(None, description="base64 PNG/JPEG, optionally as a data: URL")
    pixels: list[list[float]] | None = Field(None, description="28x28 array, 0 = background, 255 = ink")
    model: str = Field("cnn", description="model name, see /api/models")
    compare: bool = Field(False, description="also answer with every trained model")


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
    box: list[int]


class ReadResponse(BaseModel):
    text: str
    digits: list[ReadDigit]


class ModelInfo(BaseModel):
    name: str
    description: str
    test_accuracy: float | None
    calibrated: bool


class ErrorResponse(BaseModel):
    error: str


ERRORS = {c: {"model": ErrorResponse} for c in (413, 422, 503, 504)}


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
    """Run blocking inference in the pool; refuse when too many wait, time out when stuck."""
    if not _QUEUE.acquire(blocking=False):
        raise ApiError(503, "server busy, try again")
    try:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(_POOL, fn, *args), TIMEOUT_S)
    except asyncio.TimeoutError:
        raise ApiError(504, f"inference took longer than {TIMEOUT_S:.0f} s") from None
    finally:
        _QUEUE.release()


def _answer(pred) -> dict:
    return {"digit": pred.digit, "confidence": pred.confidence, "probabilities": pred.probabilities}


def _trained_models() -> dict[str, Any]:
    """Registered models that have weights, from the loaded-model cache (files are read once)."""
    from .models.base import REGISTRY, available
    from .recognize import get_model

    out = {}
    for name in available():
        try:
            model = get_model(name)
        except DigitlabError:
            continue
        out[name] = {"model": model, "accuracy": model.metadata.get("test_accuracy"), "cls": REGISTRY[name]}
    return out


# -- work done in the pool -------------------------------------------------------------------------
def _predict_work(raw: bytes | None, pixels: np.ndarray | None, model_name: str, compare: bool) -> dict:
    from .preprocess import preprocess_digit, preprocess_mnist_like
    from .recognize import get_model, predict_images

    from .models.base import available

    if model_name not in available():  # names only: no file paths, no non-digit models over the API
        raise ModelError(f"unknown model {model_name!r}; choose one of: {', '.join(available())}")
    image = preprocess_mnist_like(pixels) if pixels is not None else preprocess_digit(raw, max_side=MAX_SIDE, name="image")
    model = get_model(model_name)
    pred = predict_images(model, image[None])[0]
    result = {"model": model.name, **_answer(pred), "input28": np.round(image, 4).tolist()}
    if compare:
        result["compare"] = {name: _answer(predict_images(m["model"], image[None])[0])
                             for name, m in _trained_models().items()}
    return result


def _read_work(raw: bytes) -> dict:
    from .recognize import get_model, predict_images
    from .segment import segment_image

    symbols = segment_image(raw, max_side=MAX_SIDE, name="image")
    preds = predict_images(get_model(None), np.stack([s.image for s in symbols]))
    digits = [{"digit": p.digit, "confidence": p.confidence, "box": list(s.box)} for s, p in zip(symbols, preds)]
    return {"text": "".join(str(d["digit"]) for d in digits), "digits": digits}


def _visualize_work(raw: bytes | None, pixels: np.ndarray | None) -> dict:
    from .preprocess import preprocess_digit, preprocess_mnist_like
    from .recognize import get_model
    from .visualize import network_data

    image = preprocess_mnist_like(pixels) if pixels is not None else preprocess_digit(raw, max_side=MAX_SIDE)
    return network_data(get_model(None), image)


def _check_work(raw: bytes) -> dict:
    from .arithmetic import check_page

    return check_page(raw, name="image", max_side=MAX_SIDE).as_dict()


# -- the app ----------------------------------------------------------------------------------------
def create_app() -> FastAPI:
    app = FastAPI(title="digitlab", version=__version__,
                  description="Read handwritten digits, numbers and arithmetic. Errors are `{\"error\": \"...\"}`.")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_UPLOAD + 64 * 1024
            except ValueError:
                return JSONResponse({"error": "bad Content-Length"}, status_code=400)
            if too_big:
                return JSONResponse({"error": "upload larger than 5 MB"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

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
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {err.get('msg')}")
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # last resort: still JSON, and logged by uvicorn
        import logging

        logging.getLogger("digitlab").exception("unexpected error")
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def _image_input(request: Request) -> tuple[bytes | None, np.ndarray | None, dict]:
        """Accept multipart (file + fields) or JSON (image base64 or 28x28 pixels)."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
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
            # Read with a cap: a chunked request has no Content-Length for the middleware to check.
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD * 4 // 3 + 4096:  # base64 of 5 MB plus the JSON around it
                    raise ApiError(413, "request body larger than 5 MB")
                chunks.append(chunk)
            try:
                body = json.loads(b"".join(chunks))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ApiError(422, "body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(422, "body must be a JSON object")
            try:
                req = PredictJSON(**body)
            except Exception as exc:  # pydantic's ValidationError, worded for users
                raise ApiError(422, f"invalid request: {str(exc).splitlines()[0]}") from None
            if req.pixels is not None:
                return None, pixels_array(req.pixels), body
            if req.image:
                return decode_base64(req.image), None, body
            raise ApiError(422, "give 'image' (base64) or 'pixels' (28x28)")
        raise ApiError(415 if ctype else 422, "send multipart/form-data with a 'file', or JSON")

    def _flag(value) -> bool:
        return value is True or str(value).lower() in ("1", "true", "yes", "on")

    @app.post("/api/predict", response_model=PredictResponse, responses=ERRORS,
              summary="Recognise one digit (multipart 'file', JSON base64 'image', or JSON 28x28 'pixels')")
    async def predict(request: Request):
        raw, pixels, fields = await _image_input(request)
        model = str(fields.get("model") or request.query_params.get("model") or "cnn")
        compare = _flag(fields.get("compare") or request.query_params.get("compare"))
        return await run_bounded(_predict_work, raw, pixels, model, compare)

    @app.post("/api/read", response_model=ReadResponse, responses=ERRORS,
              summary="Read a written number: digits left to right with boxes and confidences")
    async def read(request: Request):
        raw, pixels, _ = await _image_input(request)
        if raw is None:
            raise ApiError(422, "give an image, not 28x28 pixels, to read a number")
        return await run_bounded(_read_work, raw)

    @app.post("/api/check", responses=ERRORS, summary="Check handwritten arithmetic lines (a op b = c)")
    async def check(request: Request):
        raw, _, _ = await _image_input(request)
        if raw is None:
            raise ApiError(422, "give an image of arithmetic lines")
        return await run_bounded(_check_work, raw)

    @app.post("/api/visualize", responses=ERRORS, summary="Inside the CNN: feature maps, saliency, layers")
    async def visualize(request: Request):
        raw, pixels, _ = await _image_input(request)
        return await run_bounded(_visualize_work, raw, pixels)

    @app.get("/api/models", response_model=list[ModelInfo], summary="Trained models and their MNIST test accuracy")
    async def models():
        trained = await run_bounded(_trained_models)  # the first call loads the models: off the event loop
        return [ModelInfo(name=n, description=m["cls"].description, test_accuracy=m["accuracy"],
                          calibrated=m["cls"].has_proba) for n, m in trained.items()]

    @app.get("/api/health", summary="Liveness")
    async def health():
        return {"status": "ok", "version": __version__}

    @app.get("/report", include_in_schema=False)
    async def report():
        from .report import default_report_dir

        # The user's own `digitlab benchmark` run if there is one, else the report shipped with
        # the package (measured on the project's 2-core reference machine).
        path = default_report_dir() / "report.html"
        return FileResponse(path if path.exists() else STATIC / "study_report.html")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    import uvicorn

    from .recognize import get_model

    get_model(None)  # load the default model before accepting requests
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (f"http://{host}:{port}/",)).start()
    # uvicorn handles SIGTERM gracefully: stops accepting, finishes in-flight requests.
    uvicorn.run(create_app(), host=host, port=port, timeout_graceful_shutdown=10, limit_concurrency=256,
                timeout_keep_alive=5, log_level="info")
