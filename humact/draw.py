"""Drawing results onto frames (OpenCV): skeletons, track ids, person and part boxes, action labels."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from humact.keypoints import COCO17_EDGES
from humact.types import PartBoxes, PoseTracks


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour for a track id (golden-ratio hues)."""
    h = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_frame(
    rgb: np.ndarray,
    t: int,
    tracks: PoseTracks,
    parts: PartBoxes | None = None,
    labels: dict[int, str] | None = None,
    *,
    keypoint_threshold: float = 0.3,
) -> np.ndarray:
    """Draw frame `t` of `tracks` (and `parts`, and per-track `labels`) on a copy of `rgb`.

    Args:
        rgb: (H, W, 3) uint8 frame.
        t: frame index into the (M, T, ...) arrays.
        labels: text per track id, drawn under the id (e.g. the top action).
    Returns:
        (H, W, 3) uint8 annotated copy.
    """
    out = np.ascontiguousarray(rgb.copy())
    h = out.shape[0]
    thick = max(1, round(h / 360))
    font = max(0.4, h / 1080)
    for m, tid in enumerate(tracks.track_ids):
        if not tracks.valid[m, t]:
            continue
        color = track_color(int(tid))
        x1, y1, x2, y2 = tracks.boxes[m, t].round().astype(int)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        if parts is not None:
            for p in np.flatnonzero(parts.valid[m, t]):
                a1, b1, a2, b2 = parts.boxes[m, t, p].round().astype(int)
                cv2.rectangle(out, (a1, b1), (a2, b2), (255, 255, 255), max(1, thick // 2))
        kp = tracks.keypoints[m, t]
        ok = tracks.keypoint_scores[m, t] >= keypoint_threshold
        for i, j in COCO17_EDGES:
            if ok[i] and ok[j]:
                cv2.line(out, tuple(kp[i].round().astype(int)), tuple(kp[j].round().astype(int)), color,
                         thick + 1, cv2.LINE_AA)
        for v in np.flatnonzero(ok):
            cv2.circle(out, tuple(kp[v].round().astype(int)), thick + 2, (255, 255, 255), -1, cv2.LINE_AA)
        text = f"#{int(tid)}"
        if labels and int(tid) in labels:
            text += f" {labels[int(tid)]}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = max(th + base, y1 - base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base // 2), color, -1)
        cv2.putText(out, text, (x1, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    return out
