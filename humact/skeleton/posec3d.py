"""PoseConv3D (Duan et al., CVPR 2022): a 3D CNN over stacked keypoint / limb heatmaps.

Model = PYSKL's `Recognizer3D` with a `ResNet3dSlowOnly` backbone (see
`humact.video_models.resnet3d.posec3d_slowonly_r50`) and an `I3DHead`.

Input: (N, K, T, H, W) heatmap volumes (K = 17 COCO keypoints or 19 limbs, e.g.
T = 48 frames, 56 x 56 pixels), as made by GeneratePoseTarget; at test time
(N, clips, K, T, H, W) with clips x flip views, whose softmax probabilities are averaged.

Loads PYSKL checkpoints strictly: `{'state_dict': ...}` or a bare dict, a
`module.` prefix (DataParallel) stripped, MMAction2's older `cls_head.fc.*` renamed
to `cls_head.fc_cls.*`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from humact.io.checkpoints import load_strict, read_foreign
from humact.video_models.heads import I3DHead, average_clips
from humact.video_models.resnet3d import ResNet3d, posec3d_slowonly_r50

__all__ = ["PoseConv3D", "posec3d_slowonly_r50_model", "checkpoint_filter_fn", "load_pyskl_checkpoint"]


class PoseConv3D(nn.Module):
    """Backbone + I3D head. Parameter names are PYSKL's (`backbone.*`, `cls_head.fc_cls.*`)."""

    def __init__(self, backbone: ResNet3d, cls_head: I3DHead, *, average_clips: str = "prob") -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head
        self.average_clips_mode = average_clips
        self.channels_last = False

    def to_channels_last(self) -> "PoseConv3D":
        """Keep weights and activations in the channels-last 3D layout: faster oneDNN convolutions on
        CPU, same outputs up to float rounding (within 1e-5 of PYSKL's logits; a test checks it)."""
        self.to(memory_format=torch.channels_last_3d)
        self.channels_last = True
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, T, H, W) -> (N, 512, T/2, H/8, W/8) last-stage features."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.backbone(x)[-1]

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, C, T', H', W') -> (N, num_classes) logits."""
        return self.cls_head(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, T, H, W) -> (N, num_classes) logits (training and single-clip use)."""
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test mode: (N, clips, K, T, H, W) -> (N, num_classes) clip-averaged scores
        (probabilities with the default `average_clips='prob'`). Call `.eval()` first."""
        if x.dim() == 5:
            x = x[:, None]
        n, clips = x.shape[:2]
        logits = self(x.reshape(n * clips, *x.shape[2:]))
        return average_clips(logits, clips, self.average_clips_mode)


def posec3d_slowonly_r50_model(*, num_classes: int = 60, in_channels: int = 17, dropout: float = 0.5,
                               **backbone_kw) -> PoseConv3D:
    """PYSKL's `slowonly_r50` PoseConv3D config (e.g. `configs/posec3d/slowonly_r50_ntu60_xsub/joint.py`).

    2,024,860 parameters for 17 channels and 60 classes (PYSKL's own count).
    """
    backbone = posec3d_slowonly_r50(in_channels=in_channels, **backbone_kw)
    head = I3DHead(in_channels=backbone.feat_dim, num_classes=num_classes, dropout=dropout)
    return PoseConv3D(backbone, head)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Map a PYSKL / MMAction2 checkpoint onto our names.

    Accepts `{'state_dict': sd}` or a bare `sd`; strips `module.`; renames
    `cls_head.fc.` (older MMAction2 heads) to `cls_head.fc_cls.`.
    """
    state_dict, _ = read_foreign(state_dict)
    return OrderedDict(("cls_head.fc_cls." + k[len("cls_head.fc."):] if k.startswith("cls_head.fc.") else k, v)
                       for k, v in state_dict.items())


def load_pyskl_checkpoint(model: nn.Module, checkpoint: str | os.PathLike | Mapping) -> nn.Module:
    """Load a PYSKL checkpoint (a path or an already loaded dict) into `model`, strictly.

    Raises ValueError naming the file and the missing / unexpected / mis-shaped keys.
    """
    state_dict, name = read_foreign(checkpoint)
    return load_strict(model, checkpoint_filter_fn(state_dict), name)
