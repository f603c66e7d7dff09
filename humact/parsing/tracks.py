"""Perception for Kinetics-TPS videos, and who in our tracks is which annotated human.

    perceive(video, cache)      humact's perception (`extract_video`) on the video's file (or
                                `perceive_frames` on its frame folder), or the result JSON cached
                                by an earlier run (`cache/<video>.json`)
    match_humans(tracks, frame) for one annotated frame: {ground-truth human index: track row},
                                Hungarian matching on box IoU, pairs with IoU > 0.5 (the score's
                                own human threshold)
    frame_rgb(video, indices)   the RGB pixels of annotated frames, from the frame folder
                                (img_%05d.jpg) or the video
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from humact.errors import InputError
from humact.types import PoseTracks, VideoResult

__all__ = ["perceive", "perceive_frames", "match_humans", "frame_rgb", "HUMAN_IOU"]

HUMAN_IOU = 0.5
FRAME_FOLDER_FPS = 30.0


def perceive(video, cache: str | os.PathLike | None = None, *, config=None, backend=None) -> VideoResult:
    """The `VideoResult` of a `TpsVideo` (tracks and geometric part boxes), cached as `cache/<name>.json`."""
    from humact.io.results import read_result_json, write_result_json
    from humact.perception.pipeline import extract_video

    path = Path(cache) / f"{video.name}.json" if cache is not None else None
    if path is not None and path.is_file():
        return read_result_json(path)
    if video.video is not None:
        result = extract_video(video.video, config=config, backend=backend)
    elif video.frames_dir is not None:
        result = perceive_frames(video.frames_dir, config=config, backend=backend)
    else:
        raise InputError(f"video {video.name!r}: neither a video file nor a frame folder found for it (perception "
                         f"reads <split>_videos/<class>/<video>.mp4, videos/<video>.<ext> or <split>_frames/"
                         f"<class>/<video>/img_%05d.jpg)")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_result_json(result, path)
    return result


def perceive_frames(folder: str | os.PathLike, *, config=None, backend=None, fps: float = FRAME_FOLDER_FPS) -> VideoResult:
    """Perception over a frame folder (img_%05d.jpg from 1, as mmaction2's build_rawframes writes):
    the pipeline's per-frame steps (`pipeline.refine_and_track`, then `result_from_tracker`) on each
    image in order, and, the folder being whole like a file, the same offline passes as a file
    (`result_from_tracker(stitch=True)`: tracklets of one person joined, short gaps filled). The
    folder holds no timing: frames are `fps` apart (the release's Kinetics clips are mostly 30 fps);
    a gap in the numbering is an InputError naming the missing frame."""
    from humact.io.limits import check_limit, MAX_FRAMES
    from humact.perception.pipeline import ExtractConfig, make_backend, make_tracker, refine_and_track, \
        result_from_tracker
    from humact.types import VideoMeta
    from humact.video import read_frames

    folder = Path(folder)
    files = sorted(folder.glob("img_*.jpg"))
    check_limit(len(files), MAX_FRAMES, source=str(folder), field="frames")
    if not files:
        raise InputError(f"{folder}: no img_%05d.jpg frames")
    for i, f in enumerate(files):
        if f.name != f"img_{i + 1:05d}.jpg":
            raise InputError(f"{folder}: frame img_{i + 1:05d}.jpg is missing (found {f.name} in its place)")
    config = config or ExtractConfig()
    backend = backend or make_backend(config)
    backend.reset()
    tracker = make_tracker(config, fps, backend)
    size = None
    for t, f in enumerate(files):
        _, rgb = next(read_frames(f))
        size = size or (rgb.shape[1], rgb.shape[0])
        refine_and_track(backend(rgb, t), tracker, config=config, image_size=size, frame=t, image=rgb)
    meta = VideoMeta(str(folder), size[0], size[1], fps, len(files), np.arange(len(files), dtype=np.float64) / fps)
    return result_from_tracker(tracker, meta, config=config, backend=getattr(backend, "name", config.backend),
                               stitch=True)


def match_humans(tracks: PoseTracks, frame: int, humans: list[dict], thr: float = HUMAN_IOU) -> dict[int, int]:
    """{index into `humans`: track row} for frame `frame` (0-based), IoU > `thr`, one-to-one."""
    from scipy.optimize import linear_sum_assignment

    from humact.perception.boxes import box_iou

    if not humans or frame >= tracks.num_frames:
        return {}
    rows = np.flatnonzero(tracks.valid[:, frame])
    if not len(rows):
        return {}
    iou = box_iou(np.array([h["box"] for h in humans], np.float64), tracks.boxes[rows, frame])
    gi, pi = linear_sum_assignment(-iou)
    return {int(g): int(rows[p]) for g, p in zip(gi, pi) if iou[g, p] > thr}


def frame_rgb(video, indices) -> dict[int, np.ndarray]:
    """{frame index: (H, W, 3) uint8 RGB} of the 0-based `indices`: img_%05d.jpg of the frame folder
    when there is one, else decoded from the video."""
    from humact.video import read_frames

    indices = sorted(set(int(i) for i in indices))
    out = {}
    if video.frames_dir is not None:
        for i in indices:
            p = Path(video.frames_dir) / f"img_{i + 1:05d}.jpg"
            if p.is_file():
                for _, rgb in read_frames(p):
                    out[i] = rgb
        if len(out) == len(indices):
            return out
    if video.video is None:
        raise InputError(f"video {video.name!r}: no frames for {sorted(set(indices) - set(out))[:5]} "
                         f"(neither a frame folder nor a video)")
    for i, rgb in read_frames(video.video, indices=[i for i in indices if i not in out]):
        out[i] = rgb
    return out
