"""The pages: the drawing app (/), the study report (/report), the API docs (/docs), static files.

The API docs need no CDN: Swagger UI's files come from the fastapi-offline package and are served
from here (no /redoc: ReDoc loads its logo from a CDN).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parents[2] / "static"
DOCS_ASSETS = "/static/docs"

router = APIRouter()


@router.get("/report", include_in_schema=False)
async def report():
    from ...study.report import default_report_dir

    # The user's own `digitlab benchmark` run if there is one, else the report shipped with
    # the package (measured on the project's 2-core reference machine).
    path = default_report_dir() / "report.html"
    return FileResponse(path if path.exists() else STATIC / "study_report.html")


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC / "index.html")


@router.get("/docs", include_in_schema=False)
async def docs(request: Request):
    return get_swagger_ui_html(openapi_url=request.app.openapi_url, title="digitlab API",
                               oauth2_redirect_url="/docs/oauth2-redirect",
                               swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                               swagger_ui_parameters={"validatorUrl": None})


@router.get("/docs/oauth2-redirect", include_in_schema=False)
async def docs_redirect():
    return get_swagger_ui_oauth2_redirect_html()


def mount_static(app) -> None:
    """Swagger UI's files under /static/docs, the app's own under /static (after every route)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
