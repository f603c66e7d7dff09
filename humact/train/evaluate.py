"""Testing trained skeleton models: multi-clip test of a checkpoint, and late fusion of saved scores.

    test_checkpoint(ckpt, dataset, out)   GCNs: softmax averaged over `num_clips` clips; PoseConv3D:
                                          over clips x their mirror images (2 x clips views)
    test_saved(ckpt, out)                 the same on the data the checkpoint's config names
    fuse_saved(scores_files, out)         weighted sum of saved `scores.npy` (one per stream / model)

Each writes to `out`: `metrics.json` (top-1, top-5, mean class accuracy, clips, sample count),
`confusion.png` and `scores.npy` ((N, classes) probabilities, what `fuse_saved` reads back).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from humact import zoo
from humact.config import read_saved_config
from humact.errors import CheckpointError, InputError, one_line
from humact.io.checkpoints import read_meta
from humact.skeleton.datasets import SkeletonDataset, load_dataset

__all__ = ["write_results", "test_checkpoint", "test_saved", "fuse_saved"]


def write_results(probs: np.ndarray, dataset: SkeletonDataset, out: str | os.PathLike, extra: dict) -> dict:
    """metrics.json, confusion.png and scores.npy for probabilities (N, C) on `dataset`."""
    from humact.eval.plots import plot_confusion_matrix
    from humact.eval.recognition import confusion_matrix, mean_class_accuracy, topk_accuracy
    from humact.io.atomic import atomic_write

    out = Path(out)
    labels = dataset.labels
    metrics = {"top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, min(5, probs.shape[1])),
               "mean_class_accuracy": mean_class_accuracy(probs, labels), "num_samples": int(len(labels)),
               "classes": list(dataset.classes), **extra}
    with atomic_write(out / "metrics.json") as f:
        json.dump(metrics, f, indent=2)
    with atomic_write(out / "scores.npy", "wb") as f:
        np.save(f, probs.astype(np.float32))
    cm = confusion_matrix(probs.argmax(1), labels, len(dataset.classes))
    plot_confusion_matrix(cm, dataset.classes, out / "confusion.png",
                          title=f"{Path(out).name}: top-1 {metrics['top1']:.2%}")
    print(f"top1 {metrics['top1']:.4f}  top5 {metrics['top5']:.4f}  mean class acc "
          f"{metrics['mean_class_accuracy']:.4f}  ({len(labels)} samples) -> {out / 'metrics.json'}")
    return metrics


def test_checkpoint(checkpoint: str | os.PathLike, dataset: SkeletonDataset, out: str | os.PathLike, *,
                    num_clips: int) -> dict:
    """Multi-clip test of a checkpoint on `dataset`; writes the results to `out`."""
    from humact.eval.recognition import topk_accuracy
    from humact.recognize.skeleton import Recognizer, predict_streams

    rec = Recognizer.from_checkpoint(checkpoint)
    if tuple(dataset.classes) != rec.classes:
        raise InputError(f"{checkpoint}: trained on classes {rec.classes}, the test data has {dataset.classes}")
    dataset.layout = rec.layout
    t0 = time.perf_counter()
    inputs = rec.inputs(dataset, num_clips)
    streams = predict_streams(rec.inference_model, inputs)  # distributed: shared out, gathered on every rank
    from humact.scale.ddp import is_main

    if not is_main():  # rank 0 writes the results
        return {}
    views = 2 * num_clips if zoo.get(rec.kind).input == "heatmap" else num_clips
    extra = {"checkpoint": str(checkpoint), "model": rec.kind, "num_clips": num_clips, "num_views": views}
    # Several heads (RGBPoseConv3D): each head's top-1 beside the fused one, as PYSKL reports them.
    extra.update({f"{k}_top1": topk_accuracy(v, dataset.labels, 1) for k, v in streams.items() if k != "fused"})
    return write_results(streams["fused"], dataset, out, dict(extra, test_seconds=time.perf_counter() - t0))


def _dataset_of(cfg, dataset: str | None, data: str | None, split: str | None, layout=None) -> SkeletonDataset:
    d = cfg.data
    return load_dataset(dataset or d.dataset, data or d.path, split or d.test_split, fold=d.fold,
                        classes=tuple(d.classes) or None, layout=layout)


def _layout_of(checkpoint: Path, meta: dict):
    """The layout a checkpoint was trained on (a custom one travels inside it), for reading test data."""
    from humact.recognize.skeleton import _saved_layout

    return _saved_layout(meta, str(checkpoint.with_suffix(".json"))) if "layout" in meta else None


def test_saved(checkpoint: str | os.PathLike, out: str | os.PathLike, *, dataset: str | None = None,
               data: str | None = None, split: str | None = None, clips: int | None = None) -> dict:
    """`test_checkpoint` on the data the checkpoint's config names (each part overridable)."""
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: no such checkpoint (give a model.safetensors written by `humact train`)")
    source = str(ckpt.with_suffix(".json"))
    meta = read_meta(ckpt)
    cfg = read_saved_config(meta, source)
    return test_checkpoint(ckpt, _dataset_of(cfg, dataset, data, split, _layout_of(ckpt, meta)), out,
                           num_clips=clips or cfg.input.test_clips)


def fuse_saved(scores: Sequence[str | os.PathLike], out: str | os.PathLike, *,
               weights: Sequence[float] | None = None, dataset: str | None = None, data: str | None = None,
               split: str | None = None) -> dict:
    """Late fusion of saved `scores.npy` files of `humact test` runs, without re-running the models.

    Each file's model is found through the `checkpoint` field of the `metrics.json` beside it, and
    its stream through that model's config; default weights are CTR-GCN's per stream (0.6 j, 0.6 b,
    0.4 jm, 0.4 bm), shared by the models of a stream, or equal for heatmap models. The fused
    probabilities are renormalised and scored on the first model's test data.
    """
    from humact.skeleton.ensemble import fuse_scores, stream_weights

    paths = [Path(f) for f in scores]
    probs, cfgs, metas, ckpts = [], [], [], []
    for f in paths:
        metrics_path = f.with_name("metrics.json")
        if not f.is_file():
            raise InputError(f"{f}: no such scores file")
        if not metrics_path.is_file():
            raise InputError(f"{metrics_path}: the metrics.json next to a fused scores file is missing")
        try:
            info = json.loads(metrics_path.read_text(encoding="utf-8"))
            ckpt = Path(info["checkpoint"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise InputError(f"{metrics_path}: field 'checkpoint' does not name a model ({one_line(e)}); fuse "
                             f"the scores of `humact test` runs") from None
        if not ckpt.with_suffix(".json").is_file():
            raise InputError(f"{metrics_path}: field 'checkpoint': {ckpt.with_suffix('.json')} is not readable "
                             f"(fuse the scores of `humact test` runs whose models still exist)")
        metas.append(read_meta(ckpt))
        ckpts.append(ckpt)
        cfgs.append(read_saved_config(metas[-1], str(ckpt.with_suffix(".json"))))
        try:
            p = np.load(f, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputError(f"{f}: not a scores .npy file ({one_line(e)})") from None
        if p.ndim != 2:
            raise InputError(f"{f}: expected (samples, classes) scores, got shape {p.shape}")
        probs.append(p)
    if len({p.shape for p in probs}) != 1:
        raise InputError(f"fuse: score arrays differ in shape: {[p.shape for p in probs]}")
    if weights is not None and len(weights) != len(probs):
        raise InputError(f"weights: {len(weights)} weights for {len(probs)} score files")
    if weights is None:
        gcn = all(zoo.get(c.model.name).input == "skeleton" for c in cfgs)
        weights = stream_weights([c.input.stream for c in cfgs]) if gcn else [1.0] * len(probs)
    data = _dataset_of(cfgs[0], dataset, data, split, _layout_of(ckpts[0], metas[0]))
    fused = fuse_scores(probs, weights)
    extra: dict[str, Any] = {"fused": [str(f) for f in paths], "weights": list(weights)}
    return write_results(fused / fused.sum(1, keepdims=True), data, out, extra)
