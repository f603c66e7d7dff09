"""The offline default of `humact detect`: skeleton-based spatio-temporal action detection.

Each person box on a keyframe belongs to a track of humact's perception; that track's poses in
a window of +-`window_s` seconds around the keyframe go through a skeleton recognizer (by
default the shipped ST-GCN++ of `humact analyze`, `humact.recognize.skeleton.DEFAULT_MODEL`),
exactly as `Recognizer.recognize_tracks` reads a whole track (the model's own recipe normalises
and samples the window). The result is one row of class probabilities per (person, keyframe),
the same `ActionDetections` the AVA detectors give. Needs no download.
"""

from __future__ import annotations

import numpy as np

from humact.detect.keyframes import KeyframeBoxes, Keyframes
from humact.types import PoseTracks, VideoMeta

__all__ = ["skeleton_keyframe_scores"]


def _window(tracks: PoseTracks, rows: list[int], lo: int, hi: int) -> PoseTracks:
    """Tracks `rows`, frames [lo, hi)."""
    sel = np.asarray(rows, np.int64)
    wl = tracks.world_landmarks[sel, lo:hi] if tracks.world_landmarks is not None else None
    filled = tracks.filled[sel, lo:hi] if tracks.filled is not None else None
    return PoseTracks(tracks.track_ids[sel], tracks.keypoints[sel, lo:hi], tracks.keypoint_scores[sel, lo:hi],
                      tracks.boxes[sel, lo:hi], tracks.box_scores[sel, lo:hi], tracks.valid[sel, lo:hi], wl,
                      filled)


def skeleton_keyframe_scores(recognizer, tracks: PoseTracks, meta: VideoMeta, keyframes: Keyframes,
                             boxes: KeyframeBoxes, track_rows: np.ndarray, *, window_s: float = 1.0,
                             min_frames: int = 8) -> tuple[np.ndarray, list[str]]:
    """(R, C) probabilities for every box, and per box "" or why it has none.

    Args:
        recognizer: a `humact.recognize.skeleton.Recognizer` (COCO-17 or JHMDB-15 joints).
        track_rows: (R,) the row of `tracks` each box belongs to (-1: no track, no scores).
        window_s: half-width of the pose window around each keyframe, seconds.
        min_frames: a track seen on fewer frames of the window gets no scores.
    """
    scores = np.zeros((len(boxes), len(recognizer.classes)), np.float32)
    why = [""] * len(boxes)
    ft = meta.frame_times
    for k, t in enumerate(keyframes.times.tolist()):
        rows = boxes.on(k)
        if not rows.size:
            continue
        lo, hi = int(np.searchsorted(ft, t - window_s - 1e-9)), int(np.searchsorted(ft, t + window_s + 1e-9))
        for r in rows[track_rows[rows] < 0]:
            why[r] = "no track with poses matches this box"
        have = rows[track_rows[rows] >= 0]
        if not have.size:
            continue
        window = _window(tracks, track_rows[have].tolist(), lo, hi)
        acts = recognizer.recognize_tracks(window, min_frames=min_frames, frame_shape=(meta.height, meta.width))
        for i, r in enumerate(have):
            if acts.reasons[i]:
                why[r] = f"within +-{window_s:g} s: {acts.reasons[i]}"
            else:
                scores[r] = acts.scores[i]
    return scores, why
