"""The 10 Kinetics-TPS body-part boxes, derived from COCO-17 keypoints.

Kinetics-TPS annotates each person with boxes for head, hip, left/right arm,
left/right hand, left/right leg and left/right foot (`humact.keypoints.PART_NAMES`).
We derive them geometrically from a COCO-17 pose, sized relative to the person's
scale `s` so that a part is as big on a small, distant person as its keypoints allow
and parts without a keypoint extent (hands, feet) still get a body-proportional size.
docs/parts.md has the same definitions with a diagram.

Person scale `s` (pixels): the torso length, |mid(shoulders) - mid(hips)| using
whichever shoulders and hips are visible; box height / 3 when no shoulder or no hip is
visible. It is floored at 0.2 * max(box width, box height) because a torso seen
end-on (a person bending towards the camera) is foreshortened to almost nothing while
the limbs are not. An adult's head is about 0.5 s tall and a hand about 0.4 s long.

Parts (a keypoint is visible when its score >= `keypoint_threshold`):

    head   tight box of the visible face keypoints (nose, eyes, ears), grown about
           its centre to at least 0.6 s wide and 0.6 s tall (the skull and chin extend
           beyond the eyes and ears); valid with >= 1 of them visible.
    hip    tight box of the visible hips, padded by 0.25 s on every side (the hip
           joints are inside the pelvis, which reaches up to the waist and down to the
           crotch); valid with >= 1 hip visible.
    arm    tight box of the visible shoulder, elbow and wrist of that side, padded by
           0.12 s (half an arm's thickness); valid with >= 2 of the 3 visible.
    leg    tight box of the visible hip, knee and ankle of that side, padded by
           0.15 s; valid with >= 2 of the 3 visible.
    hand   around the wrist, extended along the forearm direction u = unit(wrist -
           elbow): the rectangle from 0.1 s behind to 0.45 s beyond the wrist along u
           and 0.18 s to either side across u, as its axis-aligned bounding box.
           Valid when the wrist is visible; without a visible elbow the direction is
           unknown and the box is the square of half-side 0.45 s around the wrist.
    foot   around the ankle, extended along the shin direction u = unit(ankle -
           knee): from 0.1 s behind to 0.25 s beyond the ankle along u (down to the
           sole) and 0.35 s to either side across u (the foot points forward, across
           the shin, and COCO-17 does not say which way the person faces, so both
           sides are covered). Valid when the ankle is visible; without a visible knee,
           the square of half-side 0.35 s around the ankle.

Every part box is then clipped to the person box (`PoseTracks.boxes`, so it lies
inside it) and is invalid (box 0) where the person is absent or the clipped box has
no area.
"""

from __future__ import annotations

import numpy as np

from humact.keypoints import PART_NAMES
from humact.types import PartBoxes, PoseTracks

__all__ = ["PART_KEYPOINTS", "person_scale", "part_boxes"]

# COCO-17 indices.
_NOSE, _LEYE, _REYE, _LEAR, _REAR = 0, 1, 2, 3, 4
_LSHO, _RSHO, _LELB, _RELB, _LWRI, _RWRI = 5, 6, 7, 8, 9, 10
_LHIP, _RHIP, _LKNE, _RKNE, _LANK, _RANK = 11, 12, 13, 14, 15, 16

#: The COCO-17 keypoints each part is built from, in `PART_NAMES` order.
PART_KEYPOINTS: dict[str, tuple[int, ...]] = {
    "head": (_NOSE, _LEYE, _REYE, _LEAR, _REAR),
    "hip": (_LHIP, _RHIP),
    "left_arm": (_LSHO, _LELB, _LWRI),
    "right_arm": (_RSHO, _RELB, _RWRI),
    "left_hand": (_LWRI, _LELB),
    "right_hand": (_RWRI, _RELB),
    "left_leg": (_LHIP, _LKNE, _LANK),
    "right_leg": (_RHIP, _RKNE, _RANK),
    "left_foot": (_LANK, _LKNE),
    "right_foot": (_RANK, _RKNE),
}

# Sizes, in units of the person scale s (see the module docstring).
HEAD_MIN_SIZE = 0.6
HIP_PAD = 0.25
ARM_PAD = 0.12
LEG_PAD = 0.15
HAND_BACK, HAND_FRONT, HAND_HALF_WIDTH = 0.1, 0.45, 0.18
FOOT_BACK, FOOT_FRONT, FOOT_HALF_WIDTH = 0.1, 0.25, 0.35


def _tight_box(points: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Tight xyxy box (..., 4) of `points` (..., P, 2) where `vis` (..., P); 0 where none visible."""
    x, y = points[..., 0], points[..., 1]
    inf = np.inf
    box = np.stack([np.where(vis, x, inf).min(-1), np.where(vis, y, inf).min(-1),
                    np.where(vis, x, -inf).max(-1), np.where(vis, y, -inf).max(-1)], axis=-1)
    return np.where(vis.any(-1)[..., None], box, 0.0)


def _masked_mean(points: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Mean (..., 2) of `points` (..., P, 2) over the visible ones; 0 where none."""
    n = vis.sum(-1, keepdims=True)
    total = np.where(vis[..., None], points, 0.0).sum(-2)
    return np.divide(total, n, out=np.zeros_like(total), where=n > 0)


def person_scale(tracks: PoseTracks, *, keypoint_threshold: float = 0.3) -> np.ndarray:
    """The person scale s (M, T) in pixels: torso length, or box height / 3 when the
    torso is not visible, floored at 0.2 * the longer box side (module docstring)."""
    kp = tracks.keypoints.astype(np.float64)
    vis = tracks.keypoint_scores >= keypoint_threshold
    sho, hip = [_LSHO, _RSHO], [_LHIP, _RHIP]
    torso = np.linalg.norm(_masked_mean(kp[:, :, sho], vis[:, :, sho]) - _masked_mean(kp[:, :, hip], vis[:, :, hip]),
                           axis=-1)
    has_torso = vis[:, :, sho].any(-1) & vis[:, :, hip].any(-1)
    w = tracks.boxes[..., 2].astype(np.float64) - tracks.boxes[..., 0]
    h = tracks.boxes[..., 3].astype(np.float64) - tracks.boxes[..., 1]
    s = np.where(has_torso, torso, h / 3.0)
    return np.maximum(s, 0.2 * np.maximum(w, h))


def _pad(box: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Grow xyxy `box` (..., 4) by `pad` (...) pixels on every side."""
    return box + pad[..., None] * np.array([-1.0, -1.0, 1.0, 1.0])


def _limb_end_box(end: np.ndarray, end_vis: np.ndarray, base: np.ndarray, base_vis: np.ndarray,
                  s: np.ndarray, back: float, front: float, half_width: float) -> np.ndarray:
    """Axis-aligned box of the rectangle around `end` (..., 2) oriented along
    u = unit(end - base): [-back s, front s] along u, [-half_width s, half_width s]
    across. Without a usable direction, the square of half-side max(front,
    half_width) s around `end`."""
    d = end - base
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    directed = base_vis & end_vis & (length[..., 0] > 1e-6)
    u = np.divide(d, length, out=np.zeros_like(d), where=length > 1e-6)
    p = np.stack([-u[..., 1], u[..., 0]], axis=-1)
    corners = np.stack([end + a * s[..., None] * u + b * s[..., None] * p
                        for a in (-back, front) for b in (-half_width, half_width)], axis=-2)
    oriented = np.concatenate([corners.min(-2), corners.max(-2)], axis=-1)
    half = max(front, half_width) * s
    square = _pad(np.concatenate([end, end], axis=-1), half)
    return np.where(directed[..., None], oriented, square)


def part_boxes(tracks: PoseTracks, *, keypoint_threshold: float = 0.3) -> PartBoxes:
    """The 10 Kinetics-TPS part boxes of every person in every frame.

    Args:
        tracks: M people over T frames; uses `keypoints` (M, T, 17, 2) and
            `keypoint_scores` (M, T, 17) (COCO-17, pixels), `boxes` (M, T, 4) (the
            pose-refined person boxes, pixels) and `valid` (M, T).
        keypoint_threshold: a keypoint is visible when its score >= this.
    Returns:
        PartBoxes with `boxes` (M, T, 10, 4) float32 xyxy pixels in `PART_NAMES` order,
        each inside its person box, 0 where invalid, and `valid` (M, T, 10).
    """
    kp = tracks.keypoints.astype(np.float64)
    vis = (tracks.keypoint_scores >= keypoint_threshold) & tracks.valid[..., None]
    s = person_scale(tracks, keypoint_threshold=keypoint_threshold)
    m, t = tracks.valid.shape
    boxes = np.zeros((m, t, len(PART_NAMES), 4))
    valid = np.zeros((m, t, len(PART_NAMES)), bool)

    def sel(name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = list(PART_KEYPOINTS[name])
        return kp[:, :, idx], vis[:, :, idx]

    for k, name in enumerate(PART_NAMES):
        pts, v = sel(name)
        if name == "head":
            box = _tight_box(pts, v)
            centre = 0.5 * (box[..., :2] + box[..., 2:])
            half = np.maximum(0.5 * (box[..., 2:] - box[..., :2]), 0.5 * HEAD_MIN_SIZE * s[..., None])
            box = np.concatenate([centre - half, centre + half], axis=-1)
            ok = v.any(-1)
        elif name == "hip":
            box, ok = _pad(_tight_box(pts, v), HIP_PAD * s), v.any(-1)
        elif name.endswith("_arm") or name.endswith("_leg"):
            pad = ARM_PAD if name.endswith("_arm") else LEG_PAD
            box, ok = _pad(_tight_box(pts, v), pad * s), v.sum(-1) >= 2
        elif name.endswith("_hand"):
            box = _limb_end_box(pts[..., 0, :], v[..., 0], pts[..., 1, :], v[..., 1], s,
                                HAND_BACK, HAND_FRONT, HAND_HALF_WIDTH)
            ok = v[..., 0]
        else:  # foot
            box = _limb_end_box(pts[..., 0, :], v[..., 0], pts[..., 1, :], v[..., 1], s,
                                FOOT_BACK, FOOT_FRONT, FOOT_HALF_WIDTH)
            ok = v[..., 0]
        boxes[:, :, k] = box
        valid[:, :, k] = ok

    # Clip to the person box: a part is, by definition, part of the person.
    person = tracks.boxes.astype(np.float64)[:, :, None, :]
    boxes[..., 0::2] = np.clip(boxes[..., 0::2], person[..., 0:1], person[..., 2:3])
    boxes[..., 1::2] = np.clip(boxes[..., 1::2], person[..., 1:2], person[..., 3:4])
    valid &= tracks.valid[..., None]
    valid &= (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    boxes = np.where(valid[..., None], boxes, 0.0)
    return PartBoxes(boxes=boxes.astype(np.float32), valid=valid)
