"""Recognising digits in user images with a model: the default shipped CNN or any saved model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError, NoDigitFound, SeveralSymbols
from ..models import DigitModel, get_model
from .preprocess import crop_and_fit, ink_map, ink_mask, preprocess_digit
from ..io.images import load_image


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
    checked (``digitlab.digits.reject``), then, for the shipped CNN, the model's confidence, and the learned
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
