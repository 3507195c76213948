"""Metrics: accuracy and timing of a fitted model, confusion matrices, clustering accuracy."""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, confusion_matrix, normalized_mutual_info_score


def clustering_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Best accuracy over one-to-one matchings of clusters to labels (Hungarian algorithm).

    Clusters left without a label (more clusters than classes) count as errors.
    """
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape:
        raise ValueError("labels and clusters must have the same shape")
    if labels.size == 0:
        raise ValueError("empty input")
    _, li = np.unique(labels, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    counts = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(counts, (ci, li), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / labels.size)


def clustering_scores(labels, clusters) -> dict:
    return {"clustering_accuracy": clustering_accuracy(labels, clusters),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters))}


def evaluate(model, X_test, y_test) -> dict:
    """Accuracy, errors, confusion matrix and prediction time of a fitted model."""
    t0 = time.perf_counter()
    pred = model.predict(X_test)
    seconds = time.perf_counter() - t0
    y = np.asarray(y_test)
    wrong = np.nonzero(pred != y)[0]
    return {
        "accuracy": float((pred == y).mean()),
        "error_rate": float((pred != y).mean()),
        "errors": int(len(wrong)),
        "predict_seconds": seconds,
        "us_per_digit": 1e6 * seconds / len(y),
        "confusion": confusion_matrix(y, pred, labels=list(range(10))).tolist(),
        "misclassified": [{"index": int(i), "true": int(y[i]), "pred": int(pred[i])} for i in wrong[:24]],
    }
