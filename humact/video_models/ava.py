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
           "DETECTORS", "build_detector", "detector_stream", "ava_loss", "ava_hits"]


def ava_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MMAction2's `BBoxHeadAVA.loss_and_target` (multi-label, focal gamma 0 = plain BCE) for (R, C) logits
    and (R, C) float targets whose column 0 is the background column.

    The background column is never trained: logits and targets lose column 0. Rows without any action
    label are left out, as MMAction2 does (its sampled negatives carry all-zero targets, so they drop out
    of its loss); a row marked background (target column 0 = 1, what `humact.detect.dataset` gives
    negatives with `data.ava_negatives`) stays in, with all-zero action targets. The loss is the mean
    binary cross-entropy over the kept rows and the action columns. A batch without such rows gives 0
    (with a gradient path), where MMAction2's mean of nothing would be NaN.
    """
    t = labels.to(logits.dtype)
    keep = (t[:, 1:].sum(dim=1) > 0) | (t[:, 0] > 0.5)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return nn.functional.binary_cross_entropy_with_logits(logits[keep, 1:], t[keep, 1:])


@torch.no_grad()
def ava_hits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """(labels found, labels): the action labels (target 1, background column excluded) whose sigmoid
    is above 0.5; their ratio is MMAction2's micro `recall@thr=0.5` (the training "accuracy")."""
    t = labels[:, 1:] > 0.5
    return int((t & (logits[:, 1:] > 0)).sum()), int(t.sum())


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

    # The trainer's model-level loss (`humact.train.trainer.Trainer`): any model mapping (clip, rois) to
    # (R, 81) logits trains on `humact.detect.dataset` items with these two (or passes them to Trainer).
    loss = staticmethod(ava_loss)
    train_hits = staticmethod(ava_hits)

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


#: The LFB and RGB + flow detectors (`video_models.lfb`, `video_models.flow`), trained by `humact train` on
#: AVA-format data with a feature bank (data.ava_bank) or flow clips (data.ava_flow): name -> as above
DETECTORS.update({
    "lfb_nl_slowonly_r50_4x16_ava": ("lfb_nl_slowonly_r50_ava", {"fbo": "non_local"}, AVASpec(
        4, 16, config="slowonly-lfb-nl_kinetics400-pretrained-r50_8xb12-4x16x1-20e_ava21-rgb")),
    "lfb_avg_slowonly_r50_4x16_ava": ("lfb_nl_slowonly_r50_ava", {"fbo": "avg"}, AVASpec(
        4, 16, config="slowonly-lfb-avg_kinetics400-pretrained-r50_8xb12-4x16x1-20e_ava21-rgb")),
    "lfb_max_slowonly_r50_4x16_ava": ("lfb_nl_slowonly_r50_ava", {"fbo": "max"}, AVASpec(
        4, 16, config="slowonly-lfb-max_kinetics400-pretrained-r50_8xb12-4x16x1-20e_ava21-rgb")),
    "lfb_nl_slowfast_r50_4x16_ava": ("lfb_slowfast_r50_ava", {"fbo": "non_local"}, AVASpec(
        32, 2, config="slowfast 4x16 AVA detector + LFB non-local (the AVA system's combination)")),
    "rgbflow_concat_slowonly_r50_4x16_ava": ("two_stream_ava", {"fusion": "concat"}, AVASpec(
        4, 16, config="SlowOnly-R50 RGB + SlowOnly-R50 flow (2 channels), last maps concatenated, one RoI head")),
    "rgbflow_add_slowonly_r50_4x16_ava": ("two_stream_ava", {"fusion": "add"}, AVASpec(
        4, 16, config="SlowOnly-R50 RGB + SlowOnly-R50 flow (2 channels), last maps added, one RoI head")),
    "rgbflow_score_slowonly_r50_4x16_ava": ("two_stream_ava", {"fusion": "score"}, AVASpec(
        4, 16, config="SlowOnly-R50 RGB and flow AVA detectors, sigmoid scores averaged")),
})


def detector_stream(name: str) -> str:
    """What a named detector eats besides the RGB clip and the boxes: "" (nothing), "lfb" (each RoI's
    feature-bank window) or "flow" (the flow clip at the same frames)."""
    builder = DETECTORS[name][0] if name in DETECTORS else ""
    return "lfb" if builder.startswith("lfb_") else "flow" if builder == "two_stream_ava" else ""


def build_detector(name: str, *, num_classes: int = 81, dropout: float = 0.5, base_channels: int = 64,
                   norm_eval: bool = False, lt_channels: int | None = None):
    """The named AVA detector (random weights) and its spec. `base_channels` narrows the backbone (the
    first stage's width; 64 is MMAction2's, the one its checkpoints have; the LFB detectors' latent width
    follows, 512 at 64); `norm_eval` keeps its BatchNorm in eval mode under `train()` (MMAction2's
    `norm_eval`, frozen statistics). `lt_channels`: the LFB detectors' bank feature width (default: their
    own short-term width)."""
    if name not in DETECTORS:
        raise UsageError(f"--model: unknown AVA detector {name!r}; known: skeleton, {', '.join(DETECTORS)}")
    builder, kw, spec = DETECTORS[name]
    bb: dict = {}
    if builder in ("slowfast_r50_ava", "lfb_slowfast_r50_ava"):
        bb = dict(base_channels=base_channels, slow_kw=dict(norm_eval=norm_eval), fast_kw=dict(norm_eval=norm_eval))
    else:
        bb = dict(base_channels=base_channels, norm_eval=norm_eval)
    if builder.startswith("lfb_"):
        bb.update(latent_channels=max(1, 512 * base_channels // 64), lt_channels=lt_channels)
    return _BUILDERS[builder](num_classes=num_classes, dropout=dropout, **kw, **bb), spec


def _lazy(module: str, builder: str):
    # the LFB and flow model files import this one: their builders are looked up when called
    def build(**kw):
        import importlib

        return getattr(importlib.import_module(f"humact.video_models.{module}"), builder)(**kw)

    return build


_BUILDERS = {"slowonly_r50_ava": slowonly_r50_ava, "slowfast_r50_ava": slowfast_r50_ava,
             "lfb_nl_slowonly_r50_ava": _lazy("lfb", "lfb_nl_slowonly_r50_ava"),
             "lfb_slowfast_r50_ava": _lazy("lfb", "lfb_slowfast_r50_ava"),
             "two_stream_ava": _lazy("flow", "TwoStreamDetector")}
