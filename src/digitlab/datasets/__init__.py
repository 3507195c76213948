"""Data sets: the handwriting that models are trained and measured on.

- ``mnist``: MNIST (checksummed, cached, mirrors) and UCI optdigits, as 28x28 digits the way MNIST
  was made; ``cache_dir``, the cache every downloaded or derived file goes to.
- ``operators``: handwritten + - x / signs (MDAS symbol set) and the "=" built from its minus signs.
- ``pens``: real pen trajectories (UCI pendigits, 44 writers; UJI Pen Characters v1, 11 writers),
  rendered as ink at any pen width and composed into lines, numbers and column problems.
"""
