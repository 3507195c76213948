"""The API's request and response models (pydantic), its documented errors, and request examples.

Every POST documents both bodies it accepts (multipart upload or JSON: ``two_bodies``); the
handlers parse them by hand, for clearer messages.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .limits import MAX_SIDE


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


class CalcResponse(BaseModel):
    expression: str = Field(description='the expression as read, e.g. "21*3+41*7-61" or "7+5+3=15"')
    value: int | float | None = Field(description="its value (of the left side when an answer is written)")
    value_exact: str | None = Field(None, description='the value as an exact fraction ("3/2") when it is not whole')
    written_answer: int | float | None = Field(None, description="the answer written after '=', if any")
    status: str = Field(description="computed (no answer written); correct, wrong or unsure (an answer written, "
                                     "judged as /api/check judges a line); or 'unreadable: <why>'")
    confidence: float = Field(description="computed: the probability of this reading; otherwise the share of the "
                                          "readings that back the verdict")
    alternatives: list[str] = Field(default_factory=list, description="the next most likely readings")
    bbox: list[int] | None = Field(None, description="the expression's box in the uploaded image's pixels")


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


def error_responses(*codes: int) -> dict:
    text = {400: "malformed request (a broken multipart body, a bad Content-Length)",
            401: "a profile was named without the teacher token", 403: "a profile was named, and pupils' data is "
            "closed (no token beyond loopback) or open to this machine's browser only", 404: "unknown model",
            429: "too many wrong teacher tokens from this address (Retry-After)",
            408: "the request body stopped arriving", 413: "body over its limit (see docs/reliability.md), or a file over 5 MB",
            415: "unsupported content type",
            422: "bad input, or an image that cannot be read as asked", 503: "server busy, try again",
            504: "took longer than the time limit; the work was stopped"}
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


ERRORS = error_responses(400, 401, 403, 404, 408, 413, 415, 422, 429, 503, 504)
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


def request_examples() -> dict[str, dict]:
    """JSON request examples by path, ready for "Try it out" (and for the contract fuzzer)."""
    seven = _drawn_png([[(14, 14), (50, 14), (26, 58)]], (64, 72))
    number = _drawn_png([[(20, 14), (20, 58)], [(44, 14), (80, 14), (56, 58)]], (100, 72))
    line = _drawn_png([[(10, 20), (10, 60)], [(28, 40), (52, 40)], [(40, 28), (40, 52)], [(66, 20), (66, 60)],
                       [(82, 34), (104, 34)], [(82, 46), (104, 46)], [(122, 20), (146, 20), (146, 40), (122, 40),
                                                                     (122, 60), (146, 60)]], (160, 80))
    return {"/api/predict": {"image": seven, "model": "cnn"}, "/api/visualize": {"image": seven},
            "/api/read": {"image": number}, "/api/check": {"image": line}, "/api/calc": {"image": line}}


def two_bodies(form: type[BaseModel], js: type[BaseModel]) -> dict:
    """openapi_extra declaring the two accepted bodies; the handler parses them by hand."""
    ref = "#/components/schemas/{}"
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"$ref": ref.format(form.__name__)}},
        "application/json": {"schema": {"$ref": ref.format(js.__name__)}},
    }}}
