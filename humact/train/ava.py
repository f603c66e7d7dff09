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

The LFB detectors (`lfb_*`, `video_models.lfb`) follow the LFB paper and MMAction2's practice: a
frozen short-term detector (data.ava_bank_model + data.ava_bank_checkpoint) first fills the feature
bank (data.ava_bank, `fill_bank`: its pooled RoI features at every training and validation keyframe,
on the proposals, else the ground-truth boxes; reused when complete for the same detector), then the
LFB detector trains with each keyframe's window read from the bank; its checkpoint's JSON names the
bank detector (path and sha256), which `humact detect --lfb` runs for pass 1. The RGB + flow detectors
(`rgbflow_*`, `video_models.flow.TwoStreamDetector`) read `humact flow`'s folders under data.ava_flow
(extracted there first where missing); the checkpoint's JSON holds the flow settings `humact detect
--flow` extracts with.
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

__all__ = ["train_ava", "load_ava_data", "evaluate_detector", "fill_bank", "DET_THRESHOLD"]

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
                               timestamp_start=d.ava_timestamp_start, seed=cfg.run.seed, source=csv,
                               lfb_window=d.ava_lfb_window, lfb_max_per_second=d.ava_lfb_max_per_second)


def fill_bank(cfg: TrainConfig, datasets, *, log: Callable[[str], None] | None = None):
    """Pass 1 for training: the frozen detector `data.ava_bank_model` (weights `data.ava_bank_checkpoint`)
    writes its pooled RoI features (`lfb.pool_roi_features`, MMAction2's LFBInferHead) at every keyframe of
    `datasets` (AVADetectionDatasets; a keyframe in several: once) into `data.ava_bank`, on the keyframe's
    proposals (else its ground-truth boxes), with the detector's own test clip and short side; only the
    seconds the bank lacks are computed. -> (FeatureBank, the bank's description for the checkpoint)."""
    from humact.detect.keyframes import ava_clip_indices
    from humact.detect.rgb import load_detector, prepare_clip
    from humact.video_models.ava import detector_stream
    from humact.video_models.lfb import FeatureBank, pool_roi_features

    d = cfg.data
    if not d.ava_bank:
        raise ConfigError(f"data.ava_bank: {cfg.model.name} reads a feature bank: give its folder (--ava-bank)")
    ckpt = _need_file(d.ava_bank_checkpoint, "data.ava_bank_checkpoint")
    if detector_stream(d.ava_bank_model):
        raise ConfigError(f"data.ava_bank_model: the bank is filled by a short-term detector, not {d.ava_bank_model}")
    det = load_detector(d.ava_bank_model, ckpt)
    from humact.io.download import sha256_file

    sha = sha256_file(ckpt)
    channels = int(det.model.roi_head.bbox_head.in_channels)
    fingerprint = {"model": d.ava_bank_model, "checkpoint_sha256": sha, "short_side": det.spec.short_side,
                   "boxes": "proposals, else ground truth"}
    bank = FeatureBank(d.ava_bank, channels=channels, fingerprint=fingerprint)
    per_video: dict[str, dict[int, tuple]] = {}
    for ds in datasets:
        for i, k in enumerate(ds.keyframes):
            per_video.setdefault(k.video_id, {}).setdefault(k.timestamp, (ds, i))
    computed = 0
    with torch.no_grad():
        for vid, by_second in sorted(per_video.items()):
            seconds = sorted(by_second)
            todo = bank.todo(vid, seconds)
            if not todo:
                continue
            with bank.writer(vid, seconds) as w:
                for ts in todo:
                    ds, i = by_second[ts]
                    k, src = ds.keyframes[i], ds.sources[vid]
                    idx = ava_clip_indices(ds.centers[i], src.num_frames, clip_len=det.spec.clip_len,
                                           frame_interval=det.spec.frame_interval)
                    frames = src.read(idx)
                    h, wd = frames.shape[1:3]
                    norm = k.proposals if len(k.proposals) else k.boxes
                    x, rois = prepare_clip(frames, norm * np.array([wd, h, wd, h]), det.spec)
                    w.add(ts, pool_roi_features(det.roi_features(x, rois)).flatten(1))
            computed += len(todo)
    n = sum(len(v) for v in per_video.values())
    if log:
        log(f"feature bank {d.ava_bank}: {n} keyframe seconds of {len(per_video)} videos "
            f"({computed} computed, {n - computed} reused) by {d.ava_bank_model} ({ckpt}), {channels} channels")
    return bank, {"model": d.ava_bank_model, "checkpoint": str(Path(ckpt).resolve()), "checkpoint_sha256": sha,
                  "channels": channels, "dtype": bank.dtype, "window": d.ava_lfb_window,
                  "max_per_second": d.ava_lfb_max_per_second}


@torch.no_grad()
def evaluate_detector(model: torch.nn.Module, data, spec, name: str, class_ids: np.ndarray, out_csv: Path,
                      *, boxes: str = "gt", threshold: float = DET_THRESHOLD, progress: bool = False) -> int:
    """Score every keyframe of `data` (a test-mode AVADetectionDataset) the way `humact detect` does
    (`humact.detect.rgb.AVAClipDetector.probabilities`: test window, short side `spec.short_side`,
    sigmoid; LFB and RGB + flow detectors: the dataset's test items, the same resize, with their bank
    windows or flow clips) on its proposals ("proposals", falling back to the ground-truth boxes where a keyframe has
    none) or its ground-truth boxes ("gt"); write the AVA CSV; return its number of rows."""
    from humact.detect.rgb import AVAClipDetector
    from humact.eval.ava import AvaDetections, write_ava_detections
    from humact.progress import progress as bar

    was = model.training
    model.eval()
    det = AVAClipDetector(model, spec, name) if not data.stream else None
    data.test_boxes = boxes
    vids, stamps, bxs, acts, scores = [], [], [], [], []
    for i in bar(range(len(data)), total=len(data), desc="evaluate", unit="keyframe", enabled=progress):
        k = data.keyframes[i]
        norm = k.proposals if boxes == "proposals" and len(k.proposals) else k.boxes
        if det is None:     # LFB / RGB + flow: the test item (same resize) with its window or flow clip
            x, _ = data.collate([data[i]])
            out = model(*x)
            p = (model.scores(out) if hasattr(model, "scores") else out.sigmoid()).double().numpy()[:, 1:]
        else:
            frames, _ = data.frames(i)
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
    from humact.video_models.ava import build_detector, detector_stream

    torch.set_num_threads(cfg.run.num_threads)
    name = cfg.model.name
    d = cfg.data
    stream = detector_stream(name)
    for value, field, want in ((d.ava_bank, "data.ava_bank", "lfb"), (d.ava_flow, "data.ava_flow", "flow")):
        if value and stream != want:
            raise ConfigError(f"{field}: {name} takes no {'feature bank' if want == 'lfb' else 'flow'} (the "
                              f"{'lfb_*' if want == 'lfb' else 'rgbflow_*'} detectors do)")
    spec = replace(zoo.get(name, "ava").spec, short_side=cfg.data.ava_test_scale)
    train = load_ava_data(cfg, spec, train=True)
    val = None
    if test and d.ava_val and world.main:
        val = load_ava_data(cfg, spec, train=False, csv=d.ava_val, proposals=d.ava_val_proposals,
                            exclusions=d.ava_val_exclusions, field="data.ava_val")
    stream_meta: dict = {}
    lt_channels = None
    if stream == "lfb":
        bank, stream_meta["bank"] = fill_bank(cfg, [train] + ([val] if val is not None else []),
                                              log=log if world.main else None)
        lt_channels = bank.channels
        for ds in (train, val):
            if ds is not None:
                ds.bank = bank
    elif stream == "flow":
        from dataclasses import asdict

        from humact.detect.dataset import flow_folders
        from humact.video_models.flow import FlowSpec

        if not d.ava_flow:
            raise ConfigError(f"data.ava_flow: {name} reads flow: give the folder of its flow folders (--ava-flow)")
        fspec = FlowSpec(method=d.ava_flow_method, short_side=d.ava_flow_short_side)
        for ds in (train, val):
            if ds is not None:
                ds.flow = flow_folders(ds.sources, d.ava_flow, fspec, log=log if world.main else None)
        stream_meta["flow"] = asdict(fspec)
    if len(train) < cfg.optim.batch_size:
        raise InputError(f"{cfg.data.path}: {len(train)} training keyframes, fewer than optim.batch_size "
                         f"{cfg.optim.batch_size}")
    lm, num_classes = _label_ids(cfg)
    names = lm.as_dict() if lm else {}
    class_ids = np.arange(1, num_classes, dtype=np.int64)
    torch.manual_seed(cfg.run.seed)
    try:
        model, _ = build_detector(name, num_classes=num_classes, dropout=cfg.model.dropout,
                                  base_channels=cfg.model.base_channels, norm_eval=cfg.model.norm_eval,
                                  lt_channels=lt_channels)
    except ValueError as e:
        raise ConfigError(f"model.base_channels: {e}") from None
    if cfg.run.device == "cuda":
        model = model.to(torch.device("cuda", world.local_rank))
    n_boxes = sum(len(k.boxes) for k in train.keyframes)
    meta = {"config": cfg.to_dict(), "kind": "ava", "classes": [names.get(int(i), f"action {int(i)}") for i in class_ids],
            "class_ids": class_ids.tolist(), "num_train": len(train), "train_boxes": n_boxes,
            "train_source": str(cfg.data.path),
            "spec": {"clip_len": spec.clip_len, "frame_interval": spec.frame_interval, "short_side": spec.short_side,
                     "mean": list(spec.mean), "std": list(spec.std)}} | stream_meta
    out = Path(cfg.run.out)
    trainer = Trainer(model, train, cfg.optim, cfg.run, meta=meta, progress=progress)
    if log:
        log(f"train: {len(train)} keyframes, {n_boxes} person boxes, {len(train.sources)} videos; {name} "
            f"(base {cfg.model.base_channels}, {'frozen' if cfg.model.norm_eval else 'training'} BN) input "
            f"{spec.clip_len}x{spec.frame_interval}, short side {cfg.data.ava_scale}, crop {cfg.data.ava_crop} -> {out}")
    history = trainer.fit_and_save(cfg, out, resume=resume, log=log)
    result = TrainResult(out, out / "model.safetensors", history)
    if val is not None:    # rank 0 alone: one pass over the keyframes, no sharding
        from humact.eval.ava import LabelMap, evaluate_ava_files

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
