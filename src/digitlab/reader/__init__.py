"""Line reading: a whole line of handwriting in, the most probable symbol string out.

- ``glyphs``: handwritten symbol images by source (training, validation and held-out writers);
- ``linegen``: synthetic training lines composed from training glyphs (touching, slanted, noisy);
- ``crnn``: the line recogniser (convolutions + BiLSTM, trained with CTC) behind the model interface,
  read with onnxruntime from its ONNX twin; ``crnn_io`` its input and output, ``linenet`` its PyTorch
  network (training, and reading without a twin);
- ``decode``: CTC prefix beam search constrained by a grammar (arithmetic lines, written numbers).
"""

CHARSET = "0123456789+-*/=()"  # CTC classes 1..17; 0 is the blank
CRNN_CHARSET = CHARSET[:15]  # what the CRNNs were trained on (no parentheses): their classes 1..15
DIGITS = CHARSET[:10]
LINE_HEIGHT = 32
