"""A handwriting profile: the base CNN, corrected by labelled examples of one class's (or pupil's) writing.

Two corrections, both in the CNN's penultimate embedding (the flattened ``features`` output that the
final ``Linear`` reads), so adapting never trains a convolution and takes seconds:

1. **head** (optional): the final ``Linear`` fine-tuned on the examples mixed with MNIST replay,
   pulled towards the shipped weights by an L2 penalty; the rest of the network is frozen.
2. **prototypes**: the examples' embeddings. A digit whose embedding is close (cosine, after
   centring on MNIST's mean embedding) to a taught example gets the nearest examples' vote mixed
   into the probabilities; the weight of that vote rises with the similarity, so digits unlike any
   example (MNIST's writers) keep the base model's answer.

``p = (1 - g) * p_head + g * p_knn`` with ``g = alpha * clip((s_max - tau) / (1 - tau), 0, 1)`` and
``p_knn = softmax(s_c / temperature)`` over the best similarity ``s_c`` of each taught digit.

The file holds the base model's path and the SHA-256 of its payload (checked on load), the examples'
28x28 images (so a profile can be rebuilt) and the tensors, as safetensors: no pickle anywhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import ModelError
from .base import DigitModel, check_images, register

DEFAULTS = {"alpha": 0.9, "tau": 0.6, "temperature": 0.05, "augment": 4, "head_steps": 0, "head_l2": 1.0,
            "replay": 2000, "example_weight": 4.0}


def _base_sha(path) -> str:
    from .base import read_header

    return read_header(path)[0]["sha256"]


@torch.inference_mode()
def embed(base, X: np.ndarray, batch: int = 512) -> np.ndarray:
    """Penultimate embeddings (N, D) of images (N,28,28) float in [0,1] by the base CNN's first member."""
    from .cnn import to_tensor

    net = base._infer_nets[0]
    out = []
    for i in range(0, len(X), batch):
        x = to_tensor(X[i : i + batch]).contiguous(memory_format=torch.channels_last)
        out.append(torch.flatten(net.features(x), 1))
    return torch.cat(out).numpy().astype(np.float32)


def augment_images(X: np.ndarray, copies: int, seed: int = 0) -> np.ndarray:
    """``copies`` small random affine jitters (rotation, scale, shear, shift) of each image, originals first."""
    import cv2

    if copies <= 0 or len(X) == 0:
        return X
    rng = np.random.default_rng(seed)
    out = [X]
    for _ in range(copies):
        batch = np.empty_like(X)
        for i, img in enumerate(X):
            ang = rng.uniform(-10, 10)
            sc = rng.uniform(0.9, 1.1)
            M = cv2.getRotationMatrix2D((14, 14), ang, sc)
            M[0, 1] += rng.uniform(-0.15, 0.15)
            M[:, 2] += rng.uniform(-1.5, 1.5, size=2)
            batch[i] = cv2.warpAffine(img, M, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
        out.append(np.clip(batch, 0, 1))
    return np.concatenate(out)


def fit_head(weight: torch.Tensor, bias: torch.Tensor, E_ex: np.ndarray, y_ex: np.ndarray,
             E_rep: np.ndarray | None, y_rep: np.ndarray | None, steps: int, l2: float,
             example_weight: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fine-tune the final Linear on fixed embeddings: examples + replay, L2 towards the base weights."""
    torch.manual_seed(seed)
    W0, b0 = weight.detach().clone().float(), bias.detach().clone().float()
    W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    Xe, ye = torch.as_tensor(E_ex), torch.as_tensor(y_ex, dtype=torch.long)
    opt = torch.optim.Adam([W, b], lr=1e-3)
    scale = 1.0 / max(1, W0.numel())
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = example_weight * F.cross_entropy(Xe @ W.T + b, ye)
            if E_rep is not None and len(E_rep):
                loss = loss + F.cross_entropy(torch.as_tensor(E_rep) @ W.T + b, torch.as_tensor(y_rep, dtype=torch.long))
            loss = loss + l2 * scale * ((W - W0).pow(2).sum() + (b - b0).pow(2).sum()) * 1e3
            loss.backward()
            opt.step()
    return W.detach(), b.detach()


def class_similarity(Z: np.ndarray, proto: np.ndarray, proto_labels: np.ndarray) -> np.ndarray:
    """(N, 10): each digit's best cosine similarity to the taught examples (-inf for untaught digits)."""
    S = Z @ proto.T
    s_c = np.full((len(Z), 10), -np.inf, np.float32)
    for d in np.unique(proto_labels):
        s_c[:, d] = S[:, proto_labels == d].max(1)
    return s_c


def mix(p_head: np.ndarray, s_c: np.ndarray, alpha: float, tau: float, temperature: float) -> np.ndarray:
    """``(1 - g) p_head + g softmax(s_c / temperature)``, ``g = alpha * clip((s_max - tau) / (1 - tau), 0, 1)``."""
    s_max = s_c.max(1)
    p_knn = np.exp((s_c - s_max[:, None]) / temperature)
    p_knn /= p_knn.sum(1, keepdims=True)
    g = alpha * np.clip((s_max - tau) / max(1e-6, 1 - tau), 0, 1)
    return (1 - g)[:, None] * p_head + g[:, None] * p_knn


def knn_mix(p_head: np.ndarray, Z: np.ndarray, proto: np.ndarray, proto_labels: np.ndarray, alpha: float,
            tau: float, temperature: float) -> np.ndarray:
    """The prototypes' vote mixed into ``p_head``, weighted by how close the nearest example is.

    ``Z``: centred unit embeddings (N, D); ``proto``: the same for the examples (M, D).
    """
    if len(proto) == 0 or alpha <= 0:
        return p_head
    return mix(p_head, class_similarity(Z, proto, proto_labels), alpha, tau, temperature)


def head_proba(E: np.ndarray, head) -> np.ndarray:
    W, b = head
    with torch.inference_mode():
        return F.softmax(torch.as_tensor(E) @ W.T + b, 1).numpy().astype(np.float64)


@register
class ProfileModel(DigitModel):
    """The base CNN plus a handwriting profile (see the module docstring); built by ``digitlab adapt``."""

    name: ClassVar[str] = "profile"
    description: ClassVar[str] = "base CNN adapted to one class's handwriting (digitlab adapt)"

    def __init__(self, base: str = "default", alpha: float = DEFAULTS["alpha"], tau: float = DEFAULTS["tau"],
                 temperature: float = DEFAULTS["temperature"], augment: int = DEFAULTS["augment"],
                 head_steps: int = DEFAULTS["head_steps"], head_l2: float = DEFAULTS["head_l2"],
                 replay: int = DEFAULTS["replay"], example_weight: float = DEFAULTS["example_weight"],
                 seed: int = 0) -> None:
        super().__init__(base=str(base), alpha=alpha, tau=tau, temperature=temperature, augment=augment,
                         head_steps=head_steps, head_l2=head_l2, replay=replay, example_weight=example_weight,
                         seed=seed)
        self.base_model = None
        self.images = np.zeros((0, 28, 28), np.uint8)  # the examples as taught (MNIST polarity)
        self.labels = np.zeros(0, np.int64)
        self.proto = np.zeros((0, 0), np.float32)  # centred, unit-norm embeddings (examples + jitters)
        self.proto_labels = np.zeros(0, np.int64)
        self.center = None
        self.head: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- the base model -----------------------------------------------------------------------------
    def base_path(self) -> Path:
        from ..recognize import model_path

        return model_path(self.params["base"])

    def _load_base(self) -> None:
        from ..recognize import get_model
        from .cnn import CNNClassifier

        path = self.base_path()
        base = get_model(path)
        if not isinstance(base, CNNClassifier):
            raise ModelError(f"a profile needs a CNN base model, {path} holds a {base.name} model")
        self.base_model = base

    def _check_base(self) -> None:
        want = self.metadata.get("base_sha256")
        path = self.base_path()
        if want and _base_sha(path) != want:
            raise ModelError(f"profile {self.metadata.get('profile', '?')!r} was built on another version of "
                             f"{path}; rebuild it with `digitlab adapt --profile {self.metadata.get('profile', 'NAME')}`")

    # -- fitting: X, y are the examples ------------------------------------------------------------------
    def _fit(self, X: np.ndarray, y: np.ndarray, replay=None, replay_embedded=None, **kw) -> None:
        """Build from examples ``X`` (N,28,28) in [0,1] and labels ``y``.

        ``replay``: (images, labels) of MNIST training digits, for the head's replay and for centring
        the embeddings; ``replay_embedded``: the same already embedded, (E, labels) (benchmarks).
        """
        if len(X) > 20000:
            raise ModelError("a profile is built from a few labelled examples (at most 20000), not a data set")
        if y.min() < 0 or y.max() > 9:
            raise ModelError("profile labels are digits 0..9")
        self._load_base()
        self.images = np.round(X * 255).astype(np.uint8)
        self.labels = y.astype(np.int64)
        self.metadata["base_sha256"] = _base_sha(self.base_path())
        self.metadata["counts"] = {str(d): int((y == d).sum()) for d in range(10)}
        self.metadata["examples"] = int(len(y))
        if replay_embedded is None and replay is not None and len(replay[0]):
            n = max(1000, int(self.params["replay"]))
            replay_embedded = embed(self.base_model, check_images(replay[0][:n])), np.asarray(replay[1][:n])
        self._build(replay_embedded)

    def _build(self, replay_embedded=None) -> None:
        p = self.params
        X = self.images.astype(np.float32) / 255
        Xa = augment_images(X, int(p["augment"]), seed=int(p["seed"]))
        ya = np.tile(self.labels, len(Xa) // max(1, len(X)))
        E = embed(self.base_model, Xa)
        E_rep, y_rep = replay_embedded if replay_embedded is not None else (None, None)
        # Centred on MNIST's mean embedding, cosine similarity tells writers apart better; without
        # MNIST at hand (offline, no cache) the raw embeddings are used.
        self.center = E_rep.mean(0).astype(np.float32) if E_rep is not None else np.zeros(E.shape[1], np.float32)
        self.proto = self._normalise(E)
        self.proto_labels = ya
        self.head = None
        if int(p["head_steps"]) > 0:
            lin = self.base_model.nets[0].head[-1]
            n = int(p["replay"])
            self.head = fit_head(lin.weight, lin.bias, E, ya, None if E_rep is None or n <= 0 else E_rep[:n],
                                 None if y_rep is None else y_rep[:n], int(p["head_steps"]), float(p["head_l2"]),
                                 float(p["example_weight"]), seed=int(p["seed"]))

    def _normalise(self, E: np.ndarray) -> np.ndarray:
        Z = E - self.center
        return (Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-8)).astype(np.float32)

    # -- predicting ------------------------------------------------------------------------------------
    def embeddings(self, X: np.ndarray) -> np.ndarray:
        return embed(self.base_model, X)

    def _head_proba(self, X: np.ndarray, E: np.ndarray) -> np.ndarray:
        base = self.base_model
        if self.head is None:
            return base.predict_proba(X)
        p0 = head_proba(E, self.head)
        if len(base.nets) == 1:
            return p0
        # an ensemble: the adapted first member averaged with the others as they are
        lin = base.nets[0].head[-1]
        with torch.inference_mode():
            p0_orig = F.softmax(torch.as_tensor(E) @ lin.weight.T + lin.bias, 1).numpy().astype(np.float64)
        n = len(base.nets)
        return (base.predict_proba(X) * n - p0_orig + p0) / n

    def combine(self, p_head: np.ndarray, E: np.ndarray) -> np.ndarray:
        """Mix the head's probabilities with the prototypes' vote, gated by similarity."""
        p = self.params
        return knn_mix(p_head, self._normalise(E), self.proto, self.proto_labels, float(p["alpha"]), float(p["tau"]),
                       float(p["temperature"]))

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        E = self.embeddings(X)
        return self.combine(self._head_proba(X, E), E)

    # -- file format -----------------------------------------------------------------------------------
    def _payload(self) -> bytes:
        t = {"images": torch.as_tensor(self.images), "labels": torch.as_tensor(self.labels),
             "proto": torch.as_tensor(self.proto).to(torch.float16), "proto_labels": torch.as_tensor(self.proto_labels),
             "center": torch.as_tensor(self.center if self.center is not None else np.zeros(0, np.float32))}
        if self.head is not None:
            t["head.weight"], t["head.bias"] = self.head[0].contiguous(), self.head[1].contiguous()
        return st_save({k: v.contiguous() for k, v in t.items()}, metadata={"kind": "profile"})

    def _restore(self, payload: bytes) -> None:
        t = st_load(payload)
        try:
            self.images, self.labels = t["images"].numpy(), t["labels"].numpy()
            self.proto = t["proto"].float().numpy()
            self.proto_labels = t["proto_labels"].numpy()
            self.center = t["center"].numpy()
        except KeyError as exc:
            raise ModelError(f"profile file lacks {exc}") from None
        self.head = (t["head.weight"], t["head.bias"]) if "head.weight" in t else None
        self._check_base()
        self._load_base()
