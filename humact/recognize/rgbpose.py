"""Video-level recognition with RGBPoseConv3D: a video's frames and its poses -> class scores (`humact classify`).

    RGBPoseVideoRecognizer.from_checkpoint(ckpt)   a `humact train` model.safetensors (+ .json: classes,
                                                   recipe), or a PYSKL / MMAction2 .pth (path or URL;
                                                   classes, heatmap channels and width read from its
                                                   shapes, PYSKL's test recipe)
    .classify(video, pose=None)                    the poses from `pose` (the `humact extract` .pkl or
                                                   .json of that video), or from running perception on
                                                   it; PYSKL's test pipeline (10 clips of 8 RGB + 32 pose
                                                   frames, frames 256 px, heatmaps 64 px, no flip);
                                                   per-head probabilities averaged over the clips and
                                                   fused 1:1 -> VideoScores (with `streams`)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from humact import zoo
from humact.config import InputConfig
from humact.errors import CheckpointError, InputError
from humact.recognize.video import VideoScores, _labels

__all__ = ["RGBPoseVideoRecognizer", "read_pose"]

MODEL = "rgbposeconv3d"


def read_pose(video: str | os.PathLike, pose: str | os.PathLike | None = None, *, progress: bool = True) -> dict:
    """The PYSKL annotation (`keypoint`, `keypoint_score`, `img_shape`, ...) of `video`: read from `pose`
    (a `humact extract` .pkl or .json), or made by running perception on the video when `pose` is None."""
    from humact.io.results import read_pyskl_pickle, read_result_json, to_pyskl

    if pose is None:
        from humact.perception.pipeline import extract_video

        return to_pyskl(extract_video(video))
    pose = Path(pose)
    if not pose.is_file():
        raise InputError(f"{pose}: no such pose file (--pose: the .pkl or .json `humact extract` wrote for the video)")
    if pose.suffix == ".json":
        return to_pyskl(read_result_json(pose))
    return read_pyskl_pickle(pose)


@dataclass
class RGBPoseVideoRecognizer:
    """RGBPoseConv3D (eval mode) with its class names and test recipe."""

    model: nn.Module
    name: str
    labels: tuple[str, ...]
    recipe: InputConfig
    layout: object = "coco"

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike,
                        labels: Sequence[str] | str | os.PathLike | None = None) -> "RGBPoseVideoRecognizer":
        """Ours (`.safetensors` of `humact train --model rgbposeconv3d`) or PYSKL's / MMAction2's `.pth`."""
        from humact.io.download import fetch

        path = fetch(checkpoint)
        if path.suffix == ".safetensors":
            from humact.recognize.skeleton import Recognizer

            rec = Recognizer.from_checkpoint(path)
            if zoo.get(rec.kind).input != "rgbpose":
                raise CheckpointError(f"{path}: a {rec.kind!r} model, not RGBPoseConv3D (classify it with its own "
                                      f"--model, or `humact analyze` for skeleton models)")
            names = _labels(labels, {"classes": list(rec.classes)}, len(rec.classes), str(path))
            return cls(rec.model, rec.name, names, rec.recipe, rec.layout)
        from humact.config import default_config
        from humact.video_models.rgbposeconv3d import from_pyskl_checkpoint

        model = from_pyskl_checkpoint(path)
        recipe = default_config(MODEL).input
        k = model.backbone.pose_path.in_channels
        if k != 17:
            raise CheckpointError(f"{path}: backbone.pose_path.conv1: {k} heatmap channels; humact's poses are "
                                  f"COCO-17 keypoint heatmaps (17 channels)")
        num_classes = model.cls_head.fc_rgb.out_features
        return cls(model, path.name, _labels(labels, {}, num_classes, str(path)), recipe, "coco")

    @torch.no_grad()
    def classify(self, video: str | os.PathLike, pose: str | os.PathLike | None = None,
                 num_clips: int | None = None) -> VideoScores:
        """Class probabilities of `video` (see the module docstring)."""
        from humact.skeleton.datasets import SkeletonDataset, SkeletonSample
        from humact.skeleton.rgbpose import RGBPoseClips
        from humact.video import probe

        num_clips = num_clips or self.recipe.test_clips
        anno = read_pose(video, pose)
        kp = anno["keypoint"]
        if kp.shape[0] == 0:
            raise InputError(f"{pose or video}: nobody was found in the video (field keypoint has 0 persons); "
                             f"RGBPoseConv3D needs the poses of the people acting")
        sample = SkeletonSample(kp, -1, str(anno.get("frame_dir", Path(video).name)), anno.get("keypoint_score"),
                                tuple(anno["img_shape"]), video=os.fspath(video))
        clips = RGBPoseClips(SkeletonDataset([sample], self.labels, self.layout, str(pose or video)), self.recipe,
                             train=False, num_clips=num_clips)
        views = clips.views(0)
        self.model.eval()
        scores = self.model.predict(views.imgs[None], views.heatmaps[None])
        fused = scores["fused"] / scores["fused"].sum(1, keepdim=True)
        streams = {k: v[0].numpy().astype(np.float32) for k, v in scores.items() if k != "fused"}
        return VideoScores(os.fspath(video), self.name, self.labels, fused[0].numpy().astype(np.float32), num_clips,
                           1, int(len(np.unique(views.rgb_inds))), probe(video).num_frames, streams=streams)
