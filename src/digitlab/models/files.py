"""Model files: a model's name -> its file, and the models loaded from them, cached for every caller.

A name is looked up in the models folder (``DIGITLAB_MODELS``, where ``digitlab train`` writes), then in
the shipped weights. A file is loaded once per version (path and mtime): ``predict``, the reader, a
profile's base CNN and the server share the same objects.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from ..errors import ModelError

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "cnn.dlm"
CACHE_SIZE = 16


def models_dir() -> Path:
    """Where trained models are kept (``DIGITLAB_MODELS`` or ``~/.cache/digitlab/models``)."""
    from ..datasets.mnist import cache_dir

    return Path(os.environ.get("DIGITLAB_MODELS", cache_dir() / "models"))


def model_path(name_or_path: str | os.PathLike | None) -> Path:
    """Resolve a model name ("cnn", "svm", ...) or a file path to a model file."""
    if name_or_path is None or str(name_or_path) == "default":
        return DEFAULT_MODEL  # a user's own `cnn` in the models folder is used only when named
    p = Path(name_or_path)
    if p.suffix == ".dlm" or p.exists():
        return p
    for base in (models_dir(), WEIGHTS_DIR):
        candidate = base / f"{name_or_path}.dlm"
        if candidate.exists():
            return candidate
    raise ModelError(
        f"no trained model named {str(name_or_path)!r}: train one with `digitlab train {name_or_path}` "
        f"(looked in {models_dir()} and the shipped weights)"
    )


_CACHE: OrderedDict[tuple[str, float], object] = OrderedDict()
_LOCK = threading.Lock()


def cached(path: Path, loader):
    """The model in file ``path``, loaded by ``loader(str(path))`` the first time, then the same object.

    Keyed by path and modification time (a retrained file is loaded again); the ``CACHE_SIZE`` most
    recently used are kept.
    """
    if not path.exists():
        raise ModelError(f"model file {path} not found")
    key = (str(path), path.stat().st_mtime)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    model = loader(key[0])
    with _LOCK:
        model = _CACHE.setdefault(key, model)
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
