"""Clip-level recognition metrics: top-k accuracy, mean class accuracy, confusion matrix.

Same definitions as PYSKL's / MMAction2's `top_k_accuracy`, `mean_class_accuracy`
and `confusion_matrix`, on NumPy arrays:

    scores: (N, C) float, one row of class scores (logits or probabilities) per sample
    labels: (N,) int, the true class of each sample, in [0, C)
    pred:   (N,) int, the predicted class of each sample, in [0, C)
"""

from __future__ import annotations

import numpy as np

__all__ = ["topk_accuracy", "mean_class_accuracy", "confusion_matrix"]


def _check_scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores: expected shape (N, C), got {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels: expected shape ({scores.shape[0]},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels: class indices must lie in [0, {scores.shape[1]}), "
                         f"got [{labels.min()}, {labels.max()}]")
    if scores.shape[0] == 0:
        raise ValueError("scores: no samples (N = 0); accuracy is undefined")
    return scores, labels


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of samples whose true class is among the `k` highest scores.

    Args:
        scores: (N, C) class scores.
        labels: (N,) true class indices.
        k: how many top classes count as a hit (1 <= k; k >= C gives 1.0).

    Ties at the k-th score are broken by `np.argsort` (stable, so the lower class
    index wins), which is what PYSKL's `top_k_accuracy` does with `argsort(...)[:, -k:]`
    up to the order among exactly equal scores.
    """
    scores, labels = _check_scores_labels(scores, labels)
    if k < 1:
        raise ValueError(f"k: expected k >= 1, got {k}")
    k = min(k, scores.shape[1])
    # Stable descending sort: negate, so equal scores keep ascending class order.
    topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(topk == labels[:, None], axis=1)))


def confusion_matrix(pred, labels, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; entry [i, j] = samples of true class i predicted as j.

    Args:
        pred: (N,) predicted class indices in [0, num_classes).
        labels: (N,) true class indices in [0, num_classes).
        num_classes: C.
    """
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    if pred.ndim != 1 or labels.shape != pred.shape:
        raise ValueError(f"pred, labels: expected two (N,) arrays, got {pred.shape} and {labels.shape}")
    for name, a in (("pred", pred), ("labels", labels)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}: expected integer class indices, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name}: class indices must lie in [0, {num_classes}), got [{a.min()}, {a.max()}]")
    flat = labels.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.int64)


def mean_class_accuracy(scores, labels) -> float:
    """Top-1 accuracy averaged over the classes that occur in `labels`.

    Classes with no sample are left out of the mean (as in PYSKL), so a test set
    that lacks a class does not get a free 0 or 1 for it.

    Args:
        scores: (N, C) class scores.
        labels: (N,) true class indices.
    """
    scores, labels = _check_scores_labels(scores, labels)
    num_classes = scores.shape[1]
    pred = np.argmax(scores, axis=1)  # first maximum on ties, like topk_accuracy(k=1)
    cm = confusion_matrix(pred, labels, num_classes)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))
