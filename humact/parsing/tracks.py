"""Perception for Kinetics-TPS videos, and who in our tracks is which annotated human.

    perceive(video, cache)      humact's perception (`extract_video`) on the video's file, or the
                                result JSON cached by an earlier run (`cache/<video>.json`)
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

__all__ = ["perceive", "match_humans", "frame_rgb", "HUMAN_IOU"]

HUMAN_IOU = 0.5


def perceive(video, cache: str | os.PathLike | None = None, *, config=None, backend=None) -> VideoResult:
    """The `VideoResult` of a `TpsVideo` (tracks and geometric part boxes), cached as `cache/<name>.json`."""
    from humact.io.results import read_result_json, write_result_json
    from humact.perception.pipeline import extract_video

    path = Path(cache) / f"{video.name}.json" if cache is not None else None
    if path is not None and path.is_file():
        return read_result_json(path)
    if video.video is None:
        raise InputError(f"video {video.name!r}: no video file found for it (perception reads "
                         f"<split>_videos/<class>/<video>.mp4 or videos/<video>.<ext>)")
    result = extract_video(video.video, config=config, backend=backend)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_result_json(result, path)
    return result


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
