"""Keyframes, the clip frames around each one, and the person boxes on each keyframe.

    VideoMeta --keyframes_at_rate(rate)--> Keyframes (times, frames, AVA timestamps)
    an AVA CSV / proposals pickle --read_box_file--> Keyframes + KeyframeBoxes (the file's keyframes)
    PoseTracks --boxes_from_tracks--> KeyframeBoxes (each track's box on each keyframe)
    keyframe frame --ava_clip_indices(clip_len, frame_interval)--> the clip's frame indices

A keyframe's AVA timestamp is `timestamp_start + t` in whole seconds (AVA's own videos are cut
from second 900 of the film: `timestamp_start=900`); its frame is the one shown at time t (the
nearest presentation time, exact for variable frame rate).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humact.errors import InputError, UsageError
from humact.types import PoseTracks, VideoMeta

__all__ = ["Keyframes", "KeyframeBoxes", "keyframes_at_rate", "ava_clip_indices", "boxes_from_tracks",
           "read_box_file", "box_iou"]


@dataclass
class Keyframes:
    """K keyframes: `times` (K,) float64 seconds on the video's clock, `frames` (K,) int64 the frame
    shown at each, `timestamps` (K,) int64 whole-second AVA timestamps."""

    times: np.ndarray
    frames: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


@dataclass
class KeyframeBoxes:
    """R person boxes over the keyframes: `keyframe` (R,) index into the Keyframes, `boxes` (R, 4)
    float32 xyxy pixels, `track_ids` (R,) int64 (-1: none known), `scores` (R,) float32 box confidence."""

    keyframe: np.ndarray
    boxes: np.ndarray
    track_ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.keyframe)

    def on(self, k: int) -> np.ndarray:
        """Row indices of keyframe k."""
        return np.flatnonzero(self.keyframe == k)


def _nearest_frames(meta: VideoMeta, times: np.ndarray) -> np.ndarray:
    ft = meta.frame_times
    j = np.clip(np.searchsorted(ft, times), 1, max(len(ft) - 1, 1))
    left = ft[j - 1] if len(ft) > 1 else ft[:1].repeat(len(times))
    right = ft[j] if len(ft) > 1 else left
    return np.where(np.abs(times - left) <= np.abs(right - times), j - 1, j).astype(np.int64) if len(ft) > 1 \
        else np.zeros(len(times), np.int64)


def keyframes_at_rate(meta: VideoMeta, rate: float = 1.0, start: float = 0.0,
                      timestamp_start: int = 0) -> Keyframes:
    """Keyframes every 1/rate seconds from `start` (seconds after the first frame) to the last frame.

    AVA's protocol is one per second (`rate=1`); other rates give several keyframes per AVA
    timestamp, which the CSV cannot tell apart (`check_timestamps`)."""
    if not rate > 0:
        raise UsageError(f"--rate: expected a positive number of keyframes per second, got {rate}")
    if not start >= 0:
        raise UsageError(f"--start: expected a non-negative time, got {start}")
    t0 = float(meta.frame_times[0]) if meta.num_frames else 0.0
    last = float(meta.frame_times[-1]) if meta.num_frames else 0.0
    n = int(np.floor((last - t0 - start) * rate + 1e-9)) + 1 if last - t0 >= start else 0
    times = t0 + start + np.arange(n, dtype=np.float64) / rate
    frames = _nearest_frames(meta, times)
    stamps = np.floor(times - t0 + 1e-6).astype(np.int64) + int(timestamp_start)
    return Keyframes(times, frames, stamps)


def ava_clip_indices(center: int, num_frames: int, *, clip_len: int, frame_interval: int,
                     mode: str = "test") -> np.ndarray:
    """Frame indices of the clip around keyframe `center`, clamped to the video.

    mode "test": MMAction2's `SampleAVAFrames(test_mode=True)` (what the checkpoints were evaluated
    with): `center - (clip_len // 2) * interval + i * interval`, i < clip_len. mode "demo":
    `demo/demo_spatiotemporal_det.py`'s window, one interval later:
    `center - (clip_len // 2 - 1) * interval + i * interval`.
    """
    if mode == "test":
        start = center - (clip_len // 2) * frame_interval
    elif mode == "demo":
        start = center - (clip_len // 2 - 1) * frame_interval
    else:
        raise UsageError(f"--sampling: expected 'test' or 'demo', got {mode!r}")
    return np.clip(start + np.arange(clip_len) * frame_interval, 0, num_frames - 1).astype(np.int64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) xyxy -> (n, m) IoU."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _track_frame(tracks: PoseTracks, m: int, frame: int, max_gap: int) -> int:
    """The frame nearest `frame` (within max_gap) where track m was seen, else -1."""
    lo, hi = max(0, frame - max_gap), min(tracks.num_frames, frame + max_gap + 1)
    seen = np.flatnonzero(tracks.valid[m, lo:hi]) + lo
    return int(seen[np.argmin(np.abs(seen - frame))]) if seen.size else -1


def boxes_from_tracks(tracks: PoseTracks, keyframes: Keyframes, meta: VideoMeta,
                      max_gap_s: float = 0.2) -> KeyframeBoxes:
    """Each track's pose-refined box on each keyframe it is seen on (or within `max_gap_s` of it)."""
    fps = meta.fps if meta.fps and meta.fps > 0 else 30.0
    gap = int(round(max_gap_s * fps))
    kf, bx, ids, sc = [], [], [], []
    for k, f in enumerate(keyframes.frames.tolist()):
        for m, tid in enumerate(tracks.track_ids.tolist()):
            g = _track_frame(tracks, m, f, gap)
            if g >= 0:
                kf.append(k), bx.append(tracks.boxes[m, g]), ids.append(tid), sc.append(tracks.box_scores[m, g])
    return KeyframeBoxes(np.array(kf, np.int64), np.array(bx, np.float32).reshape(-1, 4),
                         np.array(ids, np.int64), np.array(sc, np.float32))


def assign_tracks(boxes: KeyframeBoxes, keyframes: Keyframes, tracks: PoseTracks, meta: VideoMeta,
                  min_iou: float = 0.3, max_gap_s: float = 0.2) -> np.ndarray:
    """(R,) the track (row of `tracks`) each box is (best IoU >= min_iou at its keyframe, one box per
    track and keyframe, greedy by IoU), -1 for none: file boxes get the poses of perception's tracks."""
    out = np.full(len(boxes), -1, np.int64)
    own = boxes_from_tracks(tracks, keyframes, meta, max_gap_s)
    row_of = {int(t): m for m, t in enumerate(tracks.track_ids.tolist())}
    for k in range(len(keyframes)):
        mine, theirs = boxes.on(k), own.on(k)
        if not mine.size or not theirs.size:
            continue
        iou = box_iou(boxes.boxes[mine], own.boxes[theirs])
        while iou.size and iou.max() >= min_iou:
            i, j = np.unravel_index(np.argmax(iou), iou.shape)
            out[mine[i]] = row_of[int(own.track_ids[theirs[j]])]
            iou[i, :] = -1
            iou[:, j] = -1
    return out


def read_box_file(path: str | os.PathLike, video_id: str, meta: VideoMeta, *, timestamp_start: int = 0,
                  score_threshold: float = 0.0) -> tuple[Keyframes, KeyframeBoxes]:
    """The keyframes and person boxes a file gives for one video (id `video_id`).

    - an AVA CSV (`.csv`, ground truth or detections): the unique boxes of each keyframe; a
      ground-truth file's 8th column (person id) becomes the track id;
    - an AVA proposals pickle (`.pkl`, `{"video_id,timestamp": (n, 5)}`, read with the restricted
      unpickler): boxes scoring at least `score_threshold` (MMAction2 tests with 0.9).
    Boxes are normalised in both; they are scaled by the video's width and height. A keyframe
    whose time (`timestamp - timestamp_start` seconds) lies outside the video is an InputError.
    """
    from humact.eval.ava import read_ava_csv, read_proposals

    path = Path(path)
    per_key: dict[int, list] = {}
    if path.suffix.lower() == ".csv":
        table = read_ava_csv(path, allow_empty_rows=True, empty_keys=[])
        ids = np.array([k[0] == video_id for k in table.keys])
        for r in np.flatnonzero(ids[table.kf]) if len(table) else []:
            ts = int(table.keys[table.kf[r]][1])
            rows = per_key.setdefault(ts, [])
            box = tuple(np.round(table.boxes[r], 6))
            pid = int(table.score[r]) if float(table.score[r]).is_integer() else -1
            if all(b != box for b, _, _ in rows):
                rows.append((box, pid, 1.0))
    elif path.suffix.lower() in (".pkl", ".pickle"):
        for key, arr in read_proposals(path).items():
            vid, _, ts = key.rpartition(",")
            if vid != video_id:
                continue
            try:
                ts_i = int(float(ts))
            except ValueError:
                raise InputError(f"{path}: key {key!r}: timestamp {ts!r} is not a number") from None
            score = arr[:, 4] if arr.shape[1] == 5 else np.ones(len(arr))
            per_key[ts_i] = [(tuple(b), -1, float(s)) for b, s in zip(arr[:, :4], score) if s >= score_threshold]
    else:
        raise InputError(f"{path}: person boxes must be an AVA CSV (.csv) or an AVA proposals pickle (.pkl)")
    if not per_key:
        raise InputError(f"{path}: no boxes for video id {video_id!r} (the file's video ids must be the video "
                         f"file names without their extension)")
    stamps = np.array(sorted(per_key), np.int64)
    t0 = float(meta.frame_times[0])
    times = t0 + (stamps - timestamp_start).astype(np.float64)
    last = float(meta.frame_times[-1]) + 1.0 / max(meta.fps, 1e-6)
    bad = (times < t0 - 1e-6) | (times > last)
    if bad.any():
        raise InputError(f"{path}: {video_id},{int(stamps[bad][0])}: keyframe at {times[bad][0] - t0:.2f} s, outside "
                         f"the video's {meta.duration:.2f} s (AVA's cut videos need --timestamp-start 900)")
    keyframes = Keyframes(times, _nearest_frames(meta, times), stamps)
    scale = np.array([meta.width, meta.height, meta.width, meta.height], np.float64)
    kf, bx, ids, sc = [], [], [], []
    for k, ts in enumerate(stamps.tolist()):
        for box, pid, s in per_key[ts]:
            kf.append(k), bx.append(np.asarray(box) * scale), ids.append(pid), sc.append(s)
    return keyframes, KeyframeBoxes(np.array(kf, np.int64), np.array(bx, np.float32).reshape(-1, 4),
                                    np.array(ids, np.int64), np.array(sc, np.float32))
