"""Training the CRNN line reader (``digitlab train line-reader``): synthetic lines, CTC, validation.

Kept apart from ``crnn.py`` so the inference path never imports the calibration it ends with.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..digits.preprocess import NoDigitFound
from .crnn import LineReader, greedy, prepare_line
from .linenet import ctc_step

class _SyntheticLines(torch.utils.data.IterableDataset):
    """Endless batches of (prepared line, text) from the training glyphs, generated in a worker."""

    def __init__(self, data_dir, batch_size: int, seed: int, styles: float = 0.0, photo: float = 0.0,
                 warp: float = 0.0, kern: float = 0.0) -> None:
        self.data_dir, self.batch_size, self.seed, self.styles, self.photo = data_dir, batch_size, seed, styles, photo
        self.warp, self.kern = warp, kern

    def __iter__(self):
        from .glyphs import GlyphBank
        from .linegen import training_line

        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed * 1000 + (info.id if info else 0))
        bank = GlyphBank.load("train", self.data_dir, seed=self.seed, styles=self.styles)
        while True:
            pool = []
            while len(pool) < 4 * self.batch_size:
                ink, text = training_line(bank, rng, self.photo, self.warp, self.kern)
                try:
                    pool.append((prepare_line(ink), text))
                except NoDigitFound:
                    continue
            # Batches of similar widths: padding a short line to the longest costs as much as a long one.
            pool.sort(key=lambda lt: lt[0].shape[1])
            for i in rng.permutation(4):
                chunk = pool[i * self.batch_size : (i + 1) * self.batch_size]
                yield [l for l, _ in chunk], [t for _, t in chunk]


def validation_lines(data_dir=None, n: int = 400, seed: int = 123, photo: float = 0.0,
                     kern: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """Lines composed from the validation glyphs (writers the reader does not train on); ``photo`` of
    them degraded as in a phone photo (``linegen.photo_degrade``), ``kern`` spaced by ink."""
    from .glyphs import GlyphBank
    from .linegen import training_line

    bank = GlyphBank.load("val", data_dir, seed=seed)
    rng = np.random.default_rng(seed)
    lines, texts = [], []
    while len(lines) < n:
        ink, text = training_line(bank, rng, photo, kern=kern)
        try:
            lines.append(prepare_line(ink))
            texts.append(text)
        except NoDigitFound:
            continue
    return lines, texts


def train_line_reader(out=None, seconds: float = 1200, batch_size: int = 32, lr: float = 2e-3, width: int = 24,
                      seed: int = 0, data_dir=None, progress: bool = True, checkpoint=None,
                      eval_every: int = 200, init=None, styles: float = 0.0, photo: float = 0.0,
                      warp: float = 0.0, kern: float = 0.0) -> LineReader:
    """Train the CRNN on endless synthetic lines for a time budget (cosine schedule on the clock).

    The best model on validation lines (validation glyphs) is kept and written to ``out``; ``init``
    (a line-reader file) continues from its weights with a fresh schedule (a warm restart);
    ``styles`` adds stylised 1s, 4s, 7s and 9s to the training glyphs (``GlyphBank.load``); ``photo`` is
    the share of training lines degraded as in a phone photo (``linegen.photo_degrade``), and the
    validation lines that choose the best model carry the same share; ``warp`` is the share of
    training digits distorted (rotated, sheared, elastic: ``linegen.distort``), never validation ones;
    ``kern`` the share of lines spaced by their ink (``linegen.render_tokens``), validation lines too.
    """
    from tqdm import tqdm

    torch.manual_seed(seed)
    model = LineReader.load(init) if init else LineReader(width=width, seed=seed)
    for key in ("ensemble", "verdict_thresholds", "role"):  # the new reader's own: it is calibrated alone below
        model.metadata.pop(key, None)
    model.params["seed"] = seed
    model.drop_export()
    net = model.net
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    val_x, val_y = validation_lines(data_dir, photo=photo, kern=kern)
    loader = torch.utils.data.DataLoader(_SyntheticLines(data_dir, batch_size, seed, styles, photo, warp, kern), batch_size=None,
                                         num_workers=1, prefetch_factor=4, persistent_workers=True)
    start = time.perf_counter()
    best, step, history = -1.0, 0, []

    def describe(acc: float) -> None:  # what a saved model says about how it was trained
        model.metadata.update({"val_line_accuracy": acc, "steps": step, "history": history, "styles": styles,
                               "photo": photo, "warp": warp, "kern": kern, "init": str(init) if init else None,
                               "data": "MNIST train (less its 5k validation digits), optdigits tra, "
                                       "MDAS operators train; validated on MNIST's 5k, optdigits cv, MDAS val"})

    bar = tqdm(total=int(seconds), unit="s", desc="line-reader", disable=not progress)
    for lines, texts in loader:
        frac = (time.perf_counter() - start) / seconds
        if frac >= 1:
            break
        warm = min(1.0, frac / 0.03)
        for g in opt.param_groups:
            g["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        loss = ctc_step(net, opt, lines, texts)
        step += 1
        bar.n = int(min(seconds, time.perf_counter() - start))
        bar.set_postfix(loss=f"{loss:.3f}", step=step, best=f"{max(best, 0):.3f}")
        if step % eval_every == 0:
            model.fitted_ = True
            acc = model_line_accuracy(model, val_x, val_y)
            history.append({"step": step, "seconds": round(time.perf_counter() - start, 1), "loss": loss,
                            "val_line_accuracy": acc})
            if acc >= best:  # a tie goes to the later model: the schedule has cooled it further
                best = acc
                describe(acc)
                if out:
                    model.save(out)
            if checkpoint:
                model.save(checkpoint)
    bar.close()
    model.fitted_ = True
    acc = model_line_accuracy(model, val_x, val_y)
    if out:  # the last model too: a few hundred validation lines cannot always tell it from the best
        describe(acc)
        model.save(Path(out).with_suffix(".last.dlm"))
    if acc >= best and out:
        model.save(out)
    if not out:
        return model
    best_model = LineReader.load(out)
    from ..arithmetic.calibrate import calibrate

    best_model.metadata["verdict_thresholds"] = calibrate(best_model, data_dir, progress=progress, photo=photo)
    best_model.save(out)
    return best_model


def model_line_accuracy(model: LineReader, lines: list[np.ndarray], texts: list[str]) -> float:
    got = [greedy(lp) for lp in model.frame_log_probs(lines)]
    return float(np.mean([a == b for a, b in zip(got, texts)]))
