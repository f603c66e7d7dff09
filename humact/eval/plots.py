"""Evaluation pictures as PNG files: confusion matrix, per-class AP bars, precision-recall curves.

matplotlib runs on its Agg backend (no display needed) and is imported inside each
function, so importing `humact.eval` stays light. Every file is written atomically.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from humact.io.atomic import atomic_write

__all__ = ["plot_confusion_matrix", "plot_per_class_ap", "plot_pr_curves"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                          normalize: bool = True, title: str = "Confusion matrix") -> None:
    """Confusion matrix (C, C) (rows = true class, as `recognition.confusion_matrix`) as a PNG.

    Args:
        cm: (C, C) counts.
        class_names: C names, in class-index order.
        path: output .png.
        normalize: show each row as fractions of its true class (rows without samples stay 0).
    """
    cm = np.asarray(cm)
    c = len(class_names)
    if cm.shape != (c, c):
        raise ValueError(f"cm: expected shape ({c}, {c}) for {c} class names, got {cm.shape}")
    shown = cm.astype(np.float64)
    if normalize:
        rows = shown.sum(axis=1, keepdims=True)
        shown = np.divide(shown, rows, out=np.zeros_like(shown), where=rows > 0)
    plt = _pyplot()
    size = max(4.0, 0.35 * c + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(c), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(c), class_names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if c <= 20:  # numbers stay readable only on small matrices
        for i in range(c):
            for j in range(c):
                ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else str(cm[i, j]), ha="center", va="center",
                        fontsize=6, color="white" if shown[i, j] > 0.5 * (shown.max() or 1) else "black")
    _save(fig, path)
    plt.close(fig)


def plot_per_class_ap(ap: dict, names: dict, path: str | os.PathLike, title: str = "AP per class") -> None:
    """Horizontal bar chart of per-class AP, best class on top, with the mean as a line.

    Args:
        ap: {class id: AP in [0, 1]}.
        names: {class id: name}.
        path: output .png.
    """
    if not ap:
        raise ValueError("ap: no classes to plot")
    ids = sorted(ap, key=lambda k: ap[k])
    vals = [ap[k] for k in ids]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(ids) + 1)))
    ax.barh(range(len(ids)), vals, color="tab:blue")
    ax.set_yticks(range(len(ids)), [names.get(k, str(k)) for k in ids], fontsize=7)
    mean = float(np.mean(vals))
    ax.axvline(mean, color="tab:red", linestyle="--", label=f"mean {mean:.4f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("AP")
    ax.set_title(title)
    ax.legend(loc="lower right")
    _save(fig, path)
    plt.close(fig)


def plot_pr_curves(curves: dict, names: dict, path: str | os.PathLike, max_classes: int = 12,
                   ap: dict | None = None, title: str = "Precision-recall") -> None:
    """Precision-recall curves, one line per class.

    Args:
        curves: {class id: (precision (K,), recall (K,))} in ranked order (e.g. `AvaResult.curves`).
        names: {class id: name}.
        path: output .png.
        max_classes: draw at most this many (the highest-AP ones when `ap` is given).
        ap: optional {class id: AP} for the legend and the choice of classes.
    """
    ids = list(curves)
    if ap:
        ids.sort(key=lambda k: -ap.get(k, 0.0))
    ids = ids[:max_classes]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for k in ids:
        p, r = curves[k]
        label = names.get(k, str(k)) + (f" ({ap[k]:.3f})" if ap and k in ap else "")
        ax.plot(np.asarray(r), np.asarray(p), label=label, linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    if ids:
        ax.legend(fontsize=6, loc="lower left")
    _save(fig, path)
    plt.close(fig)
