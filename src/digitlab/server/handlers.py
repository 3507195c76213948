"""How the API answers an error: always ``{"error": "..."}``, with a 4xx status (500 only for a bug).

``ApiError`` is what the server's own code raises, with its status and headers; ``add_handlers``
turns it, and every other exception a request can meet, into that JSON.
"""

from __future__ import annotations

import logging

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DigitlabError, ImageError, ModelError, NoDigitFound

log = logging.getLogger("digitlab")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def worded(errors) -> str:
    """pydantic's errors as one short line: ``pixels.0.3: Input should be a valid number; ...``."""
    parts = []
    for err in list(errors)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts)


def add_handlers(app) -> None:
    """Every error as ``{"error": "..."}`` (on ``app``)."""

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
        return JSONResponse({"error": worded(exc.errors()) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # last resort: still JSON, and logged by uvicorn
        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)
