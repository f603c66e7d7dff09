"""PoseConv3D (Duan et al., CVPR 2022): a 3D CNN over stacked keypoint / limb heatmaps.

Model = PYSKL's config: a :class:`~humact.video_models.recognizer.Recognizer3D` with a
``ResNet3dSlowOnly`` backbone (:func:`humact.video_models.resnet3d.posec3d_slowonly_r50`) and an
``I3DHead``; :func:`posec3d_slowonly_r50_model` builds it.

Input: (N, K, T, H, W) heatmap volumes (K = 17 COCO keypoints or 19 limbs, e.g.
T = 48 frames, 56 x 56 pixels), as made by GeneratePoseTarget; at test time
(N, clips, K, T, H, W) with clips x flip views, whose softmax probabilities ``predict``
averages. Its inference twin (BN folded, channels-last) is ``humact.deploy.fuse(model)``.

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

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
from humact.video_models.heads import I3DHead
from humact.video_models.recognizer import Recognizer3D
from humact.video_models.resnet3d import posec3d_slowonly_r50

__all__ = ["posec3d_slowonly_r50_model", "checkpoint_filter_fn", "load_pyskl_checkpoint"]


def posec3d_slowonly_r50_model(*, num_classes: int = 60, in_channels: int = 17, dropout: float = 0.5,
                               **backbone_kw) -> Recognizer3D:
    """PYSKL's `slowonly_r50` PoseConv3D config (e.g. `configs/posec3d/slowonly_r50_ntu60_xsub/joint.py`):
    `Recognizer3D(backbone=ResNet3dSlowOnly(...), cls_head=I3DHead(...))`, parameter names
    `backbone.*`, `cls_head.fc_cls.*` as PYSKL's.

    2,024,860 parameters for 17 channels and 60 classes (PYSKL's own count). Features
    (N, 512, T/2, H/8, W/8) with the default 32 base channels.
    """
    backbone = posec3d_slowonly_r50(in_channels=in_channels, **backbone_kw)
    head = I3DHead(in_channels=backbone.feat_dim, num_classes=num_classes, dropout=dropout)
    return Recognizer3D(backbone, head)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Map a PYSKL / MMAction2 checkpoint onto our names.

    Accepts `{'state_dict': sd}` or a bare `sd`; strips `module.`; renames
    `cls_head.fc.` (older MMAction2 heads) to `cls_head.fc_cls.`; drops MMAction2 1.x's
    `data_preprocessor.*` buffers.
    """
    state_dict, _ = read_foreign(state_dict)
    return mmaction_filter(state_dict)


def load_pyskl_checkpoint(model: nn.Module, checkpoint: str | os.PathLike | Mapping) -> nn.Module:
    """Load a PYSKL checkpoint (a path or an already loaded dict) into `model`, strictly.

    Raises :class:`~humact.errors.CheckpointError` (a ValueError) naming the file and the
    missing / unexpected / mis-shaped keys.
    """
    return load_foreign(model, checkpoint, checkpoint_filter_fn)
