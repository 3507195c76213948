"""Training the models that ship.

- ``cnn``: the CNN's training loop (augmentation in torch, one-cycle schedule, checkpoints, bf16,
  DistributedDataParallel under torchrun); the line readers' slice CNN reuses it;
- ``registered``: fit any registered model on MNIST (``digitlab train METHOD``) and save it with its
  provenance (config, data, accuracy).
"""
