"""Video-level action recognition with an RGB 3D CNN: the `VideoRecognizer` behind `humact classify`.

    VideoRecognizer.from_checkpoint(name, checkpoint)   a `humact.zoo` "rgb" entry + MMAction2 .pth
                                                        (path or URL) or humact .safetensors weights
    .classify(video, num_clips)                         MMAction2's test clips (e.g. 10 x 8x8 frames),
                                                        decoding only the frames they use, test views
                                                        (short side 256, three crops or centre crop),
                                                        probabilities averaged -> VideoScores

The skeleton counterpart is `humact.recognize.skeleton.Recognizer`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from humact import zoo
from humact.errors import CheckpointError, InputError
from humact.video_models.clips import ClipSpec

__all__ = ["VideoRecognizer", "VideoScores", "MMACTION2_CHECKPOINTS"]

#: Where users get the checkpoints this wants (the message a missing --checkpoint prints).
MMACTION2_CHECKPOINTS = ("MMAction2's model zoo: https://mmaction2.readthedocs.io/en/latest/model_zoo/recognition.html "
                         "(the .pth of each config); give its URL or a downloaded path")


@dataclass
class VideoScores:
    """One video's class probabilities from a video recognizer."""

    video: str
    model: str
    labels: tuple[str, ...]
    scores: np.ndarray  # (C,) float32, averaged over clips and views
    num_clips: int
    views_per_clip: int
    frames_decoded: int
    num_frames: int
    #: per-head probabilities of a model with several heads (RGBPoseConv3D: "rgb", "pose"); `scores` is their fusion
    streams: dict[str, np.ndarray] | None = None

    def topk(self, k: int = 5) -> list[tuple[str, int, float]]:
        order = np.argsort(-self.scores, kind="stable")[: min(k, len(self.labels))]
        return [(self.labels[i], int(i), float(self.scores[i])) for i in order]

    def to_json(self, checkpoint: str = "", k: int = 5) -> dict:
        return {"video": self.video, "model": self.model, "checkpoint": checkpoint, "num_clips": self.num_clips,
                "top": [{"label": lab, "index": i, "score": s} for lab, i, s in self.topk(k)],
                "scores": self.scores.tolist(), "labels": list(self.labels),
                **({"streams": {k: v.tolist() for k, v in self.streams.items()}} if self.streams else {})}


def read_weights(checkpoint: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict, meta) from an MMAction2 .pth (path or URL) or a humact .safetensors (+ .json)."""
    from humact.io.checkpoints import load_checkpoint, read_foreign
    from humact.io.download import fetch

    path = fetch(checkpoint)
    if path.suffix == ".safetensors":
        return load_checkpoint(path)
    state_dict, _ = read_foreign(path)
    return state_dict, {}


def _labels(labels: Sequence[str] | str | os.PathLike | None, meta: dict, num_classes: int,
            source: str) -> tuple[str, ...]:
    if labels is not None and not isinstance(labels, (list, tuple)):
        path = Path(labels)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read the class names ({e})") from None
        labels = [line.strip() for line in text.splitlines() if line.strip()]
        source = str(path)
    if labels is not None:
        if len(labels) != num_classes:
            raise InputError(f"{source}: {len(labels)} labels, but the checkpoint has {num_classes} classes")
        return tuple(labels)
    if isinstance(meta.get("classes"), list) and len(meta["classes"]) == num_classes:
        return tuple(str(c) for c in meta["classes"])
    return tuple(f"class {i}" for i in range(num_classes))


@dataclass
class VideoRecognizer:
    """An RGB recognizer (eval mode, inference twin where it has one) with its test sampling."""

    model: nn.Module
    name: str
    spec: ClipSpec
    labels: tuple[str, ...]

    @classmethod
    def from_checkpoint(cls, name: str, checkpoint: str | os.PathLike,
                        labels: Sequence[str] | str | os.PathLike | None = None) -> "VideoRecognizer":
        """`name` (a `humact.zoo` "rgb" model) with the weights of `checkpoint`, strictly.

        MMAction2 1.x may store the normalisation it was trained with (`data_preprocessor.mean/std`);
        it wins over the config default. Class names: `labels` (a list, or a file with one per line),
        else the safetensors' JSON `classes`, else numbered.
        """
        from humact.deploy import fuse
        from humact.io.checkpoints import load_strict
        from humact.video_models.recognizer import checkpoint_filter_fn

        try:
            entry = zoo.get(name, "rgb")
        except ValueError as e:
            raise InputError(f"--model: {e}") from None
        spec = entry.spec
        raw, meta = read_weights(checkpoint)
        mean, std = (raw.get(k) for k in ("data_preprocessor.mean", "data_preprocessor.std"))
        if mean is not None and std is not None and mean.numel() == 3 and std.numel() == 3:
            spec = dataclasses.replace(spec, mean=tuple(mean.flatten().tolist()), std=tuple(std.flatten().tolist()))
        sd = checkpoint_filter_fn(raw)
        if "cls_head.fc_cls.weight" not in sd:
            raise CheckpointError(f"{checkpoint}: no 'cls_head.fc_cls.weight' (not a recognizer checkpoint?)")
        num_classes = int(sd["cls_head.fc_cls.weight"].shape[0])
        model = entry.build(num_classes=num_classes)
        try:
            load_strict(model, sd, str(checkpoint))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (does it fit --model {name}?)") from None
        model.eval()
        fast = fuse(model)
        return cls(fast if fast is not None else model, name, spec,
                   _labels(labels, meta, num_classes, str(checkpoint)))

    @torch.no_grad()
    def classify(self, video: str | os.PathLike, num_clips: int | None = None, progress: bool = True) -> VideoScores:
        """Average probabilities over the test clips and views of `video`."""
        from humact.predict import predict_clips
        from humact.progress import progress as bar
        from humact.video import probe, read_frames
        from humact.video_models.clips import clip_views, sample_frames

        num_clips = num_clips or self.spec.num_clips
        if num_clips < 1:
            raise InputError(f"clips: expected at least 1, got {num_clips}")
        meta = probe(video)
        clips = sample_frames(meta.num_frames, clip_len=self.spec.clip_len, frame_interval=self.spec.frame_interval,
                              num_clips=num_clips, test_mode=True)
        frames = dict(read_frames(video, indices=np.unique(clips)))
        probs = []
        for clip in bar(clips, total=len(clips), desc="clips", unit="clip", enabled=progress):
            views = clip_views(frames, clip[None], self.spec)
            probs.append(predict_clips(self.model, views[None])[0])
        score = torch.stack(probs).mean(0).numpy().astype(np.float32)
        return VideoScores(str(video), self.name, self.labels, score, num_clips, self.spec.views_per_clip,
                           len(frames), meta.num_frames)
