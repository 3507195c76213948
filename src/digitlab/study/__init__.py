"""The comparative MNIST study (`digitlab benchmark`, `digitlab tune`).

- ``run``: fit, time and score every method on MNIST test, the other writers and degraded digits;
  the unsupervised part (PCA, K-means, UMAP); parameter search on a validation split (``tune``);
- ``evaluation``: accuracy and timing of a fitted model, confusion matrices, clustering accuracy;
- ``report``: the figures, report.md and the self-contained report.html the web app shows.
"""
