"""Recognising digits in user images with a model: the default shipped CNN or any saved model."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageError, ModelError, NoDigitFound, SeveralSymbols
from .models.base import DigitModel, load
from .preprocess import crop_and_fit, ink_map, ink_mask, load_image, preprocess_digit

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "cnn.dlm"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


def models_dir() -> Path:
    """Where trained models are kept (``DIGITLAB_MODELS`` or ``~/.cache/digitlab/models``)."""
    from .data import cache_dir

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


@functools.lru_cache(maxsize=16)
def _cached(path: str, mtime: float) -> DigitModel:
    return load(path)


def get_model(name_or_path=None) -> DigitModel:
    """Load (once, then cached) a model by name or path; the shipped CNN by default."""
    path = model_path(name_or_path)
    if not path.exists():
        raise ModelError(f"model file {path} not found")
    return _cached(str(path), path.stat().st_mtime)


@dataclass
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    image: np.ndarray = field(repr=False)  # the 28x28 input the model saw

    def as_dict(self) -> dict:
        return {"digit": self.digit, "confidence": round(self.confidence, 6),
                "probabilities": [round(p, 6) for p in self.probabilities]}


def predict_images(model: DigitModel, images: np.ndarray) -> list[Prediction]:
    """Predict a batch of preprocessed 28x28 images."""
    proba = model.predict_proba(np.asarray(images, dtype=np.float32))
    return [Prediction(int(p.argmax()), float(p.max()), [float(v) for v in p], img) for p, img in zip(proba, images)]


def is_shipped(model: DigitModel) -> bool:
    """Whether ``model`` is the shipped CNN (the one the confidence bound of ``reject`` was set for)."""
    try:
        return model is get_model(None)
    except ModelError:
        return False


def predict_source(model: DigitModel, source, name: str | None = None, max_side: int | None = None,
                   reject: bool = True) -> Prediction:
    """Read the one digit in a user image (path, bytes, PIL image or array).

    With ``reject`` (the default) a picture that is not a digit raises ``NoDigitFound``: its shape is
    checked (``digitlab.reject``), then, for the shipped CNN, the model's confidence, and the learned
    reject model's verdict (``weights/reject.dlm``, for every model). A refused picture whose ink lies
    in several symbols side by side (``reject.several_symbols``) raises ``SeveralSymbols``, a
    ``NoDigitFound`` that says so.
    """
    kw = {"name": name}
    if max_side:
        kw["max_side"] = max_side
    if not reject:
        return predict_images(model, preprocess_digit(source, reject=False, **kw)[None])[0]
    from .reject import check_shape, several_symbols

    ink = ink_map(load_image(source, **kw))  # preprocess_digit's steps, keeping the ink to say why it is refused
    try:
        image = crop_and_fit(ink)
        check_shape(image)
        pred = predict_images(model, image[None])[0]
        refuse_non_digit(model, pred)
    except NoDigitFound:
        if several_symbols(ink_mask(ink)):
            raise SeveralSymbols("no digit found: several symbols side by side "
                                 "(a written number or a line of arithmetic?)") from None
        raise
    return pred


def refuse_non_digit(model: DigitModel, pred: Prediction) -> None:
    """Raise ``NoDigitFound`` when the model's answer or the learned reject model says "not a digit".

    Only the shipped CNN has a calibrated score (shape + its confidence); the learned reject model
    (``weights/reject.dlm``, when shipped) looks at the picture alone, so it guards every model.
    """
    from .reject import check_prediction
    from .rejectnet import check_net

    if is_shipped(model):
        check_prediction(pred.image, pred.probabilities)
    check_net(pred.image)


def expand_paths(paths) -> list[Path]:
    """Files as given; folders expanded to the image files they hold (sorted). None at all is an error."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    if not out:
        raise ImageError("no image files found in " + ", ".join(map(str, paths)))
    return out
