"""The single-digit path: one handwritten digit in a picture -> its value, or a refusal.

- ``preprocess``: ink map, crop, MNIST-style 28x28 fit, deskew (decoding is ``digitlab.io.images``);
- ``net``, ``cnn``: the network and the shipped CNN classifier (ensemble, int8); ``classic``: the
  scikit-learn methods of the study; ``adapted``: the CNN corrected by a writer's examples (a profile);
- ``reject``: "is this a digit?" from its shape and the CNN's confidence; ``rejectnet``: the learned
  reject model; ``segment``: symbols side by side in one picture;
- ``recognize``: preprocess -> model -> reject, what `digitlab predict` and the server run;
- ``visualize``: the CNN's layers and feature maps for one digit; ``export``: the CNN as ONNX.

Models are built and loaded by name through ``digitlab.models``; training is ``digitlab.training``.
"""
