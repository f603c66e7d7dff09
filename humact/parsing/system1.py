"""System 1: part states as video-level labels, recognised with humact's skeleton recognisers.

Training (`train_system1`): every training video gets 7 labels (`humact.parsing.labels.video_labels`:
one `"<action>_<Group>_<state>"` per part group, plus the action). For each of the 7 heads and each
input stream asked for (`streams`, default joint only), the video's tracks are written as a
`humact extract`-style pickle with that head's label (`OUT/data/<head>/<video>.pkl` + `labels.json`)
and one run of `humact.train.run.train_model` (`humact train`'s own path: any skeleton or heatmap
model of `humact.zoo`, ST-GCN++ by default, its recipe from the data) writes
`OUT/<head>/<stream>/model.safetensors`.

The system itself used CSN video recognisers (ip/ir-CSN with frozen BN) fused per group with
ensemble weights from its tables. Both kinds are here: skeleton models on humact's tracks (default),
and, with `train_system1_video`, RGB video models of `humact.zoo` (ir/ip-CSN, SlowOnly, SlowFast,
I3D; frozen BN, optionally a pretrained backbone) trained by the shared `Trainer` on
`VideoClipDataset` clips, saved as `OUT/<head>/rgb/`. Fusion is a weighted sum of each head's
recognisers' probabilities (`weights`: {head: {stream or "rgb": weight}}, equal by default;
`humact.skeleton.ensemble.fuse_scores`): a head may hold skeleton streams and an RGB model together.

Inference (`System1.predict`): each recogniser reads the video's tracks (all persons, as in
training); per group the fused top label gives the state (`labels.parse_label`), which every
frame's part of that group gets; the action head gives the video's action.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humact.errors import InputError
from humact.parsing.labels import GROUPS, parse_label, video_labels

__all__ = ["HEADS", "head_labels", "train_system1", "train_system1_video", "System1"]

#: The 7 recognisers: one per part group, then the action.
HEADS: tuple[str, ...] = GROUPS + ("action",)


def head_labels(dataset) -> dict[str, dict[str, str]]:
    """{head: {video: label}} of a training `TpsDataset`."""
    out: dict[str, dict[str, str]] = {h: {} for h in HEADS}
    for v in dataset.videos:
        for h, lab in video_labels(v.action, v.frames).items():
            out[h][v.name] = lab
    return out


def train_system1(dataset, results: dict, out: str | os.PathLike, *, overrides: dict | None = None,
                  config: str | os.PathLike | None = None, streams: tuple[str, ...] = ("j",),
                  log=print, progress: bool = False) -> dict[str, dict[str, Path]]:
    """Train the 7 recognisers (module docstring); returns {head: {stream: checkpoint}}.

    Args:
        dataset: the training `TpsDataset`; results: {video: VideoResult} of its videos (`perceive`).
        overrides: flat `humact.config` fields for every run (e.g. {"model": "stgcnpp", "epochs": 30}).
        config: a `humact train` config file applied under the overrides.
    """
    from humact.config import load_config
    from humact.io.atomic import atomic_write
    from humact.io.results import write_pyskl_pickle
    from humact.train.run import train_model

    out = Path(out)
    labels = head_labels(dataset)
    done: dict[str, dict[str, Path]] = {}
    for head in HEADS:
        classes = sorted(set(labels[head].values()))
        data = out / "data" / head
        data.mkdir(parents=True, exist_ok=True)
        with atomic_write(data / "labels.json") as f:
            json.dump(classes, f, indent=1)
        for v in dataset.videos:
            write_pyskl_pickle(results[v.name], data / f"{v.name}.pkl", label=classes.index(labels[head][v.name]))
        done[head] = {}
        for stream in streams:
            run = out / head / stream
            values = {"val_fraction": 0.0, "test_split": "", **(overrides or {}), "data": str(data),
                      "dataset": "extract", "stream": stream, "out": str(run)}
            cfg = load_config(config, values)
            if log:
                log(f"system 1: {head} ({len(classes)} labels), stream {stream} -> {run}")
            result = train_model(cfg, resume=True, test=False, progress=progress, log=None)
            done[head][stream] = result.checkpoint
    return done


def _load_backbone(model, checkpoint: str | os.PathLike) -> None:
    """Load a Kinetics-pretrained recogniser's backbone (MMAction2 .pth or ours) strictly; its head is dropped
    (the heads here have other classes)."""
    from humact.errors import CheckpointError
    from humact.io.checkpoints import load_strict
    from humact.recognize.video import read_weights
    from humact.video_models.recognizer import checkpoint_filter_fn

    raw, _ = read_weights(checkpoint)
    sd = {k[len("backbone."):]: v for k, v in checkpoint_filter_fn(raw).items() if k.startswith("backbone.")}
    if not sd:
        raise CheckpointError(f"{checkpoint}: no backbone.* weights (not a recogniser checkpoint?)")
    load_strict(model.backbone, sd, str(checkpoint))


def train_system1_video(dataset, out: str | os.PathLike, *, model: str = "ircsn_r50", epochs: int = 10,
                        batch_size: int = 4, lr: float = 0.01, clip_len: int | None = None,
                        frame_interval: int | None = None, short_side: int | None = None, crop_size: int | None = None,
                        pretrained: str | os.PathLike | None = None, frozen_bn: bool = True, seed: int = 0,
                        log=print, progress: bool = False) -> dict[str, dict[str, Path]]:
    """The 7 recognisers as RGB video models of `humact.zoo` (the system's choice: ip/ir-CSN with frozen BN),
    trained by the shared `Trainer` on `video_models.clips.VideoClipDataset` clips of each video with the
    head's label; `OUT/<head>/rgb/model.safetensors` (+ JSON with the classes, the model and its sampling).

    Args:
        clip_len, frame_interval, short_side, crop_size: override the model's MMAction2 sampling (`ClipSpec`;
            smaller for a CPU); saved and used at test time (one centre clip unless `num_clips` is given
            by the spec).
        pretrained: a recogniser checkpoint of the same model (e.g. MMAction2's IG65M/Kinetics CSN .pth) whose
            backbone initialises every head; without it the backbone starts from random weights.
        frozen_bn: BN in eval mode with frozen affine parameters (MMAction2's CSN `norm_eval` + `bn_frozen`;
            meant for a pretrained backbone).
    """
    import dataclasses

    from humact import zoo
    from humact.config import OptimConfig, RunConfig
    from humact.train.trainer import Trainer
    from humact.video_models.clips import VideoClipDataset

    entry = zoo.get(model, "rgb")
    spec = entry.spec
    spec = dataclasses.replace(spec, **{k: v for k, v in dict(clip_len=clip_len, frame_interval=frame_interval,
                                                              short_side=short_side, crop_size=crop_size).items()
                                        if v is not None})
    spec = dataclasses.replace(spec, crop="center", num_clips=1 if clip_len else spec.num_clips)
    missing = [v.name for v in dataset.videos if v.video is None]
    if missing:
        raise InputError(f"video {missing[0]!r}: System 1's video recognisers need the video file")
    import copy

    labels = head_labels(dataset)
    out = Path(out)
    done: dict[str, dict[str, Path]] = {}
    decoded = VideoClipDataset([(v.video, 0) for v in dataset.videos], spec, train=True, seed=seed)  # decode once
    for head in HEADS:
        classes = sorted(set(labels[head].values()))
        kw = {"norm_eval": True, "bn_frozen": True} if frozen_bn else {}
        net = entry.build(num_classes=len(classes), **kw)
        if pretrained is not None:
            _load_backbone(net, pretrained)
        data = copy.copy(decoded)       # the same decoded frames, this head's labels
        data.videos = [(Path(v.video), classes.index(labels[head][v.name])) for v in dataset.videos]
        run = out / head / "rgb"
        meta = {"classes": classes, "model": model, "spec": dataclasses.asdict(spec), "head": head}
        trainer = Trainer(net, data, OptimConfig(epochs=epochs, batch_size=min(batch_size, len(data)), lr=lr),
                          RunConfig(out=str(run), seed=seed), meta=meta, progress=progress)
        if log:
            log(f"system 1: {head} ({len(classes)} labels), {model} clips {spec.clip_len}x{spec.frame_interval} "
                f"at {spec.crop_size} px -> {run}")
        trainer.fit(resume=True, log=None)
        trainer.save_model(run / "model.safetensors")
        done[head] = {"rgb": run / "model.safetensors"}
    return done


def _video_recognizer(path: Path):
    """A head's RGB recogniser saved by `train_system1_video`, with the sampling it was trained with."""
    import dataclasses

    from humact.errors import CheckpointError
    from humact.io.checkpoints import read_meta
    from humact.video_models.clips import ClipSpec
    from humact.recognize.video import VideoRecognizer

    meta = read_meta(path)
    if not isinstance(meta.get("model"), str) or not isinstance(meta.get("spec"), dict):
        raise CheckpointError(f"{path.with_suffix('.json')}: fields model / spec: not a System 1 video recogniser")
    rec = VideoRecognizer.from_checkpoint(meta["model"], path)
    try:
        spec = ClipSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["spec"].items()})
    except TypeError as e:
        raise CheckpointError(f"{path.with_suffix('.json')}: field spec: {e}") from None
    return dataclasses.replace(rec, spec=spec)


@dataclass
class System1:
    """The trained recognisers of each head with their fusion weights."""

    heads: dict[str, list[tuple[object, float]]]          # head -> [(skeleton Recognizer, weight)]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | os.PathLike, weights: dict[str, dict[str, float]] | None = None) -> "System1":
        """The recognisers under `folder/<head>/<stream>/model.safetensors` (`train_system1`'s layout)."""
        from humact.recognize.skeleton import Recognizer

        folder = Path(folder)
        heads = {}
        for head in HEADS:
            runs = sorted(p for p in (folder / head).glob("*/model.safetensors")) if (folder / head).is_dir() else []
            if not runs:
                raise InputError(f"{folder / head}: no trained recogniser (expected {head}/<stream>/model.safetensors "
                                 f"from `humact parse-train --system 1`)")
            w = (weights or {}).get(head, {})
            heads[head] = [(_video_recognizer(p) if p.parent.name == "rgb" else Recognizer.from_checkpoint(p),
                            float(w.get(p.parent.name, 1.0))) for p in runs]
        return cls(heads)

    def head_scores(self, head: str, tracks, frame_shape, video=None) -> tuple[tuple[str, ...], np.ndarray]:
        """(labels, fused probabilities) of one head for a video's tracks (every person; RGB recognisers read
        `video`)."""
        from humact.skeleton.ensemble import fuse_scores

        entries = self.heads[head]
        classes = _classes(entries[0][0])
        seen = tracks.valid.any(axis=0)
        kp = tracks.keypoints[:, seen] if seen.any() else tracks.keypoints
        sc = tracks.keypoint_scores[:, seen] if seen.any() else tracks.keypoint_scores
        scores = []
        for rec, _ in entries:
            if _classes(rec) != classes:
                raise InputError(f"{rec.name}: its labels differ from the other streams of head {head!r}")
            if hasattr(rec, "classify"):
                if video is None:
                    raise InputError(f"{rec.name}: an RGB recogniser of head {head!r} needs the video")
                scores.append(rec.classify(video, progress=False).scores[None])
            else:
                scores.append(rec.predict_keypoints(kp, sc, frame_shape)[None])
        fused = fuse_scores(scores, [w for _, w in entries])[0]
        return classes, fused

    def predict(self, tracks, frame_shape, video=None) -> dict:
        """{"action": str, "action_scores": {label: p}, "states": {group: state}, "labels": {head: label}}."""
        labels, out_states = {}, {}
        action_scores = {}
        for head in HEADS:
            classes, p = self.head_scores(head, tracks, frame_shape, video)
            labels[head] = classes[int(np.argmax(p))]
            if head == "action":
                action_scores = {c: float(s) for c, s in zip(classes, p)}
            else:
                out_states[head] = parse_label(labels[head], head)[1]
        return {"action": labels["action"], "action_scores": action_scores, "states": out_states, "labels": labels}


def _classes(rec) -> tuple[str, ...]:
    """A recogniser's class names (skeleton `Recognizer.classes`, `VideoRecognizer.labels`)."""
    return tuple(rec.classes) if hasattr(rec, "classes") else tuple(rec.labels)
