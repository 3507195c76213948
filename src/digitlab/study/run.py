"""The comparative study: benchmark every method, the unsupervised part, and parameter tuning.

The test split is only ever used by ``benchmark`` to score already-fitted models; ``tune`` works on
a validation split carved out of the training set.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..datasets.mnist import Split, load_mnist, subset, train_val_split
from .evaluation import clustering_scores, evaluate
from ..models import create
from ..digits.preprocess import deskew_batch

CLASSIC = ["linear", "knn", "svm", "mlp", "kmeans"]
DEFAULT_METHODS = CLASSIC + ["cnn"]

# What `digitlab tune` searches: the parameters that matter, each on a small grid.
GRIDS: dict[str, dict[str, list]] = {
    "linear": {"C": [0.01, 0.03, 0.1, 0.3, 1.0], "deskew": [False, True]},
    "knn": {"k": [1, 3, 4, 6, 8], "weights": ["uniform", "distance"], "pca": [30, 40, 60, None],
            "deskew": [False, True], "metric": ["euclidean", "cosine"]},
    "svm": {"C": [5, 10, 20], "gamma": ["scale", 0.02, 0.05], "pca": [40, 50, 70], "shift_copies": [0, 1]},
    "mlp": {"hidden": [[256], [512], [512, 256]], "alpha": [1e-4, 1e-3, 1e-2], "learning_rate": [1e-3, 3e-3],
            "epochs": [15, 30]},
    "kmeans": {"clusters": [10, 100, 300, 600], "pca": [30, 50]},
}
# Tuning trains many models: one parameter at a time around the defaults ("one-factor"),
# on a training subset, keeps the search affordable on two cores.
# The SVM is tuned on the whole training split: one fit takes ~10 s, and on subsets its parameters
# barely separate (98.0-98.2% on 10k digits).
TUNE_TRAIN = {"linear": 20000, "knn": 20000, "svm": None, "mlp": 20000, "kmeans": 20000}


def tuned_path() -> Path:
    from ..datasets.mnist import cache_dir

    return Path(os.environ.get("DIGITLAB_TUNED", cache_dir() / "tuned.json"))


def tuned_params(method: str) -> dict:
    """Parameters chosen by `digitlab tune --apply` (the class defaults already hold ours)."""
    try:
        return json.loads(tuned_path().read_text()).get(method, {})
    except (OSError, ValueError):
        return {}


def environment() -> dict:
    import sklearn
    import torch

    return {"machine": platform.processor() or platform.machine(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__}


# -- benchmark -------------------------------------------------------------------------------------
DEGRADED_KINDS = ("binarise", "dilate", "erode", "slant")


def other_test_sets(data_dir=None, n_degraded: int = 2000, seed: int = 0, progress: bool = True) -> dict[str, Split]:
    """Test sets beyond MNIST's own: other writers and other pens, all in MNIST's 28x28 format.

    ``optdigits windep``: the 13 optdigits writers never used for training or choosing anything
    (``data.optdigits_as_mnist``). ``MNIST test <kind>``: ``n_degraded`` MNIST test digits (seeded)
    degraded by ``renders.degrade`` (binarised by a cheap scanner, thicker or thinner pen, slanted),
    then preprocessed as a user image is. Missing optdigits data only drops that set.
    """
    from ..datasets.mnist import optdigits_as_mnist
    from ..errors import DataError
    from ..digits.preprocess import preprocess_digit
    from ..synthetic.renders import degrade

    sets: dict[str, Split] = {}
    try:
        sets["optdigits windep"] = optdigits_as_mnist("windep", data_dir)
    except DataError as exc:
        tqdm.write(f"optdigits windep skipped: {exc}")
    test = subset(load_mnist("test", data_dir), n_degraded, seed=seed)
    for i, kind in enumerate(DEGRADED_KINDS):
        rng = np.random.default_rng(seed + 1 + i)
        imgs = [preprocess_digit(degrade(im, kind, rng), reject=False)
                for im in tqdm(test.images, desc=f"degrade {kind}", leave=False, disable=not progress)]
        sets[f"MNIST test {kind}"] = Split(np.round(np.stack(imgs) * 255).astype(np.uint8), test.labels)
    return sets


def score_other_sets(model, sets: dict[str, Split]) -> dict:
    out = {}
    for name, s in sets.items():
        pred = model.predict(s.images)
        pairs: dict[tuple[int, int], int] = {}
        for t, p in zip(s.labels[pred != s.labels], pred[pred != s.labels]):
            pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
        top = sorted(pairs.items(), key=lambda kv: -kv[1])[:5]
        out[name] = {"n": len(s), "accuracy": float((pred == s.labels).mean()),
                     "confusions": [{"true": t, "read_as": p, "count": c} for (t, p), c in top]}
    return out


def benchmark(methods=None, subset_n: int | None = None, data_dir=None, unsupervised: bool = True,
              progress: bool = True, save_dir=None, other_sets: bool = True, n_degraded: int = 2000) -> dict:
    """Fit every method on the training set, score on the test set, time both.

    With ``other_sets`` every method is also scored on other writers (optdigits ``windep``) and on
    degraded MNIST test digits (``other_test_sets``). With ``save_dir``, every fitted classic model is
    saved there with its measured accuracy, so the CLI (`--model svm`) and the web app's model picker
    can use it.
    """
    from ..models import get_model

    methods = list(methods or DEFAULT_METHODS)
    train = subset(load_mnist("train", data_dir), subset_n)
    test = load_mnist("test", data_dir)
    results = {"environment": environment(), "train_size": len(train), "test_size": len(test), "methods": {}}
    extra = other_test_sets(data_dir, n_degraded, progress=progress) if other_sets else {}
    bar = tqdm(methods, desc="benchmark", disable=not progress)
    for name in bar:
        bar.set_description(f"benchmark {name}")
        if name == "cnn":
            # The CNN is scored from its shipped weights; its training time is the one recorded
            # when those weights were trained (`digitlab train cnn`).
            model = get_model(None)
            fit_s = float(model.metadata.get("fit_seconds", float("nan")))
            note = "shipped weights; fit time from its training run"
        else:
            params = tuned_params(name)
            model = create(name, **params)
            t0 = time.perf_counter()
            model.fit(train.images, train.labels)
            fit_s = time.perf_counter() - t0
            note = ""
        row = evaluate(model, test.images, test.labels)
        row.update({"fit_seconds": fit_s, "params": model.get_params(), "description": model.description,
                    "size_bytes": len(model._payload()), "note": note})
        if extra:
            row["other_sets"] = score_other_sets(model, extra)
        results["methods"][name] = row
        if save_dir and name != "cnn":
            model.metadata.update({"test_accuracy": row["accuracy"], "fit_seconds": round(fit_s, 2),
                                   "train_size": len(train)})
            model.save(Path(save_dir) / f"{name}.dlm")
        others = "".join(f"  {k.replace('MNIST test ', '')} {v['accuracy']:.2%}" for k, v in row.get("other_sets", {}).items())
        bar.write(f"{name:8} acc {row['accuracy']:.2%}  fit {fit_s:7.1f}s  predict {row['predict_seconds']:6.2f}s{others}")
    if unsupervised:
        results["unsupervised"] = unsupervised_study(train, progress=progress)
    results["computation"] = computation_study(train, test, progress=progress)
    return results


def unsupervised_study(train: Split, progress: bool = True, umap_budget_n: int | None = None) -> dict:
    """PCA curve and projection, K-means k=10 on PCA features, UMAP embedding + K-means."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    out: dict = {}
    log = tqdm.write if progress else (lambda *_: None)
    X = deskew_batch(train.images.astype(np.float32) / 255).reshape(len(train), -1)
    y = train.labels
    t0 = time.perf_counter()
    pca_full = PCA(n_components=200, random_state=0, svd_solver="randomized").fit(X)
    out["pca_seconds"] = time.perf_counter() - t0
    out["explained_variance"] = np.cumsum(pca_full.explained_variance_ratio_).tolist()
    k = np.searchsorted(np.cumsum(pca_full.explained_variance_ratio_), [0.8, 0.9, 0.95])
    out["components_for"] = {"80%": int(k[0]) + 1, "90%": int(k[1]) + 1, "95%": int(k[2]) + 1}
    rng = np.random.default_rng(0)
    pick = rng.choice(len(X), min(5000, len(X)), replace=False)
    out["projection_2d"] = {"xy": np.round(pca_full.transform(X[pick])[:, :2], 3).tolist(), "labels": y[pick].tolist()}

    t0 = time.perf_counter()
    pca50 = PCA(n_components=50, random_state=0).fit(X)
    P = pca50.transform(X)
    km = KMeans(n_clusters=10, n_init=4, random_state=0).fit(P)
    out["kmeans10"] = {**clustering_scores(y, km.labels_), "seconds": time.perf_counter() - t0,
                       "features": "PCA(50) of deskewed pixels",
                       "centroids": np.clip(pca50.inverse_transform(km.cluster_centers_), 0, 1).reshape(-1, 28, 28).round(3).tolist()}
    log(f"kmeans k=10: clustering accuracy {out['kmeans10']['clustering_accuracy']:.3f}")
    t0 = time.perf_counter()
    km_raw = KMeans(n_clusters=10, n_init=4, random_state=0).fit(
        PCA(n_components=50, random_state=0).fit_transform(train.images.reshape(len(train), -1).astype(np.float32) / 255))
    out["kmeans10_raw"] = {**clustering_scores(y, km_raw.labels_), "seconds": time.perf_counter() - t0,
                           "features": "PCA(50) of raw pixels"}
    try:
        import umap
    except ImportError:
        out["embedding"] = {"error": "umap-learn not installed (pip install 'digitlab[study]')"}
        return out
    t0 = time.perf_counter()
    n = umap_budget_n or len(P)
    reducer = umap.UMAP(n_neighbors=10, n_components=5, min_dist=0.0, random_state=0, n_jobs=1)  # seeded = serial
    E = reducer.fit_transform(P[:n])
    km_e = KMeans(n_clusters=10, n_init=10, random_state=0).fit(E)
    out["embedding"] = {**clustering_scores(y[:n], km_e.labels_), "seconds": time.perf_counter() - t0,
                        "pipeline": "deskew -> PCA(50) -> UMAP(5-D, n_neighbors=10, min_dist=0) -> K-means(10)",
                        "n": int(n)}
    log(f"UMAP + kmeans: clustering accuracy {out['embedding']['clustering_accuracy']:.3f}")
    return out


def computation_study(train: Split, test: Split, progress: bool = True, queries: int = 1000) -> dict:
    """Measure what the size of the data costs and what each counter-measure buys."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    out: dict = {}
    Xtr = train.images.reshape(len(train), -1).astype(np.float32) / 255
    Xte = test.images[:queries].reshape(queries, -1).astype(np.float32) / 255
    out["distance_matrix_shape"] = [len(test), len(train)]
    out["full_distance_matrix_gb"] = len(test) * len(train) * 8 / 1e9
    out["uint8_train_mb"] = train.images.nbytes / 1e6
    for feats in ("raw784", "pca40"):
        if feats == "pca40":
            pca = PCA(40, random_state=0).fit(Xtr)
            A, B = pca.transform(Xtr), pca.transform(Xte)
        else:
            A, B = Xtr, Xte
        knn = KNeighborsClassifier(4, algorithm="brute", n_jobs=-1).fit(A, train.labels)
        t0 = time.perf_counter()
        knn.predict(B)
        out[f"knn_predict_{queries}_{feats}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    knn64 = KNeighborsClassifier(4, algorithm="brute", n_jobs=-1).fit(Xtr.astype(np.float64), train.labels)
    knn64.predict(Xte.astype(np.float64))
    out[f"knn_predict_{queries}_raw784_float64_s"] = time.perf_counter() - t0
    n_svm = min(10000, len(train))
    for feats in ("raw784", "pca50"):
        A = Xtr[:n_svm] if feats == "raw784" else PCA(50, random_state=0).fit_transform(Xtr[:n_svm])
        t0 = time.perf_counter()
        SVC(C=10, gamma="scale").fit(A, train.labels[:n_svm])
        out[f"svm_fit_{n_svm}_{feats}_s"] = time.perf_counter() - t0
    out["float32_train_mb"] = Xtr.nbytes / 1e6
    out["float64_train_mb"] = Xtr.nbytes * 2 / 1e6
    return out


# -- tuning ------------------------------------------------------------------------------------------
def tune(method: str, data_dir=None, train_n: int | None = None, val_n: int = 5000, grid: dict | None = None,
         progress: bool = True) -> dict:
    """One-factor-at-a-time search on a validation split from the training set (never the test set)."""
    from sklearn.model_selection import ParameterGrid

    if method not in GRIDS and grid is None:
        raise ValueError(f"no tuning grid for {method!r}; choose one of {', '.join(GRIDS)}")
    grid = grid or GRIDS[method]
    full = load_mnist("train", data_dir)
    tr, val = train_val_split(full, val_n, seed=1)
    tr = subset(tr, train_n or TUNE_TRAIN.get(method), seed=1)
    base = create(method).get_params()
    trials = []
    # Vary one parameter at a time around the current defaults.
    candidates = []
    for pname, values in grid.items():
        for params in ParameterGrid({pname: values}):
            cand = {**base, **params}
            if cand not in candidates:
                candidates.append(cand)
    bar = tqdm(candidates, desc=f"tune {method}", disable=not progress)
    for params in bar:
        model = create(method, **params)
        t0 = time.perf_counter()
        model.fit(tr.images, tr.labels)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = model.score(val.images, val.labels)
        trials.append({"params": params, "val_accuracy": acc, "fit_seconds": fit_s,
                       "predict_seconds": time.perf_counter() - t0})
        bar.set_postfix(best=f"{max(t['val_accuracy'] for t in trials):.4f}")
    best = max(trials, key=lambda t: t["val_accuracy"])
    changed = {k: v for k, v in best["params"].items() if base.get(k) != v}
    return {"method": method, "train_size": len(tr), "val_size": len(val), "grid": grid, "defaults": base,
            "trials": trials, "best": best, "best_changes": changed}
