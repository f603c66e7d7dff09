"""Multi-view testing: run a model on every test view of each sample and average the views' scores.

Every recognizer's ``predict`` (ST-GCN / ST-GCN++, ``Recognizer3D`` including PoseConv3D,
RGBPoseConv3D, and their inference twins) is :func:`predict_clips`; only what a view is
differs: a skeleton clip ``(M, T, V, C)``, a heatmap volume ``(K, T, H, W)``, an RGB clip
``(3, T, H, W)`` (clips x crops x flips).

    x (N, views, ...) --flatten--> (N * views, ...) --model--> logits (N * views, classes)
      --average_clips--> scores (N, classes)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

__all__ = ["average_clips", "predict_clips"]


def average_clips(scores: torch.Tensor, num_clips: int, mode: str = "prob") -> torch.Tensor:
    """(N * num_clips, K) clip logits -> (N, K) video scores.

    mode 'prob': mean of softmax probabilities (PYSKL's PoseConv3D test setting);
    'score': mean of logits; 'none': mean without any normalisation of the result's
    meaning (same as 'score', kept for MMAction2 config compatibility).
    """
    if scores.shape[0] % num_clips:
        raise ValueError(f"average_clips: {scores.shape[0]} rows is not a multiple of num_clips={num_clips}")
    scores = scores.reshape(-1, num_clips, scores.shape[-1])
    if mode == "prob":
        return scores.softmax(dim=-1).mean(dim=1)
    if mode in ("score", "none"):
        return scores.mean(dim=1)
    raise ValueError(f"average_clips mode: expected 'prob', 'score' or 'none', got {mode!r}")


@torch.no_grad()
def predict_clips(model: Callable[..., torch.Tensor | Mapping[str, torch.Tensor]], x: torch.Tensor,
                  *more: torch.Tensor, mode: str = "prob", batch_size: int = 0,
                  layout: str | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
    """Clip-averaged scores of ``model`` over the test views of each sample.

    Args:
        model: called on ``(N * views, ...)`` batches (one per input), returning logits
            ``(N * views, classes)`` or a dict of them (one per head, e.g. RGBPoseConv3D's
            ``{'rgb', 'pose'}``). Call ``.eval()`` on it first.
        x, *more: the inputs, each ``(N, views, ...)``, with the same ``N`` and ``views``.
        mode: ``average_clips`` mode: ``'prob'`` (mean softmax), ``'score'`` / ``'none'``
            (mean logits).
        batch_size: > 0 runs the ``N * views`` rows in chunks of that many, to bound memory.
        layout: when given, the input layout, e.g. ``'(N, clips, M, T, V, C)'``: an input with
            another number of dimensions is refused with a ``ValueError`` naming it.

    Returns:
        ``(N, classes)`` scores, or a dict of them when ``model`` returns a dict.
    """
    inputs = (x,) + more
    for t in inputs:
        if layout is not None and t.dim() != layout.count(",") + 1:
            raise ValueError(f"predict: expected {layout}, got shape {tuple(t.shape)}")
        if t.dim() < 2 or t.shape[:2] != x.shape[:2]:
            raise ValueError(f"predict: every input must be (N, views, ...) with the same N and views, "
                             f"got shapes {[tuple(t.shape) for t in inputs]}")
    n, views = x.shape[:2]
    rows = n * views
    if rows == 0:
        raise ValueError(f"predict: no views to average (input shape {tuple(x.shape)})")
    flat = [t.reshape((rows,) + t.shape[2:]) for t in inputs]
    step = batch_size if batch_size > 0 else rows
    outs = [model(*(f[i:i + step] for f in flat)) for i in range(0, rows, step)]
    if isinstance(outs[0], Mapping):
        return {k: average_clips(_cat([o[k] for o in outs]), views, mode) for k in outs[0]}
    return average_clips(_cat(outs), views, mode)


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)
