"""What a request brings, checked before any work: its image (a multipart upload, base64 in JSON, or
28x28 ``pixels``), decoded and downscaled to a bounded size; its ink marks counted; its ``profile``
field, under the teacher's rule.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
from fastapi import Request
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DigitlabError, ImageError
from .handlers import ApiError, worded
from .limits import MAX_SIDE, MAX_UPLOAD
from .schemas import PredictJSON


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


def open_image(raw: bytes, work_side: int):
    """The upload as the readers take it, downscaled to at most ``work_side`` px a side.

    Small images come back as the bytes (decoded later by the reader, with its own checks and
    messages); larger ones as a decoded, EXIF-rotated PIL image scaled down (JPEGs decoded at a
    reduced size straight away), colour kept. Returns ``(source, scale)``, ``scale <= 1``.
    """
    import io

    from PIL import Image, ImageOps

    from ..io.images import MAX_PIXELS

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
    from ..io.images import load_image

    source, scale = open_image(raw, work_side)
    return source, load_image(source, max_side=MAX_SIDE, name="image"), scale


def count_marks(grey: np.ndarray, limit: int) -> int:
    """Separate ink marks (connected components of the ink mask); more than ``limit`` is a 422.

    Reading costs grow with the marks on the page: a page of dots or squared paper would keep a
    reader busy for minutes. Counting is cheap (about 0.1 s for 2048x2048).
    """
    import cv2

    from ..digits.preprocess import ink_map, otsu_mask

    mask = otsu_mask(ink_map(grey)).astype(np.uint8)
    n = cv2.connectedComponents(mask, connectivity=8)[0] - 1
    if n > limit:
        raise ImageError(f"image: too many marks to read as handwriting ({n} separate ink marks, at most {limit}); "
                         "photograph only the written lines, on plain paper")
    return n


def unscale(box, scale: float) -> list[int]:
    return [int(round(v / scale)) for v in box] if scale < 1.0 else [int(v) for v in box]


async def image_input(request: Request) -> tuple[bytes | None, np.ndarray | None, dict]:
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
            raise ApiError(422, f"invalid request: {worded(exc.errors())}") from None
        if req.pixels is not None:
            return None, pixels_array(req.pixels), body
        if req.image:
            return decode_base64(req.image), None, body
        raise ApiError(422, "give 'image' (base64) or 'pixels' (28x28)")
    raise ApiError(415 if ctype else 422, "send multipart/form-data with a 'file', or JSON")


def profile_field(request: Request, fields: dict) -> str | None:
    """The ``profile`` field, if any: a profile is a class's handwriting, so the teacher's rule applies."""
    profile = fields.get("profile")
    if profile is None or profile == "":
        return None
    from ..profiles.core import check_name
    from ..worksheets.api import require_teacher

    if not isinstance(profile, str):
        raise ApiError(422, "'profile' must be a profile name")
    require_teacher(request)
    try:
        return check_name(profile)
    except DigitlabError as exc:
        raise ApiError(422, str(exc)) from None


def flag(value) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")
