"""Arm-region RoIs from COCO keypoints, an arm-action head, and its scores merged into the person's.

Many AVA actions happen at the arm or hand (hit, cut, throw, hand shake); the person box
dilutes them. For each person and each side, when the elbow and the wrist are confident and
inside the image, the shoulder-elbow-wrist box (the shoulder only when it is confident too),
moderately enlarged, is an extra RoI (`arm_boxes`). `ArmHead` classifies the arm RoIs'
features, pooled from the same backbone maps as the person boxes, into a subset of the AVA
classes; `merge_arm_scores` puts the best arm score of each person into that person's scores
for the merged classes (max, or the mean of the two). `ArmDetector` wraps any humact
`AVADetector` with this head, one backbone pass for both kinds of box.

Which classes: the arm head is trained on the `candidates` of the config
(`humact/assets/ava_arm_rois.toml`: the arm/hand classes of AVA's 60 evaluated ones), and only
the classes whose validation AP the merge improves are merged (`merge_classes`), chosen by
`select_arm_classes` from the per-class APs with and without the merge (`humact.eval.ava`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humact.errors import ConfigError
from humact.video_models.ava import AVADetector
from humact.video_models.heads import BBoxHeadAVA

__all__ = ["DEFAULT_ARM_CONFIG", "ARM_JOINTS", "ArmRois", "arm_boxes", "ArmConfig", "load_arm_config", "ArmHead",
           "ArmDetector",
           "merge_arm_scores", "select_arm_classes"]

#: the shipped class config (package data)
DEFAULT_ARM_CONFIG = Path(__file__).resolve().parents[1] / "assets" / "ava_arm_rois.toml"
#: COCO-17 (shoulder, elbow, wrist) per side
ARM_JOINTS = {"left": (5, 7, 9), "right": (6, 8, 10)}


@dataclass
class ArmRois:
    """A frames' arm boxes: `boxes` (A, 4) xyxy pixels, `person` (A,) index of the owner, `side` (A,)
    0 = left, 1 = right."""

    boxes: np.ndarray
    person: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def rois(self, batch_index: int = 0) -> torch.Tensor:
        """(A, 5) `[batch_index, x1, y1, x2, y2]` for the RoI extractor."""
        b = torch.as_tensor(self.boxes, dtype=torch.float32).reshape(-1, 4)
        return torch.cat([torch.full((len(b), 1), float(batch_index)), b], dim=1)


def arm_boxes(keypoints: np.ndarray, scores: np.ndarray, image_size: tuple[int, int], *, threshold: float = 0.3,
              enlarge: float = 0.25, min_size: float = 16.0) -> ArmRois:
    """Arm RoIs of one frame.

    Args:
        keypoints: (P, 17, 2) COCO keypoints in pixels; scores: (P, 17).
        image_size: (width, height).
        threshold: the elbow and wrist (and, to be included, the shoulder) need this score.
        enlarge: each side of the joints' box grows by this fraction of its longer side.
        min_size: boxes are at least this many pixels wide and high (a straight, edge-on arm).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 17, 2)
    sc = np.asarray(scores, np.float64).reshape(-1, 17)
    w, h = image_size
    boxes, owner, side = [], [], []

    def inside(p) -> bool:
        return 0 <= p[0] < w and 0 <= p[1] < h

    for i in range(len(kp)):
        for s, (sh, el, wr) in enumerate(ARM_JOINTS.values()):
            if sc[i, el] < threshold or sc[i, wr] < threshold or not (inside(kp[i, el]) and inside(kp[i, wr])):
                continue
            joints = [kp[i, el], kp[i, wr]]
            if sc[i, sh] >= threshold and inside(kp[i, sh]):
                joints.append(kp[i, sh])
            pts = np.stack(joints)
            lo, hi = pts.min(0), pts.max(0)
            pad = enlarge * float((hi - lo).max())
            lo, hi = lo - pad, hi + pad
            c, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, min_size / 2)
            lo, hi = np.maximum(c - half, 0.0), np.minimum(c + half, [w, h])
            boxes.append([lo[0], lo[1], hi[0], hi[1]])
            owner.append(i)
            side.append(s)
    return ArmRois(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(owner, np.int64),
                   np.asarray(side, np.int64))


@dataclass(frozen=True)
class ArmConfig:
    """The `[arm_rois]` table of a config file (see humact/assets/ava_arm_rois.toml)."""

    candidates: tuple[int, ...]
    merge_classes: tuple[int, ...]
    threshold: float = 0.3
    enlarge: float = 0.25
    merge: str = "max"


def load_arm_config(path: str | os.PathLike = DEFAULT_ARM_CONFIG) -> ArmConfig:
    """Read and check `[arm_rois]` of a TOML file; errors name the file and the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not a readable TOML file ({e})") from None
    t = data.get("arm_rois")
    if not isinstance(t, dict):
        raise ConfigError(f"{path}: field arm_rois: expected a table [arm_rois]")
    for f in ("candidates", "merge_classes"):
        v = t.get(f)
        if not isinstance(v, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 80
                                              for c in v):
            raise ConfigError(f"{path}: field arm_rois.{f}: expected a list of AVA action ids 1..80")
    if not set(t["merge_classes"]) <= set(t["candidates"]):
        raise ConfigError(f"{path}: field arm_rois.merge_classes: every merged class must be a candidate "
                          "(the arm head only scores those)")
    if t.get("merge", "max") not in ("max", "mean"):
        raise ConfigError(f"{path}: field arm_rois.merge: expected 'max' or 'mean'")
    for f, lo, hi in (("threshold", 0.0, 1.0), ("enlarge", 0.0, 2.0)):
        v = t.get(f, ArmConfig.__dataclass_fields__[f].default)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(f"{path}: field arm_rois.{f}: expected a number in {lo}..{hi}")
    unknown = set(t) - {"candidates", "merge_classes", "threshold", "enlarge", "merge", "note"}
    if unknown:
        raise ConfigError(f"{path}: field arm_rois.{sorted(unknown)[0]}: unknown setting")
    return ArmConfig(tuple(t["candidates"]), tuple(t["merge_classes"]), float(t.get("threshold", 0.3)),
                     float(t.get("enlarge", 0.25)), t.get("merge", "max"))


class ArmHead(nn.Module):
    """`BBoxHeadAVA` over the arm RoIs' features: (A, C, T, 8, 8) -> (A, len(class_ids)) logits."""

    def __init__(self, *, in_channels: int, class_ids, dropout: float = 0.5) -> None:
        super().__init__()
        self.class_ids = tuple(int(c) for c in class_ids)
        self.bbox_head = BBoxHeadAVA(in_channels=in_channels, num_classes=len(self.class_ids), dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bbox_head(x)


def merge_arm_scores(person_scores: torch.Tensor, arm_scores: torch.Tensor, owner, head_class_ids, merge_classes,
                     *, mode: str = "max") -> torch.Tensor:
    """(P, C) person scores + (A, k) arm scores (columns = `head_class_ids`) owned by `owner` (A,) ->
    (P, C): for each class of `merge_classes`, a person with arms gets max(person, best arm) or their mean."""
    if mode not in ("max", "mean"):
        raise ValueError(f"merge_arm_scores mode: expected 'max' or 'mean', got {mode!r}")
    out = person_scores.clone()
    owner = torch.as_tensor(owner, dtype=torch.long)
    if len(owner) == 0:
        return out
    head = {c: j for j, c in enumerate(head_class_ids)}
    cols = torch.tensor([head[c] for c in merge_classes], dtype=torch.long)
    tgt = torch.tensor(list(merge_classes), dtype=torch.long)
    best = torch.full((person_scores.shape[0], len(cols)), float("-inf"), dtype=person_scores.dtype)
    best = best.scatter_reduce(0, owner[:, None].expand(-1, len(cols)), arm_scores[:, cols].to(best.dtype),
                               reduce="amax")
    has = torch.zeros(person_scores.shape[0], dtype=torch.bool)
    has[owner] = True
    cur = out[has][:, tgt]
    arm = best[has]
    out[has.nonzero()[:, 0][:, None], tgt[None]] = torch.maximum(cur, arm) if mode == "max" else (cur + arm) / 2
    return out


class ArmDetector(nn.Module):
    """A humact `AVADetector` plus an `ArmHead` on the same backbone maps.

    forward(clip, person_rois (P, 5), arm_rois (A, 5)) -> (person logits (P, C), arm logits (A, k));
    `predict(clip, person_rois, arms: ArmRois)` -> (P, C) merged sigmoid scores.
    """

    def __init__(self, detector: AVADetector, config: ArmConfig, *, dropout: float = 0.5) -> None:
        super().__init__()
        self.detector = detector
        self.config = config
        in_channels = detector.roi_head.bbox_head.in_channels
        self.arm_head = ArmHead(in_channels=in_channels, class_ids=config.candidates, dropout=dropout)

    def forward(self, x: torch.Tensor, person_rois: torch.Tensor, arm_rois: torch.Tensor):
        feats = self.detector.forward_features(x)
        person = self.detector.forward_head(feats, person_rois)
        if len(arm_rois) == 0:
            return person, person.new_zeros(0, len(self.config.candidates))
        arm = self.arm_head(self.detector.roi_head.bbox_roi_extractor(feats, arm_rois))
        return person, arm

    @torch.no_grad()
    def predict(self, x: torch.Tensor, person_rois: torch.Tensor, arms: ArmRois, batch_index: int = 0) -> torch.Tensor:
        person, arm = self.forward(x, person_rois, arms.rois(batch_index))
        return merge_arm_scores(person.sigmoid(), arm.sigmoid(), arms.person, self.config.candidates,
                                self.config.merge_classes, mode=self.config.merge)


def select_arm_classes(ap_person: dict[int, float], ap_merged: dict[int, float], candidates, *,
                       min_gain: float = 0.0) -> list[int]:
    """The candidates whose validation AP the merge raises by more than `min_gain` (how the AVA system
    kept 15 of its 27 arm classes); `ap_*` map AVA ids to AP (e.g. `AvaResult.per_class`)."""
    return [c for c in candidates if c in ap_person and c in ap_merged and ap_merged[c] - ap_person[c] > min_gain]
