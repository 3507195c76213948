"""The CRNN line recogniser's network in PyTorch (``crnn.LineReader`` builds it when it needs it):
training steps, fine-tuning, reading without an ONNX twin, and the weights' file format."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from ..errors import ModelError
from . import CRNN_CHARSET
from .crnn_io import batch_array, encode


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LineNet(nn.Module):
    """32xW line -> (W/4) frames of log-probabilities over blank + CRNN_CHARSET."""

    def __init__(self, width: int = 32, hidden: int = 96, num_classes: int = len(CRNN_CHARSET) + 1) -> None:
        super().__init__()
        c = [width, 2 * width, 3 * width, 3 * width, 4 * width]
        self.cnn = nn.Sequential(
            _block(1, c[0]), nn.MaxPool2d(2),                            # 16 x W/2
            _block(c[0], c[1]), nn.MaxPool2d(2),                         # 8 x W/4
            _block(c[1], c[2]), _block(c[2], c[3]), nn.MaxPool2d((2, 1)),  # 4 x W/4
            _block(c[3], c[4]), nn.MaxPool2d((2, 1)),                    # 2 x W/4
        )
        self.proj = nn.Linear(2 * c[4], 128)
        self.rnn = nn.LSTM(128, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x)  # N, C, 2, T
        n, c, h, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(n, t, c * h)
        f, _ = self.rnn(F.relu(self.proj(f)))
        return F.log_softmax(self.out(f), dim=-1)  # N, T, K


def batch_tensor(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_array`` as tensors, for training."""
    x, lengths = batch_array(lines)
    return torch.from_numpy(x), torch.tensor(lengths, dtype=torch.long)


@torch.inference_mode()
def run(net: LineNet, x: np.ndarray) -> np.ndarray:
    """(N, T, K) frame log-probabilities of a ``batch_array`` input."""
    return net.eval()(torch.from_numpy(x)).numpy()


def load_weights(net: LineNet, payload: bytes) -> None:
    try:
        net.load_state_dict(st_load(payload), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"line-reader weights do not fit the network ({exc})") from None


def weights_bytes(net: LineNet) -> bytes:
    return st_save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})


def fine_tune(net: LineNet, prepared: list[np.ndarray], texts: list[str], epochs: int, lr: float, batch_size: int,
              seed: int) -> None:
    """A few epochs of CTC on labelled lines (``prepare_line``'d), in a seeded order."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(prepared))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            ctc_step(net, opt, [prepared[j] for j in idx], [texts[j] for j in idx])
    net.eval()


def ctc_step(net: LineNet, opt, lines: list[np.ndarray], texts: list[str]) -> float:
    net.train()
    x, lengths = batch_tensor(lines)
    targets = torch.tensor([k for t in texts for k in encode(t)], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
    logp = net(x).permute(1, 0, 2)  # T, N, K
    loss = F.ctc_loss(logp, targets, lengths, target_lengths, blank=0, zero_infinity=True)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return float(loss.detach())
