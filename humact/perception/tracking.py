"""Multi-person tracking by box overlap and keypoint similarity.

`Detections` (one row per person per frame, `track_id` = -1) go in; the same rows
come out with `track_id` set. Identities are consecutive small integers from 0 in
order of first appearance.

How a frame is matched to the existing tracks:

1. Every live track is moved forward with a constant-velocity model: its last box
   and keypoints are shifted by its smoothed centre velocity (pixels / frame) times
   the number of frames since it was last seen. The box keeps its last size: during
   occlusions the detected box shrinks or jumps, and extrapolating that change would
   make the prediction worse, not better.
2. The similarity of track i and detection j is a weighted mean of the box IoU and
   the object keypoint similarity (OKS, COCO's definition and per-keypoint sigmas,
   with the predicted box area as the scale) between the predicted and detected
   poses. When the two poses share no visible keypoint, the similarity is the IoU.
3. One Hungarian assignment (`scipy.optimize.linear_sum_assignment`) over all live
   tracks, recently seen and lost alike, maximises the total similarity; pairs below
   `match_threshold` are not matched.
4. Unmatched detections start new tracks; tracks unseen for more than
   `max_lost_frames` frames are dropped. A track that is matched again after a gap
   keeps its id.

Why two people who walk up to each other and hug stay two tracks: their boxes
overlap heavily, so IoU alone cannot tell them apart, but (a) each track's predicted
box is where *that* person was heading, and (b) OKS compares joint positions at the
scale of a person's body, so the person on the left keeps matching the skeleton on
the left even when both boxes cover both people. The assignment is global, so the
two tracks cannot both take the same detection. There is no appearance model (the
backends give none), so two people who fully swap places while hidden can still swap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from humact.perception.boxes import box_area, box_iou
from humact.types import Detections

__all__ = ["COCO17_SIGMAS", "oks_matrix", "Tracker", "track", "prune_short_tracks"]

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
    vis = (np.asarray(score_a)[:, None, :] >= keypoint_threshold) & (np.asarray(score_b)[None, :, :] >= keypoint_threshold)
    d2 = ((kp_a[:, None] - kp_b[None, :]) ** 2).sum(-1)  # (N, M, K)
    s2 = np.maximum(np.asarray(area, np.float64), 1.0)[:, None, None]
    k2 = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    sim = np.exp(-d2 / (2.0 * s2 * k2[None, None, :]))
    n_common = vis.sum(-1)
    total = np.where(vis, sim, 0.0).sum(-1)
    oks = np.divide(total, n_common, out=np.zeros_like(total), where=n_common > 0)
    return oks, n_common > 0


@dataclass
class _Track:
    """What the tracker remembers about one person (pixels, frame indices)."""

    track_id: int
    box: np.ndarray  # (4,) last observed box
    keypoints: np.ndarray  # (17, 2) last observed keypoints
    keypoint_scores: np.ndarray  # (17,)
    last_frame: int
    velocity: np.ndarray  # (2,) smoothed box-centre velocity, pixels / frame
    hits: int = 1


def _centre(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[..., :2] + box[..., 2:])


class Tracker:
    """Online tracker: call `update` once per frame, in frame order.

    Args:
        iou_weight: weight of box IoU in the similarity.
        oks_weight: weight of keypoint similarity (OKS) in the similarity.
        match_threshold: minimum similarity in [0, 1] for a track-detection pair to match.
        max_lost_frames: a track unseen for more than this many frames is dropped; one
            re-found within it keeps its id.
        keypoint_threshold: minimum keypoint score for a keypoint to enter the OKS.
        use_motion: predict each track with its constant centre velocity (else it
            stays where it was last seen).
        velocity_smoothing: weight in (0, 1] of the newest velocity measurement in the
            exponential moving average (1 = last displacement only).
        new_track_score: detections below this person score never start a track
            (their `track_id` stays -1) but can still continue one.
    """

    def __init__(
        self,
        *,
        iou_weight: float = 0.5,
        oks_weight: float = 0.5,
        match_threshold: float = 0.2,
        max_lost_frames: int = 30,
        keypoint_threshold: float = 0.3,
        use_motion: bool = True,
        velocity_smoothing: float = 0.5,
        new_track_score: float = 0.0,
    ) -> None:
        if iou_weight < 0 or oks_weight < 0 or iou_weight + oks_weight <= 0:
            raise ValueError(f"iou_weight, oks_weight: expected >= 0 with a positive sum, got {iou_weight}, {oks_weight}")
        if not 0.0 < velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing: expected in (0, 1], got {velocity_smoothing}")
        if max_lost_frames < 0:
            raise ValueError(f"max_lost_frames: expected >= 0, got {max_lost_frames}")
        self.iou_weight = float(iou_weight)
        self.oks_weight = float(oks_weight)
        self.match_threshold = float(match_threshold)
        self.max_lost_frames = int(max_lost_frames)
        self.keypoint_threshold = float(keypoint_threshold)
        self.use_motion = bool(use_motion)
        self.velocity_smoothing = float(velocity_smoothing)
        self.new_track_score = float(new_track_score)
        self.tracks: list[_Track] = []
        self.next_id = 0
        self._frame = -1

    def similarity(self, frame: int, det: Detections) -> np.ndarray:
        """Similarity (num live tracks, len(det)) in [0, 1] of each track's prediction
        for `frame` with each detection (see the module docstring)."""
        n, m = len(self.tracks), len(det)
        if n == 0 or m == 0:
            return np.zeros((n, m))
        dt = np.array([frame - t.last_frame for t in self.tracks], np.float64)
        shift = np.stack([t.velocity for t in self.tracks]) * dt[:, None] if self.use_motion else np.zeros((n, 2))
        boxes = np.stack([t.box for t in self.tracks]) + np.concatenate([shift, shift], axis=1)
        kps = np.stack([t.keypoints for t in self.tracks]) + shift[:, None, :]
        kscores = np.stack([t.keypoint_scores for t in self.tracks])
        iou = box_iou(boxes, det.xyxy)
        oks, has_common = oks_matrix(kps, kscores, det.keypoints, det.keypoint_scores, box_area(boxes),
                                     keypoint_threshold=self.keypoint_threshold)
        mixed = (self.iou_weight * iou + self.oks_weight * oks) / (self.iou_weight + self.oks_weight)
        return np.where(has_common, mixed, iou)

    def update(self, frame_dets: Detections, frame: int | None = None) -> Detections:
        """Assign track ids to the detections of one frame.

        Args:
            frame_dets: the rows of one frame (all with the same `frame`), possibly empty.
            frame: that frame's index; needed only when `frame_dets` is empty (then it
                defaults to the previous frame + 1).
        Returns:
            The same rows with `track_id` set (-1 for a detection that matched no track
            and scored below `new_track_score`). No two rows share an id.
        """
        frames = np.unique(frame_dets.frame)
        if len(frames) > 1:
            raise ValueError(f"frame_dets.frame: expected one frame per update, got frames {frames.tolist()}")
        if frame is None:
            frame = int(frames[0]) if len(frames) else self._frame + 1
        elif len(frames) and frames[0] != frame:
            raise ValueError(f"frame_dets.frame: rows are from frame {frames[0]}, but frame={frame} was given")
        if frame <= self._frame:
            raise ValueError(f"frame: frames must increase, got {frame} after {self._frame}")
        self._frame = frame
        self.tracks = [t for t in self.tracks if frame - t.last_frame - 1 <= self.max_lost_frames]

        ids = np.full(len(frame_dets), -1, np.int64)
        sim = self.similarity(frame, frame_dets)
        matched_det = np.zeros(len(frame_dets), bool)
        if sim.size:
            rows, cols = linear_sum_assignment(sim, maximize=True)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.match_threshold:
                    self._continue(self.tracks[r], frame_dets, c, frame)
                    ids[c] = self.tracks[r].track_id
                    matched_det[c] = True
        for c in np.flatnonzero(~matched_det):
            if frame_dets.score[c] >= self.new_track_score:
                self.tracks.append(_Track(
                    track_id=self.next_id, box=frame_dets.xyxy[c].astype(np.float64),
                    keypoints=frame_dets.keypoints[c].astype(np.float64),
                    keypoint_scores=frame_dets.keypoint_scores[c].copy(), last_frame=frame,
                    velocity=np.zeros(2)))
                ids[c] = self.next_id
                self.next_id += 1
        return dataclasses.replace(frame_dets, track_id=ids)

    def _continue(self, tr: _Track, det: Detections, j: int, frame: int) -> None:
        box = det.xyxy[j].astype(np.float64)
        measured = (_centre(box) - _centre(tr.box)) / (frame - tr.last_frame)
        a = 1.0 if tr.hits == 1 else self.velocity_smoothing
        tr.velocity = a * measured + (1.0 - a) * tr.velocity
        tr.box = box
        tr.keypoints = det.keypoints[j].astype(np.float64)
        tr.keypoint_scores = det.keypoint_scores[j].copy()
        tr.last_frame = frame
        tr.hits += 1


def track(det: Detections, num_frames: int, *, min_track_length: int = 1, **tracker_kwargs) -> Detections:
    """Track the people of a whole video.

    Args:
        det: every detection of the video (rows in any order), `frame` in [0, num_frames).
        num_frames: number of frames of the video (frames without rows count as gaps).
        min_track_length: tracks with fewer rows than this are discarded (their rows
            get `track_id` -1): a spurious detection that lives a frame or two should
            not become a person.
        **tracker_kwargs: keyword arguments of `Tracker`.
    Returns:
        The rows of `det` in their original order with `track_id` set; ids are
        consecutive from 0 in order of first appearance (after discarding short tracks).
    """
    if len(det) and (det.frame.min() < 0 or det.frame.max() >= num_frames):
        raise ValueError(f"det.frame: expected frame indices in [0, {num_frames}), got "
                         f"[{det.frame.min()}, {det.frame.max()}]")
    tracker = Tracker(**tracker_kwargs)
    ids = np.full(len(det), -1, np.int64)
    order = np.argsort(det.frame, kind="stable")
    bounds = np.searchsorted(det.frame[order], np.arange(num_frames + 1))
    for t in range(num_frames):
        rows = order[bounds[t]:bounds[t + 1]]
        ids[rows] = tracker.update(det[rows], frame=t).track_id
    return prune_short_tracks(dataclasses.replace(det, track_id=ids), min_track_length=min_track_length)


def prune_short_tracks(det: Detections, *, min_track_length: int) -> Detections:
    """Discard tracks with fewer than `min_track_length` rows and renumber the rest.

    For the sequential `Tracker`, whose ids are final as soon as they are given: run
    this once the video is done. Rows of discarded tracks get `track_id` -1; the
    remaining ids become 0, 1, ... in order of first appearance (frame, then old id).
    """
    return dataclasses.replace(det, track_id=_relabel(det.track_id, det.frame, min_track_length))


def _relabel(ids: np.ndarray, frames: np.ndarray, min_track_length: int) -> np.ndarray:
    out = np.full_like(ids, -1)
    valid = ids >= 0
    if not valid.any():
        return out
    uniq, counts = np.unique(ids[valid], return_counts=True)
    keep = uniq[counts >= min_track_length]
    first = np.array([frames[ids == k].min() for k in keep])
    new_order = keep[np.lexsort((keep, first))]
    mapping = {int(old): new for new, old in enumerate(new_order)}
    for i in np.flatnonzero(valid):
        out[i] = mapping.get(int(ids[i]), -1)
    return out
