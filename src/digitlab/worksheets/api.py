"""Web endpoints for printed worksheets (``/api/worksheets/...``), a FastAPI router included by the app.

Pupils' results are personal data: who may use these routes is decided by ``digitlab.server.auth``
(the teacher token; open on loopback to this machine's browser only; else closed), checked by the
server's request guard before any body is read, and again here (``require_teacher``).

Errors are ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ..server import auth
from ..server.auth import TOKEN_HEADER, is_loopback  # noqa: F401  (re-exported: older imports)
from ..errors import DigitlabError, ImageError
from ..server.limits import MAX_PHOTO

_grading_lock = threading.Semaphore(1)  # one page read at a time: the reader uses every core
MAX_ID = 2**63 - 1  # SQLite's integers: a larger id cannot name anything (422, not an overflow)
Id = Annotated[int, Path(ge=0, le=MAX_ID)]


class WorksheetError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def require_teacher(request: Request) -> None:
    """The ``auth`` rule for this request (401, 403 or 429 as ``WorksheetError``)."""
    try:
        auth.check(request.scope, getattr(request.app.state, "token_failures", None))
    except auth.Refusal as no:
        raise WorksheetError(no.status, no.message, no.headers) from None


def _db():
    from ..storage import open_db

    return open_db()


async def _off_loop(fn, *args):
    return await asyncio.to_thread(fn, *args)


# -- models ---------------------------------------------------------------------------------------------
class CreateSheet(BaseModel):
    problems: int = Field(20, ge=1, le=40)
    ops: list[str] = Field(default_factory=lambda: ["+", "-"], examples=[["+", "-", "x", "/"]])
    max: int = Field(20, ge=2, le=10000)
    remainder: bool = False
    missing: bool = False
    columns: bool = Field(False, description="column sums (+ -, x by one digit; at most 24 problems)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    title: str = Field("Worksheet", max_length=60, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$",
                       description="printed at the top; no control characters")


class SheetOut(BaseModel):
    sheet_id: str
    title: str
    pdf_url: str
    png_url: str
    key: dict


class SheetInfo(BaseModel):
    sheet_id: str
    title: str
    created_at: str
    params: dict
    graded: int


class ProblemResult(BaseModel):
    id: int
    op: str = ""
    question: str = ""
    expected: list[str]
    read: list[str | None]
    status: str
    confidence: float
    corrected: bool = False


class GradingOut(BaseModel):
    grading_id: int
    file: str
    sheet_id: str
    pupil_name: str | None = None
    score: int
    total: int
    graded_at: str | None = None
    problems: list[ProblemResult] = []
    annotated_png: str | None = Field(None, description="the photo with marks, base64 PNG (only right after grading)")


class GradingRow(BaseModel):
    id: int
    sheet_id: str
    file: str
    pupil_name: str | None
    score: int
    total: int
    graded_at: str


class Fix(BaseModel):
    labels: list[Annotated[str, Field(max_length=12)] | None] = Field(
        ..., max_length=4, description="what is written in each box of the problem (null = blank)", examples=[["14"]])
    profile: str | None = Field(None, max_length=80, description="class or pupil the handwriting belongs to")


class FixOut(BaseModel):
    status: str
    score: int


class Rename(BaseModel):
    name: str = Field(..., max_length=80)


router = APIRouter(prefix="/api/worksheets", tags=["worksheets"], dependencies=[Depends(require_teacher)])


def install(app) -> None:
    """Include the router and its JSON error handler (the one call the app makes)."""

    @app.exception_handler(WorksheetError)
    async def _ws_error(request, exc: WorksheetError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    app.include_router(router)


def _err(exc: Exception) -> WorksheetError:
    return WorksheetError(422 if isinstance(exc, ImageError) else 400, str(exc))


@router.post("", response_model=SheetOut, summary="create a worksheet (PDF, PNG and answer key), recorded in the database")
async def create(body: CreateSheet):
    from .layout import key_of, layout, make_problems, new_sheet_id

    def make() -> dict:
        problems = make_problems(body.problems, ops=body.ops, max_value=body.max, remainder=body.remainder,
                                 missing=body.missing, seed=body.seed, columns=body.columns)
        return layout(problems, new_sheet_id(), body.title)

    try:
        sheet = await _off_loop(make)
    except (DigitlabError, ValueError) as exc:
        raise _err(exc) from None
    key = key_of(sheet)
    await _off_loop(_db().add_sheet, key, body.model_dump())
    sid = key["sheet_id"]
    return SheetOut(sheet_id=sid, title=body.title, pdf_url=f"/api/worksheets/{sid}/pdf",
                    png_url=f"/api/worksheets/{sid}/png", key=key)


@router.get("", response_model=list[SheetInfo], summary="the sheets in the database")
async def sheets():
    return await _off_loop(lambda: _db().sheets())


def _key(sheet_id: str) -> dict:
    key = _db().sheet_key(sheet_id)
    if key is None:
        raise WorksheetError(404, f"no sheet {sheet_id}")
    return key


@router.get("/{sheet_id}/pdf", response_class=Response, summary="the printable PDF")
async def sheet_pdf(sheet_id: str):
    from . import layout

    key = await _off_loop(_key, sheet_id)
    # Drawing a page costs tens of milliseconds of CPU: in a thread, so other requests go on.
    pdf = await _off_loop(lambda: layout.to_pdf(layout.redraw(key)))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{sheet_id}.pdf"'})


def _png(key: dict) -> bytes:
    import io

    from PIL import Image

    from . import layout

    buf = io.BytesIO()
    Image.fromarray(layout.to_raster(layout.redraw(key))).save(buf, "PNG")
    return buf.getvalue()


@router.get("/{sheet_id}/png", response_class=Response, summary="the page as PNG (150 dpi)")
async def sheet_png(sheet_id: str):
    key = await _off_loop(_key, sheet_id)
    return Response(await _off_loop(_png, key), media_type="image/png")


@router.get("/{sheet_id}/key", summary="the answer key and layout (JSON)")
async def sheet_key(sheet_id: str) -> dict:
    return await _off_loop(_key, sheet_id)


def grade_job(raw: bytes, filename: str, db_path: str) -> tuple[dict, bytes | None, dict, bytes]:
    """The heavy part of grading, run in a worker process: read the photo, mark it, draw the marks.

    The worker only reads the database (the sheet's key); the grading is stored by the server.
    """
    from ..storage import open_db
    from ..predictor import grade_photo
    from .grade import annotate

    g = grade_photo(raw, name=filename, lookup=open_db(db_path).sheet_key)
    return g.result, g.name_png, g.crops, annotate(g, max_side=1400)


def _grade(raw: bytes, filename: str, name: str | None) -> dict:
    """Grade in this process (no worker pool: an app built without ``digitlab.server.create_app``)."""
    with _grading_lock:
        return _store_grading(*grade_job(raw, filename, str(_db().path)), name)


def _store_grading(result: dict, name_png: bytes | None, crops: dict, marked: bytes, name: str | None) -> dict:
    db = _db()
    gid = db.add_grading(result, name_png, crops, pupil_name=name or None)
    out = db.grading(gid)
    out["grading_id"] = gid
    out["annotated_png"] = base64.b64encode(marked).decode()
    return out


@router.post("/grade", response_model=GradingOut, summary="grade one photo of a filled-in sheet (multipart `file`)")
async def grade(request: Request, file: UploadFile = File(...), name: str | None = Form(None)):
    raw = await file.read(MAX_PHOTO + 1)
    if len(raw) > MAX_PHOTO:
        raise WorksheetError(413, f"photo larger than {MAX_PHOTO // (1024 * 1024)} MB")
    if not raw:
        raise WorksheetError(400, "empty upload")
    heavy = getattr(request.app.state, "heavy", None)
    try:
        if heavy is None:
            return await _off_loop(_grade, raw, file.filename or "photo", name)
        # Like /api/check: a page read is CPU-bound work for the killable worker pool, with its
        # deadline and queue bound, so no batch of photos can starve the light endpoints.
        job = await heavy.run(grade_job, raw, file.filename or "photo", str(await _off_loop(lambda: _db().path)))
        return await _off_loop(_store_grading, *job, name)
    except DigitlabError as exc:
        raise _err(exc) from None


@router.get("/gradings/list", response_model=list[GradingRow], summary="graded photos (optionally of one sheet)")
async def gradings(sheet: str | None = None):
    rows = await _off_loop(lambda: _db().gradings(sheet))
    return [GradingRow(**{k: r[k] for k in GradingRow.model_fields}) for r in rows]


@router.get("/gradings/{grading_id}", response_model=GradingOut, summary="one graded photo with its answers")
async def grading(grading_id: Id):
    g = await _off_loop(lambda: _db().grading(grading_id))
    if g is None:
        raise WorksheetError(404, f"no graded sheet {grading_id}")
    g["grading_id"] = g.pop("id")
    return g


@router.get("/gradings/{grading_id}/crops/{problem_id}/{part}", response_class=Response,
            summary="the answer box as the reader saw it (PNG)")
async def crop(grading_id: Id, problem_id: Id, part: Id):
    png = await _off_loop(lambda: _db().crop(grading_id, problem_id, part))
    if png is None:
        raise WorksheetError(404, "no such answer box")
    return Response(png, media_type="image/png")


@router.get("/gradings/{grading_id}/name.png", response_class=Response, summary="the name field as photographed")
async def name_png(grading_id: Id):
    png = await _off_loop(lambda: _db().name_png(grading_id))
    if png is None:
        raise WorksheetError(404, "no name field stored")
    return Response(png, media_type="image/png")


@router.post("/gradings/{grading_id}/answers/{problem_id}/fix", response_model=FixOut,
             summary="the teacher's reading of an answer: re-marks it and keeps the crop as a correction")
async def fix(grading_id: Id, problem_id: Id, body: Fix):
    try:
        return await _off_loop(lambda: _db().correct(grading_id, problem_id, body.labels, body.profile))
    except DigitlabError as exc:
        raise WorksheetError(404 if "no answer" in str(exc) else 400, str(exc)) from None


@router.put("/gradings/{grading_id}/name", summary="type the pupil's name")
async def rename(grading_id: Id, body: Rename) -> dict:
    try:
        await _off_loop(lambda: _db().rename(grading_id, body.name))
    except DigitlabError as exc:
        raise WorksheetError(404, str(exc)) from None
    return {"grading_id": grading_id, "pupil_name": body.name.strip() or None}


@router.get("/report/class", summary="the class table, error rates by operation, most-missed problems")
async def report(sheet: str | None = None) -> dict:
    from .report import class_report

    return await _off_loop(lambda: class_report(_db(), sheet))


@router.get("/report/plot.png", response_class=Response, summary="scores and error rates (PNG)")
async def report_plot(sheet: str | None = None):
    from .report import class_report, plot_png

    png = await _off_loop(lambda: plot_png(class_report(_db(), sheet)))
    return Response(png, media_type="image/png")


@router.get("/report/class.csv", response_class=Response, summary="the class table as CSV")
async def report_csv(sheet: str | None = None):
    import tempfile
    from pathlib import Path

    from .report import class_report, write_csv

    def make() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "class.csv"
            write_csv(class_report(_db(), sheet), p)
            return p.read_bytes()

    return Response(await _off_loop(make), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="class.csv"'})
