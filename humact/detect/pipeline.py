"""What `humact detect` does to each input: keyframes, person boxes, per-person action scores, outputs.

    video --perception (humact.perception, any backend)--> PoseTracks      (skipped for RGB + --boxes)
          --keyframes.keyframes_at_rate / read_box_file--> Keyframes
          --boxes_from_tracks / the box file--> KeyframeBoxes
          --skeleton.skeleton_keyframe_scores (default, offline)
            or rgb.AVAClipDetector(s) (MMAction2 AVA detectors; TTA; fusion)--> ActionDetections
          --> REL.ava.csv (AVA detections), REL.json (humact.result + keyframe actions),
              REL.timeline.png (per-person action timeline), REL.annotated.mp4 (optional)

Runs over a file or a folder through `humact.batch` (resume, a bad input skipped and reported).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humact.batch import BatchSummary, Lazy, plan_jobs, prepare_output_dir
from humact.errors import InputError, UsageError

__all__ = ["DetectOptions", "detect", "SKELETON"]

#: `--model` value of the offline default.
SKELETON = "skeleton"


@dataclass
class DetectOptions:
    """Choices of `humact detect` (perception's are `humact.tasks.ExtractOptions`).

    Attributes:
        model: "skeleton" (the offline default) or AVA detector names of `humact.video_models.ava.DETECTORS`,
            one per checkpoint (several: their scores are fused).
        checkpoints: MMAction2 AVA checkpoints (paths or URLs), one per detector.
        skeleton_model: a `humact train` model.safetensors for the skeleton default (default: shipped).
        label_map: AVA label map (pbtxt) naming the detectors' classes (default: AVA v2.1's 60 + ids).
        rate, start: keyframes per second and the first keyframe's time (s) when no box file is given.
        boxes: an AVA CSV or proposals pickle giving the keyframes and person boxes (else perception).
        model_boxes: one box file per AVA detector (instead of `boxes`): each scores its own boxes, and
            boxes are matched across models by IoU >= 0.5 before fusing (`rgb.fuse_across_proposals`).
        timestamp_start: the video's first second in the box file's timestamps (AVA's cut videos: 900).
        box_threshold: proposals scoring below are ignored (MMAction2 tests AVA with 0.9).
        threshold: rows x classes below are left out of the CSV and JSON (default: 0.002 for AVA
            detectors as MMAction2's evaluation, 0.05 for the skeleton model's softmax).
        label_threshold: the annotated video shows labels at or above it (default 0.5 / 0.25).
        window_s, min_frames: the skeleton default's pose window (+- s) and the frames it needs.
        sampling: "test" (MMAction2's SampleAVAFrames) or "demo" (its demo's window).
        tta: multi-crop x flip testing (short sides 224, 256, 320, each flipped).
        fusion: how several detectors' scores are fused ("mean", "mean_logit", "topk_logit").
        timeline: write the timeline PNG.
        streams: the extra streams on one AVA detector (`humact.detect.streams`: feature bank, arm
            RoIs, flow, audio), or None.
    """

    model: list[str] = field(default_factory=lambda: [SKELETON])
    checkpoints: list[str] = field(default_factory=list)
    skeleton_model: str | None = None
    label_map: str | None = None
    rate: float = 1.0
    start: float = 0.0
    boxes: str | None = None
    model_boxes: list[str] = field(default_factory=list)
    timestamp_start: int = 0
    box_threshold: float = 0.9
    threshold: float | None = None
    label_threshold: float | None = None
    window_s: float = 1.0
    min_frames: int = 8
    sampling: str = "test"
    tta: bool = False
    fusion: str = "mean"
    timeline: bool = True
    streams: object = None

    @property
    def skeleton(self) -> bool:
        return list(self.model) == [SKELETON]


def _check_timestamps(keyframes, source) -> None:
    if len(np.unique(keyframes.timestamps)) != len(keyframes.timestamps):
        raise UsageError(f"{source}: several keyframes share an AVA timestamp (whole seconds): the AVA CSV "
                         f"needs at most one keyframe per second (--rate 1 or less)")


def _per_model_boxes(d: DetectOptions, video_id: str, meta):
    """Each detector's box file on the keyframes of all of them (sorted by timestamp): (Keyframes,
    [KeyframeBoxes per model])."""
    from humact.detect import keyframes as kfm

    read = [kfm.read_box_file(p, video_id, meta, timestamp_start=d.timestamp_start, score_threshold=d.box_threshold)
            for p in d.model_boxes]
    stamps = np.unique(np.concatenate([k.timestamps for k, _ in read]))
    pos = {int(t): i for i, t in enumerate(stamps.tolist())}
    times = np.zeros(len(stamps))
    frames = np.zeros(len(stamps), np.int64)
    for k, _ in read:
        for j, t in enumerate(k.timestamps.tolist()):
            times[pos[int(t)]], frames[pos[int(t)]] = k.times[j], k.frames[j]
    each = []
    for k, b in read:
        remap = np.array([pos[int(t)] for t in k.timestamps.tolist()], np.int64)
        each.append(kfm.KeyframeBoxes(remap[b.keyframe] if len(b) else b.keyframe, b.boxes, b.track_ids, b.scores))
    return kfm.Keyframes(times, frames, stamps.astype(np.int64)), each


def detect(source: str | os.PathLike, out: str | os.PathLike, options=None, det: DetectOptions | None = None
           ) -> BatchSummary:
    """`humact detect` over a video or a folder of them into `out` (see the module docstring)."""
    from humact.detect import keyframes as kfm
    from humact.detect.outputs import plot_timeline, write_ava_csv, write_detection_video
    from humact.io.results import write_result_json
    from humact.perception.pipeline import ExtractConfig, make_backend
    from humact.tasks import ExtractOptions, perceive, run_batch, wants_video
    from humact.types import ActionDetections, PoseTracks, VideoResult
    from humact.video import probe

    o = options or ExtractOptions()
    d = det or DetectOptions()
    config = o.config or ExtractConfig()
    streams = d.streams is not None and d.streams.any
    if streams and d.skeleton:
        raise UsageError("--lfb / --arm-rois / --flow / --audio need an AVA detector (--model NAME --checkpoint ...)")
    if d.skeleton:
        from humact.recognize.skeleton import DEFAULT_MODEL, Recognizer

        path = Path(d.skeleton_model) if d.skeleton_model else DEFAULT_MODEL
        if not path.is_file():
            raise InputError(f"{path}: skeleton model not found (give a model.safetensors from `humact train`)")
        scorer = Recognizer.from_checkpoint(path)
        why = scorer.track_units_ok()
        if why:
            raise InputError(why)
        model = Lazy(Recognizer.from_checkpoint, path, value=scorer)  # Ray workers load their own
        labels, class_ids, model_name = scorer.classes, np.arange(1, len(scorer.classes) + 1), scorer.name
        threshold = 0.05 if d.threshold is None else d.threshold
        shown = 0.25 if d.label_threshold is None else d.label_threshold
    elif streams:
        from humact.detect.streams import load_stream_scorer

        if len(d.model) != 1:
            raise UsageError("--lfb / --arm-rois / --flow / --audio run on one AVA detector (one --model)")
        kw = dict(label_map=d.label_map, sampling=d.sampling, tta=d.tta)
        scorer = load_stream_scorer(d.model[0], d.checkpoints[0], d.streams, **kw)
        model = Lazy(load_stream_scorer, d.model[0], d.checkpoints[0], d.streams, value=scorer, **kw)
        labels, class_ids, model_name = scorer.labels, scorer.class_ids, scorer.name
        threshold = 0.002 if d.threshold is None else d.threshold
        shown = 0.5 if d.label_threshold is None else d.label_threshold
    else:
        from humact.detect.rgb import load_detectors

        kw = dict(label_map=d.label_map, sampling=d.sampling, tta=d.tta, fusion=d.fusion)
        scorer = load_detectors(d.model, d.checkpoints, **kw)
        model = Lazy(load_detectors, d.model, d.checkpoints, value=scorer, **kw)  # Ray workers load their own
        labels, class_ids, model_name = scorer.labels, scorer.class_ids, scorer.name
        threshold = 0.002 if d.threshold is None else d.threshold
        shown = 0.5 if d.label_threshold is None else d.label_threshold
    if d.model_boxes and (d.skeleton or d.boxes or len(d.model_boxes) != len(d.model)):
        raise UsageError("--boxes: give one box file for all detectors, or one per --model (AVA detectors)")
    if d.model_boxes and streams:
        raise UsageError("--boxes per --model: the extra streams (--lfb, --arm-rois, --flow, --audio) take one "
                         "detector and one box source")
    needs_poses = d.skeleton or (d.boxes is None and not d.model_boxes) or bool(streams and d.streams.arm_rois)
    kinds = ("json", "csv") + (("timeline",) if d.timeline else ()) + \
        (("video",) if wants_video(o.video, source) else ())
    prepare_output_dir(out)
    jobs = plan_jobs(source, out, kinds)
    backend = Lazy(make_backend, config)  # built by the first input that needs it, once per process

    def work(job, desc: str) -> str:
        t0 = time.perf_counter()
        if needs_poses:
            result = perceive(job, desc, config, backend(), o.progress)
        else:
            meta = probe(job.input)
            result = VideoResult(meta=meta, tracks=PoseTracks.empty(meta.num_frames), backend="")
        meta, tracks = result.meta, result.tracks
        video_id = Path(job.input).stem
        if d.model_boxes:
            keyframes, each = _per_model_boxes(d, video_id, meta)
        elif d.boxes:
            keyframes, boxes = kfm.read_box_file(d.boxes, video_id, meta, timestamp_start=d.timestamp_start,
                                                 score_threshold=d.box_threshold)
        else:
            keyframes = kfm.keyframes_at_rate(meta, d.rate, d.start, d.timestamp_start)
            boxes = kfm.boxes_from_tracks(tracks, keyframes, meta)
        _check_timestamps(keyframes, job.input)
        if d.skeleton:
            from humact.detect.skeleton import skeleton_keyframe_scores

            if d.boxes:
                rows = kfm.assign_tracks(boxes, keyframes, tracks, meta)
                ids = np.where(boxes.track_ids >= 0, boxes.track_ids,
                               np.where(rows >= 0, tracks.track_ids[np.maximum(rows, 0)], -1))
                boxes.track_ids = ids
            else:
                row_of = {int(t): m for m, t in enumerate(tracks.track_ids.tolist())}
                rows = np.array([row_of[int(t)] for t in boxes.track_ids], np.int64)
            scores, why = skeleton_keyframe_scores(model(), tracks, meta, keyframes, boxes, rows,
                                                   window_s=d.window_s, min_frames=d.min_frames)
        elif d.model_boxes:
            from humact.detect.rgb import fuse_across_proposals

            dets = model()
            probs = [dets.alone(i).score_video(job.input, meta, keyframes, b, progress=o.progress,
                                               desc=f"{desc} {dets.detectors[i].name}")[0] for i, b in enumerate(each)]
            boxes, scores = fuse_across_proposals(each, probs, d.fusion)
            scores = scores.astype(np.float32)
            why = [""] * len(boxes)
        elif streams:
            if d.boxes:
                rows = kfm.assign_tracks(boxes, keyframes, tracks, meta)
            else:
                row_of = {int(t): m for m, t in enumerate(tracks.track_ids.tolist())}
                rows = np.array([row_of.get(int(t), -1) for t in boxes.track_ids], np.int64)
            scores, why = model().score_video(job.input, meta, keyframes, boxes, progress=o.progress, desc=desc,
                                             tracks=tracks, track_rows=rows,
                                             out_base=str(job.outputs["json"])[:-len(".json")])
        else:
            scores, why = model().score_video(job.input, meta, keyframes, boxes,
                                             progress=o.progress, desc=desc)
        keep = np.array([not w for w in why], bool)
        reasons = []
        for k in range(len(keyframes)):
            on = boxes.keyframe == k
            if not on.any():
                reasons.append("no person box")
            elif not (on & keep).any():
                reasons.append("; ".join(sorted({why[r] for r in np.flatnonzero(on)})))
            else:
                reasons.append("")
        result.detections = ActionDetections(
            labels, class_ids, keyframes.times, keyframes.frames, keyframes.timestamps, boxes.keyframe[keep],
            boxes.track_ids[keep], boxes.boxes[keep], scores[keep], model=model_name, threshold=threshold,
            reasons=tuple(reasons))
        dets = result.detections
        n_rows = write_ava_csv(dets, job.outputs["csv"], video_id, (meta.width, meta.height))
        lines = [f"{job.rel}: {len(keyframes)} keyframes, {len(dets)} person boxes with actions "
                 f"({int((~keep).sum())} without), {n_rows} CSV rows, model {model_name}"]
        lines += [f"  {r}" for r in getattr(model(), "report", [])]     # the extra streams' note
        for k in range(len(keyframes)):
            on = np.flatnonzero(dets.keyframe == k)
            people = "; ".join(f"#{int(dets.track_ids[r])}: " + ", ".join(
                f"{lab} {s:.2f}" for lab, s in dets.above(r, shown)[:2]) for r in on)
            lines.append(f"  t={keyframes.times[k]:.2f}s: {people or reasons[k]}")
        if "timeline" in job.outputs:
            plot_timeline(dets, job.outputs["timeline"], title=f"{job.rel}: actions per person ({model_name})")
        if "video" in job.outputs:
            from humact.progress import progress as bar

            with bar(total=meta.num_frames, desc=f"{desc} video", unit="frame", enabled=o.progress) as s:
                write_detection_video(result, job.outputs["video"], threshold=shown,
                                      on_frame=lambda _t: s.update())
        write_result_json(result, job.outputs["json"])     # last: its presence marks the input as done
        dt = time.perf_counter() - t0
        lines.append(f"wrote {', '.join(str(p) for p in job.outputs.values())} ({dt:.1f} s)")
        return "\n".join(lines)

    return run_batch(jobs, work, o, "humact detect")
