"""What the server has: its trained models (/api/models) and its health (/api/health)."""

from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ..schemas import Health, ModelInfo, error_responses
from ..work import trained_models
from ..workers import run_bounded

router = APIRouter()


@router.get("/api/models", response_model=list[ModelInfo], responses=error_responses(503, 504),
            summary="Trained models and their MNIST test accuracy")
async def models():
    trained = await run_bounded(trained_models)  # the first call loads the models: off the event loop
    return [ModelInfo(name=n, description=m["cls"].description, test_accuracy=m["accuracy"],
                      calibrated=m["cls"].has_proba) for n, m in trained.items()]


@router.get("/api/health", response_model=Health, summary="Liveness")
async def health():
    return {"status": "ok", "version": __version__}
