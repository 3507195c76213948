"""Classic methods as scikit-learn pipelines behind the shared interface.

Each model is ``[deskew] -> [StandardScaler] -> [PCA(n)] -> estimator``. Deskewing runs outside the
scikit-learn pipeline so that the pipeline holds only standard scikit-learn objects, which skops
can load with an explicit allow-list (no pickle).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import skops.io as sio
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..errors import ModelError
from .preprocess import deskew_batch
from ..models.base import DigitModel, register

# Everything a saved pipeline may contain beyond what skops trusts by default.
_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SklearnModel(DigitModel):
    """Shared plumbing: features (raw or deskewed pixels, optional PCA) and skops persistence."""

    def __init__(self, deskew: bool = True, pca: int | None = None, scale: bool = False, **params) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, **params)
        self.pipeline: Pipeline | None = None

    @staticmethod
    def shifted_copies(X: np.ndarray, y: np.ndarray, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Virtual examples: each copy shifts every image by one pixel in a random direction."""
        rng = np.random.default_rng(seed)
        xs, ys = [X], [y]
        for _ in range(copies):
            d = rng.integers(4, size=len(X))
            out = np.empty_like(X)
            for k, (dy, dx) in enumerate(((0, 1), (0, -1), (1, 0), (-1, 0))):
                sel = d == k
                out[sel] = np.roll(X[sel], (dy, dx), axis=(1, 2))
            xs.append(out)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    def features(self, X: np.ndarray) -> np.ndarray:
        if self.params["deskew"]:
            X = deskew_batch(X)
        return X.reshape(len(X), -1).astype(np.float32)

    def _estimator(self):
        raise NotImplementedError

    def _fit(self, X, y, **kw) -> None:
        steps = []
        if self.params["scale"]:
            steps.append(("scale", StandardScaler()))
        if self.params["pca"]:
            steps.append(("pca", PCA(n_components=int(self.params["pca"]), random_state=0)))
        steps.append(("clf", self._estimator()))
        self.pipeline = Pipeline(steps)
        if self.params.get("shift_copies"):
            X, y = self.shifted_copies(X, y, int(self.params["shift_copies"]))
        self.pipeline.fit(self.features(X), y)

    def _scores(self, F: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(F)

    def _predict_proba(self, X) -> np.ndarray:
        return self._scores(self.features(X))

    def _payload(self) -> bytes:
        return sio.dumps(self.pipeline)

    def _restore(self, payload: bytes) -> None:
        untrusted = sio.get_untrusted_types(data=payload)
        bad = [t for t in untrusted if not t.startswith(_ALLOWED_PREFIXES)]
        if bad:
            raise ModelError(f"model file contains types that are not allowed: {', '.join(bad)}")
        self.pipeline = sio.loads(payload, trusted=untrusted)


@register
class LinearModel(SklearnModel):
    name: ClassVar[str] = "linear"
    description: ClassVar[str] = "multinomial logistic regression on deskewed pixels"

    def __init__(self, C: float = 0.1, max_iter: int = 200, deskew: bool = True, pca: int | None = None,
                 scale: bool = False) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, C=C, max_iter=max_iter)

    def _estimator(self):
        return LogisticRegression(C=self.params["C"], max_iter=self.params["max_iter"], tol=1e-3)


@register
class KNNModel(SklearnModel):
    name: ClassVar[str] = "knn"
    description: ClassVar[str] = "k-nearest neighbours on PCA of deskewed pixels"

    def __init__(self, k: int = 3, weights: str = "distance", metric: str = "euclidean", deskew: bool = True,
                 pca: int | None = 40, scale: bool = False) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, k=k, weights=weights, metric=metric)

    def _estimator(self):
        # Brute force on float32 PCA features: BLAS-chunked distances beat trees at 40 dims.
        return KNeighborsClassifier(n_neighbors=self.params["k"], weights=self.params["weights"],
                                    metric=self.params["metric"], algorithm="brute", n_jobs=-1)


@register
class SVMModel(SklearnModel):
    name: ClassVar[str] = "svm"
    description: ClassVar[str] = "RBF support vector machine on PCA of deskewed pixels"
    has_proba: ClassVar[bool] = False  # scores are a softmax of decision values, not calibrated

    def __init__(self, C: float = 10.0, gamma: float | str = "scale", deskew: bool = True, pca: int | None = 50,
                 scale: bool = False, shift_copies: int = 1) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, C=C, gamma=gamma, shift_copies=shift_copies)

    def _estimator(self):
        return SVC(C=self.params["C"], gamma=self.params["gamma"], kernel="rbf", cache_size=2000,
                   decision_function_shape="ovr")

    def _scores(self, F):
        return _softmax(self.pipeline.decision_function(F) * 3.0)


@register
class MLPModel(SklearnModel):
    name: ClassVar[str] = "mlp"
    description: ClassVar[str] = "multilayer perceptron (scikit-learn, Adam) on deskewed pixels"

    def __init__(self, hidden: tuple[int, ...] | list[int] = (512, 256), alpha: float = 1e-3,
                 learning_rate: float = 1e-3, epochs: int = 30, batch_size: int = 256, deskew: bool = True,
                 pca: int | None = None, scale: bool = False, seed: int = 0) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, hidden=list(hidden), alpha=alpha,
                         learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, seed=seed)

    def _fit(self, X, y, **kw) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Trained for a fixed number of epochs on purpose (a tuned parameter), not to convergence.
            warnings.simplefilter("ignore", ConvergenceWarning)
            super()._fit(X, y)
        # Adam's moment estimates are only needed to keep training; they double the file size.
        self.pipeline[-1].__dict__.pop("_optimizer", None)

    def _estimator(self):
        p = self.params
        return MLPClassifier(hidden_layer_sizes=tuple(p["hidden"]), alpha=p["alpha"],
                             learning_rate_init=p["learning_rate"], max_iter=p["epochs"],
                             batch_size=p["batch_size"], random_state=p["seed"], early_stopping=False,
                             n_iter_no_change=p["epochs"], tol=0.0)


@register
class KMeansClassifierModel(SklearnModel):
    """K-means with many centroids, each labelled by the majority class of its members."""

    name: ClassVar[str] = "kmeans"
    description: ClassVar[str] = "K-means as a classifier: many centroids labelled by majority vote"
    has_proba: ClassVar[bool] = False

    def __init__(self, clusters: int = 600, deskew: bool = True, pca: int | None = 50, scale: bool = False,
                 seed: int = 0) -> None:
        super().__init__(deskew=deskew, pca=pca, scale=scale, clusters=clusters, seed=seed)

    def _estimator(self):
        return MiniBatchKMeans(n_clusters=self.params["clusters"], random_state=self.params["seed"],
                               batch_size=4096, n_init=3)

    def _fit(self, X, y, **kw) -> None:
        super()._fit(X, y)
        clusters = self.pipeline.predict(self.features(X))
        votes = np.zeros((self.params["clusters"], 10))
        np.add.at(votes, (clusters, y), 1)
        self.cluster_labels_ = votes.argmax(1)
        self.metadata["cluster_labels"] = self.cluster_labels_.tolist()

    def _scores(self, F):
        labels = np.asarray(self.metadata["cluster_labels"])
        Z = self.pipeline[:-1].transform(F) if len(self.pipeline) > 1 else F
        d = self.pipeline[-1].transform(Z)  # distances to every centroid
        per_class = np.full((len(F), 10), np.inf)
        for c in range(10):
            if (labels == c).any():
                per_class[:, c] = d[:, labels == c].min(1)
        return _softmax(-per_class / (per_class.min(1, keepdims=True) + 1e-9) * 10)
