"""MMAction2's AVA detectors in `humact detect`: test sampling, box mapping, TTA, fusion, loading.

Per keyframe and detector:

    frames of the clip (`keyframes.ava_clip_indices`: SampleAVAFrames' test window, e.g. 4x16, 32x2)
      --prepare_clip: resize to short side 256 (mmcv's rescale_size + bilinear), [flip], normalise
        (mean / std of the checkpoint's data_preprocessor, else the config's ImageNet values)-->
    x (1, 3, T, h, w) + rois (R, 5) (boxes scaled by new/old size, flipped as MMAction2's Flip)
      --AVAClipDetector.roi_features (backbone -> RoI features, + the context feature with
        `with_global`)--> (R, C, 1, 8, 8) --classify--> (R, 81) logits; column 0 is background

With `tta`, each keyframe is seen at short sides 224, 256 and 320, each also flipped; the six
sigmoid scores are averaged per box. Several detectors (one checkpoint each) are fused per box
and class (`fuse_logits`): "mean" (of the sigmoids), "mean_logit" (sigmoid of the mean logit),
"topk_logit" (sigmoid of the mean of the k = n // 2 largest logits). A detector's "logit" after
TTA is the logit of its averaged probability. Detectors with their own box files score their own
boxes; `fuse_across_proposals` then matches boxes across models by IoU >= 0.5 (greedy by box
score) and fuses each match over the models present in it (a box no other model has keeps its
own model's scores).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from humact.errors import CheckpointError, InputError, UsageError
from humact.video_models.ava import DETECTORS, AVASpec, build_detector
from humact.video_models.clips import normalize

__all__ = ["rescale_size", "resize_clip", "flip_clip", "prepare_clip", "AVAClipDetector", "DetectorSet",
           "load_detector", "load_detectors", "load_trained", "fuse_logits", "match_boxes", "fuse_across_proposals",
           "TTA_SCALES", "FUSIONS"]

TTA_SCALES = (224, 256, 320)
#: IoU at which boxes of different detectors' proposals are the same person (PASCAL's, AVA's matching)
MATCH_IOU = 0.5
FUSIONS = ("mean", "mean_logit", "topk_logit")


def rescale_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """mmcv's `rescale_size((w, h), (inf, short_side))`: (new_w, new_h), short side -> `short_side`."""
    scale = short_side / min(width, height)
    return int(width * scale + 0.5), int(height * scale + 0.5)


def resize_clip(frames: np.ndarray, boxes: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """MMAction2's `Resize(scale=(-1, short_side))` of (T, H, W, 3) frames (bilinear) and of (R, 4)
    boxes in their pixels (scaled by new/old size) -> (frames, float32 boxes)."""
    import cv2

    t, h, w, _ = frames.shape
    nw, nh = rescale_size(w, h, short_side)
    if (nw, nh) != (w, h):
        frames = np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames])
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    return frames, b


def flip_clip(frames: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MMAction2's horizontal `Flip` of (T, H, W, 3) frames and (R, 4) boxes (x -> width - x)."""
    w = frames.shape[2]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return frames[:, :, ::-1], np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1)


def prepare_clip(frames: np.ndarray, boxes: np.ndarray, spec: AVASpec, *, short_side: int | None = None,
                 flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, H, W, 3) uint8 RGB frames + (R, 4) boxes in their pixels -> network input (1, 3, T, h, w)
    and rois (R, 5) `[0, x1, y1, x2, y2]` in input pixels (MMAction2's Resize / Flip box rules)."""
    frames, b = resize_clip(frames, boxes, short_side or spec.short_side)
    if flip:
        frames, b = flip_clip(frames, b)
    x = normalize(frames, spec.mean, spec.std)[None]
    rois = torch.cat([torch.zeros(len(b), 1), torch.from_numpy(np.ascontiguousarray(b, np.float32))], dim=1)
    return x, rois


@dataclass
class AVAClipDetector:
    """One AVA detector (eval mode; `model` may be the BN-folded twin) with its test spec."""

    model: torch.nn.Module
    spec: AVASpec
    name: str
    classes: dict | None = None   # {action id: name} a checkpoint of ours carries (`humact train`)

    @property
    def num_classes(self) -> int:
        fc = self.model.roi_head.bbox_head.fc_cls
        return int(fc.out_features if isinstance(fc, torch.nn.Linear) else fc[-1].out_features)

    @torch.no_grad()
    def roi_features(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Clip (1, 3, T, h, w) + rois (R, 5) -> (R, C, 1, 8, 8) RoI features (with the context feature
        when the head has `with_global`). Extra streams (feature banks, other RoIs) plug in here."""
        return self.model.roi_features(self.model.forward_features(x), rois)

    @torch.no_grad()
    def classify(self, roi_feats: torch.Tensor) -> torch.Tensor:
        return self.model.classify(roi_feats)

    def logits(self, frames: np.ndarray, boxes: np.ndarray, *, short_side: int | None = None,
               flip: bool = False) -> torch.Tensor:
        """(R, num_classes) logits of one view: the clip's frames (T, H, W, 3) uint8 RGB and the boxes
        (R, 4) in their pixels."""
        x, rois = prepare_clip(frames, boxes, self.spec, short_side=short_side, flip=flip)
        return self.classify(self.roi_features(x, rois))

    def probabilities(self, frames: np.ndarray, boxes: np.ndarray, *, tta: bool = False) -> np.ndarray:
        """(R, num_classes) sigmoid scores of one keyframe's clip frames and boxes (original pixels);
        with `tta` averaged over short sides 224/256/320 x {plain, flipped}."""
        views = [(s, f) for s in TTA_SCALES for f in (False, True)] if tta else [(self.spec.short_side, False)]
        out = 0.0
        for short, flip in views:
            out = out + torch.sigmoid(self.logits(frames, boxes, short_side=short, flip=flip)).double().numpy()
        return (out / len(views)).astype(np.float64)


def fuse_logits(logits: np.ndarray, method: str = "mean") -> np.ndarray:
    """(n_models, R, C) logits -> (R, C) fused scores in [0, 1] (see the module docstring)."""
    z = np.asarray(logits, np.float64)
    if method == "mean":
        return (1.0 / (1.0 + np.exp(-z))).mean(axis=0)
    if method == "mean_logit":
        return 1.0 / (1.0 + np.exp(-z.mean(axis=0)))
    if method == "topk_logit":
        k = max(1, z.shape[0] // 2)
        top = -np.sort(-z, axis=0)[:k]
        return 1.0 / (1.0 + np.exp(-top.mean(axis=0)))
    raise UsageError(f"--fusion: expected one of {', '.join(FUSIONS)}, got {method!r}")


def match_boxes(boxes: Sequence[np.ndarray], box_scores: Sequence[np.ndarray], iou: float = MATCH_IOU) -> np.ndarray:
    """Boxes of one keyframe from n models' own proposals -> (G, n) groups of row indices (-1: the model
    has no box there). Greedy by box score: the highest-scoring box not yet grouped (over all models;
    ties in model, then row order) opens a group, and every other model adds its ungrouped box of
    highest IoU with it if that IoU is >= `iou` (ties: the higher box score). A box no other model
    matches is a group of one."""
    from humact.detect.keyframes import box_iou

    n = len(boxes)
    pool = sorted(((-float(s), m, r) for m in range(n) for r, s in enumerate(np.asarray(box_scores[m]).ravel())))
    free = [np.ones(len(b), bool) for b in boxes]
    groups = []
    for _, m, r in pool:
        if not free[m][r]:
            continue
        row = np.full(n, -1, np.int64)
        row[m], free[m][r] = r, False
        for o in range(n):
            if o == m or not free[o].any():
                continue
            ov = box_iou(boxes[m][r:r + 1], boxes[o])[0]
            ov[~free[o]] = -1.0
            best = np.flatnonzero(ov == ov.max())
            j = int(best[np.argmax(np.asarray(box_scores[o])[best])])
            if ov[j] >= iou:
                row[o], free[o][j] = j, False
        groups.append(row)
    return np.array(groups, np.int64).reshape(-1, n)


def fuse_across_proposals(boxes: Sequence, probs: Sequence[np.ndarray], method: str = "mean",
                          iou: float = MATCH_IOU):
    """Fuse n detectors that scored their own boxes (each a `keyframes.KeyframeBoxes` on the same
    keyframes, with (R_m, C) probabilities): per keyframe the boxes are matched across models
    (`match_boxes`), each group's scores fused with `fuse_logits` over the models present in it, the
    group taking the box, score and track id of the box that opened it. -> (KeyframeBoxes, (G, C)).

    Unmatched boxes are kept with their own model's scores (a group of one fuses to itself): a person
    only one proposal set found is usually a real person the other detector missed, and dropping them
    would cost AVA's frame-mAP every true positive on them, while keeping costs at most one model's
    false positives at that model's own calibration."""
    from humact.detect.keyframes import KeyframeBoxes

    kf_all = np.unique(np.concatenate([b.keyframe for b in boxes])) if boxes else np.zeros(0, np.int64)
    out_kf, out_box, out_id, out_sc, out_p = [], [], [], [], []
    for k in kf_all.tolist():
        rows = [b.on(k) for b in boxes]
        groups = match_boxes([b.boxes[r] for b, r in zip(boxes, rows)], [b.scores[r] for b, r in zip(boxes, rows)],
                             iou)
        for g in groups:
            present = [m for m in range(len(boxes)) if g[m] >= 0]
            z = np.stack([_logit(probs[m][rows[m][g[m]]]) for m in present])
            a = present[0] if len(present) == 1 else max(present, key=lambda m: (boxes[m].scores[rows[m][g[m]]], -m))
            ra = rows[a][g[a]]
            out_kf.append(k), out_box.append(boxes[a].boxes[ra]), out_id.append(boxes[a].track_ids[ra])
            out_sc.append(boxes[a].scores[ra]), out_p.append(fuse_logits(z[:, None], method)[0])
    c = probs[0].shape[1] if probs else 0
    return (KeyframeBoxes(np.array(out_kf, np.int64), np.array(out_box, np.float32).reshape(-1, 4),
                          np.array(out_id, np.int64), np.array(out_sc, np.float32)),
            np.array(out_p, np.float64).reshape(-1, c))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def load_detector(name: str, checkpoint: str | os.PathLike, *, fast: bool = True) -> AVAClipDetector:
    """`name` with the MMAction2 checkpoint at `checkpoint` (a path, or a URL fetched once by
    `humact.io.download`), loaded strictly; or a `model.safetensors` that `humact train` wrote (its
    JSON gives the width, the class names and the test input: normalisation and short side). The checkpoint's `data_preprocessor.mean/std`, when it has
    them, replace the config's normalisation; the number of classes is its head's."""
    from humact.deploy import fuse
    from humact.io.checkpoints import load_strict, read_foreign
    from humact.io.download import fetch

    from humact.video_models.ava import detector_stream

    stream = detector_stream(name)
    if stream:
        raise UsageError(f"--model {name}: this detector reads {'a feature bank' if stream == 'lfb' else 'flow'}; "
                         f"add --{stream}")
    path = fetch(checkpoint)
    if str(path).endswith(".safetensors"):
        return _load_trained(name, path, fast=fast)
    raw, src = read_foreign(path)
    spec = DETECTORS[name][2] if name in DETECTORS else None
    if spec is None:
        build_detector(name)        # raises the usage error
    mean, std = (raw.get(k) for k in ("data_preprocessor.mean", "data_preprocessor.std"))
    if mean is not None and std is not None and mean.numel() == 3 and std.numel() == 3:
        spec = replace(spec, mean=tuple(mean.flatten().tolist()), std=tuple(std.flatten().tolist()))
    sd = {k: v for k, v in raw.items() if not k.startswith("data_preprocessor.")}
    w = sd.get("roi_head.bbox_head.fc_cls.weight")
    if w is None or w.dim() != 2:
        raise CheckpointError(f"{src}: no 'roi_head.bbox_head.fc_cls.weight' (not an MMAction2 AVA detector?)")
    model, _ = build_detector(name, num_classes=int(w.shape[0]))
    try:
        load_strict(model, sd, src)
    except CheckpointError as e:
        raise CheckpointError(f"{e} (does it fit --model {name}?)") from None
    model.eval()
    return AVAClipDetector(fuse(model) if fast else model, spec, name)


def load_trained(name: str, path) -> tuple[torch.nn.Module, AVASpec, dict, dict]:
    """A detector `humact train` wrote (safetensors + JSON: its config, class ids and names, test spec;
    LFB detectors: the bank's width) -> (model in eval mode, spec, {action id: name}, the JSON)."""
    from humact.config import read_saved_config
    from humact.io.checkpoints import load_checkpoint, load_strict

    tensors, meta = load_checkpoint(path)
    src = str(path)
    if meta.get("kind") != "ava":
        raise CheckpointError(f"{src}: not an AVA detector checkpoint of `humact train` (its JSON has no kind 'ava')")
    cfg = read_saved_config(meta, src)
    if cfg.model.name != name:
        raise CheckpointError(f"{src}: trained as {cfg.model.name!r}; give --model {cfg.model.name}")
    try:
        ids = [int(i) for i in meta["class_ids"]]
        names = [str(n) for n in meta["classes"]]
        sp = meta["spec"]
        spec = replace(DETECTORS[name][2], short_side=int(sp["short_side"]), mean=tuple(map(float, sp["mean"])),
                       std=tuple(map(float, sp["std"])))
        lt_channels = int(meta["bank"]["channels"]) if "bank" in meta else None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{src}.json: class_ids / classes / spec / bank: {e!r}") from None
    if ids != list(range(1, len(ids) + 1)) or len(names) != len(ids):
        raise CheckpointError(f"{src}: class_ids must be 1..{len(ids)} with one name each")
    model, _ = build_detector(name, num_classes=len(ids) + 1, dropout=cfg.model.dropout,
                              base_channels=cfg.model.base_channels, lt_channels=lt_channels)
    load_strict(model, tensors, src)
    return model.eval(), spec, dict(zip(ids, names)), meta


def _load_trained(name: str, path, *, fast: bool = True) -> AVAClipDetector:
    from humact.deploy import fuse

    model, spec, classes, _ = load_trained(name, path)
    return AVAClipDetector(fuse(model) if fast else model, spec, name, classes=classes)


@dataclass
class DetectorSet:
    """The detectors `humact detect` runs, fused, with their classes (background column dropped)."""

    detectors: list[AVAClipDetector]
    labels: tuple[str, ...]
    class_ids: np.ndarray
    sampling: str = "test"
    tta: bool = False
    fusion: str = "mean"

    @property
    def name(self) -> str:
        names = "+".join(d.name for d in self.detectors)
        return names + (" (tta)" if self.tta else "") + (f" ({self.fusion})" if len(self.detectors) > 1 else "")

    def keyframe_scores(self, frames_of, center: int, num_frames: int, boxes: np.ndarray) -> np.ndarray:
        """(R, C) fused scores of one keyframe; `frames_of(indices)` gives (T, H, W, 3) frames."""
        from humact.detect.keyframes import ava_clip_indices

        probs = []
        for d in self.detectors:
            idx = ava_clip_indices(center, num_frames, clip_len=d.spec.clip_len, frame_interval=d.spec.frame_interval,
                                   mode=self.sampling)
            probs.append(d.probabilities(frames_of(idx), boxes, tta=self.tta)[:, 1:])     # drop background
        return probs[0] if len(probs) == 1 else fuse_logits(np.stack([_logit(p) for p in probs]), self.fusion)

    def alone(self, i: int) -> "DetectorSet":
        """Detector i by itself, with this set's classes, sampling and TTA."""
        return replace(self, detectors=[self.detectors[i]])

    def score_video(self, video: str | os.PathLike, meta, keyframes, boxes, *, progress: bool = False,
                    desc: str = "", chunk: int = 8) -> tuple[np.ndarray, list[str]]:
        """(R, C) scores for every box of `boxes` (a `KeyframeBoxes`), decoding only the clips' frames,
        `chunk` keyframes at a time; and per box "" (every box gets scores)."""
        from humact.detect.keyframes import ava_clip_indices
        from humact.progress import progress as bar
        from humact.video import read_frames

        scores = np.zeros((len(boxes), len(self.labels)), np.float32)
        ks = [k for k in range(len(keyframes)) if boxes.on(k).size]
        with bar(total=len(ks), desc=f"{desc} keyframes", unit="keyframe", enabled=progress) as shown:
            for start in range(0, len(ks), chunk):
                part = ks[start:start + chunk]
                need = set()
                for k in part:
                    for d in self.detectors:
                        need.update(ava_clip_indices(int(keyframes.frames[k]), meta.num_frames,
                                                     clip_len=d.spec.clip_len, frame_interval=d.spec.frame_interval,
                                                     mode=self.sampling).tolist())
                frames = dict(read_frames(video, indices=sorted(need)))
                missing = need - set(frames)
                if missing:
                    raise InputError(f"{video}: frame {min(missing)} could not be decoded")
                for k in part:
                    rows = boxes.on(k)
                    scores[rows] = self.keyframe_scores(lambda idx: np.stack([frames[int(i)] for i in idx]),
                                                        int(keyframes.frames[k]), meta.num_frames,
                                                        boxes.boxes[rows])
                    shown.update()
        return scores, [""] * len(boxes)


def load_detectors(names: Sequence[str], checkpoints: Sequence[str], *, label_map: str | None = None,
                   sampling: str = "test", tta: bool = False, fusion: str = "mean") -> DetectorSet:
    """The detectors of `humact detect --model ... --checkpoint ...`, with class names from an AVA label
    map (ids 1..num_classes-1; classes the map lacks are named 'action N')."""
    if len(names) != len(checkpoints) or not names:
        raise UsageError("--model / --checkpoint: give one checkpoint per AVA detector")
    if fusion not in FUSIONS:
        raise UsageError(f"--fusion: expected one of {', '.join(FUSIONS)}, got {fusion!r}")
    if sampling not in ("test", "demo"):
        raise UsageError(f"--sampling: expected 'test' or 'demo', got {sampling!r}")
    dets = [load_detector(n, c) for n, c in zip(names, checkpoints)]
    sizes = {d.num_classes for d in dets}
    if len(sizes) != 1:
        raise CheckpointError(f"--checkpoint: the detectors have different numbers of classes {sorted(sizes)}")
    n = sizes.pop() - 1
    ids = np.arange(1, n + 1, dtype=np.int64)
    names_of = next((d.classes for d in dets if d.classes), None) or {}
    if label_map:
        from humact.eval.ava import read_label_map

        lm = read_label_map(label_map)
        names_of = lm.as_dict()
    labels = tuple(names_of.get(int(i), f"action {int(i)}") for i in ids)
    return DetectorSet(dets, labels, ids, sampling=sampling, tta=tta, fusion=fusion)
