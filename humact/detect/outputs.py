"""What `humact detect` writes from `ActionDetections`: the AVA CSV, the annotated video and the
per-person action timeline (PNG). Every file is written atomically."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from humact.types import ActionDetections, VideoResult

__all__ = ["to_ava_detections", "write_ava_csv", "labels_at_frames", "write_detection_video", "plot_timeline"]


def to_ava_detections(det: ActionDetections, video_id: str, frame_size: tuple[int, int]):
    """`humact.eval.ava.AvaDetections`: one row per (box, class) scoring at least `det.threshold`,
    boxes normalised by `frame_size` (width, height), the keyframes' AVA timestamps."""
    from humact.eval.ava import AvaDetections

    r, c = np.nonzero(det.scores >= det.threshold)
    w, h = frame_size
    norm = np.clip(det.boxes[r].astype(np.float64) / np.array([w, h, w, h], np.float64), 0.0, 1.0)
    return AvaDetections(np.full(len(r), video_id, object), det.timestamps[det.keyframe[r]], norm,
                         det.class_ids[c], det.scores[r, c].astype(np.float64))


def write_ava_csv(det: ActionDetections, path: str | os.PathLike, video_id: str, frame_size: tuple[int, int]) -> int:
    """Write the AVA CSV `video_id,timestamp,x1,y1,x2,y2,action_id,score`; returns the number of rows."""
    from humact.eval.ava import write_ava_detections

    rows = to_ava_detections(det, video_id, frame_size)
    write_ava_detections(path, rows)
    return len(rows.video)


def labels_at_frames(det: ActionDetections, num_frames: int, threshold: float, top: int = 3) -> list[dict]:
    """Per frame, {row of det: "label 0.93, label 0.41"}: the rows of the keyframe nearest that frame
    (each keyframe's labels shown until half-way to the next), at most `top` labels >= threshold."""
    out: list[dict] = [{} for _ in range(num_frames)]
    if not len(det.frames):
        return out
    kf_frames = det.frames
    mid = (kf_frames[:-1] + kf_frames[1:]) / 2.0
    which = np.searchsorted(mid, np.arange(num_frames), side="right")
    text = {}
    for r in range(len(det)):
        pairs = det.above(r, threshold)[:top]
        if pairs:
            text[r] = ", ".join(f"{lab} {s:.2f}" for lab, s in pairs)
    by_kf: dict[int, dict] = {}
    for r, t in text.items():
        by_kf.setdefault(int(det.keyframe[r]), {})[r] = t
    for f in range(num_frames):
        out[f] = by_kf.get(int(which[f]), {})
    return out


def write_detection_video(result: VideoResult, path: str | os.PathLike, *, threshold: float,
                          on_frame: Callable[[int], None] | None = None, keypoint_threshold: float = 0.3) -> None:
    """The video with every tracked person (skeleton, box, id) and each person's current actions
    (the nearest keyframe's labels >= threshold); boxes without a track are drawn as boxes with labels."""
    from humact.draw import draw_frame, draw_person
    from humact.io.atomic import atomic_path
    from humact.video import DecodeReport, VideoWriter, read_frames

    meta, det = result.meta, result.detections
    per_frame = labels_at_frames(det, meta.num_frames, threshold)
    tracked = set(result.tracks.track_ids.tolist())
    zeros_kp, zeros_s = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    with atomic_path(path) as tmp:
        with VideoWriter(tmp, width=meta.width, height=meta.height, fps=meta.fps) as writer:
            for t, rgb in read_frames(meta.path, report=DecodeReport()):
                rows = per_frame[t]
                labels = {int(det.track_ids[r]): s for r, s in rows.items() if int(det.track_ids[r]) in tracked}
                out = draw_frame(rgb, t, result.tracks, None, labels, keypoint_threshold=keypoint_threshold)
                for r, s in rows.items():
                    tid = int(det.track_ids[r])
                    if tid in tracked:
                        continue
                    draw_person(out, det.boxes[r], zeros_kp, zeros_s, max(tid, 0), s)
                writer.write(out, time_s=meta.frame_times[t])
                if on_frame is not None:
                    on_frame(t)


def plot_timeline(det: ActionDetections, path: str | os.PathLike, *, title: str = "", max_classes: int = 8,
                  max_people: int = 12) -> None:
    """One panel per person (track id; rows without one are left out): the score of each of their
    `max_classes` highest-scoring classes at every keyframe, as a heat strip (time across)."""
    from humact.eval.plots import _pyplot, _save

    ids = [t for t in dict.fromkeys(det.track_ids.tolist()) if t >= 0][:max_people]
    plt = _pyplot()
    n = max(len(ids), 1)
    fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.45 * len(det.times) + 3), 1.2 + 0.28 * max_classes * n),
                             squeeze=False)
    times = det.times
    span = (float(times[0]) - 0.5, float(times[-1]) + 0.5) if len(times) else (0.0, 1.0)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    for ax, tid in zip(axes[:, 0], ids):
        grid = np.full((len(det.labels), len(times)), np.nan)
        for r in np.flatnonzero(det.track_ids == tid):
            grid[:, det.keyframe[r]] = det.scores[r]
        best = np.nan_to_num(grid, nan=0.0).max(axis=1)
        cls = np.argsort(-best, kind="stable")[:max_classes]
        im = ax.imshow(grid[cls], aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                       extent=(span[0] if len(times) < 2 else times[0] - step / 2,
                               span[1] if len(times) < 2 else times[-1] + step / 2, len(cls) - 0.5, -0.5))
        ax.set_yticks(range(len(cls)), [det.labels[j] for j in cls], fontsize=7)
        ax.set_ylabel(f"#{tid}", rotation=0, ha="right", va="center", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    if not ids:
        axes[0, 0].text(0.5, 0.5, "no tracked person has actions", ha="center", va="center")
    axes[-1, 0].set_xlabel("time (s); grey: person not seen at that keyframe")
    for ax in axes[:, 0]:
        ax.set_facecolor("0.85")
    axes[0, 0].set_title(title or f"actions per person ({det.model})", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
