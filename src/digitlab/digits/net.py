"""The CNN's network (``DigitNet``) and its input (``to_tensor``): what ``digitlab.training.cnn`` trains and
``models.cnn.CNNClassifier`` wraps behind the estimator interface."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..datasets.mnist import MEAN, STD


def _block(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DigitNet(nn.Module):
    """Three conv blocks (28->14->7->3) and a linear head: about 15 M multiply-adds per digit at width 32.

    Sized for CPUs: the first layer is a single 5x5 conv on one channel (cheap), the costly
    layers run on 14x14 and 7x7 maps, and batch norm lets a short one-cycle schedule converge.
    """

    def __init__(self, width: int = 32, num_classes: int = 10, dropout: float = 0.25, stem: str = "pool") -> None:
        super().__init__()
        w = width
        if stem not in ("pool", "stride"):
            raise ValueError(f"stem must be 'pool' or 'stride', not {stem!r}")
        # "stride" convolves with stride 2 instead of pooling a full-resolution map: on a CPU, batch
        # norm, ReLU and pooling of the 28x28 maps take over half of each training step.
        first = [_block(1, w, 5), nn.MaxPool2d(2)] if stem == "pool" else [_block(1, w, 5, stride=2)]
        self.features = nn.Sequential(
            *first,                                      # 28 -> 14
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 -> 7
            _block(2 * w, 4 * w), nn.MaxPool2d(2),       # 7 -> 3
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w * 9, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_tensor(X: np.ndarray) -> torch.Tensor:
    """(N,28,28) float in [0,1] -> normalised (N,1,28,28) tensor."""
    t = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).unsqueeze(1)
    return (t - MEAN) / STD
