"""Multi-stream late fusion for skeleton models (joint, bone, joint-motion, bone-motion).

The 2s-AGCN / CTR-GCN / PYSKL recipe: train one model per input stream (``'j'``, ``'b'``,
``'jm'``, ``'bm'``, see :func:`humact.skeleton.pipelines.gen_ske_feat`) and add their
class scores with per-stream weights. Functional first:

- :func:`fuse_scores`: ``[(N, C), ...]`` per-stream scores -> ``(N, C)`` weighted sum;
- :func:`search_weights`: pick weights on a *validation slice of the training data* by
  accuracy over a small grid (never on the test split);
- :class:`MultiStreamEnsemble`: the trained models plus weights; ``predict(joints)`` builds
  each stream from the same joint clips and fuses the clip-averaged probabilities.

Shapes: joint clips ``(N, clips, M, T, V, C)``; scores ``(N, num_classes)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from humact.skeleton.graph import Layout, get_layout
from humact.skeleton.pipelines import STREAMS, gen_ske_feat

__all__ = ["STREAMS", "CTRGCN_WEIGHTS", "stream_input", "fuse_scores", "stream_weights", "search_weights",
           "MultiStreamEnsemble"]

#: CTR-GCN's 4-stream weights (joint, bone, joint motion, bone motion).
CTRGCN_WEIGHTS: dict[str, float] = {"j": 0.6, "b": 0.6, "jm": 0.4, "bm": 0.4}


def stream_input(joints: np.ndarray | torch.Tensor, layout: str | Layout, stream: str,
                 score_channel: bool | None = None) -> torch.Tensor:
    """One stream from joint clips ``(..., M, T, V, C)`` (any leading dims), float32 tensor.

    `humact.skeleton.pipelines.gen_ske_feat` on each clip: bones use the layout's bone pairs;
    motions are temporal differences within each clip; a score channel (2D joints with their
    confidence as C = 3; by default for 2D layouts) is averaged instead of differenced, as in PYSKL.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; use one of {STREAMS}")
    lay = get_layout(layout) if isinstance(layout, str) else layout
    x = joints.detach().cpu().numpy() if isinstance(joints, torch.Tensor) else np.asarray(joints)
    shape = x.shape
    x = x.reshape((-1,) + shape[-3:]).astype(np.float32)  # (N * clips * M, T, V, C)
    x = gen_ske_feat(x, None, lay, (stream,), score_channel=score_channel)
    return torch.from_numpy(np.ascontiguousarray(x.reshape(shape)))


def fuse_scores(scores: Sequence[np.ndarray] | Mapping[str, np.ndarray],
                weights: Sequence[float] | Mapping[str, float] | None = None) -> np.ndarray:
    """Weighted sum of per-stream class scores ``(N, C)`` -> ``(N, C)``.

    ``scores`` and ``weights`` are both sequences (same order) or both mappings keyed by
    stream; ``weights=None`` weighs every stream 1.
    """
    if isinstance(scores, Mapping):
        names = list(scores)
        if weights is None:
            weights = {k: 1.0 for k in names}
        if not isinstance(weights, Mapping):
            raise ValueError("fuse_scores: scores is a mapping, so weights must be one too")
        missing = [k for k in names if k not in weights]
        if missing:
            raise ValueError(f"fuse_scores: no weight for stream(s) {missing}")
        arrays, w = [scores[k] for k in names], [float(weights[k]) for k in names]
    else:
        arrays = list(scores)
        w = [1.0] * len(arrays) if weights is None else [float(v) for v in weights]
        if len(w) != len(arrays):
            raise ValueError(f"fuse_scores: {len(arrays)} score arrays but {len(w)} weights")
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"fuse_scores: score arrays differ in shape: {sorted(shapes)}")
    return sum(wi * np.asarray(a, dtype=np.float64) for wi, a in zip(w, arrays))


def stream_weights(streams: Sequence[str], base: Mapping[str, float] = CTRGCN_WEIGHTS) -> list[float]:
    """One fusion weight per model from the stream each was trained on.

    A stream's weight (default CTR-GCN's 0.6 / 0.6 / 0.4 / 0.4) is shared equally by that
    stream's models, so several seeds of a stream count as one averaged stream:
    ``stream_weights(["j", "b", "j"]) == [0.3, 0.6, 0.3]``.
    """
    unknown = sorted({s for s in streams if s not in base})
    if unknown:
        raise ValueError(f"stream_weights: no weight for stream(s) {unknown}; known: {sorted(base)}")
    return [float(base[s]) / streams.count(s) for s in streams]


def search_weights(scores: Mapping[str, np.ndarray], labels: np.ndarray, *,
                   grid: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> dict[str, float]:
    """Stream weights maximising top-1 accuracy on a validation slice (ties: the first found).

    ``scores``: per-stream ``(N, C)`` probabilities on held-out *training* samples;
    ``labels``: ``(N,)``. The first stream's weight is fixed to 1 (only ratios matter).
    """
    names = list(scores)
    labels = np.asarray(labels)
    best, best_acc = {k: 1.0 for k in names}, -1.0
    for rest in itertools.product(grid, repeat=len(names) - 1):
        w = dict(zip(names, (1.0,) + tuple(rest)))
        acc = float((fuse_scores(scores, w).argmax(1) == labels).mean())
        if acc > best_acc + 1e-12:
            best, best_acc = w, acc
    return best


class MultiStreamEnsemble(nn.Module):
    """Models for several streams of the same skeletons, fused with weights.

    Args:
        models: ``{stream: model}``, each model with ``predict((N, clips, M, T, V, C))`` ->
            ``(N, num_classes)`` probabilities (e.g. :class:`~humact.skeleton.stgcn.RecognizerGCN`).
        layout: the joints' layout (bone pairs).
        weights: ``{stream: weight}``; default 1 each.
    """

    def __init__(self, models: Mapping[str, nn.Module], layout: str | Layout,
                 weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        unknown = [k for k in models if k not in STREAMS]
        if unknown:
            raise ValueError(f"MultiStreamEnsemble: unknown stream(s) {unknown}; use {STREAMS}")
        self.models = nn.ModuleDict(dict(models))
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        self.weights = {k: float((weights or {}).get(k, 1.0)) for k in models}

    @torch.no_grad()
    def stream_scores(self, joints: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
        """Per-stream clip-averaged probabilities ``{stream: (N, num_classes)}``."""
        return {k: m.predict(stream_input(joints, self.layout, k)).cpu().numpy()
                for k, m in self.models.items()}

    def predict(self, joints: np.ndarray | torch.Tensor) -> np.ndarray:
        """Fused scores ``(N, num_classes)`` for joint clips ``(N, clips, M, T, V, C)``."""
        return fuse_scores(self.stream_scores(joints), self.weights)
