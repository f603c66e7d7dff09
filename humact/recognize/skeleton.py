"""Skeleton action recognition with a trained model: building, multi-clip testing, per-track inference.

    SkeletonDataset --SkeletonClips(test, 10 clips)--> (N, clips, M, T, V, C) --predict--> (N, classes)
    SkeletonDataset --HeatmapClips(test, 10 clips x flip)--> (N, 20, K, T, H, W) --predict--> (N, classes)
    PoseTracks (COCO-17, pixels) --to the model's layout, the model's own recipe--> per track
        --> ActionScores (one row per track; tracks too short get no actions and a reason)

A trained model is a `model.safetensors` + `model.json` pair written by `humact train`; the JSON
holds the full `TrainConfig` (read back by `humact.config.read_saved_config`, old flat configs
too), the class names, the layout and the input channels, which is all `Recognizer.from_checkpoint`
needs to rebuild it. Which pipeline feeds a model is its `humact.zoo` entry's `input`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humact import zoo
from humact.config import InputConfig, TrainConfig, read_saved_config
from humact.errors import CheckpointError, InputError
from humact.io.checkpoints import load_checkpoint, load_strict
from humact.skeleton.graph import Layout
from humact.skeleton.datasets import HeatmapClips, SkeletonClips, SkeletonDataset, SkeletonSample, coco17_to_jhmdb15
from humact.types import ActionScores, PoseTracks

__all__ = ["build_model", "input_clips", "input_shape", "predict_streams", "predict_dataset", "Recognizer",
           "DEFAULT_MODEL"]

#: The model `humact analyze` uses when none is given (see the README for its data and accuracy).
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "models" / "stgcnpp_jhmdb15_j.safetensors"


def build_model(cfg: TrainConfig, *, num_classes: int, layout, in_channels: int) -> nn.Module:
    """The network a config names (`cfg.model.name`, a `humact.zoo` entry), for `layout` and
    `in_channels` input channels (GCNs: C of (N, M, T, V, C); heatmap models: K of (N, K, T, H, W))."""
    entry = zoo.get(cfg.model.name)
    return entry.build(num_classes=num_classes, layout=layout, in_channels=in_channels,
                       num_person=cfg.input.max_persons, base_channels=cfg.model.base_channels,
                       dropout=cfg.model.dropout)


def input_clips(model: str, data: SkeletonDataset, recipe: InputConfig, *, train: bool, num_clips: int = 1,
                seed: int = 0):
    """The network inputs of the named model for `data`, by its `humact.zoo` entry's input kind: skeleton
    clips, heatmap volumes, or RGB frames of each sample's video plus heatmaps (`RGBPoseClips`)."""
    kind = zoo.get(model).input
    if kind == "rgbpose":
        from humact.skeleton.rgbpose import RGBPoseClips as cls
    else:
        cls = HeatmapClips if kind == "heatmap" else SkeletonClips
    return cls(data, recipe, train=train, num_clips=num_clips, seed=seed)


def in_channels_of(clips) -> int:
    """Input channels of the model these clips feed (C of skeleton clips, K of heatmap views; RGB+pose
    models: K of their heatmaps)."""
    if hasattr(clips, "num_channels"):
        return int(clips.num_channels)
    x0 = clips[0][0]
    return int(x0.shape[-1])


def input_shape(clips) -> tuple:
    """The shape of one training input (per modality for RGB+pose items), for messages."""
    x0 = clips[0][0]
    return tuple(tuple(t.shape[1:]) for t in x0) if isinstance(x0, tuple) else tuple(x0.shape[1:])


@torch.no_grad()
def predict_streams(model: nn.Module, clips, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Class probabilities of every item, softmax averaged over its test clips (or views): {"fused": (N, classes)}
    and, for a model with several heads (RGBPoseConv3D), each head's too; "fused" is then their weighted
    sum (`model.predict`, PYSKL's 1:1) renormalised to sum to 1.

    `batch_size` items per forward pass; default 16 for skeleton clips, 1 for heatmap volumes and
    RGB+pose items (one item is already several views). In a distributed run (`humact.scale.ddp`)
    the batches are shared out among the processes and every process gets all the rows, equal to a
    single process's.
    """
    from humact.scale.ddp import gather_batches

    if batch_size is None:
        batch_size = 16 if isinstance(clips, SkeletonClips) else 1
    model.eval()
    # The fused twins hold buffers, no parameters.
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    starts = list(range(0, len(clips), batch_size))

    def run(k: int) -> dict[str, np.ndarray]:
        xs = [clips[i][0] for i in range(starts[k], min(starts[k] + batch_size, len(clips)))]
        x = tuple(torch.stack(p) for p in zip(*xs)) if isinstance(xs[0], tuple) else (torch.stack(xs),)
        scores = model.predict(*(t.to(device) for t in x))
        if not isinstance(scores, dict):
            scores = {"fused": scores}
        else:
            scores = dict(scores, fused=scores["fused"] / scores["fused"].sum(1, keepdim=True))
        return {k: v.cpu().numpy() for k, v in scores.items()}

    out = gather_batches(run, len(starts))
    if not out:
        return {"fused": np.zeros((0, len(clips.data.classes)), np.float32)}
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def predict_dataset(model: nn.Module, clips, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities (N, classes), softmax averaged over each item's test clips (or views); for
    several heads their fusion (`predict_streams`)."""
    return predict_streams(model, clips, batch_size)["fused"]


@dataclass
class Recognizer:
    """A trained skeleton model with what it needs to read new skeletons.

    Attributes:
        model: the network (eval mode).
        config: the `TrainConfig` it was trained with.
        classes: class names.
        layout: the joint layout it was trained on ("jhmdb15", "kinect20", "coco", ... or a custom `Layout`).
        name: a label for outputs (the checkpoint's file name, or run folder / file).
        fast: an eval-only twin of `model` with the same outputs (`humact.deploy.fuse`), used for
            prediction when present.
        pixels: whether its training coordinates were frame pixels (`humact extract` data, PYSKL
            pickles with `img_shape`), so pixel tracks can be given to it as they are.
    """

    model: nn.Module
    config: TrainConfig
    classes: tuple[str, ...]
    layout: str | Layout
    name: str = ""
    fast: nn.Module | None = None
    pixels: bool | None = None

    @property
    def kind(self) -> str:
        return self.config.model.name

    @property
    def recipe(self) -> InputConfig:
        return self.config.input

    @property
    def num_clips(self) -> int:
        return self.config.input.test_clips

    @property
    def inference_model(self) -> nn.Module:
        """What predictions run on: the fused twin when there is one, else the model."""
        return self.fast if self.fast is not None else self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> "Recognizer":
        """Rebuild a `humact train` checkpoint; CheckpointError naming the file when it cannot be."""
        from humact.deploy import fuse

        path = Path(path)
        tensors, meta = load_checkpoint(path)
        source = str(path.with_suffix(".json"))
        for key in ("config", "classes", "in_channels", "layout"):
            if key not in meta:
                raise CheckpointError(f"{source}: missing field {key!r}")
        cfg = read_saved_config(meta, source)
        classes = meta["classes"]
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise CheckpointError(f"{source}: classes: expected a non-empty list of class names")
        in_channels = meta["in_channels"]
        if not isinstance(in_channels, int) or not 1 <= in_channels <= 4096:
            raise CheckpointError(f"{source}: in_channels: expected an integer in [1, 4096], got {in_channels!r}")
        layout = _saved_layout(meta, source)
        try:
            model = build_model(cfg, num_classes=len(classes), layout=layout, in_channels=in_channels)
        except ValueError as e:
            raise CheckpointError(f"{source}: cannot build {cfg.model.name!r} for layout {meta['layout']!r}: "
                                  f"{e}") from None
        try:
            load_strict(model, tensors, str(path))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (built from {source}: do its config, classes and layout belong to these "
                                  f"weights?)") from None
        model.eval()
        # `humact train` names every model "model.safetensors": its run folder says which one it is.
        name = path.stem if path.stem != "model" else f"{path.parent.name}/{path.stem}"
        pixels = meta.get("pixel_coordinates")
        return cls(model, cfg, tuple(classes), layout, name, fuse(model), pixels if isinstance(pixels, bool) else None)

    def inputs(self, data: SkeletonDataset, num_clips: int | None = None) -> SkeletonClips | HeatmapClips:
        """Test inputs of `data` for this model (`num_clips` clips, default the model's)."""
        return input_clips(self.kind, data, self.recipe, train=False, num_clips=num_clips or self.num_clips)

    def predict_keypoints(self, keypoint: np.ndarray, score: np.ndarray | None = None,
                          img_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Probabilities (classes,) for one skeleton sequence (M, T, V, C) in the training data's
        units, with its (M, T, V) scores when the model was trained with scores."""
        sample = SkeletonSample(keypoint, -1, "query", score, img_shape)
        data = SkeletonDataset([sample], self.classes, self.layout)
        return predict_dataset(self.inference_model, self.inputs(data))[0]

    def track_units_ok(self) -> str:
        """"" when pixel tracks can be fed to this model, else why not.

        A model sees tracks the way its training data was: the recipe's normalisation runs on
        them. That is right when the normalisation removes position and scale ("body"), when the
        model's input is heatmaps (drawn around the joints), or when the training data was frame
        pixels too; a model trained on other units (JHMDB's normalised ground truth, metres) with
        no such normalisation would see numbers of another scale.
        """
        if self.recipe.normalize == "body" or zoo.get(self.kind).input == "heatmap" or self.pixels:
            return ""
        return (f"{self.name}: trained on non-pixel coordinates with normalize={self.recipe.normalize!r}; "
                f"per-track recognition needs a model trained on pixel keypoints (e.g. `humact extract` "
                f"data) or with normalize='body'")

    def recognize_tracks(self, tracks: PoseTracks, min_frames: int = 8,
                         frame_shape: tuple[int, int] | None = None) -> ActionScores:
        """One row of class probabilities per track of `tracks` (COCO-17 pixel keypoints).

        Each track is cut to the frames it was seen in; for a "jhmdb15" model its joints are derived
        with `coco17_to_jhmdb15`; the model's recipe then normalises and samples them exactly as its
        training data was. Tracks posed on fewer than `min_frames` frames get no actions and a reason;
        a frame where the track has a box but no keypoint (a detector's box-only person, score 0
        everywhere) is not a posed frame. `frame_shape` (h, w) is the video's, for recipes that normalise by the frame.
        """
        if zoo.get(self.kind).input == "rgbpose":
            raise InputError(f"{self.name}: {self.kind} recognises a whole video from its frames and poses, not "
                             f"tracks one by one: use `humact classify VIDEO --checkpoint` with it")
        if self.layout not in ("jhmdb15", "coco"):
            raise InputError(f"{self.name}: per-track recognition needs a model on COCO-17 or JHMDB-15 "
                             f"joints, this one is on {self.layout!r}")
        why = self.track_units_ok()
        if why:
            raise InputError(why)
        scores = np.zeros((tracks.num_persons, len(self.classes)), np.float32)
        reasons = []
        with_score = self.model_in_channels() == 3 or zoo.get(self.kind).input == "heatmap"
        for m in range(tracks.num_persons):
            seen = tracks.valid[m] & (tracks.keypoint_scores[m].max(-1) > 0)
            if seen.sum() < min_frames:
                reasons.append(f"seen on {int(seen.sum())} frames, fewer than the {min_frames} needed")
                continue
            reasons.append("")
            kp, sc = tracks.keypoints[m, seen], tracks.keypoint_scores[m, seen]
            if self.layout == "jhmdb15":
                kp, sc = coco17_to_jhmdb15(kp, sc)
            scores[m] = self.predict_keypoints(kp[None], sc[None] if with_score else None, frame_shape)
        return ActionScores(self.classes, scores, tracks.track_ids, model=self.name, reasons=tuple(reasons))

    def model_in_channels(self) -> int:
        backbone = getattr(self.model, "backbone", None)
        return int(getattr(backbone, "in_channels", 0))


def _saved_layout(meta: dict, source: str):
    """The layout a checkpoint was trained on: a built-in name, or the custom layout saved inside it."""
    from humact.skeleton.graph import LAYOUTS, layout_from_dict

    name = meta["layout"]
    if isinstance(name, str) and name in LAYOUTS:
        return name
    custom = meta.get("layout_def")
    if isinstance(custom, dict):
        try:
            return layout_from_dict(custom, f"{source}: layout_def")
        except InputError as e:
            raise CheckpointError(str(e)) from None
    raise CheckpointError(f"{source}: layout: unknown layout {name!r} and no 'layout_def' saved with it")
