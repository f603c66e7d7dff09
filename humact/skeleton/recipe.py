"""The skeleton input recipe: how a sample becomes network input.

`InputConfig` is the `input` section of `humact.config.TrainConfig`; the data pipelines of
`humact.skeleton.datasets` (`SkeletonClips`, `HeatmapClips`) read it. It lives here, beside the
pipelines, so that the skeleton package does not import the training configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from humact.fields import opt

__all__ = ["InputConfig", "Stream"]

Stream = Literal["j", "b", "jm", "bm"]


@dataclass
class InputConfig:
    """How a sample becomes network input (`humact.skeleton.datasets.SkeletonClips` / `HeatmapClips`)."""

    clip_len: int = opt(52, "frames per clip (T)", lo=1, hi=10_000)
    stream: Stream = opt("j", "input stream: joint, bone, joint-motion, bone-motion")
    max_persons: int = opt(1, "persons per sample (M; more are dropped, fewer zero-padded)", lo=1, hi=32)
    rotate: float = opt(0.0, "max random rotation, radians (train; 3D: each axis, 2D: in-plane)", lo=0.0,
                        hi=math.pi)
    scale: float = opt(0.0, "max relative random scale change (train)", lo=0.0, hi=1.0, hi_open=True)
    flip: float = opt(0.0, "probability of a left/right flip with joint swap (train)", lo=0.0, hi=1.0)
    crop: float = opt(1.0, "min fraction of the video kept by a random temporal crop (train; 1 = off)",
                      lo=0.0, hi=1.0, lo_open=True)
    normalize: Literal["none", "pre2d", "ucla", "body"] = opt(
        "none", "coordinate normalisation: none; pre2d (PYSKL's PreNormalize2D: frame pixels to [-1, 1]); ucla "
                "(origin at the first frame's spine, CTR-GCN); body (centre on the torso, unit = torso length)")
    view_rotate: float = opt(0.0, "max random rotation about x and y, radians (train, 3D; CTR-GCN's NW-UCLA "
                                  "view augmentation)", lo=0.0, hi=math.pi)
    minmax: bool = opt(False, "scale each coordinate axis of a clip to [-1, 1] (CTR-GCN's NW-UCLA feeder)")
    heatmap: Literal["keypoint", "limb"] = opt("keypoint", "PoseConv3D heatmaps: a channel per joint or per limb")
    heatmap_size: int = opt(56, "PoseConv3D training crop side, pixels", lo=8, hi=512)
    heatmap_test_size: int = opt(64, "PoseConv3D test view side, pixels", lo=8, hi=512)
    test_clips: int = opt(10, "clips averaged per sample at test time (PoseConv3D: x 2 flipped views)",
                          lo=1, hi=100)
