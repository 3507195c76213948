"""Digit slices cut out of lines the way the checker cuts them, for the CNN's second opinion.

The checker's second opinion (``rescore.rescore``) shows the digit CNN each digit of a reading, cut out
of the line by the CTC alignment (``rescore.symbol_images``). Those slices are not MNIST digits: a
neighbour's stroke reaches in, a ruling remnant crosses, a photo's blur and JPEG are there. This
module cuts such slices from synthetic lines (``linegen``), placed by aligning the *true* text, so a
CNN can be fine-tuned on what it is shown at inference (``digitlab train slice-cnn``).
"""

from __future__ import annotations

import numpy as np

from ..digits.preprocess import NoDigitFound
from . import CRNN_CHARSET, DIGITS


def line_slices(bank, n_lines: int, reader, rng: np.random.Generator, photo: float = 0.0, batch: int = 64,
                progress: bool = True, desc: str = "slices", chars: str = DIGITS) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): the 28x28 slices of the symbols in ``chars`` (the digits by default; ``CHARSET``: every
    symbol) of ``n_lines`` synthetic lines from ``bank``'s glyphs, cut as ``rescore.symbol_images`` cuts
    them for their true text, and their classes (indices in ``chars``)."""
    from tqdm import tqdm

    from .crnn import prepare_line
    from .linegen import training_line
    from .rescore import symbol_images

    X, y = [], []
    bar = tqdm(total=n_lines, desc=desc, unit="line", disable=not progress)
    done = 0
    while done < n_lines:
        inks, texts, prepared = [], [], []
        while len(inks) < min(batch, n_lines - done):
            ink, text = training_line(bank, rng, photo)
            try:
                prepared.append(prepare_line(ink))
            except NoDigitFound:
                continue
            inks.append(ink)
            texts.append(text)
        for ink, text, logp in zip(inks, texts, reader.frame_log_probs(prepared)):
            for i, img in symbol_images(ink, logp, text, chars=chars).items():
                X.append(img)
                y.append(chars.index(text[i]))
        done += len(inks)
        bar.update(len(inks))
    bar.close()
    return np.asarray(X, np.float32).reshape(-1, 28, 28), np.asarray(y, np.int64)


def train_slice_cnn(out, lines: int = 30000, val_lines: int = 3000, epochs: float = 3.0, lr: float = 1e-3,
                    seed: int = 0, photo: float = 0.3, styles: float = 1.0, data_dir=None, progress: bool = True,
                    reader=None, base=None, max_per_digit: int | None = None, symbols: bool = False):
    """Fine-tune the digit CNN (``base``, default the shipped one) on digit slices of synthetic lines
    from the training glyphs, cut by ``reader``'s alignment (default the shipped line reader); the
    slices of validation lines (validation glyphs) are scored before and after. Saved to ``out``.
    ``max_per_digit`` caps the MNIST glyphs of each digit (a small run). With ``symbols`` the model
    learns every symbol of a line (one class per ``CHARSET`` symbol, the operators' outputs new), so
    the checker's second opinion covers operators too."""
    import time

    from ..errors import ModelError
    from ..digits.cnn import CNNClassifier
    from ..models import get_model
    from ..training.cnn import TrainConfig, train_net
    from .glyphs import GlyphBank
    from .read import get_line_reader, primary

    reader = primary(reader or get_line_reader("line_reader"))  # slices are cut where the CRNN checker cuts them
    base = base or get_model()
    if not isinstance(base, CNNClassifier) or len(base.nets) != 1:
        raise ModelError("the base model of a slice CNN must be a single-net CNN")
    chars = CRNN_CHARSET if symbols else DIGITS
    rng = np.random.default_rng(seed)
    X, y = line_slices(GlyphBank.load("train", data_dir, seed=seed, styles=styles, max_per_digit=max_per_digit),
                       lines, reader, rng, photo, progress=progress, desc="training slices", chars=chars)
    Xv, yv = line_slices(GlyphBank.load("val", data_dir, seed=seed, max_per_digit=max_per_digit), val_lines, reader,
                         np.random.default_rng(seed + 1), photo, progress=progress, desc="validation slices", chars=chars)
    digit = yv < 10  # the base CNN knows only the digits
    before = float((base.predict_proba(Xv[digit]).argmax(1) == yv[digit]).mean())
    cfg = TrainConfig(width=base.params["width"], epochs=epochs, batch_size=128, lr=lr, augment="light",
                      label_smoothing=base.params.get("label_smoothing", 0.1), seed=seed, warmup=0.1,
                      stem=base.params.get("stem", "pool"), num_classes=len(chars))
    t0 = time.perf_counter()
    net, history = train_net(X, y, cfg, Xv, yv, progress=progress, desc="slice cnn",
                             init=_grown_head(base.nets[0].state_dict(), len(chars)))
    model = CNNClassifier(**dict(base.params, inference="fp32", epochs=epochs, lr=lr, seed=seed, augment="light",
                                 num_classes=len(chars)))
    model.set_nets([net])
    pred = model.predict_proba(Xv).argmax(1)
    after = float((pred[digit] == yv[digit]).mean())
    model.metadata.update({
        "history": history, "fit_seconds": round(time.perf_counter() - t0, 1), "train_size": int(len(X)),
        "val_size": int(len(Xv)), "val_slice_accuracy": after, "base_val_slice_accuracy": before,
        "classes": chars,
        "slices": {"lines": lines, "val_lines": val_lines, "photo": photo, "styles": styles, "seed": seed},
        "data": f"slices of the symbols {chars} of synthetic lines (reader.linegen) from the training glyphs "
                "(MNIST train less its 5k validation digits, optdigits tra, MDAS train), cut by the line reader's "
                "alignment of the true text; fine-tuned from the shipped CNN; validated on slices of "
                "validation-glyph lines (val_slice_accuracy: their digits)",
    })
    if symbols:
        model.metadata["val_operator_accuracy"] = float((pred[~digit] == yv[~digit]).mean()) if (~digit).any() else None
    model.save(out)
    return model


def _grown_head(state: dict, classes: int) -> dict:
    """A copy of a digit CNN's weights with ``classes`` outputs: the digits' as they were, the new
    classes' small and random (their bias the digits' mean), so fine-tuning starts from the digit model."""
    import torch

    state = {k: v.clone() for k, v in state.items()}
    weight_key = [k for k in state if k.startswith("head.") and k.endswith(".weight")][-1]
    bias_key = weight_key[: -len("weight")] + "bias"
    w, b = state[weight_key], state[bias_key]
    if classes > w.shape[0]:
        extra = classes - w.shape[0]
        gen = torch.Generator().manual_seed(0)
        state[weight_key] = torch.cat([w, torch.randn(extra, w.shape[1], generator=gen) * w.std() * 0.1])
        state[bias_key] = torch.cat([b, b.mean().repeat(extra)])
    return state
