"""Person-box geometry: IoU, clipping and the pose-refined person box.

Boxes are `xyxy` in pixels of the original frame (see `humact.types`): continuous
coordinates, (x1, y1) the top-left and (x2, y2) the bottom-right corner. Every
function here is vectorised over any number of leading dimensions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from humact.types import Detections

__all__ = ["box_area", "box_iou", "clip_boxes", "keypoint_extent", "refine_boxes", "suppress_duplicates",
           "plausible_poses"]


#: Per-keypoint standard deviations of COCO's OKS, COCO-17 order (pycocotools).
COCO17_SIGMAS: np.ndarray = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0


def oks_matrix(
    kp_a: np.ndarray,
    score_a: np.ndarray,
    kp_b: np.ndarray,
    score_b: np.ndarray,
    area: np.ndarray,
    *,
    keypoint_threshold: float = 0.3,
    sigmas: np.ndarray = COCO17_SIGMAS,
) -> tuple[np.ndarray, np.ndarray]:
    """Object keypoint similarity of every pose in `a` with every pose in `b`.

    OKS = mean over keypoints visible in both poses of exp(-d^2 / (2 s^2 k^2)), where
    d is the distance in pixels, s^2 the scale (`area`, square pixels) and
    k = 2 * sigma (as pycocotools computes it).

    Args:
        kp_a: (N, K, 2) pixels; score_a: (N, K) in [0, 1].
        kp_b: (M, K, 2) pixels; score_b: (M, K) in [0, 1].
        area: (N,) square pixels, the scale of each pose in `a` (e.g. its box area).
        keypoint_threshold: a keypoint is visible when its score >= this.
    Returns:
        (oks (N, M) float64 in [0, 1], has_common (N, M) bool): `oks` is 0 where the
        two poses share no visible keypoint, and `has_common` says where it is defined.
    """
    kp_a = np.asarray(kp_a, np.float64)
    kp_b = np.asarray(kp_b, np.float64)
    vis_a = np.asarray(score_a) >= keypoint_threshold
    vis_b = np.asarray(score_b) >= keypoint_threshold
    vis = vis_a[:, None, :] & vis_b[None, :, :]
    d2 = ((kp_a[:, None] - kp_b[None, :]) ** 2).sum(-1)  # (N, M, K)
    s2 = np.maximum(np.asarray(area, np.float64), 1.0)[:, None, None]
    k2 = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    sim = np.exp(-d2 / (2.0 * s2 * k2[None, None, :]))
    n_common = vis.sum(-1)
    total = np.where(vis, sim, 0.0).sum(-1)
    oks = np.divide(total, n_common, out=np.zeros_like(total), where=n_common > 0)
    return oks, n_common > 0


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of `boxes` (..., 4) xyxy in square pixels, shape (...); 0 for degenerate boxes."""
    boxes = np.asarray(boxes, np.float64)
    w = np.clip(boxes[..., 2] - boxes[..., 0], 0.0, None)
    h = np.clip(boxes[..., 3] - boxes[..., 1], 0.0, None)
    return w * h


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4).

    Returns (N, M) float64 in [0, 1]; a pair whose union is empty (two degenerate
    boxes) has IoU 0 rather than NaN.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0.0, None) * np.clip(y2 - y1, 0.0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def clip_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Clip `boxes` (..., 4) xyxy to the image `image_size` = (width, height) in pixels.

    The frame covers [0, width] x [0, height] in continuous coordinates. Returns a
    new float32 array of the same shape.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size: expected (width, height) > 0, got {image_size}")
    out = np.array(boxes, np.float32, copy=True)
    out[..., 0::2] = np.clip(out[..., 0::2], 0.0, float(width))
    out[..., 1::2] = np.clip(out[..., 1::2], 0.0, float(height))
    return out


def keypoint_extent(
    keypoints: np.ndarray, keypoint_scores: np.ndarray, *, keypoint_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tight box around the keypoints whose score passes `keypoint_threshold`.

    Args:
        keypoints: (..., K, 2) pixels.
        keypoint_scores: (..., K) in [0, 1]; a keypoint counts when score >= threshold.
    Returns:
        (boxes (..., 4) float32 xyxy, any_visible (...) bool). Boxes are 0 where no
        keypoint is visible.
    """
    vis = keypoint_scores >= keypoint_threshold
    any_vis = vis.any(axis=-1)
    big = np.float32(np.inf)
    xs, ys = keypoints[..., 0], keypoints[..., 1]
    box = np.stack(
        [np.where(vis, xs, big).min(-1), np.where(vis, ys, big).min(-1),
         np.where(vis, xs, -big).max(-1), np.where(vis, ys, -big).max(-1)], axis=-1)
    box = np.where(any_vis[..., None], box, 0.0).astype(np.float32)
    return box, any_vis


def refine_boxes(
    det: Detections,
    *,
    keypoint_threshold: float = 0.3,
    margin: float = 0.1,
    image_size: tuple[int, int] | None = None,
) -> Detections:
    """The pose-refined person box: the detector box grown to hold every visible keypoint.

    For each row, the keypoints with score >= `keypoint_threshold` span a tight box;
    that box is padded on each side by `margin` times the width (left/right) and the
    height (top/bottom) of the union of the detector box and the keypoint box, because
    keypoints are joint centres and the body's surface (skull top, fingertips, toes)
    lies beyond them. The refined box is the union of the detector box and that padded
    keypoint box, so it never shrinks the detector box; it is then clipped to the
    image when `image_size` = (width, height) is given.

    Args:
        det: detections, n rows (`xyxy` (n, 4), `keypoints` (n, 17, 2) in pixels).
        keypoint_threshold: minimum keypoint score for a keypoint to count.
        margin: padding around the keypoints, a fraction of the person box size (>= 0).
        image_size: (width, height) of the frame in pixels, or None for no clipping.
    Returns:
        New `Detections` whose `xyxy` holds the refined boxes; the other arrays are
        the same objects as in `det` (not copied).
    """
    if margin < 0:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    box = det.xyxy.astype(np.float32)
    kbox, any_vis = keypoint_extent(det.keypoints, det.keypoint_scores, keypoint_threshold=keypoint_threshold)
    union = np.concatenate([np.minimum(box[:, :2], kbox[:, :2]), np.maximum(box[:, 2:], kbox[:, 2:])], axis=1)
    size = union[:, 2:] - union[:, :2]  # (n, 2) width, height
    pad = margin * np.concatenate([size, size], axis=1) * np.array([-1, -1, 1, 1], np.float32)
    kbox = kbox + pad
    grown = np.concatenate([np.minimum(box[:, :2], kbox[:, :2]), np.maximum(box[:, 2:], kbox[:, 2:])], axis=1)
    out = np.where(any_vis[:, None], grown, box).astype(np.float32)
    if image_size is not None:
        out = clip_boxes(out, image_size)
    return dataclasses.replace(det, xyxy=out)


def suppress_duplicates(det: Detections, *, oks_threshold: float = 0.85, iou_threshold: float = 0.8,
                        keypoint_threshold: float = 0.3) -> Detections:
    """One row per person within each frame: pose NMS (the rows of one frame, best score first).

    A row is dropped when an already kept row of the same frame has a pose within
    `oks_threshold` COCO OKS of it (scale: the larger box area) or a box with IoU above
    `iou_threshold` (the same body found twice, by two backends' passes or two detector
    tiles: OKS 0.9 and more). Two people in contact keep apart: the NTU hugging pair's
    poses reach an OKS of 0.73 and a box IoU of 0.5 while they hug, below both thresholds.

    Returns:
        The kept rows, in their original order.
    """

    keep = np.ones(len(det), bool)
    for t in np.unique(det.frame):
        rows = np.flatnonzero(det.frame == t)
        if len(rows) < 2:
            continue
        rows = rows[np.argsort(-det.score[rows], kind="stable")]
        area = box_area(det.xyxy[rows])
        oks, _ = oks_matrix(det.keypoints[rows], det.keypoint_scores[rows], det.keypoints[rows],
                            det.keypoint_scores[rows], area, keypoint_threshold=keypoint_threshold)
        oks = np.maximum(oks, oks.T)   # symmetric: the scale of the larger of the two
        iou = box_iou(det.xyxy[rows], det.xyxy[rows])
        kept: list[int] = []
        for a in range(len(rows)):
            if any(oks[a, b] > oks_threshold or iou[a, b] > iou_threshold for b in kept):
                keep[rows[a]] = False
            else:
                kept.append(a)
    return det[keep]


def plausible_poses(det: Detections, *, min_keypoints: int = 4, keypoint_threshold: float = 0.3,
                    min_score: float = 0.0) -> Detections:
    """The rows that look like a person: at least `min_keypoints` keypoints scoring
    >= `keypoint_threshold` and a person score >= `min_score` (a box on a poster or a
    hoop, or a pose spanning two people, has few confident joints)."""
    ok = ((det.keypoint_scores >= keypoint_threshold).sum(1) >= min_keypoints) & (det.score >= min_score)
    return det[ok]
