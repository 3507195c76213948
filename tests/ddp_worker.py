"""Run by test_distributed under torchrun: the project's training loop with DDP (gloo)."""

import hashlib
import json
import os
import sys

import numpy as np
import torch

from digitlab.datasets.mnist import load_mnist, subset
from digitlab.training.cnn import TrainConfig, evaluate_net, init_distributed, train_net

out_dir = sys.argv[1]
assert init_distributed()
import torch.distributed as dist  # noqa: E402

rank = dist.get_rank()
train = subset(load_mnist("train"), 2000, seed=0)
test = subset(load_mnist("test"), 500, seed=0)
net, hist = train_net(train.images.astype(np.float32) / 255, train.labels,
                      TrainConfig(width=8, epochs=3, augment="light", batch_size=64), progress=False)
digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in net.state_dict().values())).hexdigest()
acc = evaluate_net(net, test.images.astype(np.float32) / 255, test.labels)
with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
    json.dump({"digest": digest, "accuracy": acc, "world": dist.get_world_size(), "steps": len(hist)}, fh)
dist.destroy_process_group()
