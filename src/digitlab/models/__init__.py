"""Models: one estimator interface, one safe file format, one registry by name for CLI, benchmark and app.

- ``base``: the interface (``DigitModel``), the ``.dlm`` file format and the table of registered classes;
- ``files``: model names -> files (models folder, shipped weights) and the cache of loaded models;
- this package is the registry: ``create``, ``available``, ``load`` and ``get_model`` import the members
  on demand (importing a member registers it; kept lazy so `import digitlab` stays light). The
  members (``digitlab.digits.cnn``, ``classic``, ``adapted``; ``digitlab.reader.crnn``) import
  ``base`` and ``files`` only, never this package: the registry has no import cycle.
"""

from __future__ import annotations

from ..errors import ModelError
from .base import REGISTRY, DigitModel, load_registered, read_header, register
from .files import DEFAULT_MODEL, WEIGHTS_DIR, cached, model_path, models_dir

__all__ = ["REGISTRY", "DigitModel", "available", "create", "get_model", "load", "model_path", "models_dir",
           "read_header", "register", "DEFAULT_MODEL", "WEIGHTS_DIR"]


def create(name: str, **params) -> DigitModel:
    """Instantiate a registered model by name (``digitlab models`` lists them)."""
    _ensure_loaded()
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(sorted(REGISTRY))}")
    try:
        return REGISTRY[name](**params)
    except TypeError as exc:
        raise ModelError(f"bad parameters for {name}: {exc}") from None


def available() -> list[str]:
    _ensure_loaded()
    return sorted(REGISTRY)


def _ensure_loaded(name: str | None = None) -> None:
    # Importing the modules registers their classes; kept lazy so `import digitlab` stays light.
    # Loading a CNN, a profile or a model whose module is already imported (a line reader) skips
    # scikit-learn's import: 1-2 s of every `digitlab check` start-up otherwise.
    if name is not None and name in REGISTRY:
        return
    if name in ("cnn", "profile"):
        from ..digits import adapted, cnn  # noqa: F401
        return
    from ..digits import adapted, classic, cnn  # noqa: F401
    from ..reader import crnn  # noqa: F401


def load(path, expect: type[DigitModel] | None = None) -> DigitModel:
    """Load any model from ``path`` (checksum verified, no pickle), importing its class first."""
    parts = read_header(path)
    _ensure_loaded(parts[0]["model"])
    return load_registered(path, expect, parts)


def get_model(name_or_path=None) -> DigitModel:
    """Load (once, then cached) a model by name or path; the shipped CNN by default."""
    return cached(model_path(name_or_path), load)
