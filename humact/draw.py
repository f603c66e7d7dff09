"""Drawing results onto frames (OpenCV): skeletons, track ids, person and part boxes, action labels."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from humact.keypoints import COCO17_EDGES, HAND21_EDGES
from humact.types import Detections, PartBoxes, PoseTracks


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour for a track id (golden-ratio hues)."""
    h = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _style(h: int) -> tuple[int, float]:
    return max(1, round(h / 360)), max(0.4, h / 1080)


def draw_person(out: np.ndarray, box: np.ndarray, kp: np.ndarray, kscore: np.ndarray, track_id: int,
                label: str | None = None, part_boxes: np.ndarray | None = None, *,
                keypoint_threshold: float = 0.3, filled: bool = False) -> None:
    """Draw one person in place on `out` (H, W, 3) uint8: box, part boxes ((P, 4), valid ones only),
    COCO-17 skeleton of the keypoints scoring at least `keypoint_threshold`, and `#id label`.
    A `filled` row (interpolated, not seen) gets a box of a thin dashed line and no label box."""
    thick, font = _style(out.shape[0])
    color = track_color(int(track_id))
    x1, y1, x2, y2 = np.asarray(box).round().astype(int)
    if filled:
        _dashed_box(out, (x1, y1, x2, y2), color, max(1, thick // 2))
        return
    cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
    if part_boxes is not None:
        for a1, b1, a2, b2 in np.asarray(part_boxes).round().astype(int):
            cv2.rectangle(out, (a1, b1), (a2, b2), (255, 255, 255), max(1, thick // 2))
    ok = kscore >= keypoint_threshold
    for i, j in COCO17_EDGES:
        if ok[i] and ok[j]:
            cv2.line(out, tuple(kp[i].round().astype(int)), tuple(kp[j].round().astype(int)), color,
                     thick + 1, cv2.LINE_AA)
    for v in np.flatnonzero(ok):
        cv2.circle(out, tuple(kp[v].round().astype(int)), thick + 2, (255, 255, 255), -1, cv2.LINE_AA)
    text = f"#{int(track_id)}" + (f" {label}" if label else "")
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    ty = max(th + base, y1 - base)
    cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base // 2), color, -1)
    cv2.putText(out, text, (x1, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)


def _dashed_box(out: np.ndarray, box: tuple[int, int, int, int], color, thick: int, dash: int = 8) -> None:
    x1, y1, x2, y2 = box
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        n = max(1, int(np.hypot(b[0] - a[0], b[1] - a[1]) // dash))
        for k in range(0, n, 2):
            p = (round(a[0] + (b[0] - a[0]) * k / n), round(a[1] + (b[1] - a[1]) * k / n))
            q = (round(a[0] + (b[0] - a[0]) * (k + 1) / n), round(a[1] + (b[1] - a[1]) * (k + 1) / n))
            cv2.line(out, p, q, color, thick)


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
    for m, tid in enumerate(tracks.track_ids):
        if not tracks.valid[m, t]:
            continue
        pb = parts.boxes[m, t][parts.valid[m, t]] if parts is not None else None
        draw_person(out, tracks.boxes[m, t], tracks.keypoints[m, t], tracks.keypoint_scores[m, t], int(tid),
                    (labels or {}).get(int(tid)), pb, keypoint_threshold=keypoint_threshold,
                    filled=tracks.filled is not None and bool(tracks.filled[m, t]))
    return out


def draw_detections(rgb: np.ndarray, det: Detections, labels: dict[int, str] | None = None, *,
                    keypoint_threshold: float = 0.3) -> np.ndarray:
    """Draw one frame's `Detections` (with track ids, as live perception gives them) on a copy of `rgb`."""
    out = np.ascontiguousarray(rgb.copy())
    for i in range(len(det)):
        tid = int(det.track_id[i])
        draw_person(out, det.xyxy[i], det.keypoints[i], det.keypoint_scores[i], tid, (labels or {}).get(tid),
                    keypoint_threshold=keypoint_threshold)
    return out


def draw_hands(rgb: np.ndarray, hands, labels: dict[int, str] | None = None, *, status: str | None = None) -> np.ndarray:
    """Draw one frame's tracked hands (`humact.types.HandDetections`) on a copy of `rgb`: each hand's
    21-landmark skeleton (the `handmp` graph), its box and `#id label`, and `status` (e.g. the frame
    rate) in the top-left corner."""
    out = np.ascontiguousarray(rgb.copy())
    thick, font = _style(out.shape[0])
    for i in range(len(hands)):
        tid = int(hands.track_id[i])
        color = track_color(tid)
        kp = hands.keypoints[i, :, :2]
        for a, b in HAND21_EDGES:
            cv2.line(out, tuple(kp[a].round().astype(int)), tuple(kp[b].round().astype(int)), color, thick,
                     cv2.LINE_AA)
        for v in range(len(kp)):
            cv2.circle(out, tuple(kp[v].round().astype(int)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        x1, y1, x2, y2 = np.asarray(hands.xyxy[i]).round().astype(int)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        label = (labels or {}).get(tid)
        text = f"#{tid}" + (f" {label}" if label else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = max(th + base, y1 - base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base // 2), color, -1)
        cv2.putText(out, text, (x1, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    if status:
        (tw, th), base = cv2.getTextSize(status, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
        cv2.putText(out, status, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick, cv2.LINE_AA)
    return out
