"""The study report: matplotlib figures, report.md and a self-contained report.html."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

from ..io.files import atomic_write

PARAM_NOTES = {
    "linear": "C is the inverse L2 penalty of logistic regression: small C = smoother weights. Deskewing "
              "straightens slanted digits first, which a linear model cannot do by itself.",
    "knn": "k = neighbours that vote; distance weighting lets nearer ones count more; PCA keeps the "
           "directions of largest variance (denoises, and makes every distance cheaper: see the computation section for the measured speed-up); deskew removes slant.",
    "svm": "C trades margin for training errors; gamma is the RBF kernel width (\"scale\" = 1/(n_features*var)); "
           "PCA dimensions bound the cost of every kernel evaluation.",
    "mlp": "hidden units set capacity; alpha is the L2 penalty; the learning rate and epochs set how far Adam "
           "goes.",
    "kmeans": "clusters = centroids, each labelled by the majority class of its members; more centroids "
              "approach a nearest-neighbour classifier; PCA dimensions set the space they live in.",
}


def default_report_dir() -> Path:
    from ..datasets.mnist import cache_dir

    return Path(os.environ.get("DIGITLAB_REPORT", cache_dir() / "report"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _plt()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def figures(results: dict, out: Path, test_images: np.ndarray | None = None) -> dict[str, Path]:
    plt = _plt()
    figs: dict[str, Path] = {}
    methods = results["methods"]
    names = list(methods)
    if names:
        figs.update(_method_figures(methods, names, out, test_images))
    _unsupervised_and_tuning(results, out, figs)
    if names and any("other_sets" in methods[n] for n in names):
        figs["other_sets"] = _other_sets_figure(methods, names, out)
    return figs


def _other_sets_figure(methods, names, out: Path) -> Path:
    plt = _plt()
    sets = ["MNIST test", *methods[names[0]].get("other_sets", {})]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        other = methods[n].get("other_sets", {})
        accs = [methods[n]["accuracy"] * 100] + [other.get(k, {}).get("accuracy", np.nan) * 100 for k in sets[1:]]
        ax.bar(np.arange(len(sets)) + (i - (len(names) - 1) / 2) * width, accs, width, label=n)
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels([k.replace("MNIST test ", "MNIST ") for k in sets], fontsize=8)
    ax.set_ylim(50, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("the same fitted models on other writers and other pens")
    ax.legend(fontsize=7, ncol=len(names))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out / "other_sets.png")


def _other_sets_section(results: dict) -> list[str]:
    """Table and discussion of how each method carries to other writers (optdigits) and pens."""
    methods = {n: m for n, m in results["methods"].items() if m.get("other_sets")}
    if not methods:
        return []
    sets = list(next(iter(methods.values()))["other_sets"])
    head = ["method", "MNIST test", *[k.replace("MNIST test ", "MNIST ") for k in sets]]
    lines = ["## Other writers and other pens", "",
             "MNIST's test digits come from the same population of writers and the same scanner and "
             "normalisation as its training digits, so the table above says little about a new writer. Every "
             "fitted model is therefore also scored, unchanged, on:", "",
             "- **optdigits windep**: digits from 13 writers who are in neither MNIST nor optdigits' own training "
             "writers (UCI optdigits, Alpaydin & Kaynak, CC BY 4.0), 32x32 binary bitmaps from another scanner, "
             "converted the way MNIST was made (softened, cropped, longest side 20 px, centred by mass in 28x28: "
             "`digitlab.datasets.mnist.optdigits_as_mnist`);",
             "- **MNIST binarise / dilate / erode / slant**: 2,000 MNIST test digits each (seeded), thresholded at "
             "16x16 by a cheap scanner, written with a thicker or thinner pen, or slanted ±15°, then preprocessed as "
             "a user image is (`digitlab.synthetic.renders.degrade`).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, m in methods.items():
        cells = [f"{m['accuracy']:.2%}"] + [f"{m['other_sets'][k]['accuracy']:.2%}" for k in sets]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "![other writers](other_sets.png)", ""]
    if "optdigits windep" in sets:
        wd = {n: m["other_sets"]["optdigits windep"]["accuracy"] for n, m in methods.items()}
        drop = {n: methods[n]["accuracy"] - wd[n] for n in methods}
        order = sorted(wd, key=wd.get, reverse=True)
        err_ratio = {n: (1 - wd[n]) / max(1 - methods[n]["accuracy"], 1e-9) for n in methods}
        best, worst = order[0], order[-1]
        lines += [f"**Which methods carry to other writers.** On the 13 unseen writers the ranking is "
                  + ", ".join(f"{n} {wd[n]:.2%}" for n in order) + ". Every method loses accuracy: the drop from "
                  "MNIST test ranges from " + f"{min(drop.values()):.1%} ({min(drop, key=drop.get)}) to "
                  f"{max(drop.values()):.1%} ({max(drop, key=drop.get)}), and the error rate grows "
                  + ", ".join(f"{err_ratio[n]:.0f}x for {n}" for n in order) + "."]
        conf = methods[best]["other_sets"]["optdigits windep"]["confusions"]
        if conf:
            lines += ["", f"The {best}'s most frequent mistakes on these writers: "
                      + ", ".join(f"{c['true']} read as {c['read_as']} ({c['count']})" for c in conf[:4])
                      + ". These are styles MNIST's writers seldom use: ones written with a long up-stroke "
                      "flag (close to a 7), nines with a hooked tail, open-topped fours, and strokes made "
                      "uniformly thick by the 32x32 binary bitmaps."]
        lines += ["", "**Why.** Methods that compare pixels to stored examples or to a template (k-NN, K-means "
                  "centroids, the linear model) are only as good as their coverage of the writing styles they were "
                  "given; a new writer's style is off that manifold, and a pixel distance does not tell a "
                  "different stroke thickness or a shifted stroke from a different shape. Deskewing (all classic "
                  "models here) removes slant, which is why slanted MNIST costs them little. The RBF SVM and the "
                  "MLP generalise more smoothly between examples, but still on whole-image pixels. The CNN "
                  "looks at local strokes through convolutions and pooling, so a stroke moved by a pixel or two "
                  "still excites the same features, and it was trained with rotations, scaling, shear, "
                  "fractional dilation/erosion and binarisation, i.e. with exactly the variation that separates "
                  f"these writers and pens from MNIST's. {best} carries best ({wd[best]:.2%}); {worst} carries "
                  f"worst ({wd[worst]:.2%})."]
    deg = [k for k in sets if k.startswith("MNIST test ")]
    if deg:
        hard = {k: min(m["other_sets"][k]["accuracy"] for m in methods.values()) for k in deg}
        hardest = min(hard, key=hard.get)
        lines += ["", f"**Other pens.** The hardest degradation is {hardest.replace('MNIST test ', '')} "
                  f"(lowest accuracy {hard[hardest]:.2%}); per method, the mean over the four degraded sets is "
                  + ", ".join(f"{n} {np.mean([m['other_sets'][k]['accuracy'] for k in deg]):.2%}"
                              for n, m in methods.items()) + "."]
    return lines + [""]


def _method_figures(methods, names, out: Path, test_images) -> dict[str, Path]:
    plt = _plt()
    figs: dict[str, Path] = {}
    accs = [methods[n]["accuracy"] * 100 for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(names, accs, color="#2f6fdf")
    ax.set_ylim(min(accs) - 2, 100)
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.bar_label(bars, fmt="%.2f")
    ax.set_title("accuracy by method")
    figs["accuracy"] = _save(fig, out / "accuracy.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for n in names:
        ax.scatter(max(methods[n]["fit_seconds"], 1e-2), methods[n]["accuracy"] * 100, s=50)
        ax.annotate(n, (max(methods[n]["fit_seconds"], 1e-2), methods[n]["accuracy"] * 100), textcoords="offset points",
                    xytext=(5, 3))
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs. training time")
    ax.grid(alpha=0.3)
    figs["accuracy_vs_time"] = _save(fig, out / "accuracy_vs_time.png")

    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.7 * rows), squeeze=False)
    for ax, n in zip(axes.ravel(), names):
        cm = np.asarray(methods[n]["confusion"])
        off = cm.copy()
        np.fill_diagonal(off, 0)
        ax.imshow(off, cmap="Reds")
        for i in range(10):
            for j in range(10):
                if cm[i, j] and i != j:
                    ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=6)
        ax.set_title(f"{n}: errors by (true, predicted)", fontsize=9)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    figs["confusion"] = _save(fig, out / "confusion.png")

    if test_images is not None:
        fig, axes = plt.subplots(len(names), 12, figsize=(12, 1.25 * len(names)), squeeze=False)
        for r, n in enumerate(names):
            wrong = methods[n]["misclassified"][:12]
            for c in range(12):
                ax = axes[r, c]
                ax.axis("off")
                if c < len(wrong):
                    ax.imshow(test_images[wrong[c]["index"]], cmap="gray_r")
                    ax.set_title(f"{wrong[c]['true']}→{wrong[c]['pred']}", fontsize=7)
            axes[r, 0].text(-0.5, 0.5, n, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
        fig.suptitle("misclassified test digits (true→predicted)")
        figs["misclassified"] = _save(fig, out / "misclassified.png")
    return figs


def _unsupervised_and_tuning(results: dict, out: Path, figs: dict) -> None:
    plt = _plt()
    uns = results.get("unsupervised")
    if uns:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ev = np.asarray(uns["explained_variance"]) * 100
        ax.plot(range(1, len(ev) + 1), ev)
        for label, k in uns["components_for"].items():
            ax.axvline(k, ls=":", color="grey")
            ax.text(k, 45, f"{label}: {k}", rotation=90, fontsize=8)
        ax.set_xlabel("principal components")
        ax.set_ylabel("explained variance (%)")
        ax.set_title("PCA of deskewed MNIST")
        figs["pca_variance"] = _save(fig, out / "pca_variance.png")

        fig, ax = plt.subplots(figsize=(6, 5))
        xy = np.asarray(uns["projection_2d"]["xy"])
        lab = np.asarray(uns["projection_2d"]["labels"])
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=lab, cmap="tab10", s=3)
        fig.colorbar(sc, ticks=range(10))
        ax.set_title("first two principal components, coloured by true digit")
        figs["pca_projection"] = _save(fig, out / "pca_projection.png")

        cents = np.asarray(uns["kmeans10"]["centroids"])
        fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
        for ax, c in zip(axes, cents):
            ax.imshow(c, cmap="gray_r")
            ax.axis("off")
        fig.suptitle(f"K-means (k=10) centroids — clustering accuracy {uns['kmeans10']['clustering_accuracy']:.3f}")
        figs["kmeans_centroids"] = _save(fig, out / "kmeans_centroids.png")

    tuning = results.get("tuning") or {}
    if tuning:
        for method, tr in tuning.items():
            params = list(tr["grid"])
            fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
            for ax, p in zip(axes[0], params):
                pts = [(str(t["params"][p]), t["val_accuracy"] * 100) for t in tr["trials"]
                       if all(t["params"][q] == tr["defaults"][q] for q in params if q != p)]
                if pts:
                    ax.plot([x for x, _ in pts], [y for _, y in pts], "o-")
                ax.set_title(p)
                ax.set_ylabel("validation accuracy (%)")
                ax.tick_params(axis="x", labelrotation=30, labelsize=7)
            fig.suptitle(f"{method}: validation curves (one parameter varied, others at defaults)")
            figs[f"tuning_{method}"] = _save(fig, out / f"tuning_{method}.png")


def _table(results: dict) -> list[str]:
    lines = ["| method | accuracy | error rate | test errors | fit s | predict 10k s | µs/digit | model size |",
             "|---|---|---|---|---|---|---|---|"]
    for n, m in results["methods"].items():
        fit = f"{m['fit_seconds']:.1f}" + ("*" if m.get("note") else "")
        lines.append(f"| {n} | {m['accuracy']:.2%} | {m['error_rate']:.2%} | {m['errors']} | {fit} | "
                     f"{m['predict_seconds'] * 10000 / results['test_size']:.2f} | {m['us_per_digit']:.1f} | "
                     f"{m['size_bytes'] / 1e6:.2f} MB |")
    return lines


def markdown(results: dict, figs: dict[str, Path]) -> str:
    env = results["environment"]
    out = ["# digitlab: comparative study on MNIST", "",
           f"Training set: {results['train_size']:,} digits; test set: {results['test_size']:,}. "
           f"Machine: {env['machine']} ({env['cpus']} CPUs, {env['torch_threads']} torch threads), "
           f"Python {env['python']}, torch {env['torch']}, scikit-learn {env['sklearn']}, numpy {env['numpy']}.", "",
           *([f"*Note:* {results['note']}", ""] if results.get("note") else []),
           "## Results", "", *_table(results), "",
           "\\* CNN: scored from the shipped weights; its fit time is that of its recorded training run.", "",
           "![accuracy](accuracy.png)", "", "![accuracy vs time](accuracy_vs_time.png)", "",
           "## Methods and their parameters", ""]
    for n, m in results["methods"].items():
        params = ", ".join(f"{k}={v}" for k, v in m["params"].items())
        out += [f"- **{n}** — {m['description']}. Parameters: {params}. {PARAM_NOTES.get(n, '')}"]
    tuning = results.get("tuning") or {}
    if tuning:
        out += ["", "## Tuning (validation split from the training set, never the test set)", ""]
        for method, tr in tuning.items():
            accs = [t["val_accuracy"] for t in tr["trials"]]
            out += [f"- **{method}**: {len(tr['trials'])} fits on {tr['train_size']:,} training digits, scored on "
                    f"{tr['val_size']:,} validation digits; validation accuracy ranged {min(accs):.2%}–{max(accs):.2%}; "
                    f"best {tr['best']['val_accuracy']:.2%} with {tr['best_changes'] or 'the defaults'}.",
                    "", f"![tuning {method}](tuning_{method}.png)", ""]
    out += ["", "## Errors", "", "![confusion](confusion.png)", "", "![misclassified](misclassified.png)", ""]
    out += _other_sets_section(results)
    uns = results.get("unsupervised")
    if uns:
        k10, raw = uns["kmeans10"], uns["kmeans10_raw"]
        out += ["## Unsupervised", "",
                f"PCA: {uns['components_for']['80%']} components keep 80% of the variance of deskewed digits, "
                f"{uns['components_for']['90%']} keep 90%, {uns['components_for']['95%']} keep 95%.", "",
                "![pca variance](pca_variance.png)", "", "![pca projection](pca_projection.png)", "",
                "| clustering | accuracy (Hungarian) | NMI | ARI | seconds |", "|---|---|---|---|---|",
                f"| K-means k=10, {raw['features']} | {raw['clustering_accuracy']:.3f} | {raw['nmi']:.3f} | {raw['ari']:.3f} | {raw['seconds']:.1f} |",
                f"| K-means k=10, {k10['features']} | {k10['clustering_accuracy']:.3f} | {k10['nmi']:.3f} | {k10['ari']:.3f} | {k10['seconds']:.1f} |"]
        emb = uns.get("embedding", {})
        if "clustering_accuracy" in emb:
            out += [f"| {emb['pipeline']} | {emb['clustering_accuracy']:.3f} | {emb['nmi']:.3f} | {emb['ari']:.3f} | {emb['seconds']:.1f} |"]
        out += ["", "No labels are used by any clustering; labels only score the result (best one-to-one matching "
                "of clusters to digits).", "", "![kmeans centroids](kmeans_centroids.png)", ""]
    comp = results.get("computation")
    if comp:
        q = [k for k in comp if k.startswith("knn_predict_")]
        out += ["## Computation on a big dataset", "",
                f"- A full {comp['distance_matrix_shape'][0]:,} x {comp['distance_matrix_shape'][1]:,} distance matrix in "
                f"float64 would take {comp['full_distance_matrix_gb']:.1f} GB; k-NN "
                "uses scikit-learn's brute-force search, which computes distances in chunks bounded by its working "
                "memory with BLAS, on all cores (`n_jobs=-1`).",
                *[f"- {k.replace('_', ' ')}: {comp[k]:.2f} s" for k in q],
                f"- SVM fit on {[k for k in comp if k.startswith('svm_fit')][0].split('_')[2]} digits: raw 784-D "
                f"{comp[[k for k in comp if k.startswith('svm_fit') and 'raw' in k][0]]:.1f} s vs PCA(50) "
                f"{comp[[k for k in comp if k.startswith('svm_fit') and 'pca' in k][0]]:.1f} s (libsvm is single-threaded; "
                "kernel cost grows with the dimension).",
                f"- Images are kept as uint8 ({comp['uint8_train_mb']:.0f} MB for the training set) and converted to float32 "
                f"({comp['float32_train_mb']:.0f} MB) rather than float64 ({comp['float64_train_mb']:.0f} MB); the "
                "parsed arrays are memory-mapped from a .npy cache.",
                "- The CNN trains with channels-last tensors (1.5x faster convolutions on this CPU) and 2 threads.", ""]
    return "\n".join(out)


def to_html(md_text: str, out: Path) -> str:
    """report.md as one self-contained HTML page (figures embedded as data URLs)."""
    import re

    import markdown as md

    def embed(m):
        data = base64.b64encode((out / m.group(2)).read_bytes()).decode()
        return f"![{m.group(1)}](data:image/png;base64,{data})"

    body = md.markdown(re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", embed, md_text), extensions=["tables"])
    style = ("body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2rem auto;padding:0 1rem;color:#1b1f24}"
             "table{border-collapse:collapse}td,th{border:1px solid #dde1e6;padding:.25rem .5rem;text-align:left}"
             "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>digitlab study</title>"
            f"<style>{style}</style></head><body>{body}</body></html>")


def write_report(results: dict, out_dir, test_images: np.ndarray | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = figures(results, out, test_images)
    md = markdown(results, figs)
    paths = {"md": atomic_write(out / "report.md", md.encode()),
             "html": atomic_write(out / "report.html", to_html(md, out).encode()),
             "json": atomic_write(out / "results.json", json.dumps(_jsonable(results), indent=1).encode())}
    paths.update(figs)
    return paths


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj
