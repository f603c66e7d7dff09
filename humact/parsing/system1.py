"""System 1: part states as video-level labels, recognised with humact's skeleton recognisers.

Training (`train_system1`): every training video gets 7 labels (`humact.parsing.labels.video_labels`:
one `"<action>_<Group>_<state>"` per part group, plus the action). For each of the 7 heads and each
input stream asked for (`streams`, default joint only), the video's tracks are written as a
`humact extract`-style pickle with that head's label (`OUT/data/<head>/<video>.pkl` + `labels.json`)
and one run of `humact.train.run.train_model` (`humact train`'s own path: any skeleton or heatmap
model of `humact.zoo`, ST-GCN++ by default, its recipe from the data) writes
`OUT/<head>/<stream>/model.safetensors`.

The system itself used CSN video recognisers (ip/ir-CSN with frozen BN) fused per group with
ensemble weights from its tables; here the recognisers are skeleton models on humact's tracks (a
CSN option is not wired in: it needs RGB clip training, which `humact train` does not do yet), and
fusion is a weighted sum of each head's stream probabilities (`weights`: {head: {stream: weight}},
equal weights by default; `humact.skeleton.ensemble.fuse_scores`).

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

__all__ = ["HEADS", "head_labels", "train_system1", "System1"]

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


@dataclass
class System1:
    """The trained recognisers of each head with their fusion weights."""

    heads: dict[str, list[tuple[object, float]]]          # head -> [(skeleton Recognizer, weight)]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | os.PathLike, weights: dict[str, dict[str, float]] | None = None) -> "System1":
        """The recognisers under `folder/<head>/<stream>/model.safetensors` (`train_system1`'s layout)."""
        from humact.skeleton.recognize import Recognizer

        folder = Path(folder)
        heads = {}
        for head in HEADS:
            runs = sorted(p for p in (folder / head).glob("*/model.safetensors")) if (folder / head).is_dir() else []
            if not runs:
                raise InputError(f"{folder / head}: no trained recogniser (expected {head}/<stream>/model.safetensors "
                                 f"from `humact parse-train --system 1`)")
            w = (weights or {}).get(head, {})
            heads[head] = [(Recognizer.from_checkpoint(p), float(w.get(p.parent.name, 1.0))) for p in runs]
        return cls(heads)

    def head_scores(self, head: str, tracks, frame_shape) -> tuple[tuple[str, ...], np.ndarray]:
        """(labels, fused probabilities) of one head for a video's tracks (every person)."""
        from humact.skeleton.ensemble import fuse_scores

        entries = self.heads[head]
        classes = entries[0][0].classes
        seen = tracks.valid.any(axis=0)
        kp = tracks.keypoints[:, seen] if seen.any() else tracks.keypoints
        sc = tracks.keypoint_scores[:, seen] if seen.any() else tracks.keypoint_scores
        scores = []
        for rec, _ in entries:
            if rec.classes != classes:
                raise InputError(f"{rec.name}: its labels differ from the other streams of head {head!r}")
            scores.append(rec.predict_keypoints(kp, sc, frame_shape)[None])
        fused = fuse_scores(scores, [w for _, w in entries])[0]
        return classes, fused

    def predict(self, tracks, frame_shape) -> dict:
        """{"action": str, "action_scores": {label: p}, "states": {group: state}, "labels": {head: label}}."""
        labels, out_states = {}, {}
        action_scores = {}
        for head in HEADS:
            classes, p = self.head_scores(head, tracks, frame_shape)
            labels[head] = classes[int(np.argmax(p))]
            if head == "action":
                action_scores = {c: float(s) for c, s in zip(classes, p)}
            else:
                out_states[head] = parse_label(labels[head], head)[1]
        return {"action": labels["action"], "action_scores": action_scores, "states": out_states, "labels": labels}
