"""Image files in: decode any user image (path, bytes, file object, PIL image or array) once, safely.

Size limits are checked from the header before decoding (decompression bombs), EXIF orientation is
applied, animated images give their first frame, and transparency (canvas exports) becomes ink.
``load_image`` gives greyscale, ``load_rgb`` keeps colour (a blue pen against light-blue rulings).
Everything downstream (digits, page geometry, worksheets, the server) decodes through here.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

MAX_SIDE = 8192  # larger images are refused before decoding (decompression bombs)
MAX_PIXELS = 40_000_000

# Pillow's own bomb check would fire late (after the header) and only as a warning below 2x its
# limit; we check the header size ourselves and make Pillow's check an error as a backstop.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


def _open(source, max_side: int, label: str) -> Image.Image:
    """Decode ``source`` (path, bytes, file object or PIL image) with the size checks, EXIF applied."""
    try:
        if isinstance(source, Image.Image):
            img = source
        else:
            if isinstance(source, (bytes, bytearray, memoryview)):
                if len(source) == 0:
                    raise ImageError(f"{label}: empty file")
                source = io.BytesIO(source)
            elif isinstance(source, (str, os.PathLike)):
                path = Path(source)
                if not path.is_file():
                    raise ImageError(f"{label}: no such file")
                if path.stat().st_size == 0:
                    raise ImageError(f"{label}: empty file")
            img = Image.open(source)
        w, h = img.size
        if w == 0 or h == 0:
            raise ImageError(f"{label}: image has zero size ({w}x{h})")
        if max(w, h) > max_side or w * h > MAX_PIXELS:
            raise ImageError(f"{label}: image too large ({w}x{h}; at most {max_side} px a side)")
        img.seek(0)  # animated images: the first frame
        img.load()
        return ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image (or a format that cannot be read)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: image too large (refused as a possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{label}: cannot decode image ({exc})") from None


def _label(source, name: str | None) -> str:
    return name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")


def load_image(source, max_side: int = MAX_SIDE, name: str | None = None) -> np.ndarray:
    """Decode ``source`` (path, bytes, file object or PIL image) to float32 greyscale "ink" in [0,1].

    The result is a luminance image where 1 is white, except that for images with real
    transparency the alpha channel is taken as the ink (canvas exports), returned inverted so
    the rest of the pipeline sees dark ink on light paper as usual.
    """
    label = _label(source, name)
    if isinstance(source, np.ndarray):
        return _array_grey(source, label, max_side)
    img = _open(source, max_side, label)
    try:
        return _to_grey(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot decode image ({exc})") from None


def load_rgb(source, max_side: int = MAX_SIDE, name: str | None = None) -> np.ndarray:
    """Like ``load_image`` but keeps colour: (H, W, 3) float32 in [0,1], 1 = white.

    Colour tells a blue pen from light-blue rulings; greyscale and transparent (canvas) images come
    back as three equal channels.
    """
    label = _label(source, name)
    if isinstance(source, np.ndarray):
        a = np.asarray(source)
        if a.ndim == 3 and a.shape[-1] in (3, 4):
            if max(a.shape[:2]) > max_side:
                raise ImageError(f"{label}: image too large ({a.shape[1]}x{a.shape[0]}; at most {max_side} px a side)")
            a = np.nan_to_num(a[..., :3].astype(np.float32), nan=1.0)
            return np.clip(a / 255.0 if source.dtype == np.uint8 or a.max() > 1 else a, 0, 1)
        g = _array_grey(source, label, max_side)
        return np.repeat(g[..., None], 3, axis=2)
    img = _open(source, max_side, label)
    try:
        if img.mode in ("RGB", "YCbCr", "CMYK") or (img.mode == "P" and "transparency" not in img.info):
            return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        if img.mode in ("RGBA", "RGBa"):
            rgba = np.asarray(img, dtype=np.float32) / 255.0
            if rgba[..., 3].min() >= 0.5:
                return np.ascontiguousarray(rgba[..., :3])
        g = _to_grey(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot decode image ({exc})") from None
    return np.repeat(g[..., None], 3, axis=2)


def _array_grey(arr: np.ndarray, label: str, max_side: int) -> np.ndarray:
    """A 2-D (grey) or 3-D (RGB/RGBA) array, uint8 0..255 or float 0..1 (1 = white), to grey."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if a.ndim != 2:
        raise ImageError(f"{label}: expected a 2-D greyscale or RGB array, got shape {arr.shape}")
    if a.size == 0:
        raise ImageError(f"{label}: image has zero size {a.shape}")
    if max(a.shape) > max_side:
        raise ImageError(f"{label}: image too large ({a.shape[1]}x{a.shape[0]}; at most {max_side} px a side)")
    a = np.nan_to_num(a.astype(np.float32), nan=1.0)
    if arr.dtype == np.uint8 or a.max() > 1.0:
        a = a / 255.0
    return np.clip(a, 0, 1)


def _to_grey(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return np.clip(arr / top, 0, 1).astype(np.float32)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        if alpha.min() < 0.5:
            # Real transparency (a canvas export): the paint is the ink whatever its colour,
            # and transparent pixels often carry black RGB, so colour cannot be trusted here.
            return (1.0 - alpha).astype(np.float32)
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return lum.astype(np.float32)
    if mode == "CMYK":
        img = img.convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
