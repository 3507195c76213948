"""Fine-tuning a handwriting profile's CNN (``digitlab adapt``; the model is ``digitlab.digits.adapted``).

``fit_net`` trains a copy of the base CNN's head, and optionally its last conv block, on a class's
examples (jittered by ``augment_images``) mixed with MNIST replay, pulled towards the shipped
weights by an L2 penalty.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def last_block(net) -> int:
    """Index in ``net.features`` of the last conv block."""
    from torch import nn

    return max(i for i, m in enumerate(net.features) if isinstance(m, nn.Sequential))


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


def fit_net(base_net, X_ex: np.ndarray, y_ex: np.ndarray, X_rep: np.ndarray | None, y_rep: np.ndarray | None,
            head_steps: int, block_steps: int, l2: float, example_weight: float, lr: float = 1e-3, seed: int = 0,
            E_rep: np.ndarray | None = None) -> tuple[object, list[str]]:
    """A copy of ``base_net`` with its head (and, if ``block_steps``, its last conv block) fine-tuned.

    Loss: ``example_weight * CE(examples) + CE(replay) + l2 * ||theta - theta_base||^2``; batch norm
    stays in inference mode (its running statistics are MNIST's). Returns (net, adapted tensor names).
    """
    import copy

    from ..digits.cnn import to_tensor

    torch.manual_seed(seed)
    net = copy.deepcopy(base_net).float().eval().to(memory_format=torch.contiguous_format)
    k = last_block(net)
    trunk, block, rest = net.features[:k], net.features[k], net.features[k + 1 :]
    lin = net.head[-1]
    names = [f"head.{len(net.head) - 1}.weight", f"head.{len(net.head) - 1}.bias"]
    params = [lin.weight, lin.bias]
    ye = torch.as_tensor(y_ex, dtype=torch.long)
    yr = None if y_rep is None else torch.as_tensor(y_rep, dtype=torch.long)
    with torch.no_grad():
        if block_steps > 0:
            He = trunk(to_tensor(X_ex))
            Hr = None if X_rep is None else trunk(to_tensor(X_rep))
            params += [block[0].weight, block[1].weight, block[1].bias]
            names += [f"features.{k}.0.weight", f"features.{k}.1.weight", f"features.{k}.1.bias"]
        else:  # head only: the embeddings are fixed
            Ee = torch.flatten(rest(block(trunk(to_tensor(X_ex)))), 1)
            Er = torch.as_tensor(E_rep) if E_rep is not None else (
                None if X_rep is None else torch.flatten(rest(block(trunk(to_tensor(X_rep)))), 1))
    for q in net.parameters():
        q.requires_grad_(False)
    for q in params:
        q.requires_grad_(True)
    ref = [q.detach().clone() for q in params]
    opt = torch.optim.Adam(params, lr=lr)
    steps = block_steps if block_steps > 0 else head_steps
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            if block_steps > 0:
                # minibatches of 256: a step of the conv block costs ~1 GFLOP per 100 digits
                emb = lambda h: torch.flatten(rest(block(h)), 1)  # noqa: E731
                ie = torch.randint(len(He), (min(256, len(He)),), generator=gen)
                loss = example_weight * F.cross_entropy(lin(emb(He[ie])), ye[ie])
                if Hr is not None and len(Hr):
                    idx = torch.randint(len(Hr), (min(256, len(Hr)),), generator=gen)
                    loss = loss + F.cross_entropy(lin(emb(Hr[idx])), yr[idx])
            else:
                loss = example_weight * F.cross_entropy(lin(Ee), ye)
                if Er is not None and len(Er):
                    loss = loss + F.cross_entropy(lin(Er), yr)
            loss = loss + l2 * sum((q - r).pow(2).sum() for q, r in zip(params, ref))
            loss.backward()
            opt.step()
    for q in net.parameters():
        q.requires_grad_(False)
    return net.eval(), names
