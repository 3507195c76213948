"""Inside the CNN: layer table, first-layer filters, feature maps, saliency and Grad-CAM.

``network_data`` returns plain JSON-ready data (used by the web page); ``save_figures`` draws the
same data as PNGs with matplotlib (used by ``digitlab visualize``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelError
from .cnn import CNNClassifier, to_tensor


def _norm(a: np.ndarray) -> np.ndarray:
    a = a - a.min()
    return a / a.max() if a.max() > 0 else a


def _net(model):
    if not isinstance(model, CNNClassifier):
        raise ModelError("the network view needs the CNN model")
    return model.net


def layer_table(model) -> list[dict]:
    """Every leaf layer with its output shape (for one 28x28 input) and parameter count."""
    net = _net(model)
    rows, hooks = [], []
    for name, mod in net.named_modules():
        if len(list(mod.children())) == 0:
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: rows.append({"name": name, "type": type(m).__name__,
                                                        "shape": list(o.shape[1:]),
                                                        "params": sum(p.numel() for p in m.parameters())})))
    with torch.inference_mode():
        net(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return rows


def network_data(model, image: np.ndarray, max_maps: int = 16) -> dict:
    """Feature maps of every conv block, saliency, Grad-CAM and probabilities for one 28x28 image."""
    net = _net(model)
    x = to_tensor(image[None]).requires_grad_(True)
    acts: list[tuple[str, torch.Tensor]] = []
    hooks = [mod.register_forward_hook(lambda m, i, o, name=name: acts.append((name, o)))
             for name, mod in net.features.named_children() if isinstance(mod, torch.nn.Sequential)]
    logits = net(x)
    for h in hooks:
        h.remove()
    probs = F.softmax(logits, 1)[0]
    digit = int(probs.argmax())
    last = acts[-1][1]
    last.retain_grad()
    logits[0, digit].backward()
    saliency = x.grad[0, 0].abs().numpy()
    # Grad-CAM on the last conv block: channels weighted by their mean gradient.
    weights = last.grad[0].mean(dim=(1, 2), keepdim=True)
    cam = F.relu((weights * last[0]).sum(0)).detach()
    cam = F.interpolate(cam[None, None], size=(28, 28), mode="bilinear", align_corners=False)[0, 0].numpy()
    layers = layer_table(model)
    for name, act in acts:
        a = act[0].detach().numpy()
        strongest = np.argsort(-a.reshape(len(a), -1).mean(1))[:max_maps]
        layers.append({"name": f"block {name}", "type": "conv block output", "shape": list(a.shape), "params": 0,
                       "maps": [np.round(_norm(a[c]), 3).tolist() for c in strongest]})
    first = net.features[0][0].weight.detach().numpy()[:, 0]
    return {
        "prediction": {"digit": digit, "confidence": float(probs[digit].detach())},
        "probabilities": [float(p) for p in probs.detach()],
        "input": np.round(image, 3).tolist(),
        "saliency": np.round(_norm(saliency), 3).tolist(),
        "gradcam": np.round(_norm(cam), 3).tolist(),
        "filters": [np.round(_norm(f), 3).tolist() for f in first],
        "layers": layers,
        "total_params": sum(p.numel() for p in net.parameters()),
    }


def save_figures(model, image: np.ndarray, out_dir) -> list[Path]:
    """Write architecture, filters, feature maps, saliency/Grad-CAM and probabilities PNGs + JSON."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = network_data(model, image)
    paths = []

    rows = [r for r in data["layers"] if "maps" not in r]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1))
    ax.axis("off")
    ax.table(cellText=[[r["name"], r["type"], "x".join(map(str, r["shape"])), f"{r['params']:,}"] for r in rows],
             colLabels=["layer", "type", "output", "params"], loc="center", cellLoc="left").scale(1, 1.2)
    ax.set_title(f"DigitNet: {data['total_params']:,} parameters")
    paths.append(_save(fig, out / "architecture.png"))

    filters = np.array(data["filters"])
    n = len(filters)
    cols = 8
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(cols, (n + cols - 1) // cols))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            ax.imshow(filters[i], cmap="RdBu_r")
    fig.suptitle("first-layer filters")
    paths.append(_save(fig, out / "filters.png"))

    blocks = [r for r in data["layers"] if "maps" in r]
    fig, axes = plt.subplots(len(blocks), 8, figsize=(8, 1.1 * len(blocks)))
    for b, row in enumerate(blocks):
        for j in range(8):
            ax = axes[b, j]
            ax.axis("off")
            if j < len(row["maps"]):
                ax.imshow(row["maps"][j], cmap="viridis")
        axes[b, 0].set_title(f"{row['name']} {'x'.join(map(str, row['shape']))}", fontsize=7, loc="left")
    fig.suptitle("strongest feature maps per conv block")
    paths.append(_save(fig, out / "feature_maps.png"))

    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
    for ax, (title, arr, cmap) in zip(axes[:3], [("input", data["input"], "gray"), ("saliency", data["saliency"], "hot"),
                                                 ("Grad-CAM", data["gradcam"], "jet")]):
        ax.imshow(arr, cmap=cmap)
        ax.set_title(title)
        ax.axis("off")
    axes[3].bar(range(10), data["probabilities"], color="#2f6fdf")
    axes[3].set_xticks(range(10))
    axes[3].set_title(f"prediction {data['prediction']['digit']}")
    paths.append(_save(fig, out / "saliency.png"))

    (out / "network.json").write_text(json.dumps(data))
    paths.append(out / "network.json")
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
