"""The work behind the reading routes, run off the event loop: ``predict_work`` and
``visualize_work`` in this process's bounded thread pool (``workers.run_bounded``), ``read_work``
and ``check_work`` in a heavy worker process (``workers.HeavyPool``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DigitlabError, ModelError
from .inputs import count_marks, load_grey, open_image, unscale
from .limits import MAX_MARKS, MAX_SIDE, PAGE_SIDE, PREDICT_SIDE


def _answer(pred) -> dict:
    return {"digit": pred.digit, "confidence": pred.confidence, "probabilities": pred.probabilities}


def trained_models() -> dict[str, Any]:
    """Registered models that have weights, from the loaded-model cache (files are read once)."""
    from ..models.base import REGISTRY
    from ..models import available
    from ..models import get_model

    out = {}
    for name in available():
        try:
            model = get_model(name)
        except DigitlabError:
            continue
        out[name] = {"model": model, "accuracy": model.metadata.get("test_accuracy"), "cls": REGISTRY[name]}
    return out


# -- light work, in the thread pool ----------------------------------------------------------------
def _profile_model(profile: str | None):
    if not profile:
        return None
    from ..profiles import get_profile
    from ..profiles.core import check_name

    return get_profile(check_name(profile))


def predict_work(raw: bytes | None, pixels: np.ndarray | None, model_name: str, compare: bool,
                  profile: str | None = None) -> dict:
    from ..models import available
    from ..digits.preprocess import preprocess_digit, preprocess_mnist_like
    from ..models import get_model
    from ..digits.recognize import predict_images, refuse_non_digit
    from ..digits.reject import check_shape

    if model_name not in available():  # names only: no file paths, no non-digit models over the API
        raise ModelError(f"unknown model {model_name!r}; choose one of: {', '.join(available())}")
    adapted = _profile_model(profile)
    if pixels is not None:
        image = preprocess_mnist_like(pixels)
        check_shape(image)
    else:
        image = preprocess_digit(open_image(raw, PREDICT_SIDE)[0], max_side=MAX_SIDE, name="image")
    model = get_model(model_name)
    pred = predict_images(model, image[None])[0]
    refuse_non_digit(model, pred)  # the same "no digit found" as `digitlab predict`
    if adapted is not None:  # the shape and score checks above are the base's: a profile only re-reads
        pred = predict_images(adapted, image[None])[0]
    result = {"model": f"profile:{profile}" if adapted else model.name, **_answer(pred),
              "input28": np.round(image, 4).tolist()}
    if compare:
        result["compare"] = {name: _answer(predict_images(m["model"], image[None])[0])
                             for name, m in trained_models().items()}
    return result


def visualize_work(raw: bytes | None, pixels: np.ndarray | None) -> dict:
    from ..digits.preprocess import preprocess_digit, preprocess_mnist_like
    from ..models import get_model
    from ..digits.visualize import network_data

    if pixels is not None:
        image = preprocess_mnist_like(pixels)
    else:
        image = preprocess_digit(open_image(raw, PREDICT_SIDE)[0], max_side=MAX_SIDE, name="image")
    return network_data(get_model(None), image)


# -- heavy work, in a worker process ----------------------------------------------------------------
def read_work(raw: bytes, profile: str | None = None) -> dict:
    from ..predictor import read_number

    adapted = _profile_model(profile)
    source, grey, scale = load_grey(raw, PAGE_SIDE)
    count_marks(grey, MAX_MARKS)
    result = read_number(source, name="image", max_side=MAX_SIDE, profile=adapted)
    for d in result["digits"]:
        d["box"] = unscale(d["box"], scale)
    result["bbox"] = unscale(result["bbox"], scale)
    return result


def calc_work(raw: bytes) -> dict:
    from ..predictor import calculate

    source, grey, scale = load_grey(raw, PAGE_SIDE)
    count_marks(grey, MAX_MARKS)
    result = calculate(source, name="image", max_side=MAX_SIDE)
    result["bbox"] = unscale(result["bbox"], scale)
    return result


def check_work(raw: bytes, profile: str | None = None) -> dict:
    from ..arithmetic import check_page

    adapted = _profile_model(profile)
    source, grey, scale = load_grey(raw, PAGE_SIDE)
    count_marks(grey, MAX_MARKS)
    result = check_page(source, name="image", max_side=MAX_SIDE, profile=adapted).as_dict()
    if scale < 1.0:  # geometry back in the pixels of the image the user sent
        for line in result.get("lines", []):
            if isinstance(line.get("bbox"), list):
                line["bbox"] = unscale(line["bbox"], scale)
            if isinstance(line.get("polygon"), list):
                line["polygon"] = [unscale(p, scale) for p in line["polygon"]]
    return result
