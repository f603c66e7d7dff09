"""The perception pipeline: a video file in, a `VideoResult` out.

    read_frames (humact.video)          frames (H, W, 3) uint8 RGB, one at a time
      -> PoseBackend (backend.py)       Detections of that frame (boxes, COCO-17, landmarks)
      -> plausible_poses (boxes.py)     rows with too few confident joints are not people
      -> suppress_duplicates (boxes.py) one row per body (pose NMS)
      -> refine_boxes (boxes.py)        person boxes grown to hold every confident keypoint
      -> Tracker.update (tracking.py)   track ids (motion, pose, torso colour)
    PoseTracks.from_detections          dense (persons, frames, ...) arrays
      -> smooth_tracks (smoothing.py)   optional One-Euro filtering of the keypoints
      -> part_boxes (parts.py)          the 10 Kinetics-TPS part boxes
    = VideoResult

Frames stream through one at a time, so memory does not grow with video length.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from humact.errors import ConfigError
from humact.perception.backend import BACKENDS, DEFAULT_BACKEND, PoseBackend
from humact.types import Detections, VideoMeta, VideoResult
from humact.video import DecodeReport, PartialDecodeWarning, VideoError, probe, read_frames

if TYPE_CHECKING:
    from humact.perception.tracking import Tracker


@dataclass
class ExtractConfig:
    """Settings of `extract_video` (the defaults are what `humact extract` uses).

    Attributes:
        backend: pose backend name (see `make_backend`, `BACKENDS`).
        detect_every: run the person detector every N frames; in between, people are
            followed with the ROI of their previous landmarks.
        threads: threads for the backend's interpreters and the decoder.
        keypoint_threshold: keypoint score above which a keypoint counts as visible
            (box refinement, part validity, drawing).
        box_margin: margin added around the keypoints by box refinement, as a
            fraction of the box size.
        detector_model: the YOLOX ONNX file for backend "yolox" (default: the model
            directory's, from `humact setup --detector yolox`).
        input_size: MoveNet's input long side (default: the backend's, 256).
        min_keypoints: rows with fewer keypoints above `keypoint_threshold` are dropped
            (0: leave plausibility to the backend, which knows its scores: MoveNet drops
            rows with fewer than 4, BlazePose-landmark poses pass by pose presence; a
            cut-off close-up has few joints above 0.3, so 4 here loses the arm-wrestlers
            on 40 frames).
        max_lost_seconds: a person unseen this long and seen again keeps their id.
        appearance_weight: weight of the torso-colour similarity in tracking (0 = off).
        max_shift: a detection whose box centre is more than this many box diagonals from a
            track's predicted centre (one frame on; a little more after a gap) cannot continue
            it (`Tracker`; 0 = off): one track never jumps from one person to the next.
        max_area_ratio: a detection whose box area is more than this many times a track's
            last box, or less than its inverse, cannot continue it (0 = off): a pose spread
            over two people or a table does not become the person.
        stitch_seconds: for files, a track that ends and one that starts within this many
            seconds at the same place, size and torso colour become one id
            (`tracking.stitch_tracklets`; 0 = off; live input never stitches).
        fill_seconds: for files, a track missed for at most this many seconds between two
            frames where it was seen gets interpolated rows there, marked `filled`
            (`tracking.fill_gaps`; 0 = off; live input never fills).
        smoothing: "one-euro" to filter the tracked keypoints (`smoothing.py`), or None.
    """

    backend: str = DEFAULT_BACKEND
    detect_every: int = 5
    threads: int = 2
    keypoint_threshold: float = 0.3
    box_margin: float = 0.1
    detector_model: str | None = None
    input_size: int | None = None
    min_keypoints: int = 0
    max_lost_seconds: float = 1.0
    appearance_weight: float = 0.3
    max_shift: float = 0.5
    max_area_ratio: float = 3.0
    stitch_seconds: float = 2.0
    fill_seconds: float = 1.0
    smoothing: str | None = None


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over frames (`benchmarks/perception.py` reports them)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    frames: int = 0

    def add(self, stage: str, dt: float) -> None:
        self.seconds[stage] += dt


def make_backend(config: ExtractConfig) -> PoseBackend:
    """Build the pose backend named in `config` (imported lazily: each pulls its own runtime)."""
    if config.backend == "blazepose":
        from humact.perception.blazepose import BlazePoseBackend

        return BlazePoseBackend(detect_every=config.detect_every, num_threads=config.threads)
    if config.backend == "movenet":
        from humact.perception.movenet import MoveNetBackend

        kw = {"input_size": config.input_size} if config.input_size else {}
        return MoveNetBackend(num_threads=config.threads, **kw)
    if config.backend == "yolox":
        from humact.perception.topdown import TopDownBackend

        return TopDownBackend(detector_model=config.detector_model, num_threads=config.threads,
                              detect_every=config.detect_every)
    raise ConfigError(f"backend: unknown pose backend {config.backend!r}; available: {', '.join(BACKENDS)}")


def extract_video(
    path: str | os.PathLike,
    *,
    config: ExtractConfig | None = None,
    backend: PoseBackend | None = None,
    meta: VideoMeta | None = None,
    on_frame: Callable[[int], None] | None = None,
    times: StageTimes | None = None,
) -> VideoResult:
    """Detect, pose, track and part-box every person in the video at `path`.

    Args:
        config: settings; `ExtractConfig()` when None.
        backend: a ready backend (reused across videos); built from `config` when None.
        meta: the video's `probe` result, if the caller already has it.
        on_frame: called with each frame index after it is processed (progress bars).
        times: filled with seconds per stage when given.

    Returns:
        VideoResult with `tracks` (one row per track id, in id order) and `parts`.
        A video in which nobody is found gives zero tracks, not an error. A truncated or
        corrupt file gives the frames that decoded, with `partial`, `frames_decoded`,
        `frames_announced` and a line in `warnings` (also issued as a
        `humact.video.PartialDecodeWarning`).

    Raises:
        FileNotFoundError, humact.video.VideoError: the video cannot be read.
    """
    config = config or ExtractConfig()
    path = os.fspath(path)
    meta = meta or probe(path)
    backend = backend or make_backend(config)
    backend.reset()
    tracker = make_tracker(config, meta.fps, backend)
    report = DecodeReport()
    clock = time.perf_counter
    t_prev = clock()
    for t, rgb in read_frames(path, threads=config.threads, report=report):
        t0 = clock()
        det = backend(rgb, t)
        t1 = clock()
        refine_and_track(det, tracker, config=config, image_size=(meta.width, meta.height), frame=t, image=rgb)
        t2 = clock()
        if times is not None:
            times.add("decode", t0 - t_prev)
            times.add("pose", t1 - t0)
            times.add("track", t2 - t1)
            times.frames += 1
        if on_frame is not None:
            on_frame(t)
        t_prev = clock()
    t0 = clock()
    result = result_from_tracker(tracker, meta, config=config, backend=getattr(backend, "name", config.backend),
                                 stitch=True)
    if times is not None:
        times.add("track", clock() - t0)
    result.frames_decoded, result.frames_announced = report.decoded, report.announced
    if report.decoded == 0:
        raise VideoError(report.describe())
    if report.partial:
        result.partial = True
        result.warnings.append(report.describe())
        warnings.warn(report.describe(), PartialDecodeWarning, stacklevel=2)
    return result


def make_tracker(config: ExtractConfig, fps: float | None, backend: PoseBackend | None = None) -> Tracker:
    """The tracker `config` asks for, its lost-track patience in frames at `fps` (30 when unknown);
    rows below the backend's `track_start_score` (if it has one) only continue tracks."""
    from humact.perception.tracking import Tracker

    fps = fps if fps and fps > 0 else 30.0
    return Tracker(max_lost_frames=max(1, int(round(config.max_lost_seconds * fps))),
                   new_track_score=float(getattr(backend, "track_start_score", 0.0)),
                   keypoint_threshold=config.keypoint_threshold, appearance_weight=config.appearance_weight,
                   max_shift=config.max_shift, max_area_ratio=config.max_area_ratio)


def refine_and_track(det: Detections, tracker: Tracker, *, config: ExtractConfig, image_size: tuple[int, int],
                     frame: int, image: np.ndarray | None = None) -> Detections:
    """The steps after the backend for one frame: implausible poses dropped, duplicates merged,
    `refine_boxes`, then `Tracker.update` (with the frame, for the appearance cue).

    Args:
        det: the backend's detections of frame `frame`.
        image_size: (width, height) of the frame, pixels.
        image: the (H, W, 3) RGB frame, for the tracker's torso-colour cue (optional).
    Returns:
        The refined rows with the ids of confirmed tracks (-1 while a track is tentative).
    """
    from humact.perception.boxes import plausible_poses, refine_boxes, suppress_duplicates

    det = plausible_poses(det, min_keypoints=config.min_keypoints, keypoint_threshold=config.keypoint_threshold)
    det = suppress_duplicates(det, keypoint_threshold=config.keypoint_threshold)
    det = refine_boxes(det, keypoint_threshold=config.keypoint_threshold, margin=config.box_margin,
                       image_size=image_size)
    return tracker.update(det, frame=frame, image=image)


def result_from_tracker(tracker: Tracker, meta: VideoMeta, *, config: ExtractConfig, backend: str,
                        stitch: bool = False) -> VideoResult:
    """The `VideoResult` of the frames given to `tracker`: dense tracks and part boxes.

    With `stitch` (whole files: the future is known), tracks of one person lost for up to
    `config.stitch_seconds` are joined first (`tracking.stitch_tracklets`), then each track's
    gaps of up to `config.fill_seconds` are filled (`tracking.fill_gaps`)."""
    from humact.perception.parts import part_boxes
    from humact.perception.tracking import fill_gaps, stitch_tracklets
    from humact.types import PoseTracks

    fps = meta.fps if meta.fps and meta.fps > 0 else 30.0
    # The tracker's history, not the rows `update` returned: a new person's first
    # frames get their id only once the track is confirmed.
    rows = tracker.history()
    if stitch and config.stitch_seconds > 0:
        rows = stitch_tracklets(rows, max_gap=int(round(config.stitch_seconds * fps)),
                                histograms=tracker.history_histograms())
    tracks = PoseTracks.from_detections(rows, meta.num_frames)
    if stitch and config.fill_seconds > 0:
        tracks = fill_gaps(tracks, max_gap=int(round(config.fill_seconds * fps)))
    if config.smoothing is not None:
        from humact.perception.smoothing import smooth_tracks

        tracks = smooth_tracks(tracks, method=config.smoothing, fps=fps)
    parts = part_boxes(tracks, keypoint_threshold=config.keypoint_threshold)
    return VideoResult(meta=meta, tracks=tracks, parts=parts, backend=backend)


def write_annotated_video(
    result: VideoResult,
    out_path: str | os.PathLike,
    *,
    labels: dict[int, str] | None = None,
    keypoint_threshold: float = 0.3,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Decode the video again and write it with skeletons, ids, boxes and `labels` drawn, atomically,
    each frame at its presentation time (variable frame rate plays at the right speed)."""
    from humact.draw import draw_frame
    from humact.io.atomic import atomic_path
    from humact.video import VideoWriter

    meta = result.meta
    with atomic_path(out_path) as tmp:
        with VideoWriter(tmp, width=meta.width, height=meta.height, fps=meta.fps) as writer:
            # With a report, a file that stops decoding part-way gives the frames before it, as extract did.
            for t, rgb in read_frames(meta.path, report=DecodeReport()):
                writer.write(draw_frame(rgb, t, result.tracks, result.parts, labels,
                                        keypoint_threshold=keypoint_threshold), time_s=meta.frame_times[t])
                if on_frame is not None:
                    on_frame(t)


def empty_tracks_count(result: VideoResult) -> int:
    """Number of frames in which nobody was found (filled rows are not found people)."""
    return int(np.sum(~result.tracks.seen.any(axis=0))) if result.tracks.num_persons else result.meta.num_frames


def lasting_ids(result: VideoResult, seconds: float = 1.0) -> int:
    """Number of track ids seen on at least `seconds` worth of frames (at the video's frame
    rate, 30 when unknown; filled rows not counted): people, not the short fragments a tracker
    leaves behind."""
    fps = result.meta.fps if result.meta.fps and result.meta.fps > 0 else 30.0
    if not result.tracks.num_persons:
        return 0
    return int((result.tracks.seen.sum(axis=1) >= max(1, int(round(seconds * fps)))).sum())
