"""``create_app``: the FastAPI app, assembled from its parts.

The request guard (``guard.Guard``: access, body limits) in front; the error handlers
(``handlers``); the routes (``routes.reading``, ``routes.status``, ``routes.pages``, then the
worksheets' and the profiles'); the heavy worker pool (``workers.HeavyPool``) started and stopped
with the app, as ``app.state.heavy``; the OpenAPI schema with both request bodies and examples.
"""

from __future__ import annotations

import contextlib
import os

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .. import __version__
from ..profiles.api import install as install_profiles
from ..worksheets.api import install as install_worksheets
from . import auth
from .guard import Guard
from .handlers import add_handlers
from .routes import pages, reading, status
from .schemas import REQUEST_MODELS, request_examples
from .workers import HeavyPool


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
            for path, example in request_examples().items():
                schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"] = example
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    app.state.token_failures = auth.FailureLimiter()  # wrong tokens, shared by the guard and require_teacher
    app.add_middleware(Guard, failures=app.state.token_failures)

    add_handlers(app)
    app.include_router(reading.router)  # /api/predict, /api/read, /api/calc, /api/check, /api/visualize
    app.include_router(status.router)  # /api/models, /api/health
    app.include_router(pages.router)  # /report, /, /docs
    install_worksheets(app)  # worksheets: /api/worksheets
    install_profiles(app)  # profiles: /api/corrections, /api/profiles
    pages.mount_static(app)
    return app
