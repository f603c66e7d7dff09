"""What `humact gesture` does: hands, hand tracks and gesture labels for a video, a folder or a live source.

    frames (a file's, or a live source's as they arrive)
      -> perception.hands.HandBackend       MediaPipe Hands: palm detector + hand landmarks
      -> perception.hands.HandTracker       track ids
      -> skeleton.gesture.GestureRecognizer PYSKL's HaGRID ST-GCN++ on each track's last 10 frames
      -> per frame: the labels and the frame rate drawn on the frame (annotated video)
    -> GestureResult -> REL.gestures.json (+ REL.gestures.mp4)

`gesture_frames` is the one per-frame loop, fed by `humact.video.read_frames` for files and by
`humact.video.open_live` (bounded queue, oldest frame dropped when processing is slower than the
source) for cameras and streams. Outputs follow `analyze`'s conventions (`humact.batch`: names from
the input's full name, atomic writes, the JSON written last marks an input done, resume, a failing
input reported and skipped). JSON schema `humact.gestures` version 1 (`gestures_to_dict`).

Memory on a live source: the frame queue (`queue_size` frames), one window per live hand track,
and what the result keeps: one row per hand per frame (~600 bytes) and the predictions.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from humact.types import GesturePrediction, GestureResult, HandDetections, VideoMeta

__all__ = ["GestureOptions", "GesturePipeline", "gesture_frames", "gestures_to_dict", "write_gesture_json",
           "gesture", "gesture_live", "GESTURE_SCHEMA", "GESTURE_SCHEMA_VERSION", "PERSON_SEARCH_MIN_SIDE"]

GESTURE_SCHEMA = "humact.gestures"
GESTURE_SCHEMA_VERSION = 1
#: With `person_search="auto"`, frames whose long side is at least this get the wrist-guided palm
#: search (`HandBackend(person_backend=...)`): below it MediaPipe's whole-frame search finds the
#: hands of the clips we looked at (340 x 256 arm wrestling), above it not (1080p NTU: none).
PERSON_SEARCH_MIN_SIDE = 960


@dataclass
class GestureOptions:
    """Choices of `humact gesture`.

    Attributes:
        model: the HaGRID checkpoint (default: the model directory's, from `humact setup --gestures`).
        max_hands: MediaPipe's num_hands.
        threads: TFLite and torch threads.
        every: classify every N-th frame (PYSKL's demo: 2).
        person_search: "auto" (by frame size, `PERSON_SEARCH_MIN_SIDE`), "on" or "off": look for palms
            near the wrists of MoveNet's people too.
        video: write the annotated video (None: yes for a single input or a live source).
        force, progress: as for `analyze`.
    """

    model: str | os.PathLike | None = None
    max_hands: int = 2
    threads: int = 2
    every: int = 2
    person_search: str = "auto"
    video: bool | None = None
    force: bool = False
    progress: bool = True


class GesturePipeline:
    """Hand backend, hand tracker and gesture recognizer, one frame at a time.

    Build it once (the models load here) and `reset()` it between videos. `process(index,
    time_s, rgb)` returns the frame's tracked hands and the predictions made on it;
    `labels` holds each live track's latest top gesture ("Like 0.93") for drawing.
    """

    def __init__(self, options: GestureOptions | None = None, *, model=None, checkpoint=None) -> None:
        import torch

        from humact.skeleton.gesture import GestureRecognizer, find_gesture_checkpoint, load_hagrid

        self.options = o = options or GestureOptions()
        if o.person_search not in ("auto", "on", "off"):
            from humact.errors import UsageError

            raise UsageError(f"--person-search: expected auto, on or off, got {o.person_search!r}")
        # The gesture model is small (197 k parameters, 10 frames): its convolutions are microseconds,
        # and a second torch thread only adds synchronisation (measured: 17 ms a window on 1 thread,
        # 117 ms on 2 on a loaded 2-core machine). The TFLite models get `threads`.
        torch.set_num_threads(1)
        self.checkpoint = checkpoint
        if model is None:
            self.checkpoint = find_gesture_checkpoint(o.model)
            model = load_hagrid(self.checkpoint)
        self.recognizer = GestureRecognizer(model, every=o.every)
        self._backends: dict[bool, Any] = {}
        self.backend = None
        self.reset()

    def _backend_for(self, width: int, height: int):
        from humact.perception.hands import HandBackend

        o = self.options
        search = o.person_search == "on" or (o.person_search == "auto" and max(width, height) >= PERSON_SEARCH_MIN_SIDE)
        if search not in self._backends:
            person = None
            if search:
                from humact.perception.movenet import MoveNetBackend

                person = MoveNetBackend(num_threads=o.threads)
            self._backends[search] = HandBackend(max_hands=o.max_hands, num_threads=o.threads, person_backend=person)
        backend = self._backends[search]
        backend.reset()
        return backend

    @property
    def model_name(self) -> str:
        return f"pyskl-hagrid-stgcnpp ({self.checkpoint})" if self.checkpoint else "gesture model (given)"

    def reset(self) -> None:
        from humact.perception.hands import HandTracker
        from humact.skeleton.gesture import GestureRecognizer

        r = self.recognizer
        self.recognizer = GestureRecognizer(r.model, r.labels, clip_len=r.clip_len, every=r.every,
                                            min_window=r.min_window)
        self.tracker = HandTracker()
        self.backend = None
        self.labels: dict[int, str] = {}

    def process(self, index: int, time_s: float, rgb: np.ndarray) -> tuple[HandDetections, list[GesturePrediction]]:
        if self.backend is None:
            self.backend = self._backend_for(rgb.shape[1], rgb.shape[0])
        hands = self.tracker.update(self.backend(rgb, index), index)
        preds = self.recognizer.update(hands, index, time_s, rgb.shape[1], rgb.shape[0])
        live = {int(t) for t in hands.track_id}
        self.labels = {t: v for t, v in self.labels.items() if t in live}
        for p in preds:
            self.labels[p.track_id] = f"{p.top[0][0]} {p.top[0][1]:.2f}"
        return hands, preds


def gesture_frames(frames: Iterable[tuple[int, float, np.ndarray]], pipeline: GesturePipeline, *,
                   on_frame: Callable[[int, float, np.ndarray, HandDetections, str], None] | None = None,
                   ) -> Iterator[tuple[int, HandDetections, list[GesturePrediction]]]:
    """Run `pipeline` on `(index, time_s, rgb)` frames as they come; yield each frame's results.

    `on_frame(index, time_s, rgb, hands, status)` is called after each frame, `status` being the
    text drawn live: the processing rate (frames per second over the last second of frames).
    """
    pipeline.reset()
    recent: list[float] = []
    for index, t, rgb in frames:
        hands, preds = pipeline.process(index, t, rgb)
        now = time.perf_counter()
        recent.append(now)
        while recent and now - recent[0] > 1.0:
            recent.pop(0)
        if on_frame is not None:
            span = recent[-1] - recent[0] if len(recent) > 1 else 0.0
            fps = (len(recent) - 1) / span if span > 0 else 0.0
            on_frame(index, t, rgb, hands, f"{fps:.1f} fps")
        yield index, hands, preds


def gestures_to_dict(result: GestureResult) -> dict[str, Any]:
    """The JSON-ready dict of `result`: schema `humact.gestures` v1.

    {"schema", "version", "humact_version", "backend", "model", "labels": [40 names],
     "video": {path, name, width, height, fps, num_frames, frame_times, frames_decoded},
     "partial", "warnings", "seconds", "fps" (frames processed per second),
     "keypoint_names": [21], "hands": [{"track_id", "frames", "boxes", "scores", "handedness",
     "keypoints" (x, y pixels, z), "world"}], "gestures": [{"track_id", "frame", "time", "window",
     "top": [{"label", "score"}]}]}
    """
    from humact import __version__
    from humact.io.results import rounded
    from humact.perception.hands import HAND_LANDMARK_NAMES

    meta, hands = result.meta, result.hands
    tracks = []
    for tid in np.unique(hands.track_id):
        rows = np.flatnonzero(hands.track_id == tid)
        rows = rows[np.argsort(hands.frame[rows], kind="stable")]
        tracks.append({"track_id": int(tid), "frames": hands.frame[rows].tolist(), "boxes": rounded(hands.xyxy[rows], 2),
                       "scores": rounded(hands.score[rows], 4), "handedness": rounded(hands.handedness[rows], 4),
                       "keypoints": rounded(hands.keypoints[rows], 2), "world": rounded(hands.world[rows], 4)})
    return {
        "schema": GESTURE_SCHEMA, "version": GESTURE_SCHEMA_VERSION, "humact_version": __version__,
        "backend": result.backend, "model": result.model, "labels": list(result.labels),
        "video": {"path": meta.path, "name": meta.name, "width": meta.width, "height": meta.height, "fps": meta.fps,
                  "num_frames": meta.num_frames, "frame_times": rounded(meta.frame_times, 6),
                  "frames_decoded": result.frames_decoded},
        "partial": bool(result.partial), "warnings": [str(w) for w in result.warnings],
        "seconds": round(result.seconds, 3), "fps": round(result.fps, 2),
        "keypoint_names": list(HAND_LANDMARK_NAMES),
        "handedness_convention": "probability of MediaPipe's 'Right' label, which assumes a mirrored image",
        "hands": tracks,
        "gestures": [{"track_id": p.track_id, "frame": p.frame, "time": round(p.time_s, 6), "window": p.window,
                      "top": [{"label": lab, "score": round(s, 4)} for lab, s in p.top]} for p in result.predictions],
    }


def write_gesture_json(result: GestureResult, path: str | os.PathLike) -> None:
    """Write `result` as `humact.gestures` JSON, atomically."""
    import json

    from humact.io.atomic import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(gestures_to_dict(result), f, separators=(",", ":"))


def _summary(name: str, result: GestureResult) -> list[str]:
    lines = [f"{name}: {len(np.unique(result.hands.track_id))} hand tracks, {len(result.predictions)} predictions, "
             f"{result.fps:.1f} frames/s"]
    best: dict[int, dict[str, int]] = {}
    for p in result.predictions:
        best.setdefault(p.track_id, {}).setdefault(p.top[0][0], 0)
        best[p.track_id][p.top[0][0]] += 1
    for tid, counts in sorted(best.items()):
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"  hand {tid}: " + ", ".join(f"{lab} x{n}" for lab, n in ranked))
    return lines


def _run(frames, pipeline: GesturePipeline, meta_of: Callable[[], VideoMeta], video_path: Path | None,
         fps_hint: float, warnings_of: Callable[[], list[str]] = list, progress=None,
         on_frame=None) -> GestureResult:
    """The loop of one input: results collected, the annotated video written as frames come."""
    from humact.draw import draw_hands
    from humact.io.atomic import atomic_path
    import contextlib

    from humact.video import VideoWriter

    rows: list[HandDetections] = []
    preds: list[GesturePrediction] = []
    n = 0
    t0 = time.perf_counter()
    with (atomic_path(video_path) if video_path is not None else contextlib.nullcontext()) as tmp:
        writer = None

        def show(index, t, rgb, hands, status):
            nonlocal writer
            if on_frame is not None:
                on_frame(index, t, rgb, hands, status)
            if tmp is None:
                return
            if writer is None:
                writer = VideoWriter(tmp, width=rgb.shape[1], height=rgb.shape[0], fps=fps_hint or 25.0)
            writer.write(draw_hands(rgb, hands, pipeline.labels, status=status), time_s=t)

        try:
            for _index, hands, p in gesture_frames(frames, pipeline, on_frame=show):
                rows.append(hands)
                preds.extend(p)
                n += 1
                if progress is not None:
                    progress(n)
        finally:
            if writer is not None:
                writer.close()
    seconds = time.perf_counter() - t0
    warnings = warnings_of()
    return GestureResult(meta=meta_of(), hands=HandDetections.merge(rows), predictions=preds,
                         labels=pipeline.recognizer.labels, model=pipeline.model_name,
                         backend=pipeline.backend.name if pipeline.backend else "mediapipe-hands-full",
                         frames_decoded=n, partial=bool(warnings), warnings=warnings, seconds=seconds)


def gesture(source: str | os.PathLike, out: str | os.PathLike, options: GestureOptions | None = None, *,
            max_frames: int | None = None):
    """Gestures of every input of `source` (a video, an image folder... or a live source) into `out`.

    Returns the `humact.batch.BatchSummary`.
    """
    from humact.batch import Job, plan_jobs, prepare_output_dir, run_jobs
    from humact.tasks import is_live_source

    o = options or GestureOptions()
    if is_live_source(source):
        return gesture_live(source, out, o, max_frames=max_frames)
    from humact.skeleton.gesture import find_gesture_checkpoint, load_hagrid

    checkpoint = find_gesture_checkpoint(o.model)      # a bad model is reported before any work
    model = load_hagrid(checkpoint)
    video = Path(source).is_file() if o.video is None else o.video
    kinds = ("gestures",) + (("gesture_video",) if video else ())
    prepare_output_dir(out)
    jobs = plan_jobs(source, out, kinds)
    pipeline = GesturePipeline(o, model=model, checkpoint=checkpoint) if any(o.force or not j.done for j in jobs) \
        else None

    def work(job: Job, desc: str) -> str:
        from humact.progress import progress as bar
        from humact.video import DecodeReport, probe, read_frames

        meta = probe(job.input)
        report = DecodeReport()
        times = meta.frame_times
        frames = ((i, float(times[i]) if i < len(times) else i / max(meta.fps, 1e-6), rgb)
                  for i, rgb in read_frames(job.input, report=report, stop=max_frames))
        with bar(total=meta.num_frames if max_frames is None else min(max_frames, meta.num_frames), desc=desc,
                 unit="frame", enabled=o.progress) as shown:
            result = _run(frames, pipeline, lambda: meta, job.outputs.get("gesture_video"), meta.fps,
                          lambda: [report.describe()] if report.partial else [], lambda _n: shown.update())
        write_gesture_json(result, job.outputs["gestures"])
        lines = _summary(str(job.rel), result)
        lines += [f"wrote {p}" for p in job.outputs.values()]
        return "\n".join(lines)

    return run_jobs(jobs, work, force=o.force, command="humact gesture")


def gesture_live(source: str | os.PathLike, out: str | os.PathLike, options: GestureOptions | None = None, *,
                 max_frames: int | None = None, drop: bool = True, queue_size: int = 4, timeout: float = 10.0,
                 stats=None, on_frame=None):
    """Gestures on a live source (webcam number or /dev/videoN, a stream URL, a pipe) as frames arrive,
    until it ends, `max_frames` frames were processed, or Ctrl-C; then `NAME.gestures.json` (and, unless
    `options.video` is False, `NAME.gestures.mp4` drawn as the frames came). With `drop` the oldest
    waiting frame is dropped when processing is slower than the source (a camera); without it the
    reader waits (a recorded stream). `stats` (a `humact.video.LiveStats`) is filled with the
    stream's counters; `on_frame(index, time_s, rgb, hands, status)` is called after each frame
    (e.g. to show it)."""
    from humact.batch import BatchSummary, Job, output_paths, prepare_output_dir
    from humact.tasks import live_output_name
    from humact.video import VideoError, open_live

    o = options or GestureOptions()
    source = os.fspath(source)
    prepare_output_dir(out)
    name = live_output_name(source)
    kinds = ("gestures",) + (("gesture_video",) if o.video is not False else ())
    job = Job(Path(source), Path(name), output_paths(out, name, kinds))
    pipeline = GesturePipeline(o)
    stream = open_live(source, queue_size=queue_size, when_full="drop_oldest" if drop else "wait", timeout=timeout,
                       stats=stats)
    state = {"error": None, "interrupted": False, "last": -1}

    def frames():
        try:
            for item in stream.frames(max_frames=max_frames):
                state["last"] = item[0]
                yield item
        except KeyboardInterrupt:
            state["interrupted"] = True
        except VideoError as e:
            if state["last"] < 0:
                raise
            state["error"] = str(e)
        finally:
            stream.close()

    def meta() -> VideoMeta:
        n = state["last"] + 1
        times = np.array(stream.frame_times[:n], np.float64)
        fps = stream.fps or ((n - 1) / (times[-1] - times[0]) if n > 1 and times[-1] > times[0] else 25.0)
        return VideoMeta(path=source, width=stream.width, height=stream.height, fps=fps, num_frames=n,
                         frame_times=times)

    def warnings() -> list[str]:
        out = []
        dropped = stream.stats.received - stream.stats.delivered
        if dropped > 0:
            out.append(f"{source}: {dropped} frames were dropped because processing was slower than the stream "
                       f"(queue of {stream.stats.queue_size})")
        if state["error"]:
            out.append(state["error"])
        return out

    def tick(n):
        if o.progress and n % 100 == 0:
            print(f"{name}: {n} frames", file=sys.stderr)

    t0 = time.perf_counter()
    result = _run(frames(), pipeline, meta, job.outputs.get("gesture_video"), stream.fps, warnings, tick, on_frame)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_gesture_json(result, job.outputs["gestures"])
    summary = BatchSummary()
    lines = _summary(source, result) + [f"wrote {p}" for p in job.outputs.values()]
    summary.done.append((job, "\n".join(lines)))
    summary.seconds = time.perf_counter() - t0
    print(summary.done[0][1])
    return summary
