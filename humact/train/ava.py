"""One AVA detector training run: AVA-format data, MMAction2's recipe, the shared Trainer, frame-mAP at the end.

    TrainConfig (data.dataset "ava")
      --humact.detect.dataset.read_ava_keyframes / open_sources--> AVADetectionDataset (train)
      --humact.video_models.ava.build_detector (model.base_channels, model.norm_eval, model.dropout)-->
      --humact.train.trainer.Trainer (model-level loss: ava_loss; DDP, accumulation, resume)-->
        model.safetensors + model.json (config, class names and ids, the test input spec)
      --evaluate_detector on data.ava_val: the clips of `humact detect` (test window, short side
        data.ava_test_scale), sigmoid scores >= 0.002 --> val.ava.csv
      --humact.eval.ava.evaluate_ava_files (the exact `humact eval ava`)--> metrics.json

The checkpoint loads into `humact detect --model NAME --checkpoint OUT/model.safetensors`.
`train_model` (humact.train.run) sends AVA detectors here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from humact.config import TrainConfig
from humact.errors import ConfigError, InputError

__all__ = ["train_ava", "load_ava_data", "evaluate_detector", "DET_THRESHOLD"]

#: scores below are not written (MMAction2's AVA evaluation and `humact detect`'s default)
DET_THRESHOLD = 0.002


def _need_file(value: str, field: str) -> str:
    if not value:
        raise ConfigError(f"{field}: required for AVA training (--{field.split('.')[-1].replace('_', '-')})")
    if not Path(value).exists():
        raise InputError(f"{value}: not found (field {field})")
    return value


def _label_ids(cfg: TrainConfig):
    """The label map (or None) and the number of classes: 81 (AVA's 80 + background) unless the map
    has larger ids."""
    d = cfg.data
    if not d.ava_label_map:
        return None, 81
    from humact.eval.ava import read_label_map

    lm = read_label_map(_need_file(d.ava_label_map, "data.ava_label_map"))
    return lm, max(81, max(lm.ids) + 1)


def load_ava_data(cfg: TrainConfig, spec, *, train: bool, csv: str | None = None, proposals: str | None = None,
                  exclusions: str | None = None, field: str = "data.path"):
    """The AVADetectionDataset of a config (training: data.path; else `csv`, e.g. data.ava_val)."""
    from humact.detect.dataset import AVADetectionDataset, open_sources, read_ava_keyframes

    d = cfg.data
    lm, num_classes = _label_ids(cfg)
    csv = _need_file(csv or d.path, field)
    for value, name in ((proposals, "proposals"), (exclusions, "exclusions")):
        if value:
            _need_file(value, f"data.ava_{'val_' if field != 'data.path' else ''}{name}")
    kfs = read_ava_keyframes(csv, num_classes=num_classes, exclusions=exclusions or None,
                             label_ids=lm.ids if lm else None, proposals=proposals or None,
                             det_threshold=d.ava_det_threshold, field=field)
    sources = open_sources(_need_file(d.ava_videos, "data.ava_videos"), [k.video_id for k in kfs], fps=d.ava_fps)
    return AVADetectionDataset(kfs, sources, spec, train=train, scale=tuple(d.ava_scale), crop=d.ava_crop,
                               flip=cfg.input.flip, test_scale=d.ava_test_scale, pos_iou=d.ava_pos_iou,
                               max_rois=d.ava_max_rois, negatives=d.ava_negatives,
                               timestamp_start=d.ava_timestamp_start, seed=cfg.run.seed, source=csv)


@torch.no_grad()
def evaluate_detector(model: torch.nn.Module, data, spec, name: str, class_ids: np.ndarray, out_csv: Path,
                      *, boxes: str = "gt", threshold: float = DET_THRESHOLD, progress: bool = False) -> int:
    """Score every keyframe of `data` (a test-mode AVADetectionDataset) the way `humact detect` does
    (`humact.detect.rgb.AVAClipDetector.probabilities`: test window, short side `spec.short_side`,
    sigmoid) on its proposals ("proposals", falling back to the ground-truth boxes where a keyframe has
    none) or its ground-truth boxes ("gt"); write the AVA CSV; return its number of rows."""
    from humact.detect.rgb import AVAClipDetector
    from humact.eval.ava import AvaDetections, write_ava_detections
    from humact.progress import progress as bar

    was = model.training
    model.eval()
    det = AVAClipDetector(model, spec, name)
    vids, stamps, bxs, acts, scores = [], [], [], [], []
    for i in bar(range(len(data)), total=len(data), desc="evaluate", unit="keyframe", enabled=progress):
        frames, k = data.frames(i)
        norm = k.proposals if boxes == "proposals" and len(k.proposals) else k.boxes
        h, w = frames.shape[1:3]
        p = det.probabilities(frames, norm * np.array([w, h, w, h]))[:, 1:]
        r, c = np.nonzero(p >= threshold)
        vids += [k.video_id] * len(r)
        stamps.append(np.full(len(r), k.timestamp))
        bxs.append(np.clip(norm[r], 0.0, 1.0))
        acts.append(class_ids[c])
        scores.append(p[r, c])
    model.train(was)
    cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)  # noqa: E731
    rows = AvaDetections(np.array(vids, object), cat(stamps, (0,)), cat(bxs, (0, 4)), cat(acts, (0,)),
                         cat(scores, (0,)))
    write_ava_detections(out_csv, rows)
    return len(rows.video)


def train_ava(cfg: TrainConfig, world, *, resume: bool, test: bool, progress: bool,
              log: Callable[[str], None] | None):
    """Train the AVA detector `cfg` names on its AVA-format data (module docstring) -> TrainResult."""
    from humact import zoo
    from humact.scale import ddp
    from humact.train.trainer import TrainResult
    from humact.train.trainer import Trainer
    from humact.video_models.ava import build_detector

    torch.set_num_threads(cfg.run.num_threads)
    name = cfg.model.name
    spec = replace(zoo.get(name, "ava").spec, short_side=cfg.data.ava_test_scale)
    train = load_ava_data(cfg, spec, train=True)
    if len(train) < cfg.optim.batch_size:
        raise InputError(f"{cfg.data.path}: {len(train)} training keyframes, fewer than optim.batch_size "
                         f"{cfg.optim.batch_size}")
    lm, num_classes = _label_ids(cfg)
    names = lm.as_dict() if lm else {}
    class_ids = np.arange(1, num_classes, dtype=np.int64)
    torch.manual_seed(cfg.run.seed)
    try:
        model, _ = build_detector(name, num_classes=num_classes, dropout=cfg.model.dropout,
                                  base_channels=cfg.model.base_channels, norm_eval=cfg.model.norm_eval)
    except ValueError as e:
        raise ConfigError(f"model.base_channels: {e}") from None
    if cfg.run.device == "cuda":
        model = model.to(torch.device("cuda", world.local_rank))
    n_boxes = sum(len(k.boxes) for k in train.keyframes)
    meta = {"config": cfg.to_dict(), "kind": "ava", "classes": [names.get(int(i), f"action {int(i)}") for i in class_ids],
            "class_ids": class_ids.tolist(), "num_train": len(train), "train_boxes": n_boxes,
            "train_source": str(cfg.data.path),
            "spec": {"clip_len": spec.clip_len, "frame_interval": spec.frame_interval, "short_side": spec.short_side,
                     "mean": list(spec.mean), "std": list(spec.std)}}
    out = Path(cfg.run.out)
    trainer = Trainer(model, train, cfg.optim, cfg.run, meta=meta, progress=progress)
    if log:
        log(f"train: {len(train)} keyframes, {n_boxes} person boxes, {len(train.sources)} videos; {name} "
            f"(base {cfg.model.base_channels}, {'frozen' if cfg.model.norm_eval else 'training'} BN) input "
            f"{spec.clip_len}x{spec.frame_interval}, short side {cfg.data.ava_scale}, crop {cfg.data.ava_crop} -> {out}")
    history = trainer.fit_and_save(cfg, out, resume=resume, log=log)
    result = TrainResult(out, out / "model.safetensors", history)
    d = cfg.data
    if test and d.ava_val and world.main:    # rank 0 alone: one pass over the keyframes, no sharding
        from humact.eval.ava import LabelMap, evaluate_ava_files

        val = load_ava_data(cfg, spec, train=False, csv=d.ava_val, proposals=d.ava_val_proposals,
                            exclusions=d.ava_val_exclusions, field="data.ava_val")
        csv = out / "val.ava.csv"
        rows = evaluate_detector(model, val, spec, name, class_ids, csv,
                                 boxes="proposals" if d.ava_val_proposals else "gt", progress=progress)
        if lm is None:
            present = sorted({int(a) for k in train.keyframes + val.keyframes for a in np.nonzero(k.labels)[1]})
            lm = LabelMap(present, [f"action {i}" for i in present])
        res = evaluate_ava_files(d.ava_val, csv, lm, d.ava_val_exclusions or None)
        result.metrics = dict(res.to_json(), rows=rows, csv=str(csv), ground_truth=d.ava_val)
        from humact.io.atomic import atomic_write

        with atomic_write(out / "metrics.json") as f:
            json.dump(result.metrics, f, indent=2, default=float)
        if log:
            log(f"frame-mAP@0.5 on {d.ava_val}: {res.mAP:.4f} ({len(val)} keyframes, {rows} CSV rows in {csv})")
            for note in res.notes:
                log(f"note: {note}")
    ddp.barrier()
    return result
