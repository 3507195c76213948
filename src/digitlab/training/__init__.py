"""Training the models that ship.

- ``cnn``: the CNN's training loop (augmentation in torch, one-cycle schedule, checkpoints, bf16,
  DistributedDataParallel under torchrun); the reject model and the slice CNN reuse parts of it;
- ``registered``: fit any registered model on MNIST (``digitlab train METHOD``) and save it with its
  provenance (config, data, accuracy);
- ``reject``: the training set of the "is this a digit?" model and ``digitlab train reject``;
- ``adapt``: fine-tuning a handwriting profile's CNN on a class's examples (``digitlab adapt``).
"""
