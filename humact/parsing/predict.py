"""Parsing videos and training the parsers: what `humact parse` and `humact parse-train` call.

    train_parsing(data, out)     read_tps -> perception of every video (cached) -> the most-frequent
                                 baseline, System 1, System 2, the part detector -> OUT/parse.json
    ParseModels.load(out)        what training wrote
    parse_result(result, models) a VideoResult (perception) -> part boxes (detector or geometric) ->
                                 part states (System 1, System 2 or the baseline) -> action, as one
                                 video's entry of the official files (frames every `every` frames,
                                 `img_%05d.json` keys, at most 10 humans, 1 proposal per part)
    parse_videos(source, out)    the above over a file or folder (`humact.batch`): per input
                                 REL.json (the parse) and REL.annotated.mp4; then
                                 OUT/pred_vid_result.json + OUT/pred_part_result.json for all of them
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humact.errors import InputError, UsageError
from humact.keypoints import PART_NAMES

__all__ = ["MANIFEST", "TrainOptions", "train_parsing", "ParseModels", "parse_result", "parse_videos",
           "write_parse_video", "STATE_SOURCES"]

MANIFEST = "parse.json"
SCHEMA = "humact.parse-model v1"
RESULT_SCHEMA = "humact.parse v1"
STATE_SOURCES = ("system1", "system2", "baseline")


@dataclass
class TrainOptions:
    """What `train_parsing` trains, and how."""

    split: str = "train"
    systems: tuple[str, ...] = ("1", "2")
    detector: bool = True
    dots: bool = True
    geometric_input: bool = False
    language: bool = True
    recognizer_overrides: dict = field(default_factory=dict)   # flat humact.config fields (System 1)
    recognizer_config: str | None = None                       # a humact train config file (System 1)
    streams: tuple[str, ...] = ("j",)
    video_recognizer: str | None = None                        # System 1 on RGB: a humact.zoo "rgb" model
    video_options: dict = field(default_factory=dict)          # train_system1_video's keywords (clip_len, ...)
    epochs: int = 30                                           # System 2 and the detector
    batch_size: int = 16
    seed: int = 0
    backend: str | None = None                                 # perception backend (default: humact's)


def train_parsing(data: str | os.PathLike, out: str | os.PathLike, options: TrainOptions | None = None,
                  log=print) -> Path:
    """Train everything `options` asks for on split `options.split` of `data`; returns OUT/parse.json."""
    from humact.io.atomic import atomic_write
    from humact.parsing.dataset import read_tps
    from humact.parsing.labels import most_frequent_states
    from humact.parsing.tracks import perceive
    from humact.perception.pipeline import ExtractConfig, make_backend

    o = options or TrainOptions()
    bad = set(o.systems) - {"1", "2"}
    if bad:
        raise UsageError(f"--system: expected 1 or 2, got {sorted(bad)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = read_tps(data, o.split)
    annotated = [v for v in ds.videos if v.frames]
    if not annotated:
        raise InputError(f"{data}: split {o.split!r} has no annotated videos to train on")
    ds = ds.subset(v.name for v in annotated)
    used = {p for v in ds.videos for f in v.frames.values() for h in f["humans"] for p in h["parts"]}
    unknown = sorted(used - set(PART_NAMES))
    if unknown:
        raise InputError(f"{data}: part names {unknown[:5]} are not Kinetics-TPS's {list(PART_NAMES)} (field parts); "
                         f"humact predicts those names, so these parts could never score")
    if log:
        log(f"data: {len(ds)} annotated videos, {len(ds.actions)} actions, {len(ds.states)} part states ({data})")
    config = ExtractConfig(backend=o.backend) if o.backend else ExtractConfig()
    cache = out / "perception"
    backend = None
    results = {}
    for v in ds.videos:
        if backend is None and not (cache / f"{v.name}.json").is_file():
            backend = make_backend(config)
        results[v.name] = perceive(v, cache, config=config, backend=backend)
    manifest = {"schema": SCHEMA, "data": str(data), "split": o.split, "actions": list(ds.actions),
                "states": list(ds.states), "parts": list(PART_NAMES), "videos": len(ds)}
    baseline = most_frequent_states(ds.videos)
    with atomic_write(out / "baseline.json") as f:
        json.dump(baseline, f, indent=1, sort_keys=True)
    manifest["baseline"] = "baseline.json"
    if "1" in o.systems:
        from humact.parsing.system1 import train_system1

        if o.video_recognizer:
            from humact.parsing.system1 import train_system1_video

            train_system1_video(ds, out / "system1", model=o.video_recognizer, seed=o.seed, log=log,
                                **o.video_options)
        else:
            train_system1(ds, results, out / "system1", overrides=o.recognizer_overrides,
                          config=o.recognizer_config, streams=o.streams, log=log)
        manifest["system1"] = "system1"
    if "2" in o.systems:
        from humact.parsing.system2 import System2, allowed_states, system2_items, train_system2

        emb = None
        if o.language:
            from humact.parsing.language import embed_states

            pairs = [(p, s) for p in PART_NAMES for s in ds.states]
            emb = embed_states(pairs, cache=out / "state_embeddings.npz").reshape(len(PART_NAMES), len(ds.states), -1)
        items = system2_items(ds, results, ds.states, ds.actions)
        if log:
            log(f"system 2: {len(items)} (person, frame) items, language priors {'on' if emb is not None else 'off'}")
        model, hist = train_system2(items, ds.states, ds.actions, embeddings=emb, epochs=o.epochs,
                                    batch_size=o.batch_size, seed=o.seed, log=log)
        System2(model, ds.states, ds.actions, allowed=allowed_states(ds.videos)).save(out / "system2" / "model.safetensors", {"history": hist})
        manifest["system2"] = "system2/model.safetensors"
    if o.detector:
        from humact.parsing.detector import DetectorConfig, detector_items, save_detector, train_detector

        cfg = DetectorConfig(dots=o.dots, geometric_input=o.geometric_input)
        items = detector_items(ds, results, cfg)
        if log:
            log(f"part detector: {len(items)} annotated humans, dots {'on' if o.dots else 'off'}")
        model, hist = train_detector(items, cfg, epochs=o.epochs, batch_size=o.batch_size, seed=o.seed, log=log)
        save_detector(model, out / "detector" / "model.safetensors", {"history": hist})
        manifest["detector"] = "detector/model.safetensors"
    with atomic_write(out / MANIFEST) as f:
        json.dump(manifest, f, indent=1)
    if log:
        log(f"wrote {out / MANIFEST}")
    return out / MANIFEST


@dataclass
class ParseModels:
    """What `train_parsing` wrote, loaded."""

    folder: Path
    actions: tuple[str, ...]
    baseline: dict | None = None
    system1: object = None
    system2: object = None
    detector: object = None

    @classmethod
    def load(cls, folder: str | os.PathLike, *, weights: dict | None = None) -> "ParseModels":
        from humact.io.limits import read_json

        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise InputError(f"{path}: not found (give --model the folder `humact parse-train` wrote)")
        m = read_json(path)
        if not isinstance(m, dict) or m.get("schema") != SCHEMA:
            raise InputError(f"{path}: field schema: expected {SCHEMA!r}")
        out = cls(folder, tuple(m.get("actions", [])))
        if "baseline" in m:
            base = read_json(folder / m["baseline"])
            if not isinstance(base, dict) or not all(isinstance(v, dict) for v in base.values()):
                raise InputError(f"{folder / m['baseline']}: expected {{action: {{part: state}}}}")
            out.baseline = base
        if "system1" in m:
            from humact.parsing.system1 import System1

            out.system1 = System1.load(folder / m["system1"], weights)
        if "system2" in m:
            from humact.parsing.system2 import System2

            out.system2 = System2.load(folder / m["system2"])
        if "detector" in m:
            from humact.parsing.detector import load_detector

            out.detector = load_detector(folder / m["detector"])
        return out


def _choose(models: ParseModels, states: str | None, action: str | None) -> tuple[str, str]:
    have = {"system1": models.system1 is not None, "system2": models.system2 is not None,
            "baseline": models.baseline is not None}
    states = states or ("system2" if have["system2"] else "system1" if have["system1"] else "baseline")
    if states not in STATE_SOURCES:
        raise UsageError(f"--states: expected one of {', '.join(STATE_SOURCES)}, got {states!r}")
    if not have[states]:
        raise UsageError(f"--states {states}: {models.folder} has no {states} (train it with `humact parse-train`)")
    action = action or (states if states != "baseline" else ("system1" if have["system1"] else "system2"))
    if action not in ("system1", "system2") or not have[action]:
        raise UsageError(f"--action {action}: {models.folder} has no such trained system (system1 or system2)")
    return states, action


def parse_result(result, models: ParseModels, *, states: str | None = None, action: str | None = None,
                 boxes: str | None = None, every: int = 5, name: str | None = None) -> dict:
    """One video's parse (module docstring) from its perception `result`.

    Returns {"schema", "video", "action", "action_scores", "states_from", "action_from", "boxes_from",
    "frames": {img_%05d.json: {"humans": [...]}}} -- "frames" is the video's entry of pred_part_result.json.
    """
    from humact.eval.tps import tps_humans_from_parts
    from humact.parsing.dataset import frame_key
    from humact.parsing.labels import NONE_STATE, part_group
    from humact.types import PartBoxes

    states, action = _choose(models, states, action)
    boxes = boxes or ("detector" if models.detector is not None else "geometric")
    if boxes == "detector" and models.detector is None:
        raise UsageError(f"--boxes detector: {models.folder} has no part detector")
    tracks, parts = result.tracks, result.parts
    if parts is None:
        from humact.perception.parts import part_boxes

        parts = part_boxes(tracks)
    frames = list(range(0, tracks.num_frames, max(1, every)))
    shape = (result.meta.height, result.meta.width)
    out_boxes, out_valid = parts.boxes.copy(), parts.valid.copy()
    if boxes == "detector" and tracks.num_persons:
        from humact.parsing.detector import detect_parts
        from humact.video import read_frames

        for t, rgb in read_frames(result.meta.path, indices=frames):
            out_boxes[:, t], out_valid[:, t] = detect_parts(models.detector, rgb, tracks, parts, t)
    pb = PartBoxes(out_boxes, out_valid, parts.names)

    s1 = (models.system1.predict(tracks, shape, result.meta.path) if "system1" in (states, action) and
          tracks.num_persons else None)
    per_person: dict[int, list[dict]] = {}
    s2_action = None
    if "system2" in (states, action) and tracks.num_persons:
        probs = []
        for m in range(tracks.num_persons):
            seen = [t for t in frames if tracks.valid[m, t]]
            st, ap = models.system2.predict_person(tracks, m, seen)
            per_person[m] = dict(zip(seen, st))
            probs.append(ap)
        allp = np.concatenate(probs) if probs else np.zeros((0, len(models.system2.actions)))
        s2_action = allp.mean(0) if len(allp) else None
    if action == "system1":
        act = s1["action"] if s1 else ""
        act_scores = s1["action_scores"] if s1 else {}
    else:
        acts = models.system2.actions
        act = acts[int(np.argmax(s2_action))] if s2_action is not None else ""
        act_scores = {a: float(p) for a, p in zip(acts, s2_action)} if s2_action is not None else {}

    def verbs_at(t: int) -> dict:
        out = {}
        for m in range(tracks.num_persons):
            if not tracks.valid[m, t]:
                continue
            for name in pb.names:
                if states == "system1":
                    state = s1["states"][part_group(name)] if s1 else NONE_STATE
                elif states == "system2":
                    state = per_person.get(m, {}).get(t, {}).get(name, NONE_STATE)
                else:
                    state = models.baseline.get(act, {}).get(name, NONE_STATE)
                out[(m, name)] = [state]
        return out

    part_result = {frame_key(t): {"humans": tps_humans_from_parts(tracks, pb, t, verbs_at(t))} for t in frames}
    return {"schema": RESULT_SCHEMA, "video": name or result.meta.name, "action": act, "action_scores": act_scores,
            "states_from": states, "action_from": action, "boxes_from": boxes, "every": every,
            "frames": part_result}


def write_parse_video(result, parse: dict, path: str | os.PathLike) -> None:
    """The video with skeletons, ids, part boxes and each part's state drawn (the parse's boxes and states,
    held from each parsed frame to the next), and the action at the top, atomically."""
    import cv2

    from humact.draw import draw_frame
    from humact.io.atomic import atomic_path
    from humact.parsing.dataset import frame_index
    from humact.video import DecodeReport, VideoWriter, read_frames

    meta = result.meta
    keyed = sorted((frame_index(k, str(path)), v["humans"]) for k, v in parse["frames"].items())
    with atomic_path(path) as tmp, VideoWriter(tmp, width=meta.width, height=meta.height, fps=meta.fps) as writer:
        j = -1
        for t, rgb in read_frames(meta.path, report=DecodeReport()):
            while j + 1 < len(keyed) and keyed[j + 1][0] <= t:
                j += 1
            img = draw_frame(rgb, t, result.tracks)
            font = max(0.35, meta.height / 1400)
            for human in (keyed[j][1] if j >= 0 else []):
                for name, part in human["parts"].items():
                    if not part["box"]:
                        continue
                    x1, y1, x2, y2 = np.round(part["box"][0]).astype(int)
                    cv2.rectangle(img, (x1, y1), (x2, y2), (255, 255, 255), 1)
                    state = part["verb"][0] if part["verb"] else ""
                    if state and state != "none":
                        cv2.putText(img, f"{name}:{state}", (x1, max(10, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, font,
                                    (255, 255, 0), 1, cv2.LINE_AA)
            cv2.putText(img, parse["action"], (8, meta.height - 10), cv2.FONT_HERSHEY_SIMPLEX, 2 * font,
                        (255, 255, 0), 2, cv2.LINE_AA)    # bottom left: track labels sit at the top
            writer.write(img, time_s=meta.frame_times[t])


def parse_videos(source: str | os.PathLike, out: str | os.PathLike, models: ParseModels, *, states=None,
                 action=None, boxes=None, every: int = 5, video: bool | None = None, force: bool = False,
                 config=None, progress: bool = True, log=print):
    """`humact parse` (module docstring); returns the `BatchSummary`."""
    from humact.batch import plan_jobs, prepare_output_dir, run_jobs
    from humact.eval.tps import write_tps_dir
    from humact.io.atomic import atomic_write
    from humact.io.limits import read_json
    from humact.perception.pipeline import ExtractConfig, make_backend
    from humact.tasks import perceive

    _choose(models, states, action)
    if boxes not in (None, "detector", "geometric"):
        raise UsageError(f"--boxes: expected detector or geometric, got {boxes!r}")
    if boxes == "detector" and models.detector is None:
        raise UsageError(f"--boxes detector: {models.folder} has no part detector (train it with `humact parse-train`)")
    config = config or ExtractConfig()
    write_video = Path(source).is_file() if video is None else video
    kinds = ("json",) + (("video",) if write_video else ())
    prepare_output_dir(out)
    jobs = plan_jobs(source, out, kinds)
    names = {}
    for j in jobs:
        stem = Path(j.rel).stem
        if stem in names:
            raise InputError(f"{j.input}: same video name {stem!r} as {names[stem]} (the official files key videos "
                             f"by name); parse them separately")
        names[stem] = j.input
    backend = make_backend(config) if any(force or not j.done for j in jobs) else None

    def work(job, desc):
        result = perceive(job, desc, config, backend, progress)
        parse = parse_result(result, models, states=states, action=action, boxes=boxes, every=every,
                             name=Path(job.rel).stem)
        if "video" in job.outputs:
            write_parse_video(result, parse, job.outputs["video"])
        with atomic_write(job.outputs["json"]) as f:
            json.dump(parse, f)
        n = sum(len(f["humans"]) for f in parse["frames"].values())
        return f"{job.rel}: action {parse['action'] or '-'}, {len(parse['frames'])} frames parsed, {n} humans -> " \
               f"{job.outputs['json']}"

    summary = run_jobs(jobs, work, force=force, command="humact parse", log=log)
    vid, part = {}, {}
    for j in jobs:
        if j.outputs["json"].is_file():
            doc = read_json(j.outputs["json"])
            if isinstance(doc, dict) and doc.get("schema") == RESULT_SCHEMA:
                vid[doc["video"]] = doc["action"]
                part[doc["video"]] = doc["frames"]
    write_tps_dir(out, "pred", vid, part)
    if log:
        log(f"wrote {Path(out) / 'pred_vid_result.json'} and {Path(out) / 'pred_part_result.json'} ({len(vid)} videos)")
    return summary
