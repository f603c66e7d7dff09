"""Skeleton action recognition at test time: model building, multi-clip testing, per-track inference.

    SkeletonDataset --SkeletonClips(test, 10 clips)--> (N, clips, M, T, V, C) --model.predict--> (N, classes)
    SkeletonDataset --HeatmapClips(test, 10 clips x flip)--> (N, 20, K, T, H, W) --PoseConv3D.predict--> (N, classes)
    PoseTracks (COCO-17, pixels) --to the model's layout + normalisation--> per track (1, clips, 1, T, V, C)
        --> ActionScores (one row per track)

A trained model is a `model.safetensors` + `model.json` pair written by `humact train`; the JSON
holds the full `TrainConfig`, the class names and the input channels, which is all
`Recognizer.from_checkpoint` needs to rebuild it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from humact.skeleton.datasets import (
    HeatmapClips, Recipe, SkeletonClips, SkeletonDataset, SkeletonSample, coco17_to_jhmdb15,
)
from humact.types import ActionScores, PoseTracks

__all__ = ["build_skeleton_model", "recipe_from", "input_clips", "predict_dataset", "Recognizer",
           "DEFAULT_MODEL"]

#: The model `humact analyze` uses when none is given (see the README for its data and accuracy).
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "models" / "stgcnpp_jhmdb15_j.safetensors"


def build_skeleton_model(*, model: str, num_classes: int, layout: str, in_channels: int, max_persons: int,
                         base_channels: int = 64, dropout: float = 0.0) -> nn.Module:
    """ST-GCN or ST-GCN++ (humact.skeleton.stgcn) for `layout`, input (N, M, T, V, in_channels);
    or "posec3d": PYSKL's PoseConv3D SlowOnly-R50 (humact.skeleton.posec3d) on heatmap volumes
    (N, in_channels, T, H, W), `base_channels` wide (PYSKL: 32); `layout` and `max_persons`
    then only shape the heatmaps, not the network."""
    from humact.skeleton import stgcn

    if model == "posec3d":
        from humact.skeleton.posec3d import posec3d_slowonly_r50_model

        return posec3d_slowonly_r50_model(num_classes=num_classes, in_channels=in_channels, dropout=dropout,
                                          base_channels=base_channels)
    kw = dict(num_classes=num_classes, layout=layout, in_channels=in_channels, dropout=dropout,
              base_channels=base_channels, num_person=max_persons)
    if model == "stgcnpp":
        return stgcn.stgcnpp(**kw)
    if model == "stgcn":
        return stgcn.stgcn(**kw)
    raise ValueError(f"model: expected 'stgcnpp', 'stgcn' or 'posec3d', got {model!r}")


def recipe_from(cfg: Any) -> Recipe:
    """The input `Recipe` of a TrainConfig (or its dict): the config's fields of the same names."""
    names = [f.name for f in dataclasses.fields(Recipe)]
    if isinstance(cfg, dict):
        # Configs saved before a field existed get the field's default.
        return Recipe(**{k: cfg[k] for k in names if k in cfg})
    return Recipe(**{k: getattr(cfg, k) for k in names})


def input_clips(model: str, data: SkeletonDataset, recipe: Recipe, *, train: bool, num_clips: int = 1,
                seed: int = 0) -> SkeletonClips | HeatmapClips:
    """The network inputs of `model` ("posec3d": heatmap volumes, else skeleton clips) for `data`."""
    cls = HeatmapClips if model == "posec3d" else SkeletonClips
    return cls(data, recipe, train=train, num_clips=num_clips, seed=seed)


@torch.no_grad()
def predict_dataset(model: nn.Module, clips: SkeletonClips | HeatmapClips, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities (N, classes), softmax averaged over each item's test clips (or views).

    `batch_size` items per forward pass; default 16, 1 for heatmap volumes (one item is
    already 2 x clips views of (K, T, 64, 64)).
    """
    if batch_size is None:
        batch_size = 1 if isinstance(clips, HeatmapClips) else 16
    model.eval()
    out = []
    for start in range(0, len(clips), batch_size):
        x = torch.stack([clips[i][0] for i in range(start, min(start + batch_size, len(clips)))])
        out.append(model.predict(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(clips.data.classes)), np.float32)


@dataclass
class Recognizer:
    """A trained skeleton model with what it needs to read new skeletons.

    Attributes:
        model: the network (eval mode).
        classes: class names.
        layout: the joint layout the model was trained on ("jhmdb15", "kinect20", "coco").
        recipe: the input recipe (clip length, stream, normalisation).
        num_clips: test clips averaged per prediction.
        name: a label for outputs (the checkpoint's file name).
        fast: an eval-only twin of `model` with the same outputs (`humact.deploy.fuse`: BN
            folded), used for prediction when present.
        kind: "posec3d" (heatmap input) or the GCN's name (skeleton input), the config's `model`.
    """

    model: nn.Module
    classes: tuple[str, ...]
    layout: str
    recipe: Recipe
    num_clips: int = 10
    name: str = ""
    fast: nn.Module | None = None
    kind: str = "stgcnpp"

    @property
    def inference_model(self) -> nn.Module:
        """What predictions run on: the fused twin when there is one, else the model."""
        return self.fast if self.fast is not None else self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> "Recognizer":
        from humact.io.checkpoints import load_checkpoint

        path = Path(path)
        tensors, meta = load_checkpoint(path)
        for key in ("config", "classes", "in_channels", "layout"):
            if key not in meta:
                raise ValueError(f"{path.with_suffix('.json')}: missing field {key!r}")
        cfg = meta["config"]
        model = build_skeleton_model(model=cfg["model"], num_classes=len(meta["classes"]), layout=meta["layout"],
                                     in_channels=int(meta["in_channels"]), max_persons=cfg["max_persons"],
                                     base_channels=cfg["base_channels"], dropout=cfg["dropout"])
        model.load_state_dict(tensors, strict=True)
        model.eval()
        # `humact train` names every model "model.safetensors": its run folder says which one it is.
        name = path.stem if path.stem != "model" else f"{path.parent.name}/{path.stem}"
        from humact.deploy import fuse

        fast = fuse(model)
        return cls(model, tuple(meta["classes"]), meta["layout"], recipe_from(cfg), int(cfg["test_clips"]), name,
                   fast, cfg["model"])

    def inputs(self, data: SkeletonDataset, num_clips: int | None = None) -> SkeletonClips | HeatmapClips:
        """Test inputs of `data` for this model (`num_clips` clips, default the model's)."""
        return input_clips(self.kind, data, self.recipe, train=False, num_clips=num_clips or self.num_clips)

    def predict_keypoints(self, keypoint: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (classes,) for one skeleton sequence (M, T, V, C) in the dataset's units
        (with its (M, T, V) scores for a heatmap model)."""
        data = SkeletonDataset([SkeletonSample(keypoint, -1, "query", score)], self.classes, self.layout)
        return predict_dataset(self.inference_model, self.inputs(data))[0]

    def recognize_tracks(self, tracks: PoseTracks, min_frames: int = 8) -> ActionScores:
        """One row of class probabilities per track of `tracks` (COCO-17 pixel keypoints).

        Each track is cut to the frames it was seen in; for a "jhmdb15" model its joints are
        derived with `coco17_to_jhmdb15` and normalised with `body_normalize` exactly as the
        training data was (a PoseConv3D model draws its heatmaps around the track's joints,
        which needs no normalisation). Tracks seen on fewer than `min_frames` frames get
        all-zero scores.
        """
        if self.layout not in ("jhmdb15", "coco"):
            raise ValueError(f"{self.name}: per-track recognition needs a 2D model (jhmdb15 or coco layout), "
                             f"this one is {self.layout!r}")
        scores = np.zeros((tracks.num_persons, len(self.classes)), np.float32)
        for m in range(tracks.num_persons):
            seen = tracks.valid[m]
            if seen.sum() < min_frames:
                continue
            kp, sc = tracks.keypoints[m, seen], tracks.keypoint_scores[m, seen]
            if self.layout == "jhmdb15":
                kp, sc = coco17_to_jhmdb15(kp, sc)
            if self.kind == "posec3d":
                scores[m] = self.predict_keypoints(kp[None], sc[None])
                continue
            if self.recipe.normalize != "body":  # "body" normalisation runs inside SkeletonClips
                raise ValueError(f"{self.name}: per-track recognition expects a 'body'-normalised model")
            x = kp[None]
            if self.model_in_channels() == 3:
                x = np.concatenate([x, sc[None, ..., None]], axis=-1)
            scores[m] = self.predict_keypoints(x)
        return ActionScores(self.classes, scores, tracks.track_ids, model=self.name)

    def model_in_channels(self) -> int:
        return int(self.model.backbone.in_channels)

