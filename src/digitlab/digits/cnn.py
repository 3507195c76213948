"""The compact CNN (PyTorch) behind the shared estimator interface."""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from ..errors import ModelError
from ..models.base import DigitModel, check_images, register
from .net import DigitNet, to_tensor  # noqa: F401 (the network, kept apart so that training needs no classifier)


def fused_for_inference(net: DigitNet) -> DigitNet:
    """A copy with each BatchNorm folded into its convolution: same outputs, ~2x faster on CPU."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(net).eval()
    for block in fused.features:
        if isinstance(block, nn.Sequential):
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = nn.Identity()
    return fused.to(memory_format=torch.channels_last)


class _Int8(nn.Module):
    """A float net between quantize / dequantize stubs (PyTorch eager-mode quantization)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant, self.net, self.dequant = QuantStub(), net, DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.net(self.quant(x)))


def quantized_for_inference(net: DigitNet, ranges: dict[str, list[float]] | None = None,
                            X: np.ndarray | None = None) -> tuple[nn.Module, dict[str, list[float]]]:
    """An int8 copy of ``net`` (PyTorch post-training static quantization, fbgemm kernels), and its ranges.

    Each conv, its batch norm and ReLU are fused into one int8 op. The activation ranges (min/max,
    a few floats per layer, kept in the model file) are measured on calibration digits ``X`` or
    given (``ranges``, as returned before), so a saved model is rebuilt with no data. About 1.3x the
    float net's throughput on a 2-core AVX2 CPU, same MNIST / windep accuracy.
    """
    import copy
    import warnings

    from torch.ao.quantization import QConfig, convert, fuse_modules, prepare
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    if (ranges is None) == (X is None):
        raise ValueError("give either calibration digits X or the ranges measured on them")
    f = copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format)
    for block in f.features:
        if isinstance(block, nn.Sequential):
            fuse_modules(block, [["0", "1", "2"]], inplace=True)
    q = _Int8(f).eval()
    q.qconfig = QConfig(activation=MinMaxObserver.with_args(reduce_range=True),  # 7 bits: no overflow on AVX2
                        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    with warnings.catch_warnings():  # torch 2.13 points these users at torchao; the API works as pinned
        warnings.simplefilter("ignore")
        prepare(q, inplace=True)
        observers = {n: m for n, m in q.named_modules() if n.endswith("activation_post_process")}
        with torch.inference_mode():
            if X is not None:
                for i in range(0, len(X), 256):
                    q(to_tensor(X[i : i + 256]))
                ranges = {n: [float(m.min_val), float(m.max_val)] for n, m in observers.items()}
            else:
                if set(ranges) != set(observers):
                    raise ModelError("the model file's int8 ranges do not match its network; run `digitlab quantize` again")
                for n, m in observers.items():
                    m.min_val, m.max_val = (torch.tensor(v, dtype=torch.float32) for v in ranges[n])
        convert(q, inplace=True)
    return q, ranges


_BUILD_LOCK = threading.RLock()


@register
class CNNClassifier(DigitModel):
    """Convolutional network trained with augmentation; ``ensemble`` > 1 averages several nets.

    ``inference="int8"`` runs the nets quantized to 8 bits (see ``quantize``); the float nets stay
    in the file and serve training, export and the network views.
    """

    name: ClassVar[str] = "cnn"
    description: ClassVar[str] = "compact CNN (PyTorch), batch norm, one-cycle, augmentation"

    def __init__(self, width: int = 32, epochs: float = 6, batch_size: int = 128, lr: float = 3e-3,
                 augment: str = "full", label_smoothing: float = 0.1, seed: int = 0,
                 time_budget: float | None = None, ensemble: int = 1, tta: bool = False,
                 device: str = "auto", val_size: int = 5000, num_classes: int = 10, precision: str = "fp32",
                 stem: str = "pool", inference: str = "fp32") -> None:
        if inference not in ("fp32", "int8"):
            raise ValueError(f"inference must be 'fp32' or 'int8', not {inference!r}")
        super().__init__(width=width, epochs=epochs, batch_size=batch_size, lr=lr, augment=augment,
                         label_smoothing=label_smoothing, seed=seed, time_budget=time_budget,
                         ensemble=ensemble, tta=tta, device=device, val_size=val_size, num_classes=num_classes,
                         precision=precision, stem=stem, inference=inference)
        self.nets: list[DigitNet] = []

    def _fit(self, X, y, X_val=None, y_val=None, checkpoint=None, resume=False, progress=True, **kw) -> None:
        from ..training.cnn import TrainConfig, train_net

        p = self.params
        self._forget_int8()
        self.nets, histories = [], []
        for member in range(p["ensemble"]):
            cfg = TrainConfig(width=p["width"], epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                              augment=p["augment"], label_smoothing=p["label_smoothing"], seed=p["seed"] + member,
                              time_budget=p["time_budget"], device=p["device"], num_classes=p["num_classes"],
                              precision=p.get("precision", "fp32"), stem=p.get("stem", "pool"))
            ckpt = None if checkpoint is None else f"{checkpoint}.m{member}" if p["ensemble"] > 1 else checkpoint
            net, hist = train_net(X, y, cfg, X_val, y_val, checkpoint=ckpt, resume=resume, progress=progress,
                                  desc=f"cnn {member + 1}/{p['ensemble']}" if p["ensemble"] > 1 else "cnn")
            self.nets.append(net.cpu().to(memory_format=torch.channels_last).eval())
            histories.append(hist)
        self.metadata["history"] = histories

    @property
    def _fused_nets(self) -> list[DigitNet]:
        """The float nets with batch norm folded in (what embeddings and profiles build on)."""
        with _BUILD_LOCK:  # the web app's threads may all ask at once
            if getattr(self, "_fused_for", None) is not self.nets:
                self._fused, self._quantized = [fused_for_inference(n) for n in self.nets], None
                self._fused_for = self.nets
            return self._fused

    @property
    def _infer_nets(self) -> list[nn.Module]:
        """What ``predict_proba`` runs: the fused float nets, or their int8 versions."""
        fused = self._fused_nets
        if self.params.get("inference", "fp32") != "int8":
            return fused
        with _BUILD_LOCK:
            if self._quantized is None:
                ranges = self.metadata.get("int8_ranges")
                if not isinstance(ranges, list) or len(ranges) != len(self.nets):
                    raise ModelError("this int8 model has no activation ranges; run `digitlab quantize` on it")
                self._quantized = [quantized_for_inference(n, r)[0] for n, r in zip(self.nets, ranges)]
            return self._quantized

    def quantize(self, X) -> "CNNClassifier":
        """Measure int8 activation ranges on calibration digits ``X`` (never test digits) and infer in int8."""
        self._check_fitted()
        X = check_images(X)
        self.metadata["int8_ranges"] = [quantized_for_inference(n, X=X)[1] for n in self.nets]
        self.params["inference"] = "int8"
        self._quantized = None  # rebuilt from the new ranges on next use
        return self

    def _forget_int8(self) -> None:
        """New weights: int8 ranges measured on the old ones would not fit them."""
        self.params["inference"] = "fp32"
        self.metadata.pop("int8_ranges", None)

    @torch.inference_mode()
    def _average_probabilities(self, X: np.ndarray, batch: int = 256) -> np.ndarray:
        # Batches of 256 keep the activations in cache: faster on CPU than one huge batch (on the
        # 2-core EPYC: 4,400-5,200 digits/s against 3,500-3,900 with 512, in interleaved runs).
        nets = self._infer_nets
        int8 = self.params.get("inference", "fp32") == "int8"
        out = []
        for i in range(0, len(X), batch):
            x = to_tensor(X[i : i + batch])
            if not int8:  # the int8 kernels take plain layout
                x = x.contiguous(memory_format=torch.channels_last)
            probs = torch.stack([F.softmax(net(x), 1) for net in nets])
            if self.params.get("tta"):
                for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    xs = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
                    probs = torch.cat([probs, torch.stack([F.softmax(net(xs), 1) for net in nets])])
            out.append(probs.mean(0))
        return torch.cat(out).numpy()

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._average_probabilities(X).astype(np.float64)

    def _payload(self) -> bytes:
        tensors = {f"m{i}.{k}": v.detach().cpu().contiguous() for i, net in enumerate(self.nets)
                   for k, v in net.state_dict().items()}
        return st_save(tensors, metadata={"members": str(len(self.nets)), "width": str(self.params["width"])})

    def _restore(self, payload: bytes) -> None:
        tensors = st_load(payload)
        members = sorted({k.split(".", 1)[0] for k in tensors}, key=lambda m: (len(m), m))  # m2 before m10
        if not members:
            raise ModelError("model file holds no weights")
        self.nets = []
        for m in members:
            state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(m + ".")}
            # Each member's width comes from its own first conv, so an ensemble may mix widths.
            first = state.get("features.0.0.weight")
            width = int(first.shape[0]) if first is not None else self.params["width"]
            net = DigitNet(width=width, num_classes=self.params.get("num_classes", 10),
                           stem=self.params.get("stem", "pool"))
            net.load_state_dict(state, strict=True)
            self.nets.append(net.to(memory_format=torch.channels_last).eval())

    def set_nets(self, nets: list[nn.Module]) -> "CNNClassifier":
        self.nets = [n.cpu().to(memory_format=torch.channels_last).eval() for n in nets]
        self._forget_int8()
        self.fitted_ = True
        return self

    @property
    def net(self) -> DigitNet:
        self._check_fitted()
        return self.nets[0]
