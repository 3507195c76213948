"""The reading routes: /api/predict, /api/read, /api/calc, /api/check, /api/visualize.

Each takes a multipart upload or JSON (``inputs.image_input``). A digit is predicted in the bounded
thread pool (``workers.run_bounded``); a number is read and a page checked in a heavy worker process
(``request.app.state.heavy``, the app's ``workers.HeavyPool``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..handlers import ApiError
from ..inputs import flag, image_input, profile_field
from ..schemas import (ERRORS, CalcResponse, CheckResponse, FileForm, ImageJSON, PredictForm, PredictJSON,
                       PredictResponse, ReadResponse, VisualizeJSON, VisualizeResponse, two_bodies)
from ..work import calc_work, check_work, predict_work, read_work, visualize_work
from ..workers import run_bounded

router = APIRouter()


async def _in_heavy_worker(request: Request, work, refusal: str, profiled: bool = True):
    """``work(image bytes[, profile])`` in a heavy worker process; 28x28 pixels are refused (``refusal``)."""
    raw, _, fields = await image_input(request)
    if raw is None:
        raise ApiError(422, refusal)
    extra = (profile_field(request, fields),) if profiled else ()
    return await request.app.state.heavy.run(work, raw, *extra)


@router.post("/api/predict", response_model=PredictResponse, responses=ERRORS,
             openapi_extra=two_bodies(PredictForm, PredictJSON),
             summary="Recognise one digit (multipart 'file', JSON base64 'image', or JSON 28x28 'pixels')")
async def predict(request: Request,
                  model: Annotated[str | None, Query(description="model name (also a body field)")] = None,
                  compare: Annotated[bool | None, Query(description="also answer with every model")] = None):
    raw, pixels, fields = await image_input(request)
    name = str(fields.get("model") or model or "cnn")
    return await run_bounded(predict_work, raw, pixels, name, flag(fields.get("compare") or compare),
                             profile_field(request, fields))


@router.post("/api/read", response_model=ReadResponse, responses=ERRORS, openapi_extra=two_bodies(FileForm, ImageJSON),
             summary="Read a written number: digits left to right with boxes and confidences")
async def read(request: Request):
    return await _in_heavy_worker(request, read_work, "give an image, not 28x28 pixels, to read a number")


@router.post("/api/calc", response_model=CalcResponse, responses=ERRORS, openapi_extra=two_bodies(FileForm, ImageJSON),
             summary="Read a written expression (468x59+79, (7+9x3)/2, 7+5+3=15) and work it out exactly")
async def calc(request: Request):
    return await _in_heavy_worker(request, calc_work, "give an image of a written expression", profiled=False)


@router.post("/api/check", response_model=CheckResponse, response_model_exclude_unset=True, responses=ERRORS,
             openapi_extra=two_bodies(FileForm, ImageJSON),
             summary="Check handwritten arithmetic lines (a op b = c) on a page")
async def check(request: Request):
    return await _in_heavy_worker(request, check_work, "give an image of arithmetic lines")


@router.post("/api/visualize", response_model=VisualizeResponse, responses=ERRORS,
             openapi_extra=two_bodies(FileForm, VisualizeJSON),
             summary="Inside the CNN: feature maps, saliency, layers")
async def visualize(request: Request):
    raw, pixels, _ = await image_input(request)
    return await run_bounded(visualize_work, raw, pixels)
