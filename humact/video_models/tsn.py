"""TSN-style 2D ResNet-50/101/152 on N frames (Wang et al. 2016), for recognition and AVA detection.

MMAction2's 2D `ResNet` (torchvision's bottleneck network, `conv1.conv`, `conv1.bn`,
`layer{i}.{j}.conv{k}.{conv,bn}`, `downsample.{conv,bn}`) is exactly a `ResNet3d` whose every
temporal kernel and stride is 1: run on `(N, C, T, H, W)` it processes each of the T frames
on its own. So the TSN backbone here *is* a `ResNet3d` (conv1 1x7x7, no inflation), and
MMAction2's 2D weights load into it strictly after one change, a singleton temporal axis on
every 4D convolution weight (`tsn_checkpoint_filter`); any other difference in keys or shapes
is an error. `humact.deploy.fuse` gives it the BN-folded twin like any ResNet3d.

- `tsn_r50_recognizer(...)` (101, 152): MMAction2's `Recognizer2D` + `TSNHead`: frames
  (N, 3, T, H, W) -> per-frame features -> average over segments and space -> `fc_cls`; the
  I3D head's global average is that same average (keys `backbone.*`, `cls_head.fc_cls.*`).
  `in_channels=10` is MMAction2's TSN flow layout (5 stacked x/y flow pairs per segment).
- `tsn_r50_ava(...)`: the AVA detector of the AVA challenge's second system: the same
  backbone on N uniformly sampled frames, features averaged over time before RoI pooling
  (the RoI extractor's temporal average), `BBoxHeadAVA`. Output stride 16 (last stage
  unstrided, as the 3D AVA detectors) by default.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import torch

from humact.io.checkpoints import load_foreign, mmaction_filter
from humact.video_models.ava import AVADetector, AVARoIHead
from humact.video_models.heads import I3DHead
from humact.video_models.recognizer import Recognizer3D
from humact.video_models.resnet3d import STAGE_BLOCKS, ResNet3d

__all__ = ["tsn_resnet", "tsn_checkpoint_filter", "tsn_recognizer", "tsn_r50_recognizer", "tsn_ava",
           "tsn_r50_ava", "load_mmaction2_tsn"]


def tsn_resnet(*, depth: int = 50, in_channels: int = 3, strides=(1, 2, 2, 2), out_indices=(3,),
               norm_eval: bool = False, frozen_stages: int = -1) -> ResNet3d:
    """MMAction2's 2D `ResNet(depth)` as a per-frame ResNet3d: (N, C, T, H, W) -> (N, 2048, T, H/32, W/32)."""
    if depth not in STAGE_BLOCKS:
        raise ValueError(f"tsn_resnet depth: expected one of {sorted(STAGE_BLOCKS)}, got {depth}")
    return ResNet3d(depth=depth, in_channels=in_channels, conv1_kernel=(1, 7, 7), conv1_stride_t=1,
                    pool1_stride_t=1, inflate=0, spatial_strides=tuple(strides), out_indices=tuple(out_indices),
                    norm_eval=norm_eval, frozen_stages=frozen_stages)


def tsn_checkpoint_filter(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """MMAction2 TSN keys -> ours: `mmaction_filter`, then (O, I, kh, kw) backbone conv weights ->
    (O, I, 1, kh, kw). A bare backbone state dict (no `backbone.` prefix) is accepted too."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for k, v in mmaction_filter(state_dict).items():
        if not k.startswith("cls_head.") and v.dim() == 4:
            v = v.unsqueeze(2)
        out[k] = v
    return out


def tsn_recognizer(*, depth: int = 50, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.4,
                   average_clips: str = "prob") -> Recognizer3D:
    """MMAction2's TSN (`tsn_imagenet-pretrained-r{depth}_8xb32-1x1x{3,8}-100e_kinetics400-rgb`): input
    (N, 3, segments, H, W), (N, num_classes) logits."""
    backbone = tsn_resnet(depth=depth, in_channels=in_channels)
    return Recognizer3D(backbone, I3DHead(in_channels=backbone.feat_dim, num_classes=num_classes, dropout=dropout),
                        average_clips=average_clips)


def tsn_r50_recognizer(**kw) -> Recognizer3D:
    return tsn_recognizer(depth=50, **kw)


def tsn_ava(*, depth: int = 50, num_classes: int = 81, dropout: float = 0.5, in_channels: int = 3,
            strides=(1, 2, 2, 1)) -> AVADetector:
    """TSN AVA detector: (N, 3, frames, H, W) -> per-frame ResNet -> temporal average -> RoIAlign ->
    `BBoxHeadAVA`. Backbone keys are MMAction2's TSN ones (after `tsn_checkpoint_filter`)."""
    backbone = tsn_resnet(depth=depth, in_channels=in_channels, strides=strides)
    stride = 4 * 2 ** sum(1 for s in strides[1:] if s == 2)
    return AVADetector(backbone, AVARoIHead(in_channels=backbone.feat_dim, num_classes=num_classes, dropout=dropout,
                                            spatial_scale=1 / stride))


def tsn_r50_ava(**kw) -> AVADetector:
    return tsn_ava(depth=50, **kw)


def load_mmaction2_tsn(model, checkpoint, *, backbone_only: bool = False):
    """Load an MMAction2 TSN checkpoint strictly: the whole recognizer, or (`backbone_only`, e.g. a
    Kinetics TSN into `tsn_ava`) only its `backbone.*` keys into `model.backbone`."""
    if not backbone_only:
        return load_foreign(model, checkpoint, tsn_checkpoint_filter)

    def only_backbone(sd):
        sd = tsn_checkpoint_filter(sd)
        return OrderedDict((k[len("backbone."):], v) for k, v in sd.items() if k.startswith("backbone."))

    load_foreign(model.backbone, checkpoint, only_backbone)
    return model
