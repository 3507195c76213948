"""MNIST data layer: IDX parsing, local directory / user cache / verified download.

Where MNIST is looked for, in order:

1. an explicit ``data_dir`` argument (CLI ``--data-dir``) or the ``DIGITLAB_DATA`` variable;
2. the user cache, ``$DIGITLAB_CACHE`` or ``~/.cache/digitlab``;
3. a download from public mirrors into the cache (SHA-256 of the decompressed bytes checked).

A directory may hold the IDX files directly or in a ``mnist/`` sub-folder, gzipped or not.
Parsed arrays are cached as ``.npy`` files in the user cache and memory-mapped on later loads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io.files import atomic_write

FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}

# SHA-256 of the *decompressed* IDX files (the gzip bytes differ between mirrors).
SHA256 = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

MEAN, STD = 0.1307, 0.3081  # training-set pixel statistics, used to normalise model input

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def cache_dir() -> Path:
    return Path(os.environ.get("DIGITLAB_CACHE", Path.home() / ".cache" / "digitlab"))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into an array, checking the header against the size."""
    if len(raw) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataError(f"{name}: bad IDX magic number 0x{raw[:4].hex()}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{name}: truncated or padded IDX data: header says {shape} "
            f"({expected} bytes) but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_raw(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return data


def _verify(raw: bytes, stem: str, path: Path) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256[stem]:
        raise DataError(f"{path}: SHA-256 mismatch (got {digest[:12]}…, expected {SHA256[stem][:12]}…)")


def _find(directory: Path, stem: str) -> Path | None:
    for base in (directory, directory / "mnist"):
        for candidate in (base / stem, base / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _download(stem: str, target_dir: Path, progress: bool = True) -> Path:
    """Download ``stem`` from the mirrors, verify it and store the decompressed file atomically."""
    from tqdm import tqdm

    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{stem}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                chunks = []
                with tqdm(total=total or None, unit="B", unit_scale=True, desc=stem, disable=not progress) as bar:
                    while chunk := resp.read(1 << 16):
                        chunks.append(chunk)
                        bar.update(len(chunk))
            raw = gzip.decompress(b"".join(chunks))
            _verify(raw, stem, Path(url))
        except (OSError, EOFError, gzip.BadGzipFile, DataError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        target = target_dir / stem
        atomic_write(target, raw)
        return target
    raise DataError(
        "MNIST not found locally and could not be downloaded:\n  "
        + "\n  ".join(errors)
        + "\nPoint digitlab at a local copy with --data-dir DIR or DIGITLAB_DATA=DIR "
        "(a folder holding the four IDX files, gzipped or not)."
    )


def locate(stem: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the path of an IDX file, searching the configured places in order."""
    explicit = data_dir or os.environ.get("DIGITLAB_DATA")
    if explicit:
        directory = Path(explicit).expanduser()
        if not directory.is_dir():
            raise DataError(f"data directory {directory} does not exist")
        found = _find(directory, stem)
        if found is None:
            raise DataError(f"{stem}(.gz) not found in {directory} or {directory / 'mnist'}")
        return found
    cached = _find(cache_dir() / "mnist", stem)
    if cached is not None:
        return cached
    if not download:
        raise DataError(f"{stem} not in the cache; set --data-dir or DIGITLAB_DATA to a local MNIST copy")
    return _download(stem, cache_dir() / "mnist")


def _load_array(stem: str, data_dir=None, download: bool = True) -> np.ndarray:
    src = locate(stem, data_dir, download)
    # The parsed array is cached beside the user cache, keyed by the verified content hash, so a
    # repeat load is an mmap instead of a gunzip + hash.
    npy = cache_dir() / "npy" / f"{SHA256[stem][:16]}-{stem}.npy"
    if npy.is_file():
        try:
            return np.load(npy, mmap_mode="r")
        except (OSError, ValueError):
            npy.unlink(missing_ok=True)  # a damaged cache entry is rebuilt, never trusted
    raw = _read_raw(src)
    try:
        _verify(raw, stem, src)
    except DataError:
        if src.is_relative_to(cache_dir()):
            src.unlink(missing_ok=True)
            raise DataError(f"{src}: SHA-256 mismatch; the bad cached file was deleted, run again to re-fetch") from None
        raise
    arr = parse_idx(raw, str(src))
    try:
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write(npy, buf.getvalue())
    except OSError:
        pass  # a read-only cache only costs speed
    return arr


def load_mnist(split: str = "train", data_dir=None, download: bool = True) -> Split:
    """Load an MNIST split (``"train"`` or ``"test"``) as uint8 images (N,28,28) and int64 labels."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images = _load_array(FILES[f"{split}-images"], data_dir, download)
    labels = _load_array(FILES[f"{split}-labels"], data_dir, download)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"MNIST {split}: unexpected shapes {images.shape} / {labels.shape}")
    return Split(np.asarray(images), np.asarray(labels, dtype=np.int64))


def train_val_split(split: Split, val_size: int = 5000, seed: int = 0) -> tuple[Split, Split]:
    """A fixed, seeded validation split taken from the training set (never from the test set)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))
    val, train = order[:val_size], order[val_size:]
    return Split(split.images[train], split.labels[train]), Split(split.images[val], split.labels[val])


def subset(split: Split, n: int | None, seed: int = 0) -> Split:
    """A stratified-enough random subset of ``n`` examples (all of them when n is None)."""
    if n is None or n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), n, replace=False))
    return Split(split.images[idx], split.labels[idx])


# -- optdigits: other writers -----------------------------------------------------------------------
# UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak, CC BY 4.0): 32x32 bitmaps from
# 43 writers who are not MNIST's. ``tra`` and ``cv`` (30 writers) may train or validate; ``windep``
# (13 other writers) is only ever a test of writers never seen.
OPTDIGITS_SPLITS = ("tra", "cv", "windep")
OPTDIGITS_SHA256 = {
    "optdigits-orig.cv": "cdde8c7d985e7b89652a169bb8f4afa295fbb25443026fe84496a39adbbd5268",
    "optdigits-orig.tra": "9c790a198660250654bf06bb1e80503cc7af90c5989e4d4d918e72fdb65d0f53",
    "optdigits-orig.windep": "c09ab8735d588fdf980724f10a5072c0b757037dc80b448b2f6a10392751c9d6",
}


def parse_optdigits(text: str, name: str = "<text>") -> Split:
    """Parse the 32x32 bitmap text format: a header, then per digit 32 rows of 0/1 and a label line."""
    rows = [r.strip() for r in text.splitlines()]
    start = next((i for i, r in enumerate(rows) if len(r) == 32 and set(r) <= {"0", "1"}), None)
    if start is None:
        raise DataError(f"{name}: no 32x32 bitmaps found")
    body = [r for r in rows[start:] if r and r != "EOF"]  # windep ends with an "EOF" line
    if len(body) % 33:
        raise DataError(f"{name}: truncated: {len(body)} lines is not a whole number of 33-line digits")
    n = len(body) // 33
    images = np.zeros((n, 32, 32), np.uint8)
    labels = np.zeros(n, np.int64)
    for i in range(n):
        block = body[33 * i : 33 * i + 33]
        if any(len(r) != 32 or set(r) - {"0", "1"} for r in block[:32]) or not block[32].isdigit():
            raise DataError(f"{name}: malformed digit #{i}")
        images[i] = (np.frombuffer("".join(block[:32]).encode(), np.uint8).reshape(32, 32) - ord("0")) * 255
        labels[i] = int(block[32])
    if labels.max() > 9:
        raise DataError(f"{name}: label out of range")
    return Split(images, labels)


def load_optdigits(split: str = "tra", data_dir=None) -> Split:
    """optdigits bitmaps (N,32,32) uint8 (255 = ink) and labels, from DIGITLAB_DATA or the cache."""
    if split not in OPTDIGITS_SPLITS:
        raise ValueError(f"split must be one of {OPTDIGITS_SPLITS}, not {split!r}")
    stem = f"optdigits-orig.{split}"
    explicit = data_dir or os.environ.get("DIGITLAB_DATA")
    bases = [Path(explicit).expanduser()] if explicit else [cache_dir()]
    for base in bases:
        for folder in (base / "optdigits", base):
            for cand in (folder / stem, folder / f"{stem}.gz"):
                if cand.is_file():
                    raw = _read_raw(cand)
                    digest = hashlib.sha256(raw).hexdigest()
                    if digest != OPTDIGITS_SHA256[stem]:
                        raise DataError(f"{cand}: SHA-256 mismatch (got {digest[:12]}…)")
                    return parse_optdigits(raw.decode("ascii", "replace"), str(cand))
    raise DataError(
        f"{stem}(.gz) not found in {' or '.join(str(b / 'optdigits') for b in bases)}; get the UCI optdigits "
        "data set (CC BY 4.0, dataset 80) and pass --data-dir DIR or set DIGITLAB_DATA=DIR")


def optdigits_as_mnist(split: str = "windep", data_dir=None) -> Split:
    """optdigits bitmaps in MNIST's format: (N,28,28) uint8, white on black, for the MNIST models.

    As MNIST was made (and as ``preprocess`` treats a user image): the 32x32 bitmap is softened a
    little (its staircase is a scanner's, not a pen's), cropped to its ink, scaled so its longest
    side is 20 px with anti-aliasing, and centred by its centre of mass in a 28x28 field.
    """
    import cv2

    from ..digits.preprocess import fit_to_mnist

    src = load_optdigits(split, data_dir)
    out = np.zeros((len(src), 28, 28), np.uint8)
    for i, bitmap in enumerate(src.images):
        ink = bitmap.astype(np.float32) / 255.0
        ys, xs = np.nonzero(ink)
        if len(xs) == 0:
            continue
        crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        up = cv2.resize(crop, (crop.shape[1] * 4, crop.shape[0] * 4), interpolation=cv2.INTER_LINEAR)
        up = cv2.GaussianBlur(up, (0, 0), 1.5)
        out[i] = np.round(fit_to_mnist(up / max(float(up.max()), 1e-6)) * 255).astype(np.uint8)
    return Split(out, src.labels)
