"""The pose-guided part detector: 10 part boxes from a person crop with its keypoints drawn on it.

Input (`detector_input`): the person's box, grown by `PAD` on each side and made square, is
warped to `size` x `size` pixels (default 128). With `dots` on, the keypoints are drawn on it
as filled dots of a fixed colour per COCO-17 joint (`JOINT_COLORS`, radius size/40), added to
the pixels and saturated: X'_p = X_p + G(K_p). With `geometric_input`, 10 more channels hold
the geometric part boxes (`humact.perception.parts.part_boxes`) as filled masks. Pixels are
scaled to [-0.5, 0.5].

Network (`PartDetector`, our choice, in the spirit of YOLOF): a small plain CNN backbone
(4 stride-2 3x3 conv-BN-ReLU stages, widths w, 2w, 4w, 8w; w = 32) to one stride-16 feature
map (8 x 8 at 128 px), YOLOF's dilated encoder (a 1x1 + 3x3 projection, then residual
bottlenecks with dilations 2 and 4, so one level sees the whole crop), and an anchor-free head
on that single level: per location and part a score logit (focal loss, prior 0.01) and the 4
distances (left, top, right, bottom) from the location's centre to the part box's sides,
`stride * exp(t)` (GIoU loss). 907,090 parameters at w = 32 (909,970 with the geometric input).

Targets (`assign`): for each annotated part, the cells whose centre lies inside the box and
within 1.5 cells of its centre are positives (always at least the cell holding the centre).

Decoding (`decode`): the top-1 location per part (the system keeps one box per part), its box
mapped back to the frame and clipped to the person box; a part whose score is below
`threshold` falls back to the geometric box (when that one is valid). Inference takes the top
10 persons of a frame by box score (`MAX_PERSONS`).

The dots ablation (`dots=False`) is the switch the system reports +20.7 part AP for; the
number can only be measured on Kinetics-TPS (not on this machine).
"""

from __future__ import annotations

import colorsys
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from humact.keypoints import PART_NAMES

__all__ = ["DetectorConfig", "JOINT_COLORS", "PAD", "MAX_PERSONS", "crop_transform", "person_crop", "draw_dots",
           "detector_input", "PartDetector", "assign", "detector_loss", "decode", "save_detector", "load_detector",
           "detect_parts"]

PAD = 0.1
MAX_PERSONS = 10
#: One fixed colour per COCO-17 joint (RGB; evenly spaced hues).
JOINT_COLORS = np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(i / 17, 1.0, 1.0)] for i in range(17)], np.int16)


@dataclass
class DetectorConfig:
    """The detector's settings, saved with its weights."""

    size: int = 128
    width: int = 32
    dots: bool = True
    geometric_input: bool = False
    threshold: float = 0.05
    keypoint_threshold: float = 0.3
    num_parts: int = len(PART_NAMES)

    @property
    def in_channels(self) -> int:
        return 3 + (self.num_parts if self.geometric_input else 0)


def crop_transform(box, size: int, pad: float = PAD) -> tuple[float, float, float]:
    """(scale, x0, y0): crop pixel = (frame pixel - (x0, y0)) * scale, for the square around `box`."""
    x1, y1, x2, y2 = [float(v) for v in box]
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * pad)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return size / side, cx - side / 2, cy - side / 2


def person_crop(rgb: np.ndarray, box, size: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The (size, size, 3) uint8 crop around `box` (black outside the frame) and its transform."""
    s, x0, y0 = crop_transform(box, size)
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, (s, x0, y0)


def draw_dots(crop: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, *, threshold: float = 0.3,
              radius: int | None = None) -> np.ndarray:
    """X + G(K): the crop with each visible keypoint ((17, 2) crop pixels) added as a dot of its joint's
    colour (`JOINT_COLORS`), saturated to uint8. Keypoints scoring below `threshold` are not drawn."""
    size = crop.shape[0]
    r = radius if radius is not None else max(1, round(size / 40))
    g = np.zeros(crop.shape, np.int16)
    for j in np.flatnonzero(np.asarray(scores) >= threshold):
        x, y = np.asarray(keypoints[j], np.float64)
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(g, (int(round(x)), int(round(y))), r, [int(c) for c in JOINT_COLORS[j]], -1, cv2.LINE_8)
    return np.clip(crop.astype(np.int16) + g, 0, 255).astype(np.uint8)


def _masks(boxes: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(boxes), size, size), np.float32)
    for p in np.flatnonzero(valid):
        x1, y1, x2, y2 = np.clip(np.round(boxes[p]).astype(int), 0, size)
        out[p, y1:y2, x1:x2] = 1.0
    return out


def detector_input(rgb: np.ndarray, box, keypoints: np.ndarray | None, scores: np.ndarray | None,
                   cfg: DetectorConfig, geo_boxes: np.ndarray | None = None,
                   geo_valid: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The network input (C, size, size) float32 for one person, and the crop transform."""
    crop, tf = person_crop(rgb, box, cfg.size)
    s, x0, y0 = tf
    if cfg.dots and keypoints is not None:
        kp = (np.asarray(keypoints, np.float64) - (x0, y0)) * s
        crop = draw_dots(crop, kp, scores, threshold=cfg.keypoint_threshold)
    x = crop.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5
    if cfg.geometric_input:
        gb = np.zeros((cfg.num_parts, 4)) if geo_boxes is None else (np.asarray(geo_boxes, np.float64)
                                                                      - (x0, y0, x0, y0)) * s
        gv = np.zeros(cfg.num_parts, bool) if geo_valid is None else np.asarray(geo_valid, bool)
        x = np.concatenate([x, _masks(gb, gv, cfg.size)], axis=0)
    return x, tf


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Bottleneck(nn.Module):
    def __init__(self, c: int, mid: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(c, mid, 1), _cbr(mid, mid, 3, dilation=dilation), _cbr(mid, c, 1))

    def forward(self, x):
        return x + self.body(x)


class PartDetector(nn.Module):
    """(N, C, S, S) crops -> score logits (N, P, S/16, S/16) and box distances (N, P, 4, S/16, S/16) in
    crop pixels (module docstring)."""

    stride = 16

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DetectorConfig()
        w = cfg.width
        self.backbone = nn.Sequential(_cbr(cfg.in_channels, w, stride=2), _cbr(w, 2 * w, stride=2),
                                      _cbr(2 * w, 4 * w, stride=2), _cbr(4 * w, 8 * w, stride=2))
        c = 4 * w
        self.encoder = nn.Sequential(_cbr(8 * w, c, 1), _cbr(c, c, 3), _Bottleneck(c, c // 4, 2), _Bottleneck(c, c // 4, 4))
        p = cfg.num_parts
        self.cls_head = nn.Sequential(_cbr(c, c, 3), nn.Conv2d(c, p, 1))
        self.reg_head = nn.Sequential(_cbr(c, c, 3), nn.Conv2d(c, 4 * p, 1))
        nn.init.constant_(self.cls_head[-1].bias, -math.log((1 - 0.01) / 0.01))
        nn.init.constant_(self.reg_head[-1].bias, math.log(1.5))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encoder(self.backbone(x))
        n, _, h, w = f.shape
        scores = self.cls_head(f)
        dists = self.stride * self.reg_head(f).clamp(max=8.0).exp().view(n, self.cfg.num_parts, 4, h, w)
        return scores, dists


def _centres(h: int, w: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return (xs + 0.5) * stride, (ys + 0.5) * stride


def assign(boxes: torch.Tensor, valid: torch.Tensor, h: int, w: int, stride: int = 16,
           radius: float = 1.5) -> torch.Tensor:
    """Positive cells (N, P, h, w) bool for part boxes (N, P, 4) in crop pixels (module docstring)."""
    cx, cy = _centres(h, w, stride)
    b = boxes[..., None, None]
    bx, by = (b[..., 0, :, :] + b[..., 2, :, :]) / 2, (b[..., 1, :, :] + b[..., 3, :, :]) / 2
    inside = (cx > b[..., 0, :, :]) & (cx < b[..., 2, :, :]) & (cy > b[..., 1, :, :]) & (cy < b[..., 3, :, :])
    near = ((cx - bx).abs() <= radius * stride) & ((cy - by).abs() <= radius * stride)
    pos = inside & near
    # the cell holding the centre is always positive
    ci = (by[..., 0, 0] / stride).floor().clamp(0, h - 1).long()
    cj = (bx[..., 0, 0] / stride).floor().clamp(0, w - 1).long()
    hold = torch.zeros_like(pos)
    n, p = boxes.shape[:2]
    nn_, pp = torch.meshgrid(torch.arange(n), torch.arange(p), indexing="ij")
    hold[nn_, pp, ci, cj] = True
    return (pos | hold) & valid[..., None, None]


def _boxes_from(dists: torch.Tensor, stride: int) -> torch.Tensor:
    """(..., 4, h, w) distances -> (..., h, w, 4) xyxy crop pixels."""
    h, w = dists.shape[-2:]
    cx, cy = _centres(h, w, stride)
    l, t, r, b = dists.unbind(-3)
    return torch.stack([cx - l, cy - t, cx + r, cy + b], dim=-1)


def _giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    x1, y1 = torch.maximum(a[..., 0], b[..., 0]), torch.maximum(a[..., 1], b[..., 1])
    x2, y2 = torch.minimum(a[..., 2], b[..., 2]), torch.minimum(a[..., 3], b[..., 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-6)
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    hull = (cw * ch).clamp(min=1e-6)
    return iou - (hull - union) / hull


def detector_loss(scores: torch.Tensor, dists: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor,
                  stride: int = 16, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss on the scores (normalised by the positives) + GIoU loss on the positives' boxes."""
    h, w = scores.shape[-2:]
    pos = assign(boxes, valid, h, w, stride)
    t = pos.float()
    p = scores.sigmoid()
    ce = nn.functional.binary_cross_entropy_with_logits(scores, t, reduction="none")
    pt = p * t + (1 - p) * (1 - t)
    focal = (alpha * t + (1 - alpha) * (1 - t)) * (1 - pt) ** gamma * ce
    npos = t.sum().clamp(min=1.0)
    pred = _boxes_from(dists, stride)                     # (N, P, h, w, 4)
    target = boxes[:, :, None, None, :].expand_as(pred)
    giou = (1 - _giou(pred[pos], target[pos])).sum()
    return (focal.sum() + 2.0 * giou) / npos


def decode(scores: torch.Tensor, dists: torch.Tensor, stride: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 box per part: boxes (N, P, 4) crop pixels and their scores (N, P) in [0, 1]."""
    n, p, h, w = scores.shape
    prob = scores.sigmoid().view(n, p, h * w)
    conf, best = prob.max(-1)
    boxes = _boxes_from(dists, stride).view(n, p, h * w, 4)
    return boxes.gather(2, best[..., None, None].expand(n, p, 1, 4))[:, :, 0], conf


def save_detector(model: PartDetector, path: str | os.PathLike, extra: dict | None = None) -> None:
    from humact.io.checkpoints import save_checkpoint

    save_checkpoint(path, model.state_dict(), {"kind": "humact.part_detector", "config": asdict(model.cfg),
                                               **(extra or {})})


def load_detector(path: str | os.PathLike) -> PartDetector:
    """A detector saved by `save_detector` (strict; CheckpointError naming the file otherwise)."""
    from humact.errors import CheckpointError
    from humact.io.checkpoints import load_checkpoint, load_strict

    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != "humact.part_detector" or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{Path(path).with_suffix('.json')}: not a part detector (field kind)")
    try:
        cfg = DetectorConfig(**meta["config"])
    except TypeError as e:
        raise CheckpointError(f"{Path(path).with_suffix('.json')}: field config: {e}") from None
    model = PartDetector(cfg)
    load_strict(model, tensors, str(path))
    return model.eval()


@torch.no_grad()
def detect_parts(model: PartDetector, rgb: np.ndarray, tracks, parts, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Part boxes of frame `frame`: (M, P, 4) float32 frame pixels and valid (M, P), for the top
    `MAX_PERSONS` persons by box score (the others: the geometric boxes `parts` as they are).

    Each part takes the detector's top-1 box when its score is at least `cfg.threshold`, else the
    geometric box (when valid). Boxes are clipped to the person box."""
    cfg = model.cfg
    boxes = parts.boxes[:, frame].astype(np.float32).copy()
    valid = parts.valid[:, frame].copy()
    people = np.flatnonzero(tracks.valid[:, frame])
    people = people[np.argsort(-tracks.box_scores[people, frame], kind="stable")][:MAX_PERSONS]
    if not len(people):
        return boxes, valid
    xs, tfs = [], []
    for m in people:
        x, tf = detector_input(rgb, tracks.boxes[m, frame], tracks.keypoints[m, frame],
                               tracks.keypoint_scores[m, frame], cfg, parts.boxes[m, frame], parts.valid[m, frame])
        xs.append(x)
        tfs.append(tf)
    scores, dists = model(torch.from_numpy(np.stack(xs)))
    pb, conf = decode(scores, dists, model.stride)
    pb, conf = pb.numpy(), conf.numpy()
    for i, m in enumerate(people):
        s, x0, y0 = tfs[i]
        fb = pb[i] / s + (x0, y0, x0, y0)
        px1, py1, px2, py2 = tracks.boxes[m, frame]
        fb[:, 0::2] = np.clip(fb[:, 0::2], px1, px2)
        fb[:, 1::2] = np.clip(fb[:, 1::2], py1, py2)
        ok = (conf[i] >= cfg.threshold) & (fb[:, 2] > fb[:, 0]) & (fb[:, 3] > fb[:, 1])
        boxes[m] = np.where(ok[:, None], fb, boxes[m])
        valid[m] = ok | valid[m]
    return boxes, valid


def detector_items(dataset, results: dict, cfg: DetectorConfig, max_frames_per_video: int = 0) -> list:
    """Training items (input (C, S, S), part boxes (P, 4) crop pixels, valid (P,)) of every annotated
    human: the crop is the ground-truth human box, the dots the keypoints of the track matched to it
    (none when no track matches), the targets its annotated part boxes (`PART_NAMES` order)."""
    from humact.parsing.dataset import frame_index
    from humact.parsing.tracks import frame_rgb, match_humans

    names = list(PART_NAMES)[: cfg.num_parts]
    items = []
    for v in dataset.videos:
        result = results[v.name]
        tracks, parts = result.tracks, result.parts
        keys = sorted(v.frames, key=lambda k: frame_index(k, v.name))
        keys = [k for k in keys if v.frames[k]["humans"]]
        if max_frames_per_video:
            keys = keys[:max_frames_per_video]
        rgbs = frame_rgb(v, [frame_index(k, v.name) for k in keys])
        for k in keys:
            t = frame_index(k, v.name)
            humans = v.frames[k]["humans"]
            matched = match_humans(tracks, t, humans)
            for g, h in enumerate(humans):
                m = matched.get(g)
                kp = tracks.keypoints[m, t] if m is not None else None
                ks = tracks.keypoint_scores[m, t] if m is not None else None
                gb = parts.boxes[m, t] if m is not None and parts is not None else None
                gv = parts.valid[m, t] if m is not None and parts is not None else None
                x, (s, x0, y0) = detector_input(rgbs[t], h["box"], kp, ks, cfg, gb, gv)
                boxes = np.zeros((cfg.num_parts, 4), np.float32)
                valid = np.zeros(cfg.num_parts, bool)
                for name, part in h["parts"].items():
                    if name in names:
                        p = names.index(name)
                        boxes[p] = (np.asarray(part["box"], np.float64) - (x0, y0, x0, y0)) * s
                        valid[p] = boxes[p, 2] > boxes[p, 0] and boxes[p, 3] > boxes[p, 1]
                items.append((x, boxes, valid))
    return items


def _collate(items):
    return (torch.from_numpy(np.stack([i[0] for i in items])), torch.from_numpy(np.stack([i[1] for i in items])),
            torch.from_numpy(np.stack([i[2] for i in items])))


def detector_step_loss(model: PartDetector, batch) -> torch.Tensor:
    x, boxes, valid = batch
    scores, dists = model(x)
    return detector_loss(scores, dists, boxes, valid, model.stride)


def train_detector(items: list, cfg: DetectorConfig, *, epochs: int = 30, batch_size: int = 16, lr: float = 0.01,
                   seed: int = 0, log=None) -> tuple[PartDetector, list[float]]:
    """A `PartDetector` trained on `detector_items` (`humact.parsing.fit.fit`); returns it and the losses."""
    from humact.parsing.fit import fit

    torch.manual_seed(seed)
    model = PartDetector(cfg)
    history = fit(model, items, _collate, detector_step_loss, epochs=epochs, batch_size=batch_size, lr=lr,
                  seed=seed, log=log, name="part detector")
    return model, history
