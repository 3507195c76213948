"""Export to ONNX: the CNN (probabilities averaged over ensemble members, as in PyTorch), and a line
reader's CRNN as the twin it reads with (``reader.crnn.onnx_twin_name``).

The float nets are exported, also for a model that infers in int8 (``digitlab quantize``): ONNX
runtimes quantize with their own tools.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..datasets.mnist import MEAN, STD
from ..errors import ModelError
from ..io.files import atomic_write
from .cnn import CNNClassifier


class _Exported(torch.nn.Module):
    """Input: (N,1,28,28) float in [0,1]; output: (N,10) probabilities."""

    def __init__(self, nets) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x):
        x = (x - MEAN) / STD
        return torch.stack([torch.softmax(n(x), 1) for n in self.nets]).mean(0)


def export_onnx(model, out) -> Path:
    if not isinstance(model, CNNClassifier):
        raise ModelError("only the CNN can be exported to ONNX")
    wrapper = _Exported(model.nets).eval()
    buf = io.BytesIO()
    torch.onnx.export(wrapper, (torch.zeros(1, 1, 28, 28),), buf, input_names=["image"], output_names=["probabilities"],
                      dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    return atomic_write(out, buf.getvalue())


def export_line_reader(model, folder, name: str = "line_reader") -> Path:
    """Write the ONNX twin of a line reader loaded from a file (its frames of log-probabilities, any
    batch and width) into ``folder``, named after the weights' hash, where ``LineReader`` finds it."""
    from ..reader.crnn import LineReader, onnx_twin_name

    if not isinstance(model, LineReader) or not model.payload_sha256:
        raise ModelError("only a line reader loaded from its file can be exported as its ONNX twin")
    buf = io.BytesIO()
    torch.onnx.export(model.net.eval(), (torch.zeros(1, 1, 32, 64),), buf, input_names=["x"], output_names=["logp"],
                      dynamic_axes={"x": {0: "batch", 3: "width"}, "logp": {0: "batch", 1: "frames"}},
                      opset_version=17, dynamo=False)
    return atomic_write(Path(folder) / onnx_twin_name(name, model.payload_sha256), buf.getvalue())
