"""Multi-person tracking by box overlap and keypoint similarity.

`Detections` (one row per person per frame, `track_id` = -1) go in; the same rows
come out with `track_id` set. Identities are consecutive small integers from 0 in
order of first appearance (`track`; the online `Tracker` numbers tracks in the order
they are confirmed, which is the same unless two people appear within `min_hits`
frames of each other).

Use `track(det, num_frames)` for a whole video, or `Tracker.update` once per frame
followed by `Tracker.history()` for every row with its final id.

How a frame is matched to the existing tracks:

1. Every live track is moved forward with a constant-velocity model: its last box
   and keypoints are shifted by its smoothed velocity (pixels / frame) times the
   number of frames since it was last seen. The velocity is that of the body (the
   median displacement of the keypoints seen in two successive observations), not of
   the box, whose edges jump whenever a limb appears or vanishes; the box keeps its
   last size for the same reason.
2. The similarity of track i and detection j is a weighted mean of the box IoU and
   the object keypoint similarity (OKS, COCO's definition and per-keypoint sigmas,
   with the predicted box area as the scale) between the predicted and detected
   poses. When the two poses share no visible keypoint, the similarity is the IoU.
3. A Hungarian assignment (`scipy.optimize.linear_sum_assignment`) maximises the
   total similarity, first of the confirmed tracks (recently seen and lost alike)
   with all detections, then of the tentative tracks with the detections left over;
   pairs below `match_threshold` are not matched.
4. Unmatched detections start new, tentative tracks, which get an id once matched in
   `min_hits` consecutive frames (see `Tracker`); tracks unseen for more than
   `max_lost_frames` frames are dropped. A track that is matched again after a gap
   keeps its id.

Why two people who walk up to each other and hug stay two tracks: their boxes
overlap heavily, so IoU alone cannot tell them apart, but (a) each track's predicted
box is where *that* person was heading, and (b) OKS compares joint positions at the
scale of a person's body, so the person on the left keeps matching the skeleton on
the left even when both boxes cover both people. The assignment is global, so the
two tracks cannot both take the same detection.

Appearance (optional: `update(..., image=frame)`): each detection's torso (the box of its
shoulders and hips, else the middle of its box) gives a hue-saturation histogram;
each track keeps a running mean of its own. Their Bhattacharyya coefficient enters the
similarity with `appearance_weight`, but only for a track whose predicted box centre is
within `appearance_gate` box diagonals of the detection, so similar clothes far apart
never match. It is what tells a person seen again after a gap from a neighbour when the
motion model has drifted (`docs/tracking.md` has the measurements).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from humact.perception.boxes import COCO17_SIGMAS, box_area, box_iou, oks_matrix
from humact.types import Detections, PoseTracks

__all__ = ["COCO17_SIGMAS", "oks_matrix", "torso_histogram", "Tracker", "track", "prune_short_tracks",
           "stitch_tracklets", "fill_gaps"]

#: Hue x saturation bins of the torso histogram.
HIST_BINS = (12, 8)
#: COCO-17 indices of the shoulders and hips.
TORSO = (5, 6, 11, 12)

def torso_histogram(image: np.ndarray, box: np.ndarray, keypoints: np.ndarray, keypoint_scores: np.ndarray, *,
                    keypoint_threshold: float = 0.3) -> np.ndarray:
    """Normalised hue-saturation histogram (HIST_BINS, flattened) of a person's torso.

    The torso is the box of the visible shoulders and hips (at least 3 of them), else the
    middle half (in width) of the box's 20-60 % height band; pixels of low saturation or
    value count less (they carry little hue), through OpenCV's histogram of HSV.

    Args:
        image: (H, W, 3) uint8 RGB. box: (4,) xyxy. keypoints (17, 2), keypoint_scores (17,).

    Returns:
        (prod(HIST_BINS),) float32 summing to 1 (all zeros for an empty region).
    """
    h, w = image.shape[:2]
    vis = np.asarray(keypoint_scores)[list(TORSO)] >= keypoint_threshold
    if vis.sum() >= 3:
        pts = np.asarray(keypoints)[list(TORSO)][vis]
        x1, y1 = pts.min(0)
        x2, y2 = pts.max(0)
    else:
        bx1, by1, bx2, by2 = (float(v) for v in box)
        bw, bh = bx2 - bx1, by2 - by1
        x1, x2 = bx1 + 0.25 * bw, bx2 - 0.25 * bw
        y1, y2 = by1 + 0.2 * bh, by1 + 0.6 * bh
    x1, x2 = int(max(0, np.floor(x1))), int(min(w, np.ceil(x2)))
    y1, y2 = int(max(0, np.floor(y1))), int(min(h, np.ceil(y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return np.zeros(int(np.prod(HIST_BINS)), np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(HIST_BINS), [0, 180, 0, 256]).ravel()
    total = hist.sum()
    return (hist / total).astype(np.float32) if total > 0 else hist.astype(np.float32)


@dataclass
class _Track:
    """What the tracker remembers about one person (pixels, frame indices)."""

    key: int  # internal serial number, given at birth
    box: np.ndarray  # (4,) last observed box
    keypoints: np.ndarray  # (17, 2) last observed keypoints
    keypoint_scores: np.ndarray  # (17,)
    last_frame: int
    velocity: np.ndarray  # (2,) smoothed velocity of the body, pixels / frame
    hits: int = 1
    track_id: int = -1  # public id, given when the track is confirmed
    hist: np.ndarray | None = None  # running mean of the torso histogram, when images are given


def bhattacharyya(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficient sum(sqrt(a * b)) over the last axis of two (broadcast)
    normalised histograms: 1 for equal ones, 0 for disjoint ones."""
    return np.sqrt(np.clip(np.asarray(a, np.float64), 0, None) * np.clip(np.asarray(b, np.float64), 0, None)).sum(-1)


def _centre(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[..., :2] + box[..., 2:])


class Tracker:
    """Online tracker: call `update` once per frame, in frame order.

    A new track is *tentative* until it has been matched in `min_hits` consecutive
    frames (tracks born in the first `min_hits` frames of the video are confirmed at
    once, as in SORT); a tentative track that misses a frame is deleted, and tentative
    tracks are matched only to the detections that confirmed tracks left over. This
    keeps a duplicate or spurious detection that lives a frame or two from becoming a
    person or stealing a real person's detections. Only confirmed tracks get an id.

    Args:
        iou_weight: weight of box IoU in the similarity.
        oks_weight: weight of keypoint similarity (OKS) in the similarity.
        match_threshold: minimum similarity in [0, 1] for a track-detection pair to match.
        max_lost_frames: a confirmed track unseen for more than this many frames is
            dropped; one re-found within it keeps its id.
        min_hits: frames in a row a new track must be matched to be confirmed (1 =
            every new track is confirmed at birth).
        keypoint_threshold: minimum keypoint score for a keypoint to enter the OKS and
            the velocity estimate.
        use_motion: predict each track with its constant velocity (else it stays where
            it was last seen).
        velocity_smoothing: weight in (0, 1] of the newest velocity measurement in the
            exponential moving average (1 = last displacement only).
        new_track_score: detections below this person score never start a track but
            can still continue one.
        appearance_weight: weight of the torso-histogram similarity (used only when
            `update` is given the image; 0 = never).
        appearance_gate: the appearance term counts only for a track whose predicted box
            centre is within this many predicted box diagonals of the detection's centre.
        appearance_smoothing: weight of the newest histogram in a track's running mean.
        max_shift: gate (0 = off): a detection whose box centre lies more than this many
            predicted-box diagonals from a track's predicted centre, one frame after the
            track was last seen, cannot continue it; the allowance grows by
            `max_shift_growth` diagonals per further frame of absence, up to twice
            `max_shift`. A person does not cross their own body's diagonal in a frame.
        max_shift_growth: see `max_shift`.
        max_area_ratio: gate (0 = off): a detection whose box area is more than this many
            times the track's last box area, or less than its inverse, cannot continue it
            (a pose spread over two people or a table, or a fragment, is not the person).
    """

    def __init__(
        self,
        *,
        iou_weight: float = 0.5,
        oks_weight: float = 0.5,
        match_threshold: float = 0.1,
        max_lost_frames: int = 30,
        min_hits: int = 3,
        keypoint_threshold: float = 0.3,
        use_motion: bool = True,
        velocity_smoothing: float = 0.5,
        new_track_score: float = 0.0,
        appearance_weight: float = 0.0,
        appearance_gate: float = 1.0,
        appearance_smoothing: float = 0.3,
        max_shift: float = 0.0,
        max_shift_growth: float = 0.05,
        max_area_ratio: float = 0.0,
    ) -> None:
        if iou_weight < 0 or oks_weight < 0 or iou_weight + oks_weight <= 0:
            raise ValueError(f"iou_weight, oks_weight: expected >= 0 with a positive sum, "
                             f"got {iou_weight}, {oks_weight}")
        if not 0.0 < velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing: expected in (0, 1], got {velocity_smoothing}")
        if max_lost_frames < 0:
            raise ValueError(f"max_lost_frames: expected >= 0, got {max_lost_frames}")
        if min_hits < 1:
            raise ValueError(f"min_hits: expected >= 1, got {min_hits}")
        self.iou_weight = float(iou_weight)
        self.oks_weight = float(oks_weight)
        self.match_threshold = float(match_threshold)
        self.max_lost_frames = int(max_lost_frames)
        self.min_hits = int(min_hits)
        self.keypoint_threshold = float(keypoint_threshold)
        self.use_motion = bool(use_motion)
        self.velocity_smoothing = float(velocity_smoothing)
        self.new_track_score = float(new_track_score)
        if appearance_weight < 0:
            raise ValueError(f"appearance_weight: expected >= 0, got {appearance_weight}")
        self.appearance_weight = float(appearance_weight)
        self.appearance_gate = float(appearance_gate)
        self.appearance_smoothing = float(appearance_smoothing)
        if max_shift < 0 or max_shift_growth < 0:
            raise ValueError(f"max_shift, max_shift_growth: expected >= 0, got {max_shift}, {max_shift_growth}")
        if max_area_ratio != 0 and max_area_ratio < 1:
            raise ValueError(f"max_area_ratio: expected 0 (off) or >= 1, got {max_area_ratio}")
        self.max_shift = float(max_shift)
        self.max_shift_growth = float(max_shift_growth)
        self.max_area_ratio = float(max_area_ratio)
        self._hists: np.ndarray | None = None  # torso histograms of the frame being updated
        self.tracks: list[_Track] = []
        self.next_id = 0
        self._next_key = 0
        self._frame = -1
        self._updates = 0
        self._key_to_id: dict[int, int] = {}
        self._history: list[tuple[Detections, np.ndarray, np.ndarray | None]] = []

    def similarity(self, frame: int, det: Detections, tracks: list[_Track] | None = None,
                   det_hists: np.ndarray | None = None) -> np.ndarray:
        """Similarity (len(tracks), len(det)) in [0, 1] of each track's prediction for
        `frame` with each detection (see the module docstring); all live tracks by default.
        `det_hists` (len(det), bins): the detections' torso histograms, for the appearance term."""
        tracks = self.tracks if tracks is None else tracks
        n, m = len(tracks), len(det)
        if n == 0 or m == 0:
            return np.zeros((n, m))
        dt = np.array([frame - t.last_frame for t in tracks], np.float64)
        shift = np.stack([t.velocity for t in tracks]) * dt[:, None] if self.use_motion else np.zeros((n, 2))
        boxes = np.stack([t.box for t in tracks]) + np.concatenate([shift, shift], axis=1)
        kps = np.stack([t.keypoints for t in tracks]) + shift[:, None, :]
        kscores = np.stack([t.keypoint_scores for t in tracks])
        iou = box_iou(boxes, det.xyxy)
        oks, has_common = oks_matrix(kps, kscores, det.keypoints, det.keypoint_scores, box_area(boxes),
                                     keypoint_threshold=self.keypoint_threshold)
        mixed = (self.iou_weight * iou + self.oks_weight * oks) / (self.iou_weight + self.oks_weight)
        sim = np.where(has_common, mixed, iou)
        if self.appearance_weight > 0 and det_hists is not None and all(t.hist is not None for t in tracks):
            th = np.stack([t.hist for t in tracks]).astype(np.float64)
            bc = bhattacharyya(th[:, None, :], det_hists[None, :, :])
            pc = _centre(boxes)
            diag = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            dist = np.linalg.norm(pc[:, None, :] - _centre(det.xyxy.astype(np.float64))[None], axis=-1)
            near = dist <= self.appearance_gate * np.maximum(diag, 1.0)[:, None]
            wa = self.appearance_weight
            sim = np.where(near, (sim + wa * bc) / (1.0 + wa), sim / (1.0 + wa))
        return np.where(self.gate(boxes, dt, det.xyxy), sim, 0.0)

    def gate(self, predicted: np.ndarray, dt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(n, m) bool: which detections `boxes` (m, 4) each track may take, given its
        `predicted` box (n, 4) `dt` (n,) frames after it was last seen (`max_shift`,
        `max_area_ratio`); all True when both gates are off."""
        predicted = np.asarray(predicted, np.float64)
        boxes = np.asarray(boxes, np.float64)
        ok = np.ones((len(predicted), len(boxes)), bool)
        if self.max_shift > 0:
            diag = np.maximum(np.hypot(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1]), 1.0)
            allow = np.minimum(self.max_shift + self.max_shift_growth * (np.asarray(dt, np.float64) - 1.0),
                               2.0 * self.max_shift) * diag
            dist = np.linalg.norm(_centre(predicted)[:, None, :] - _centre(boxes)[None], axis=-1)
            ok &= dist <= allow[:, None]
        if self.max_area_ratio > 0:
            ratio = np.maximum(box_area(boxes), 1.0)[None, :] / np.maximum(box_area(predicted), 1.0)[:, None]
            ok &= (ratio <= self.max_area_ratio) & (ratio >= 1.0 / self.max_area_ratio)
        return ok

    def _assign(self, frame: int, det: Detections, tracks: list[_Track], free: np.ndarray) -> list[tuple[_Track, int]]:
        """Hungarian assignment of `tracks` to the detections where `free`; pairs below
        `match_threshold` are dropped."""
        cols = np.flatnonzero(free)
        hists = None if self._hists is None else self._hists[cols]
        sim = self.similarity(frame, det[cols], tracks, hists)
        if sim.size == 0:
            return []
        r, c = linear_sum_assignment(sim, maximize=True)
        return [(tracks[i], int(cols[j])) for i, j in zip(r, c) if sim[i, j] >= self.match_threshold]

    def update(self, frame_dets: Detections, frame: int | None = None, image: np.ndarray | None = None) -> Detections:
        """Assign track ids to the detections of one frame.

        Args:
            frame_dets: the rows of one frame (all with the same `frame`), possibly empty.
            frame: that frame's index; needed only when `frame_dets` is empty (then it
                defaults to the previous frame + 1).
            image: the frame itself, (H, W, 3) uint8 RGB, for the appearance term (only
                used when `appearance_weight` > 0).
        Returns:
            The same rows with `track_id` set: the id of a confirmed track, or -1 for a
            detection of a still tentative track (see `history`, which fills those in
            once the track is confirmed) or one that started no track. No two rows
            share an id.
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
        self._updates += 1
        self._hists = None
        if image is not None and self.appearance_weight > 0 and len(frame_dets):
            self._hists = np.stack([torso_histogram(image, frame_dets.xyxy[j], frame_dets.keypoints[j],
                                                    frame_dets.keypoint_scores[j],
                                                    keypoint_threshold=self.keypoint_threshold)
                                    for j in range(len(frame_dets))])
        # Tentative tracks must be seen in consecutive frames; confirmed ones may be lost a while.
        self.tracks = [t for t in self.tracks
                       if frame - t.last_frame - 1 <= (self.max_lost_frames if t.track_id >= 0 else 0)]

        free = np.ones(len(frame_dets), bool)
        keys = np.full(len(frame_dets), -1, np.int64)
        for stage in (True, False):  # confirmed tracks first, then tentative ones
            for tr, j in self._assign(frame, frame_dets, [t for t in self.tracks if (t.track_id >= 0) == stage], free):
                self._continue(tr, frame_dets, j, frame)
                keys[j] = tr.key
                free[j] = False
        for j in np.flatnonzero(free):
            if frame_dets.score[j] >= self.new_track_score:
                tr = _Track(key=self._next_key, box=frame_dets.xyxy[j].astype(np.float64),
                            keypoints=frame_dets.keypoints[j].astype(np.float64),
                            keypoint_scores=frame_dets.keypoint_scores[j].copy(), last_frame=frame,
                            velocity=np.zeros(2), hist=None if self._hists is None else self._hists[j].copy())
                self._next_key += 1
                self.tracks.append(tr)
                keys[j] = tr.key
                if self._updates <= self.min_hits:
                    self._confirm(tr)
        self._history.append((frame_dets, keys, self._hists))
        ids = np.array([self._key_to_id.get(int(k), -1) for k in keys], np.int64)
        return dataclasses.replace(frame_dets, track_id=ids)

    def history(self) -> Detections:
        """Every row given to `update` so far, in order, with final ids: rows a
        tentative track collected before it was confirmed get its id too; rows of
        tracks never confirmed stay -1."""
        # Frames without rows are left out: an empty `Detections` built without the
        # optional landmark arrays would make `merge` drop them for every row.
        chunks = [(d, k) for d, k, _ in self._history if len(d)]
        if not chunks:
            return Detections.empty()
        det = Detections.merge([d for d, _ in chunks])
        keys = np.concatenate([k for _, k in chunks])
        ids = np.array([self._key_to_id.get(int(k), -1) for k in keys], np.int64)
        return dataclasses.replace(det, track_id=ids)

    def history_histograms(self) -> np.ndarray | None:
        """The torso histogram (len(history()), prod(HIST_BINS)) of every row of `history`,
        or None unless every frame with rows was given its image (appearance on)."""
        chunks = [h for d, _, h in self._history if len(d)]
        if not chunks or any(h is None for h in chunks):
            return None
        return np.concatenate(chunks)

    def _confirm(self, tr: _Track) -> None:
        tr.track_id = self.next_id
        self._key_to_id[tr.key] = self.next_id
        self.next_id += 1

    def _continue(self, tr: _Track, det: Detections, j: int, frame: int) -> None:
        box = det.xyxy[j].astype(np.float64)
        kp = det.keypoints[j].astype(np.float64)
        dt = frame - tr.last_frame
        # The body's displacement is the median displacement of the keypoints seen in
        # both frames: box edges jump when a limb appears or vanishes, the torso does not.
        common = (tr.keypoint_scores >= self.keypoint_threshold) & (det.keypoint_scores[j] >= self.keypoint_threshold)
        if common.sum() >= 3:
            measured = np.median(kp[common] - tr.keypoints[common], axis=0) / dt
        else:
            measured = (_centre(box) - _centre(tr.box)) / dt
        a = 1.0 if tr.hits == 1 else self.velocity_smoothing
        tr.velocity = a * measured + (1.0 - a) * tr.velocity
        tr.box = box
        tr.keypoints = kp
        tr.keypoint_scores = det.keypoint_scores[j].copy()
        tr.last_frame = frame
        tr.hits += 1
        if self._hists is not None:
            a = self.appearance_smoothing
            tr.hist = self._hists[j].copy() if tr.hist is None else (1 - a) * tr.hist + a * self._hists[j]
        if tr.track_id < 0 and tr.hits >= self.min_hits:
            self._confirm(tr)


def track(det: Detections, num_frames: int, *, min_track_length: int = 1, **tracker_kwargs) -> Detections:
    """Track the people of a whole video.

    Args:
        det: every detection of the video (rows in any order), `frame` in [0, num_frames).
        num_frames: number of frames of the video (frames without rows count as gaps).
        min_track_length: confirmed tracks with fewer rows than this are discarded too
            (their rows get `track_id` -1).
        **tracker_kwargs: keyword arguments of `Tracker`.
    Returns:
        The rows of `det` in their original order with `track_id` set, every row of a
        confirmed track included (`Tracker.history`); ids are consecutive from 0 in
        order of first appearance.
    """
    if len(det) and (det.frame.min() < 0 or det.frame.max() >= num_frames):
        raise ValueError(f"det.frame: expected frame indices in [0, {num_frames}), got "
                         f"[{det.frame.min()}, {det.frame.max()}]")
    tracker = Tracker(**tracker_kwargs)
    order = np.argsort(det.frame, kind="stable")
    bounds = np.searchsorted(det.frame[order], np.arange(num_frames + 1))
    for t in range(num_frames):
        tracker.update(det[order[bounds[t]:bounds[t + 1]]], frame=t)
    ids = np.full(len(det), -1, np.int64)
    ids[order] = tracker.history().track_id
    return prune_short_tracks(dataclasses.replace(det, track_id=ids), min_track_length=min_track_length)


def prune_short_tracks(det: Detections, *, min_track_length: int) -> Detections:
    """Discard tracks with fewer than `min_track_length` rows and renumber the rest.

    Rows of discarded tracks get `track_id` -1; the
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


def stitch_tracklets(det: Detections, *, max_gap: int, histograms: np.ndarray | None = None,
                     max_distance: float = 0.25, max_area_ratio: float = 2.0, min_colour: float = 0.5,
                     ends: int = 5) -> Detections:
    """Offline: join tracks that are one person lost for a while (whole files only).

    Track B continues track A when B starts after A's last frame (never two tracks that
    share a frame: a person is one row per frame), within `max_gap` frames of it, and at
    the same place at a similar size: B's first boxes' median centre lies within
    `max_distance` diagonals of A's last boxes' median box (the larger of the two
    diagonals), their median areas are within `max_area_ratio` of each other, and, when
    `histograms` are given, the Bhattacharyya coefficient of their mean torso histograms
    over those rows is at least `min_colour`. "First" and "last" boxes are `ends` rows.
    Each track continues at most one and is continued by at most one; the candidate pairs
    are taken best first (the smallest distance in diagonals plus the colour's distance
    1 - coefficient), so chains form A -> B -> C in time order.

    Args:
        det: rows with `track_id` (-1 = untracked, left alone), e.g. `Tracker.history()`.
        max_gap: most frames between A's last row and B's first (> 0; 0 = no stitching).
        histograms: (len(det), bins) torso histograms of the rows (`Tracker.history_histograms`).
    Returns:
        `det` with the joined tracks' ids merged and all ids renumbered 0, 1, ... in order
        of first appearance (as `prune_short_tracks`).
    """
    if max_gap <= 0 or not len(det):
        return det
    ids = det.track_id
    summary = {}
    for k in np.unique(ids[ids >= 0]):
        rows = np.flatnonzero(ids == k)
        rows = rows[np.argsort(det.frame[rows], kind="stable")]
        head, tail = rows[:ends], rows[-ends:]
        summary[int(k)] = dict(
            first=int(det.frame[rows[0]]), last=int(det.frame[rows[-1]]),
            head=np.median(det.xyxy[head].astype(np.float64), axis=0),
            tail=np.median(det.xyxy[tail].astype(np.float64), axis=0),
            hhead=None if histograms is None else histograms[head].mean(0),
            htail=None if histograms is None else histograms[tail].mean(0))
    pairs = []
    for a, sa in summary.items():
        for b, sb in summary.items():
            gap = sb["first"] - sa["last"]
            if a == b or gap <= 0 or gap > max_gap:
                continue
            ta, hb = sa["tail"], sb["head"]
            diag = max(np.hypot(*(ta[2:] - ta[:2])), np.hypot(*(hb[2:] - hb[:2])), 1.0)
            dist = float(np.linalg.norm(_centre(ta) - _centre(hb))) / diag
            ratio = max(box_area(ta), 1.0) / max(box_area(hb), 1.0)
            if dist > max_distance or not 1.0 / max_area_ratio <= ratio <= max_area_ratio:
                continue
            cost = dist
            if histograms is not None:
                bc = float(bhattacharyya(sa["htail"], sb["hhead"]))
                if bc < min_colour:
                    continue
                cost += 1.0 - bc
            pairs.append((cost, a, b))

    succ: dict[int, int] = {}
    pred: dict[int, int] = {}
    for _, a, b in sorted(pairs):
        if a not in succ and b not in pred:
            succ[a], pred[b] = b, a
    root = {}
    for k in summary:
        r = k
        while r in pred:
            r = pred[r]
        root[k] = r
    merged = np.array([root.get(int(i), int(i)) if i >= 0 else -1 for i in ids], np.int64)
    return prune_short_tracks(dataclasses.replace(det, track_id=merged), min_track_length=1)



def fill_gaps(tracks: PoseTracks, *, max_gap: int) -> PoseTracks:
    """Offline: a person missed for at most `max_gap` frames between two frames where the same
    track was seen gets rows on the missed frames, interpolated linearly between those two
    (the offline interpolation of MOT trackers, e.g. ByteTrack's): box and keypoint positions
    interpolated, box score the lower of the two ends, keypoint scores 0 (no keypoint was
    measured there, so skeleton models, part boxes and smoothing treat them as unseen), and
    `filled` True. Nothing is extrapolated past a track's first or last frame.

    Args:
        tracks: dense tracks (e.g. `PoseTracks.from_detections` of a whole file).
        max_gap: most consecutive missed frames filled (0 = none).
    Returns:
        New `PoseTracks` (the input is not changed) with `filled` set.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap: expected >= 0, got {max_gap}")
    filled = np.zeros_like(tracks.valid) if tracks.filled is None else tracks.filled.copy()
    kp, ks = tracks.keypoints.copy(), tracks.keypoint_scores.copy()
    bx, bs, valid = tracks.boxes.copy(), tracks.box_scores.copy(), tracks.valid.copy()
    if max_gap > 0:
        for m in range(tracks.num_persons):
            seen = np.flatnonzero(tracks.valid[m])
            for a, b in zip(seen[:-1], seen[1:]):
                gap = int(b - a - 1)
                if gap == 0 or gap > max_gap:
                    continue
                w = (np.arange(1, gap + 1, dtype=np.float32) / (gap + 1))[:, None]
                fr = slice(a + 1, b)
                bx[m, fr] = (1 - w) * tracks.boxes[m, a] + w * tracks.boxes[m, b]
                kp[m, fr] = (1 - w[..., None]) * tracks.keypoints[m, a] + w[..., None] * tracks.keypoints[m, b]
                ks[m, fr] = 0.0
                bs[m, fr] = min(tracks.box_scores[m, a], tracks.box_scores[m, b])
                valid[m, fr] = True
                filled[m, fr] = True
    return PoseTracks(track_ids=tracks.track_ids.copy(), keypoints=kp, keypoint_scores=ks, boxes=bx, box_scores=bs,
                      valid=valid, world_landmarks=None if tracks.world_landmarks is None else tracks.world_landmarks,
                      filled=filled if filled.any() else None)
