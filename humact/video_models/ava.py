"""Spatio-temporal action detectors for AVA (MMAction2's `FastRCNN` + `AVARoIHead`).

A person box (from any detector, or AVA's proposals) on the clip's key frame is
pooled from the backbone's last feature map(s) and classified into 80 atomic
actions (multi-label, sigmoid) plus background (index 0, MMAction2's layout).

    clip (N, 3, T, H, W) --backbone--> feature map(s)
    (feature map(s), rois (R, 5)) --RoIExtractor3D--> (R, C, 1, 8, 8)
    --BBoxHeadAVA--> (R, 81) logits

Keys: `backbone.*`, `roi_head.bbox_head.fc_cls.*` (the extractor has no parameters),
matching MMAction2's AVA checkpoints (`slowonly_r50_4x16_ava21`, `slowfast_r50_4x16_ava21`).
`humact.deploy.fuse(detector)` gives an eval-only detector on the BN-folded twin of the backbone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from humact.errors import UsageError
from humact.io.checkpoints import load_strict, read_foreign
from humact.video_models.clips import IMAGENET_MEAN, IMAGENET_STD
from humact.video_models.heads import BBoxHeadAVA
from humact.video_models.resnet3d import ResNet3d, slowonly_r50
from humact.video_models.roi import RoIExtractor3D
from humact.video_models.slowfast import ResNet3dSlowFast

__all__ = ["AVARoIHead", "AVADetector", "slowonly_r50_ava", "slowfast_r50_ava", "load_mmaction2_detector", "AVASpec",
           "DETECTORS", "build_detector"]


class AVARoIHead(nn.Module):
    """RoI extractor (no parameters) + `BBoxHeadAVA`; attribute names as in MMAction2."""

    def __init__(self, *, in_channels: int, num_classes: int = 81, dropout: float = 0.5, mlp_head: bool = False,
                 output_size: int = 8, spatial_scale: float = 1 / 16, with_global: bool = False) -> None:
        super().__init__()
        self.bbox_roi_extractor = RoIExtractor3D(output_size=output_size, spatial_scale=spatial_scale,
                                                 sampling_ratio=0, aligned=True, temporal_pool="avg",
                                                 with_global=with_global)
        # with_global: each RoI feature is followed by the clip's pooled feature (MMAction2's layout:
        # the head's fc_cls then takes 2 x in_channels, e.g. 4608 for SlowFast-R50's "context" model)
        self.bbox_head = BBoxHeadAVA(in_channels=in_channels * (2 if with_global else 1), num_classes=num_classes,
                                     dropout=dropout, mlp_head=mlp_head)

    def forward(self, feats, rois: torch.Tensor) -> torch.Tensor:
        return self.bbox_head(self.bbox_roi_extractor(feats, rois))


class AVADetector(nn.Module):
    """Backbone + AVA RoI head. `forward(clip, rois)` -> (R, num_classes) logits."""

    def __init__(self, backbone: ResNet3d | ResNet3dSlowFast, roi_head: AVARoIHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.roi_head = roi_head

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, 3, T, H, W) -> the backbone's outputs (SlowOnly: 1 map; SlowFast: slow, fast)."""
        return tuple(self.backbone(x))

    def roi_features(self, feats: tuple[torch.Tensor, ...], rois: torch.Tensor) -> torch.Tensor:
        """feats + rois (R, 5) `[batch_index, x1, y1, x2, y2]` in input pixels -> (R, C, 1, 8, 8) RoI features
        (the step other streams, e.g. a feature bank, extend before `classify`)."""
        return self.roi_head.bbox_roi_extractor(feats, rois)

    def classify(self, roi_feats: torch.Tensor) -> torch.Tensor:
        """(R, C, T, 8, 8) RoI features -> (R, num_classes) logits."""
        return self.roi_head.bbox_head(roi_feats)

    def forward_head(self, feats: tuple[torch.Tensor, ...], rois: torch.Tensor) -> torch.Tensor:
        """feats + rois (R, 5) `[batch_index, x1, y1, x2, y2]` in input pixels -> (R, num_classes) logits."""
        return self.classify(self.roi_features(feats, rois))

    def forward(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), rois)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """(R, num_classes) sigmoid scores (AVA is multi-label); column 0 is background."""
        return self.forward(x, rois).sigmoid()


def slowonly_r50_ava(*, num_classes: int = 81, dropout: float = 0.5, mlp_head: bool = False,
                     with_global: bool = False, **backbone_kw) -> AVADetector:
    """MMAction2 `slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb`: input (N, 3, 4, H, W),
    output stride 16 (last stage unstrided). `with_global`: the context feature (head in 4096)."""
    backbone = slowonly_r50(spatial_strides=(1, 2, 2, 1), **backbone_kw)
    return AVADetector(backbone, AVARoIHead(in_channels=backbone.feat_dim, num_classes=num_classes,
                                            dropout=dropout, mlp_head=mlp_head, with_global=with_global))


def slowfast_r50_ava(*, num_classes: int = 81, dropout: float = 0.5, resample_rate: int = 8,
                     speed_ratio: int = 8, channel_ratio: int = 8, with_global: bool = False,
                     **backbone_kw) -> AVADetector:
    """MMAction2 `slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb`: input (N, 3, 32, H, W),
    slow path 4 frames, fast path 32, both pooled and concatenated (2048 + 256 = 2304 channels).
    8x8 (`..._8xb8-8x8x1-20e_ava21-rgb`): resample_rate=4, speed_ratio=4. `with_global`: MMAction2's
    `-context` model (head in 4608)."""
    backbone = ResNet3dSlowFast(depth=50, resample_rate=resample_rate, speed_ratio=speed_ratio,
                                channel_ratio=channel_ratio, spatial_strides=(1, 2, 2, 1), **backbone_kw)
    return AVADetector(backbone, AVARoIHead(in_channels=sum(backbone.feat_dims), num_classes=num_classes,
                                            dropout=dropout, with_global=with_global))


def load_mmaction2_detector(model: AVADetector, checkpoint: str | os.PathLike | Mapping) -> AVADetector:
    """Load an MMAction2 AVA detector checkpoint (path or dict) strictly; errors name the file and keys."""
    state_dict, name = read_foreign(checkpoint)
    return load_strict(model, state_dict, name)


@dataclass(frozen=True)
class AVASpec:
    """An AVA detector's test input: `clip_len` x `frame_interval` sampling, short side, RGB mean / std
    (0..255 units), and the MMAction2 config it reproduces."""

    clip_len: int
    frame_interval: int
    short_side: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    config: str = ""


#: The named detectors (MMAction2's AVA configs): name -> (builder, builder kwargs, test input spec)
DETECTORS: dict[str, tuple[str, dict, AVASpec]] = {
    "slowonly_r50_4x16_ava": ("slowonly_r50_ava", {}, AVASpec(
        4, 16, config="slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb")),
    "slowonly_r50_4x16_context_ava": ("slowonly_r50_ava", {"with_global": True}, AVASpec(
        4, 16, config="slowonly 4x16 with bbox_roi_extractor.with_global=True, bbox_head.in_channels=4096")),
    "slowfast_r50_4x16_ava": ("slowfast_r50_ava", {}, AVASpec(
        32, 2, config="slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb")),
    "slowfast_r50_4x16_context_ava": ("slowfast_r50_ava", {"with_global": True}, AVASpec(
        32, 2, config="slowfast_kinetics400-pretrained-r50-context_8xb16-4x16x1-20e_ava21-rgb")),
    "slowfast_r50_8x8_ava": ("slowfast_r50_ava", {"resample_rate": 4, "speed_ratio": 4}, AVASpec(
        32, 2, config="slowfast_kinetics400-pretrained-r50_8xb8-8x8x1-20e_ava21-rgb")),
    "slowfast_r50_8x8_context_ava": ("slowfast_r50_ava", {"resample_rate": 4, "speed_ratio": 4, "with_global": True},
                                     AVASpec(32, 2, config="slowfast 8x8 with with_global=True, in_channels=4608")),
}


def build_detector(name: str, *, num_classes: int = 81, dropout: float = 0.5):
    """The named AVA detector (random weights) and its spec."""
    if name not in DETECTORS:
        raise UsageError(f"--model: unknown AVA detector {name!r}; known: skeleton, {', '.join(DETECTORS)}")
    builder, kw, spec = DETECTORS[name]
    return _BUILDERS[builder](num_classes=num_classes, dropout=dropout, **kw), spec


_BUILDERS = {"slowonly_r50_ava": slowonly_r50_ava, "slowfast_r50_ava": slowfast_r50_ava}
