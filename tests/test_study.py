"""The comparative study on a small subset: report, metrics, and tuning that never sees the test set."""

import json

import numpy as np
import pytest

from digitlab.datasets import mnist as data
from digitlab.study import run as study
from digitlab.study.evaluation import clustering_accuracy


def test_hungarian_clustering_accuracy_hand_made():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    clusters = np.array([5, 5, 7, 9, 9, 9, 7, 7, 7, 5])  # 5->0 (2), 9->1 (3), 7->2 (3): 8 of 10
    assert clustering_accuracy(labels, clusters) == pytest.approx(0.8)
    assert clustering_accuracy(labels, labels + 3) == 1.0
    # More clusters than classes: the unmatched cluster's members count as errors.
    assert clustering_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 2])) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        clustering_accuracy(np.array([0, 1]), np.array([0]))


def test_benchmark_report_has_every_figure_and_row(tmp_path, mnist_test):
    from digitlab.study.report import write_report

    methods = ["linear", "knn", "svm", "kmeans", "cnn"]
    res = study.benchmark(methods, subset_n=1500, progress=False, unsupervised=True, n_degraded=100)
    res["tuning"] = {"linear": {"grid": {"C": [0.1, 1.0]}, "defaults": {"C": 0.1}, "train_size": 10, "val_size": 5,
                                "trials": [{"params": {"C": 0.1}, "val_accuracy": 0.9},
                                           {"params": {"C": 1.0}, "val_accuracy": 0.8}],
                                "best": {"val_accuracy": 0.9, "params": {"C": 0.1}}, "best_changes": {}}}
    paths = write_report(res, tmp_path, mnist_test.images)
    for fig in ("accuracy", "accuracy_vs_time", "confusion", "misclassified", "pca_variance", "pca_projection",
                "kmeans_centroids", "tuning_linear", "other_sets"):
        assert paths[fig].exists() and paths[fig].stat().st_size > 1000, fig
    md = paths["md"].read_text()
    for m in methods:
        assert f"| {m} |" in md
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") >= 8 and "<table>" in html
    assert "src=\"http" not in html
    saved = json.loads(paths["json"].read_text())
    for m in methods:
        row = saved["methods"][m]
        assert 0.5 < row["accuracy"] <= 1 and row["errors"] == round(row["error_rate"] * 10000)
        assert np.asarray(row["confusion"]).sum() == 10000
    assert saved["unsupervised"]["kmeans10"]["clustering_accuracy"] > 0.4
    # The column of other writers and other pens: every method scored on the same extra sets.
    assert "## Other writers and other pens" in md
    for m in methods:
        other = saved["methods"][m]["other_sets"]
        assert set(other) >= {"MNIST test binarise", "MNIST test dilate", "MNIST test erode", "MNIST test slant"}
        assert all(0.3 < v["accuracy"] <= 1 for v in other.values())
        if "optdigits windep" in other:  # present wherever the optdigits data is
            assert other["optdigits windep"]["n"] > 1000


def test_tuning_never_touches_the_test_split(monkeypatch):
    real = data.load_mnist

    def guarded(split="train", *a, **kw):
        if split == "test":
            raise AssertionError("tuning read the test split")
        return real(split, *a, **kw)

    monkeypatch.setattr(study, "load_mnist", guarded)
    result = study.tune("knn", train_n=1000, val_n=500, grid={"k": [1, 5]}, progress=False)
    assert len(result["trials"]) == 2 and result["val_size"] == 500
    assert result["best"]["params"]["k"] in (1, 5)


def test_cli_tune_and_benchmark(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("DIGITLAB_TUNED", str(tmp_path / "tuned.json"))
    proc = subprocess.run([sys.executable, "-m", "digitlab", "benchmark", "--methods", "linear,nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
