"""Placeholder until the deploy package lands (lead's working copy only; replaced by the deploy branch)."""

from __future__ import annotations

from torch import nn


def fuse(model: nn.Module) -> nn.Module | None:
    from humact.skeleton.stgcn import RecognizerGCN, fuse_for_inference

    if isinstance(model, RecognizerGCN):
        return fuse_for_inference(model)
    from humact.skeleton.posec3d import PoseConv3D

    if isinstance(model, PoseConv3D):
        from humact.video_models.fused import fuse_posec3d

        return fuse_posec3d(model)
    return None
