"""Data sets of real handwriting that the product is measured on.

- ``pens``: real pen trajectories (UCI pendigits, 44 writers; UJI Pen Characters v1, 11 writers),
  rendered as ink at any pen width and composed into lines, numbers and column problems.

MNIST and optdigits loaders are in ``digitlab.data``.
"""
