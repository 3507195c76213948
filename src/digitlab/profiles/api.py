"""Web endpoints for corrections and handwriting profiles, a FastAPI router the app includes.

- ``POST /api/corrections``: store a corrected digit (28x28 ``pixels`` as the model saw them, or a
  base64 ``image``), its right ``label`` and the ``profile`` (class or pupil) it belongs to;
- ``GET /api/corrections``: how many corrections each profile has;
- ``GET /api/profiles``: the built profiles with their example counts;
- ``POST /api/profiles/{name}/predict``: like ``/api/predict``, with the profile.

Profiles and corrections are pupils' handwriting: the same rule as the worksheet endpoints applies
(``digitlab.server.auth``: the teacher token, or open on loopback to this machine's browser only). Errors are ``{"error": "..."}``.
Building a profile is left to ``digitlab adapt`` (seconds of full CPU: not a web request's work).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, WithJsonSchema

from ..errors import DigitlabError, ModelError
from ..server.limits import MAX_UPLOAD as MAX_IMAGE
from ..worksheets.api import require_teacher

_PIXELS = WithJsonSchema({"anyOf": [{"type": "array", "minItems": 28, "maxItems": 28,
                                     "items": {"type": "array", "minItems": 28, "maxItems": 28,
                                               "items": {"type": "number", "minimum": 0, "maximum": 255}}},
                                    {"type": "null"}],
                          "description": "the 28x28 input the model saw (input28 of /api/predict): 0 = paper, "
                                         "1 (or 255) = ink; stored and used as given"})
_NAME = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
              description="class or pupil the handwriting belongs to", examples=["class-3b"])


class ProfileApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class CorrectionIn(BaseModel):
    pixels: Annotated[list[list[float]] | None, _PIXELS] = None
    image: str | None = Field(None, description="base64 PNG/JPEG of one digit, instead of pixels")
    label: int = Field(..., ge=0, le=9, description="the digit really written")
    profile: str | None = _NAME
    was_read: int | None = Field(None, ge=0, le=9, description="what the model answered")


class CorrectionOut(BaseModel):
    id: int
    profile: str | None
    corrections: int = Field(description="corrections stored for this profile so far")


class ProfileInfo(BaseModel):
    name: str
    examples: int = 0
    counts: dict[int, int] = {}
    updated: str | None = None
    corrections: int = Field(0, description="corrections stored for it (the next `adapt --from-corrections`)")
    error: str | None = None


class ProfilePredictIn(BaseModel):
    pixels: Annotated[list[list[float]] | None, _PIXELS] = None
    image: str | None = Field(None, description="base64 PNG/JPEG of one digit, instead of pixels")


class Answer(BaseModel):
    digit: int
    confidence: float
    probabilities: list[float]


class ProfilePredictOut(Answer):
    model: str
    profile: str
    base: Answer = Field(description="the base model's answer without the profile")
    input28: list[list[float]]


router = APIRouter(tags=["profiles"], dependencies=[Depends(require_teacher)])
_ERRORS = {code: {"description": text, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
    for code, text in ((401, "teacher token missing or wrong"),
                       (403, "closed beyond loopback without a token, or not from this machine's browser"),
                       (404, "unknown profile"), (413, "image too large"), (422, "bad input"),
                       (429, "too many wrong tokens from this address (Retry-After)"))}


def install(app) -> None:
    """Include the router and its JSON error handler (the one call the app makes)."""

    @app.exception_handler(ProfileApiError)
    async def _profile_error(request, exc: ProfileApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    app.include_router(router)


def _image28(pixels, image: str | None) -> np.ndarray:
    """The 28x28 float image: ``pixels`` as given, or a decoded and preprocessed ``image``."""
    from ..digits.preprocess import preprocess_digit
    from .store import as_uint8_28

    if pixels is not None:
        try:
            return as_uint8_28(pixels).astype(np.float32) / 255
        except DigitlabError as exc:
            raise ProfileApiError(422, str(exc)) from None
    if not image:
        raise ProfileApiError(422, "give 'pixels' (28x28) or 'image' (base64)")
    text = image.split(",", 1)[-1] if image.startswith("data:") else image
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProfileApiError(422, "image is not valid base64") from None
    if len(raw) > MAX_IMAGE:
        raise ProfileApiError(413, "image larger than 5 MB")
    try:
        return preprocess_digit(raw, max_side=4096, name="image")
    except DigitlabError as exc:
        raise ProfileApiError(422, str(exc)) from None


def _db():
    from ..storage import open_db

    return open_db()


def _store(body: CorrectionIn) -> dict:
    from .store import add_correction, correction_counts

    img = _image28(body.pixels, body.image)
    db = _db()
    try:
        cid = add_correction(db, img, body.label, body.profile, body.was_read)
    except DigitlabError as exc:
        raise ProfileApiError(422, str(exc)) from None
    return {"id": cid, "profile": body.profile, "corrections": correction_counts(db).get(body.profile, 0)}


@router.post("/api/corrections", response_model=CorrectionOut, responses=_ERRORS,
             summary="store a corrected digit (28x28 pixels or image, right label, profile)")
async def post_correction(body: CorrectionIn):
    return await asyncio.to_thread(_store, body)


@router.get("/api/corrections", response_model=dict[str, int], responses=_ERRORS,
            summary="corrections stored per profile ('' = no profile)")
async def get_corrections():
    from .store import correction_counts

    counts = await asyncio.to_thread(lambda: correction_counts(_db()))
    return {(k or ""): v for k, v in counts.items()}


def _profiles() -> list[dict]:
    from .core import list_profiles
    from .store import correction_counts

    counts = correction_counts(_db())
    rows = [{k: v for k, v in p.items() if k not in ("path", "base")} for p in list_profiles()]
    for r in rows:
        r["corrections"] = counts.get(r["name"], 0)
    names = {r["name"] for r in rows}
    rows += [{"name": n, "corrections": c} for n, c in sorted(counts.items(), key=lambda kv: str(kv[0]))
             if n and n not in names]  # corrections waiting for their first `adapt`
    return rows


@router.get("/api/profiles", response_model=list[ProfileInfo], responses=_ERRORS,
            summary="handwriting profiles with their example counts, and profiles that have corrections only")
async def get_profiles():
    return await asyncio.to_thread(_profiles)


def _answer(p: np.ndarray) -> dict:
    return {"digit": int(p.argmax()), "confidence": round(float(p.max()), 6),
            "probabilities": [round(float(v), 6) for v in p]}


def _predict(name: str, body: ProfilePredictIn) -> dict:
    from .core import check_name, get_profile

    try:
        check_name(name)
        model = get_profile(name)
    except ModelError as exc:
        raise ProfileApiError(404, str(exc)) from None
    except DigitlabError as exc:
        raise ProfileApiError(422, str(exc)) from None
    img = _image28(body.pixels, body.image)
    p = model.predict_proba(img[None])[0]
    base = model.base_model.predict_proba(img[None])[0]
    return {"model": f"profile:{name}", "profile": name, **_answer(p), "base": _answer(base),
            "input28": np.round(img, 4).tolist()}


@router.post("/api/profiles/{name}/predict", response_model=ProfilePredictOut, responses=_ERRORS,
             summary="recognise one digit with a handwriting profile (28x28 pixels or base64 image)")
async def predict_with_profile(name: str, body: ProfilePredictIn):
    return await asyncio.to_thread(_predict, name, body)
