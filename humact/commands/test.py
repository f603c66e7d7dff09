"""`humact test`: multi-clip testing of a trained skeleton model, with metrics and a confusion matrix.

GCNs average the softmax of `--clips` clips; PoseConv3D that of `--clips` clips and their mirror
images (2 x clips views, PYSKL's flip test).

Writes to `--out`: `metrics.json` (top-1, top-5, mean class accuracy, clips, sample count),
`confusion.png` and `scores.npy` ((N, classes) probabilities, for late-fusion ensembles:
`--fuse J/scores.npy B/scores.npy JM/scores.npy BM/scores.npy` combines saved stream scores with
`humact.skeleton.ensemble.fuse_scores`, without re-running the models; each file's stream is read
from its model's config, in any order, and several models of one stream share its weight).
"""

from __future__ import annotations

import argparse

HELP = "test a trained skeleton model (multi-clip), or fuse saved stream scores"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("test", help=HELP, description=HELP + ".")
    p.add_argument("checkpoint", nargs="?", help="model.safetensors written by `humact train`")
    p.add_argument("--dataset", help="data kind (default: the checkpoint's training config)")
    p.add_argument("--data", help="data path (default: the checkpoint's training config)")
    p.add_argument("--split", help="split to test (default: the config's test_split)")
    p.add_argument("--clips", type=int, help="test clips per sample (default: the config's test_clips)")
    p.add_argument("--fuse", nargs="+", metavar="SCORES", help="scores.npy files of streams to fuse instead")
    p.add_argument("--weights", nargs="+", type=float,
                   help="fusion weights, one per --fuse file (default for GCN streams: CTR-GCN's 0.6 j, 0.6 b, "
                        "0.4 jm, 0.4 bm, shared by the models of a stream; else equal)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def write_results(probs, dataset, out, extra: dict) -> dict:
    """metrics.json, confusion.png and scores.npy for probabilities (N, C) on `dataset`."""
    import json
    from pathlib import Path

    import numpy as np

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


def test_checkpoint(checkpoint, dataset, out, *, num_clips: int) -> dict:
    """Multi-clip test of a checkpoint on `dataset`; writes the results to `out`."""
    import time

    from humact.cli import UserError
    from humact.skeleton.recognize import Recognizer, predict_dataset

    rec = Recognizer.from_checkpoint(checkpoint)
    if tuple(dataset.classes) != rec.classes:
        raise UserError(f"{checkpoint}: trained on classes {rec.classes}, the test data has {dataset.classes}")
    dataset.layout = rec.layout
    t0 = time.perf_counter()
    try:
        inputs = rec.inputs(dataset, num_clips)
    except ValueError as e:
        raise UserError(f"{checkpoint}: {e}") from e
    probs = predict_dataset(rec.inference_model, inputs)
    views = 2 * num_clips if rec.kind == "posec3d" else num_clips
    return write_results(probs, dataset, out, {"checkpoint": str(checkpoint), "model": rec.kind,
                                               "num_clips": num_clips, "num_views": views,
                                               "test_seconds": time.perf_counter() - t0})


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from humact.cli import UserError
    from humact.skeleton.datasets import load_dataset
    from humact.skeleton.ensemble import fuse_scores, stream_weights

    torch.set_num_threads(args.threads)
    if args.fuse:
        if args.checkpoint:
            raise UserError("give either a checkpoint or --fuse score files, not both")
        metas = [Path(f).with_name("metrics.json") for f in args.fuse]
        for m in metas:
            if not m.is_file():
                raise UserError(f"{m}: the metrics.json next to a --fuse scores file is missing")
        info = [json.loads(m.read_text()) for m in metas]
        probs = [np.load(f) for f in args.fuse]
        if len({p.shape for p in probs}) != 1:
            raise UserError(f"--fuse: score arrays differ in shape: {[p.shape for p in probs]}")
        if args.weights and len(args.weights) != len(probs):
            raise UserError(f"--weights: {len(args.weights)} weights for {len(probs)} score files")
        cfgs = []
        for m, i in zip(metas, info):
            ckpt_meta = Path(i.get("checkpoint", "")).with_suffix(".json")
            if "checkpoint" not in i or not ckpt_meta.is_file():
                raise UserError(f"{m}: field 'checkpoint' does not name a model whose .json is readable "
                                f"(fuse the scores of `humact test` runs)")
            cfgs.append(json.loads(ckpt_meta.read_text())["config"])
        cfg = cfgs[0]
        data = load_dataset(args.dataset or cfg["dataset"], args.data or cfg["data"], args.split or cfg["test_split"],
                            fold=cfg["fold"], classes=tuple(cfg["classes"]) or None)
        weights = args.weights
        if weights is None:
            # Each model's stream from its training config; heatmap models (PoseConv3D) have none.
            gcn = all(c.get("model") != "posec3d" for c in cfgs)
            weights = stream_weights([c["stream"] for c in cfgs]) if gcn else [1.0] * len(probs)
        fused = fuse_scores(probs, weights)
        write_results(fused / fused.sum(1, keepdims=True), data, args.out,
                      {"fused": list(args.fuse), "weights": list(weights)})
        return 0
    if not args.checkpoint:
        raise UserError("give a checkpoint (model.safetensors) or --fuse score files")
    ckpt = Path(args.checkpoint)
    meta_path = ckpt.with_suffix(".json")
    if not ckpt.is_file() or not meta_path.is_file():
        raise UserError(f"{ckpt}: need the checkpoint and its .json (written by `humact train`)")
    cfg = json.loads(meta_path.read_text())["config"]
    try:
        data = load_dataset(args.dataset or cfg["dataset"], args.data or cfg["data"], args.split or cfg["test_split"],
                            fold=cfg["fold"], classes=tuple(cfg["classes"]) or None)
    except ValueError as e:
        raise UserError(str(e)) from e
    test_checkpoint(ckpt, data, args.out, num_clips=args.clips or cfg["test_clips"])
    return 0
