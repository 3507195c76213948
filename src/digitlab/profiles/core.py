"""Handwriting profiles: where they live, building and updating them, reading labelled examples.

A profile is a ``.dlm`` file (the checksummed, pickle-free model format) holding a registered
``profile`` model (:mod:`digitlab.digits.adapted`) under ``<models dir>/profiles/NAME.dlm``.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import DigitlabError, ImageError, ModelError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_EXAMPLES = 20000


class LabelsError(DigitlabError):
    """A labels file that cannot be used (missing, malformed, naming missing images)."""


def profiles_dir() -> Path:
    from ..models.files import models_dir

    return models_dir() / "profiles"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise DigitlabError(f"bad profile name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                            "(starting with a letter or digit)")
    return name


def profile_path(name: str) -> Path:
    return profiles_dir() / f"{check_name(name)}.dlm"


def list_profiles() -> list[dict]:
    """Every profile in the profiles folder with its example counts (headers only: fast)."""
    from ..models.base import read_header

    out = []
    folder = profiles_dir()
    for path in sorted(folder.glob("*.dlm")) if folder.is_dir() else []:
        try:
            header = read_header(path)[0]
        except ModelError as exc:
            out.append({"name": path.stem, "error": str(exc), "path": str(path)})
            continue
        m = header.get("metadata", {})
        out.append({"name": path.stem, "examples": int(m.get("examples", 0)),
                    "counts": {int(k): int(v) for k, v in m.get("counts", {}).items()},
                    "updated": m.get("updated"), "base": header.get("params", {}).get("base"), "path": str(path)})
    return out


def unknown_profile(name: str) -> ModelError:
    known = [p["name"] for p in list_profiles()]
    hint = f"known: {', '.join(known)}" if known else "there are none yet"
    return ModelError(f"unknown profile {name!r} ({hint}); build it with `digitlab adapt EXAMPLES --labels "
                      f"labels.csv --profile {name}` or `digitlab adapt --from-corrections --profile {name}`")


def get_profile(name: str):
    """Load a profile by name (cached, like every model); a clear error when there is none."""
    from ..models import get_model

    path = profile_path(name)
    if not path.is_file():
        raise unknown_profile(name)
    model = get_model(path)
    if model.name != "profile":
        raise ModelError(f"{path}: holds a {model.name} model, not a profile")
    return model


# -- labelled examples ---------------------------------------------------------------------------------
def read_labels(labels: str | Path, folder: str | Path) -> list[tuple[Path, int]]:
    """``labels.csv`` (``file,label`` per line, an optional header) -> [(image path, digit)].

    Files are relative to ``folder`` (or absolute). Every problem is one line naming the file and line.
    """
    labels, folder = Path(labels), Path(folder)
    if not labels.is_file():
        raise LabelsError(f"{labels}: labels file not found")
    if not folder.is_dir():
        raise LabelsError(f"{folder}: examples folder not found")
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{labels}: cannot read the labels file ({exc})") from None
    out: list[tuple[Path, int]] = []
    seen: set[str] = set()
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise LabelsError(f"{labels}:{n}: expected 2 columns 'file,label', got {len(row)}")
        name, label = row[0].strip(), row[1].strip()
        if n == 1 and not label.isdigit() and label.lower() in ("label", "digit", "class"):
            continue  # header
        if not (len(label) == 1 and label.isdigit()):
            raise LabelsError(f"{labels}:{n}: label must be one digit 0-9, got {label!r}")
        if not name:
            raise LabelsError(f"{labels}:{n}: empty file name")
        path = Path(name) if Path(name).is_absolute() else folder / name
        if not path.is_file():
            raise LabelsError(f"{labels}:{n}: image {name!r} not found in {folder}")
        if name in seen:
            raise LabelsError(f"{labels}:{n}: {name!r} is listed twice")
        seen.add(name)
        out.append((path, int(label)))
    if not out:
        raise LabelsError(f"{labels}: no labelled examples (expected lines 'file,label')")
    if len(out) > MAX_EXAMPLES:
        raise LabelsError(f"{labels}: {len(out)} examples; a profile takes at most {MAX_EXAMPLES}")
    return out


def load_examples(folder, labels) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,28,28) float in [0,1], preprocessed like any prediction input, and their labels."""
    from ..digits.preprocess import preprocess_digit

    images, ys = [], []
    for path, label in read_labels(labels, folder):
        try:
            images.append(preprocess_digit(path, name=str(path)))
        except ImageError as exc:
            msg = str(exc)
            raise LabelsError(msg if str(path) in msg else f"{path}: {msg}") from None
        ys.append(label)
    return np.stack(images).astype(np.float32), np.asarray(ys, np.int64)


def _mnist_part(part: int, n: int, data_dir, seed: int):
    """``n`` random digits of MNIST train's training (0) or validation (1) split; None offline."""
    from ..datasets.mnist import load_mnist, train_val_split
    from ..errors import DataError

    try:
        split = train_val_split(load_mnist("train", data_dir, download=False))[part]
    except DataError:
        return None
    idx = np.random.default_rng(seed).choice(len(split.labels), size=min(n, len(split.labels)), replace=False)
    return np.asarray(split.images[idx]), np.asarray(split.labels[idx])


def replay_set(n: int = 2000, data_dir=None, seed: int = 0):
    """MNIST training digits (the base CNN's own training part) for replay and centring; None offline."""
    return _mnist_part(0, n, data_dir, seed)


def guard_set(n: int = 2000, data_dir=None, seed: int = 0):
    """MNIST digits the base CNN never trained on (its validation split): a profile may cost them at
    most ``guard_drop`` accuracy (see ``ProfileModel._guard``); None offline."""
    return _mnist_part(1, n, data_dir, seed)


# -- building ------------------------------------------------------------------------------------------
def build_profile(X: np.ndarray, y: np.ndarray, base: str = "default", settings: dict | None = None,
                  replay=None, name: str | None = None, guard=None):
    """A fitted (unsaved) ProfileModel from examples; used by :func:`adapt` and the tests."""
    from ..digits.adapted import ProfileModel

    model = ProfileModel(base=base, **(settings or {}))
    model.metadata["profile"] = name
    return model.fit(X, y, replay=replay, guard=guard)


def adapt(name: str, X: np.ndarray | None = None, y: np.ndarray | None = None, replace: bool = False,
          base: str | None = None, settings: dict | None = None, data_dir=None) -> dict:
    """Build or update profile ``name``: its stored examples (unless ``replace``) plus ``X, y``; saved.

    Returns a summary: path, examples, counts, added, seconds.
    """
    from ..models import load

    t0 = time.perf_counter()
    path = profile_path(name)
    old_X = np.zeros((0, 28, 28), np.float32)
    old_y = np.zeros(0, np.int64)
    old_params: dict = {}
    if path.is_file() and not replace:
        old = load(path)
        old_X, old_y = old.images.astype(np.float32) / 255, old.labels
        old_params = {k: v for k, v in old.params.items()}
    new_X = np.zeros((0, 28, 28), np.float32) if X is None else np.asarray(X, np.float32)
    new_y = np.zeros(0, np.int64) if y is None else np.asarray(y, np.int64)
    all_X, all_y = _dedupe(np.concatenate([old_X, new_X]), np.concatenate([old_y, new_y]))
    if len(all_y) == 0:
        raise DigitlabError(f"profile {name!r}: no examples to learn from")
    if len(all_y) > MAX_EXAMPLES:
        raise DigitlabError(f"profile {name!r}: {len(all_y)} examples; a profile takes at most {MAX_EXAMPLES}")
    params = {**old_params, **(settings or {})}
    params.pop("base", None)
    for k in ("tau", "alpha"):  # the guard may have changed these for the old examples: start afresh
        params.pop(k, None)
    base = base or old_params.get("base") or "default"
    replay = replay_set(int(params.get("replay", 2000) or 1000), data_dir)
    guard = guard_set(2000, data_dir) if replay is not None else None
    if replay is None:
        print("digitlab: note: MNIST not found locally: the profile is built without MNIST replay and without "
              "the MNIST check", file=sys.stderr)
    model = build_profile(all_X, all_y, base, params, replay, name, guard)
    from ..storage.db import now

    model.metadata["updated"] = now()
    model.metadata["fit_seconds"] = round(time.perf_counter() - t0, 2)
    model.save(path)
    return {"profile": name, "path": str(path), "examples": int(len(all_y)), "added": int(len(all_y) - len(old_y)),
            "counts": {d: int((all_y == d).sum()) for d in range(10)}, "seconds": round(time.perf_counter() - t0, 2)}


def _dedupe(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (image, label) pairs (re-running adapt on the same folder adds nothing)."""
    if len(y) == 0:
        return X, y
    u8 = np.round(X * 255).astype(np.uint8).reshape(len(X), -1)
    seen, keep = set(), []
    for i in range(len(y)):
        key = (u8[i].tobytes(), int(y[i]))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return X[keep], y[keep]
