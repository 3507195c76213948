"""A handwriting profile: the base CNN, corrected by labelled examples of one class's (or pupil's) writing.

Corrections that take seconds on a CPU, chosen by measurement (``benchmarks/adapt.py``):

1. **fine-tuning** (optional; ``digitlab.training.adapt``): the final ``Linear`` (``head_steps``),
   and optionally the last conv block too (``block_steps``), trained on the examples mixed with
   MNIST replay and pulled towards the shipped weights by an L2 penalty; everything before is
   frozen, so its outputs are computed once.
2. **prototypes**: the examples' penultimate embeddings (the flattened ``features`` output that the
   final ``Linear`` reads). A digit whose embedding is close (cosine, after centring on MNIST's mean
   embedding) to a taught example gets the nearest examples' vote mixed into the probabilities; the
   weight of that vote rises with the similarity, so digits unlike any example (MNIST's writers)
   keep the network's answer.

``p = (1 - g) * p_net + g * p_knn`` with ``g = alpha * clip((s_max - tau) / (1 - tau), 0, 1)`` and
``p_knn = softmax(s_c / temperature)`` over the best similarity ``s_c`` of each taught digit.

The file holds the base model's path and the SHA-256 of its payload (checked on load), the examples'
28x28 images (so a profile can be rebuilt), the prototypes and the adapted weights, as safetensors:
no pickle anywhere.
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
from ..models.base import DigitModel, check_images, load_registered, read_header, register
from ..training.adapt import augment_images, fit_net

# Chosen on real pen digits with MNIST validation as the check (benchmarks/adapt.py --tune --tune-split pen_tra
# --skip anc block -> benchmarks/results/adapt_tune.json): pendigits' 30 training writers, drawn; the
# lowest error over 1-10 examples per digit among the settings that never cost MNIST validation more
# than 0.1 point. (optdigits cv no longer tells settings apart: the shipped CNN errs on 0.21% of it.)
DEFAULTS = {"alpha": 0.7, "tau": 0.2, "temperature": 0.1, "augment": 4, "head_steps": 0, "block_steps": 0,
            "head_l2": 1.0, "replay": 2000, "example_weight": 1.0, "lr": 1e-3, "anchors": 0, "guard_drop": 0.001}


def _load_cnn(path) -> DigitModel:
    """The CNN in ``path``, loaded without the registry (which imports this module)."""
    from .cnn import CNNClassifier

    header, payload = read_header(path)
    if header["model"] != CNNClassifier.name:
        raise ModelError(f"a profile needs a CNN base model, {path} holds a {header['model']} model")
    return load_registered(path, CNNClassifier, (header, payload))


def _base_sha(path) -> str:
    return read_header(path)[0]["sha256"]


@torch.inference_mode()
def embed(base, X: np.ndarray, batch: int = 512, net=None) -> np.ndarray:
    """Penultimate embeddings (N, D) of images (N,28,28) float in [0,1]: ``net``, else the base CNN's first member."""
    from .cnn import to_tensor

    net = net if net is not None else base._fused_nets[0]
    out = []
    for i in range(0, len(X), batch):
        x = to_tensor(X[i : i + batch]).contiguous(memory_format=torch.channels_last)
        out.append(torch.flatten(net.features(x), 1))
    return torch.cat(out).numpy().astype(np.float32)


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


@register
class ProfileModel(DigitModel):
    """The base CNN plus a handwriting profile (see the module docstring); built by ``digitlab adapt``."""

    name: ClassVar[str] = "profile"
    description: ClassVar[str] = "the CNN adapted to a class's handwriting (see `digitlab profiles`)"

    def __init__(self, base: str = "default", alpha: float = DEFAULTS["alpha"], tau: float = DEFAULTS["tau"],
                 temperature: float = DEFAULTS["temperature"], augment: int = DEFAULTS["augment"],
                 head_steps: int = DEFAULTS["head_steps"], block_steps: int = DEFAULTS["block_steps"],
                 head_l2: float = DEFAULTS["head_l2"], replay: int = DEFAULTS["replay"],
                 example_weight: float = DEFAULTS["example_weight"], lr: float = DEFAULTS["lr"],
                 anchors: int = DEFAULTS["anchors"], guard_drop: float = DEFAULTS["guard_drop"], seed: int = 0) -> None:
        super().__init__(base=str(base), alpha=alpha, tau=tau, temperature=temperature, augment=augment,
                         head_steps=head_steps, block_steps=block_steps, head_l2=head_l2, replay=replay,
                         example_weight=example_weight, lr=lr, anchors=anchors, guard_drop=guard_drop, seed=seed)
        self.base_model = None
        self.images = np.zeros((0, 28, 28), np.uint8)  # the examples as taught (MNIST polarity)
        self.labels = np.zeros(0, np.int64)
        self.proto = np.zeros((0, 0), np.float32)  # centred, unit-norm embeddings (examples + jitters)
        self.proto_labels = np.zeros(0, np.int64)
        self.center = None
        self.net = None  # the adapted copy of the base's first net (None: not fine-tuned)
        self.adapted: dict[str, torch.Tensor] = {}  # its tensors that differ from the base's

    # -- the base model -----------------------------------------------------------------------------
    def base_path(self) -> Path:
        from ..models.files import model_path

        return model_path(self.params["base"])

    def _load_base(self) -> None:
        from ..models.files import cached
        from .cnn import CNNClassifier

        path = self.base_path()
        base = cached(path, _load_cnn)  # the cache of `digitlab.models.get_model`, without the registry
        if not isinstance(base, CNNClassifier):
            raise ModelError(f"a profile needs a CNN base model, {path} holds a {base.name} model")
        self.base_model = base

    def _check_base(self) -> None:
        want = self.metadata.get("base_sha256")
        path = self.base_path()
        if want and _base_sha(path) != want:
            raise ModelError(f"profile {self.metadata.get('profile', '?')!r} was built on another version of "
                             f"{path}; rebuild it with `digitlab adapt --profile {self.metadata.get('profile', 'NAME')}`")

    @property
    def _infer_net(self):
        """The net that embeds (fused for inference): the adapted copy, else the base's first member."""
        if self.net is None:
            return self.base_model._fused_nets[0]
        if getattr(self, "_fused_for", None) is not self.net:
            from .cnn import fused_for_inference

            self._fused, self._fused_for = fused_for_inference(self.net), self.net
        return self._fused

    # -- fitting: X, y are the examples ------------------------------------------------------------------
    def _fit(self, X: np.ndarray, y: np.ndarray, replay=None, replay_embedded=None, guard=None, guard_cache=None,
             **kw) -> None:
        """Build from examples ``X`` (N,28,28) in [0,1] and labels ``y``.

        ``replay``: (images, labels) of MNIST training digits, for fine-tuning's replay and for
        centring the embeddings; ``replay_embedded``: (E, labels), the same already embedded by the
        base (benchmarks; enough unless ``block_steps``). ``guard``: (images, labels) of MNIST digits
        the base never trained on: the profile is weakened until it costs them at most
        ``guard_drop`` (see :meth:`_guard`); ``guard_cache``: (E, base probabilities, labels) of them.
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
        n = max(1000, int(self.params["replay"]))
        rep = None
        if replay is not None and len(replay[0]):
            rep = check_images(replay[0][:n]), np.asarray(replay[1][:n])
            if replay_embedded is None:
                replay_embedded = embed(self.base_model, rep[0]), rep[1]
        self._build(rep, replay_embedded)
        if guard_cache is None and guard is not None and len(guard[0]):
            gx = check_images(guard[0])
            E_g = embed(self.base_model, gx)
            if len(self.base_model.nets) == 1 and not self.base_model.params.get("tta"):
                with torch.inference_mode():  # the base's probabilities from the same pass
                    P_g = F.softmax(self.base_model.nets[0].head(torch.as_tensor(E_g)), 1).numpy().astype(np.float64)
            else:
                P_g = self.base_model.predict_proba(gx)
            guard_cache = E_g, P_g, np.asarray(guard[1]), gx
        if guard_cache is not None:
            self._guard(*guard_cache)

    def _guard(self, E_g: np.ndarray, P_g: np.ndarray, y_g: np.ndarray, X_g=None) -> None:
        """Never worse on MNIST: weaken the profile until MNIST digits it was not built on lose at most
        ``guard_drop`` accuracy. First the fine-tuning is shrunk towards the base weights (x1, 1/2,
        1/4, 0), then the prototypes' threshold ``tau`` is raised."""
        p = self.params
        base_acc = float((P_g.argmax(1) == y_g).mean())
        floor = base_acc - float(p["guard_drop"])
        tuned = dict(self.adapted)
        ref = self.base_model.nets[0].state_dict()
        deep = any(k.startswith("features") for k in tuned)

        def accuracy() -> float:
            E = self.embeddings(X_g) if deep and X_g is not None else E_g
            return float((self.combine(self.net_proba(E, base_proba=P_g), E).argmax(1) == y_g).mean())

        steps = []
        for lam in (1.0, 0.5, 0.25, 0.0) if tuned else (0.0,):
            if tuned and lam < 1.0:
                state = self.net.state_dict()
                state.update({k: ref[k] + lam * (v - ref[k]) for k, v in tuned.items()})
                self.net.load_state_dict(state)
                self.adapted = {k: state[k].detach().clone().contiguous() for k in tuned}
                self._fused_for = None
                if lam == 0.0:
                    self.net, self.adapted = None, {}
            acc = accuracy()
            steps.append({"fine_tuning": lam, "tau": p["tau"], "mnist_accuracy": round(acc, 5)})
            if acc >= floor:
                break
        while steps[-1]["mnist_accuracy"] < floor and p["tau"] < 0.95:
            p["tau"] = round(min(0.95, float(p["tau"]) + 0.1), 3)
            steps.append({"fine_tuning": 0.0, "tau": p["tau"], "mnist_accuracy": round(accuracy(), 5)})
        if steps[-1]["mnist_accuracy"] < floor:
            p["alpha"] = 0.0  # prototypes off too: the base model itself
        self.metadata["guard"] = {"n": int(len(y_g)), "base_accuracy": round(base_acc, 5), "steps": steps}

    def _build(self, replay=None, replay_embedded=None) -> None:
        p = self.params
        X = self.images.astype(np.float32) / 255
        Xa = augment_images(X, int(p["augment"]), seed=int(p["seed"]))
        ya = np.tile(self.labels, len(Xa) // max(1, len(X)))
        E_rep, y_rep = replay_embedded if replay_embedded is not None else (None, None)
        # Centred on MNIST's mean embedding, cosine similarity tells writers apart better; without
        # MNIST at hand (offline, no cache) the raw embeddings are used.
        self.center = E_rep.mean(0).astype(np.float32) if E_rep is not None else None
        self.net, self.adapted = None, {}
        head_steps, block_steps = int(p["head_steps"]), int(p["block_steps"])
        if head_steps > 0 or block_steps > 0:
            n = int(p["replay"])
            X_rep = replay[0][:n] if replay is not None and n > 0 else None
            labels = replay[1] if replay is not None else y_rep
            labels = labels[:n] if labels is not None and n > 0 else None
            E_head = E_rep[:n] if E_rep is not None and n > 0 and block_steps == 0 else None
            if labels is None or (X_rep is None and E_head is None):
                X_rep = labels = E_head = None  # no replay at hand
            net, names = fit_net(self.base_model.nets[0], Xa, ya, X_rep, labels, head_steps, block_steps,
                                 float(p["head_l2"]), float(p["example_weight"]), float(p["lr"]), int(p["seed"]),
                                 E_rep=E_head)
            self._set_net(net, names)
        E = self.embeddings(Xa)
        deep = block_steps > 0 and replay is not None  # the embedding changed: MNIST's embeddings too
        if self.center is None:
            self.center = np.zeros(E.shape[1], np.float32)
        elif deep:
            self.center = self.embeddings(replay[0][:1000]).mean(0).astype(np.float32)
        self.proto = self._normalise(E)
        self.proto_labels = ya
        # Anchors: MNIST training digits among the prototypes, with their labels. A digit written
        # the MNIST way then finds its nearest neighbours among them, and the vote agrees with MNIST.
        m = int(p["anchors"])
        if m > 0 and (E_rep is not None or replay is not None):
            if deep or E_rep is None:
                E_a, y_a = self.embeddings(replay[0][:m]), np.asarray(replay[1][:m])
            else:
                E_a, y_a = E_rep[:m], np.asarray(y_rep[:m])
            self.proto = np.concatenate([self.proto, self._normalise(E_a)])
            self.proto_labels = np.concatenate([ya, y_a.astype(np.int64)])

    def _set_net(self, net, names: list[str]) -> None:
        state = net.state_dict()
        self.net = net.to(memory_format=torch.channels_last).eval()
        self.adapted = {k: state[k].detach().clone().contiguous() for k in names}

    def _normalise(self, E: np.ndarray) -> np.ndarray:
        Z = E - self.center
        return (Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-8)).astype(np.float32)

    # -- predicting ------------------------------------------------------------------------------------
    def embeddings(self, X: np.ndarray) -> np.ndarray:
        return embed(self.base_model, X, net=self._infer_net)

    def net_proba(self, E: np.ndarray, X: np.ndarray | None = None, base_proba: np.ndarray | None = None) -> np.ndarray:
        """The network's probabilities from embeddings ``E`` (the adapted head), averaged with the
        base's other ensemble members when there are any (they need ``X`` or ``base_proba``)."""
        base = self.base_model
        if self.net is None:
            return base_proba if base_proba is not None else base.predict_proba(X)
        with torch.inference_mode():
            p0 = F.softmax(self.net.head(torch.as_tensor(E)), 1).numpy().astype(np.float64)
        n = len(base.nets)
        if n == 1:
            return p0
        full = base_proba if base_proba is not None else base.predict_proba(X)
        with torch.inference_mode():  # the other members as they are: the mean without the first one
            E0 = embed(base, X)
            p0_base = F.softmax(base.nets[0].head(torch.as_tensor(E0)), 1).numpy().astype(np.float64)
        return (full * n - p0_base + p0) / n

    def combine(self, p_net: np.ndarray, E: np.ndarray) -> np.ndarray:
        """Mix the network's probabilities with the prototypes' vote, gated by similarity."""
        p = self.params
        return knn_mix(p_net, self._normalise(E), self.proto, self.proto_labels, float(p["alpha"]), float(p["tau"]),
                       float(p["temperature"]))

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        E = self.embeddings(X)
        return self.combine(self.net_proba(E, X), E)

    # -- file format -----------------------------------------------------------------------------------
    def _payload(self) -> bytes:
        t = {"images": torch.as_tensor(self.images), "labels": torch.as_tensor(self.labels),
             "proto": torch.as_tensor(self.proto).to(torch.float16), "proto_labels": torch.as_tensor(self.proto_labels),
             "center": torch.as_tensor(self.center)}
        t.update({f"net.{k}": v for k, v in self.adapted.items()})
        return st_save({k: v.contiguous() for k, v in t.items()}, metadata={"kind": "profile"})

    def _restore(self, payload: bytes) -> None:
        import copy

        t = st_load(payload)
        try:
            self.images, self.labels = t["images"].numpy(), t["labels"].numpy()
            self.proto = t["proto"].float().numpy()
            self.proto_labels = t["proto_labels"].numpy()
            self.center = t["center"].numpy()
        except KeyError as exc:
            raise ModelError(f"profile file lacks {exc}") from None
        self._check_base()
        self._load_base()
        adapted = {k[4:]: v for k, v in t.items() if k.startswith("net.")}
        if adapted:
            net = copy.deepcopy(self.base_model.nets[0]).to(memory_format=torch.contiguous_format)
            state = net.state_dict()
            unknown = set(adapted) - set(state)
            if unknown or any(state[k].shape != v.shape for k, v in adapted.items() if k in state):
                raise ModelError("profile weights do not fit its base model; rebuild it with `digitlab adapt`")
            state.update(adapted)
            net.load_state_dict(state)
            self._set_net(net.eval(), list(adapted))
