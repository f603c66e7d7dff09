"""Top-down pose: a person detector's boxes seed BlazePose's landmark model, one pass per person.

Per frame (`TopDownBackend.__call__`):

    frame (H, W, 3) uint8 RGB
      every `detect_every` frames, or when nobody is followed:
        person detector (YOLOX-Nano, `yolox.py`)           -> PersonBoxes
        each box not already followed -> square ROI around the box (`roi_from_box`)
      every followed person -> ROI from their previous landmarks (BlazePose's auxiliary
        points, as in `blazepose.py`)
      each ROI -> BlazePose landmark model (`blazepose.LandmarkModel`), then, for a
        ROI from a box, once more in the ROI its landmarks give (`refine_passes`)
      drop persons with pose presence < min_presence, merge duplicates (`merge_persons`)
    -> Detections (COCO-17 keypoints, 33 landmarks, world landmarks)

BlazePose's own detector boxes faces and misses people whose face it cannot see (caps,
profiles, backs, close-ups); a full-body person detector does not depend on the face, and
crowded scenes get one landmark pass per detected person. The landmark model was trained
on ROIs centred on the hips and sized to hold the whole body (`roi_from_alignment_points`);
a detector box is centred on the body's extent instead, so its first pass gives a rough
pose whose auxiliary points then give the ROI the model expects. `docs/yolox.md` has the
measurements behind each parameter.
"""

from __future__ import annotations

import os
import time

import numpy as np

from humact.perception.blazepose import LandmarkModel, Person, Roi, merge_persons, to_detections
from humact.perception.boxes import box_iou
from humact.types import Detections

__all__ = ["TopDownBackend", "box_only_rows", "within_boxes", "pose_box_match", "LandmarkAssist", "roi_from_box",
           "roi_hypotheses", "same_body"]

#: The square ROI's side over the box's long side: the box is tight on the body; BlazePose's
#: ROIs leave 25 % around it (ROI_SCALE) and the landmark model wants the limbs inside.
BOX_ROI_SCALE = 1.25


#: A box whose bottom edge is within this fraction of the frame height of the frame's
#: bottom is taken to be cut off there (an upper body: a table, a close-up).
CUT_OFF_MARGIN = 0.02
#: For a cut-off box, the ROI BlazePose's landmark model accepts is centred on the box's
#: bottom edge (the hips are at or below the frame edge) with a side of this many times the
#: box's long side; measured on the arm-wrestling close-ups (`docs/yolox.md`), where the
#: box-centred ROI gives pose presence 0.0-0.2 and this one 0.7-1.0.
CUT_OFF_ROI_SCALE = 2.5


def roi_from_box(box: np.ndarray, *, scale: float = BOX_ROI_SCALE) -> Roi:
    """Upright square ROI centred on `box` (xyxy pixels), side = scale x the box's long side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return Roi(cx=(x1 + x2) / 2.0, cy=(y1 + y2) / 2.0, size=max(x2 - x1, y2 - y1, 1.0) * scale, rotation=0.0)


def roi_hypotheses(box: np.ndarray, frame_height: int) -> list[Roi]:
    """The ROIs to try for a person box, most likely first.

    A whole body gives the box-centred ROI (`roi_from_box`). A box cut off by the frame's
    bottom edge holds an upper body, whose hips the landmark model expects at the ROI's
    centre: the ROI centred on the bottom edge and `CUT_OFF_ROI_SCALE` times the box
    comes first, the box-centred one second (a person standing on the frame's edge).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    plain = roi_from_box(box)
    if y2 < frame_height * (1.0 - CUT_OFF_MARGIN):
        return [plain]
    cut = Roi(cx=(x1 + x2) / 2.0, cy=y2, size=max(x2 - x1, y2 - y1, 1.0) * CUT_OFF_ROI_SCALE, rotation=0.0)
    return [cut, plain]


class TopDownBackend:
    """Person detector + BlazePose landmarks (`PoseBackend`).

    Args:
        detector: a callable frame -> `yolox.PersonBoxes`; by default YOLOX-Nano from
            `detector_model` (a path) or the model directory (`humact setup --detector yolox`).
        detector_model: path of the YOLOX ONNX file (`--detector-model`).
        model_dir: where the BlazePose landmark model (and YOLOX, without `detector_model`) are.
        num_threads: threads of each runtime.
        detect_every: run the detector on frame 0 and then every N frames (and whenever
            nobody is followed); in between people are followed with their landmark ROI.
        min_box_score: detector person score from which a box gets landmark passes and
            may start a track (`track_start_score`).
        low_box_score: boxes from this score up to `min_box_score` get no landmark pass;
            with `keep_boxes` they are box-only rows that can only continue a track (the
            tracker's `new_track_score`): ByteTrack's use of low-score boxes, which are
            mostly people partly hidden or cut off, not new people.
        refine_passes: landmark passes in the landmarks' own ROI after the first pass in
            a box ROI (0 = keep the box ROI's pose).
        follow_iou: a detector box whose IoU with a followed person's landmark box exceeds
            this is that person (no new landmark pass).
        min_presence: BlazePose pose presence threshold.
        keep_boxes: a detector box that no pose of this frame covers is still a person:
            a row with the detector's box and score and no keypoint (scores 0). People
            cut off by the frame (a close-up whose body is mostly outside it) give the
            detector a box but the landmark model no pose; `docs/yolox.md` measures it.
        max_persons, merge_distance, merge_iou, outside_score_cap: as in `BlazePoseBackend`.

    Attributes:
        times: seconds in "detect" (detector) and "landmarks" (landmark passes).
    """

    name = "yolox-nano+blazepose-full"

    def __init__(self, *, detector=None, detector_model: str | os.PathLike | None = None,
                 model_dir: str | os.PathLike | None = None, num_threads: int = 2, detect_every: int = 1,
                 min_box_score: float = 0.3, low_box_score: float = 0.1, refine_passes: int = 1, follow_iou: float = 0.5,
                 min_presence: float = 0.5, max_persons: int = 20, merge_distance: float = 0.1,
                 merge_iou: float = 0.65, outside_score_cap: float = 0.1, keep_boxes: bool = True,
                 box_margin: float | None = 0.15, verify_models: bool = True) -> None:
        from humact.perception.model_files import find_detector, find_models

        if detect_every < 1:
            raise ValueError(f"detect_every: expected an integer >= 1, got {detect_every}")
        if refine_passes < 0:
            raise ValueError(f"refine_passes: expected >= 0, got {refine_passes}")
        if not 0 <= low_box_score <= min_box_score:
            raise ValueError(f"low_box_score: expected in [0, min_box_score = {min_box_score}], got {low_box_score}")
        self.min_box_score = float(min_box_score)
        self.low_box_score = float(low_box_score) if keep_boxes else float(min_box_score)
        #: The tracker starts tracks only from rows scoring at least this (`pipeline.make_tracker`).
        self.track_start_score = self.min_box_score
        if detector is None:
            from humact.perception.yolox import YoloxDetector

            path = find_detector(model_dir, path=detector_model, verify=verify_models)
            detector = YoloxDetector(path, num_threads=num_threads, min_score=self.low_box_score)
        self.detector = detector
        paths = find_models(model_dir, verify=verify_models, files={"landmarks": _landmark_file()})
        self.landmark_model = LandmarkModel(paths["landmarks"], num_threads=num_threads, min_presence=min_presence)
        self.detect_every = int(detect_every)
        self.refine_passes = int(refine_passes)
        self.follow_iou = float(follow_iou)
        self.max_persons = int(max_persons)
        self.merge_distance = float(merge_distance)
        self.merge_iou = float(merge_iou)
        self.outside_score_cap = float(outside_score_cap)
        self.keep_boxes = bool(keep_boxes)
        self.box_margin = box_margin
        self._persons: list[Person] = []
        self._frames_seen = 0
        self._box_only = np.zeros((0, 4), np.float32)   # last frame's box-only persons
        self.times: dict[str, float] = {"detect": 0.0, "landmarks": 0.0}

    def reset(self) -> None:
        self._persons = []
        self._frames_seen = 0
        self._box_only = np.zeros((0, 4), np.float32)

    def pose_in_box(self, frame: np.ndarray, box: np.ndarray) -> Person | None:
        """Landmarks of the person in `box`: a pass in each of the box's ROIs
        (`roi_hypotheses`), keeping the pose of highest presence, then `refine_passes`
        passes in the ROI of the previous pass's landmarks; None if no ROI holds a pose."""
        p = None
        for roi in roi_hypotheses(box, frame.shape[0]):
            q = self.landmark_model(frame, roi)
            if q is not None and (p is None or q.presence > p.presence):
                p = q
        for _ in range(self.refine_passes):
            if p is None:
                break
            q = self.landmark_model(frame, p.next_roi)
            if q is None:
                break
            p = q
        return p

    def _is_followed(self, box: np.ndarray, persons: list[Person]) -> bool:
        if not persons:
            return False
        iou = box_iou(box, np.stack([p.box for p in persons]))[0]
        return bool((iou > self.follow_iou).any())

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        clock = time.perf_counter
        t0 = clock()
        found: list[Person] = []
        for prev in self._persons:
            p = self.landmark_model(frame, prev.next_roi)
            if p is not None:
                found.append(p)
        t1 = clock()
        self.times["landmarks"] += t1 - t0
        boxes = None
        # A box-only person (no pose) can only be followed by the detector: it runs again on
        # the frame after one, whatever `detect_every` says.
        scheduled = self._frames_seen % self.detect_every == 0
        if not found or scheduled or len(self._box_only):
            boxes = self.detector(frame)
            keep = boxes.score >= self.low_box_score
            boxes = type(boxes)(xyxy=boxes.xyxy[keep], score=boxes.score[keep])
            t2 = clock()
            self.times["detect"] += t2 - t1
            followed = list(found)
            for box in boxes.xyxy[boxes.score >= self.min_box_score]:
                if self._is_followed(box, followed):
                    continue
                # A box where the landmark model found no pose on the previous frame is
                # tried again only on the scheduled detector frames (2-3 passes a try).
                if not scheduled and len(self._box_only) and (box_iou(box, self._box_only)[0] > self.follow_iou).any():
                    continue
                p = self.pose_in_box(frame, box)
                if p is not None:
                    found.append(p)
                    followed.append(p)
            self.times["landmarks"] += clock() - t2
        self._frames_seen += 1
        self._persons = merge_persons(found, merge_distance=self.merge_distance, merge_iou=self.merge_iou,
                                      max_persons=self.max_persons)
        det = to_detections(self._persons, frame_index, w, h, outside_score_cap=self.outside_score_cap)
        if self.box_margin is not None and boxes is not None and len(boxes):
            det = within_boxes(det, boxes.xyxy, margin=self.box_margin, score_cap=self.outside_score_cap)
        self._box_only = np.zeros((0, 4), np.float32)
        if self.keep_boxes and boxes is not None and len(boxes):
            extra = box_only_rows(boxes.xyxy, boxes.score, det, frame_index, max_rows=self.max_persons - len(det))
            self._box_only = extra.xyxy
            det = Detections.merge([det, extra])
        return det


def within_boxes(poses: Detections, xyxy: np.ndarray, *, margin: float, score_cap: float) -> Detections:
    """Each pose held to the detector box it came from: the box of highest IoU with the pose's
    (at least `BOX_POSE_IOU`, or covering `BOX_POSE_COVER` of the detector box) becomes the row's
    box, and keypoints outside it grown by `margin` of its size get their score capped at
    `score_cap` (a landmark ROI is 1.25-2.5 times the box, and the model places a cut-off
    person's unseen joints on the table or the next person). Rows matching no box are unchanged."""
    if not len(poses) or not len(xyxy):
        return poses
    xyxy = np.asarray(xyxy, np.float32)
    out = poses[np.arange(len(poses))]   # a copy
    iou, match = pose_box_match(out.xyxy, xyxy)
    for i in np.flatnonzero(match.any(1)):
        b = xyxy[int(np.argmax(np.where(match[i], iou[i], -1.0)))]
        mx, my = margin * (b[2] - b[0]), margin * (b[3] - b[1])
        kp = out.keypoints[i]
        outside = (kp[:, 0] < b[0] - mx) | (kp[:, 0] > b[2] + mx) | (kp[:, 1] < b[1] - my) | (kp[:, 1] > b[3] + my)
        out.keypoint_scores[i, outside] = np.minimum(out.keypoint_scores[i, outside], score_cap)
        out.xyxy[i] = b
    return out


#: A detector box is some pose's when their IoU is above this, or when the pose's box covers
#: this share of the detector box (a cut-off person's landmark box spreads beyond it).
BOX_POSE_IOU = 0.3
BOX_POSE_COVER = 0.6


def pose_box_match(pose_xyxy: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(iou (n, m), match (n, m)): pose box i and detector box j are one person when their IoU is
    above `BOX_POSE_IOU` or pose box i covers `BOX_POSE_COVER` of detector box j."""
    a = np.asarray(pose_xyxy, np.float32)[:, None, :]
    b = np.asarray(box_xyxy, np.float32)[None, :, :]
    iou = box_iou(a[:, 0], b[0])
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    cover = iw * ih / np.maximum((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]), 1e-6)
    return iou, (iou > BOX_POSE_IOU) | (cover >= BOX_POSE_COVER)


def box_only_rows(xyxy: np.ndarray, score: np.ndarray, poses: Detections, frame_index: int, *,
                  max_rows: int) -> Detections:
    """Rows for the detector boxes that none of `poses` accounts for: the box and its score,
    keypoints at the box centre with score 0 (no keypoint found), landmarks zero. A small
    pose inside a large box (a person behind a close-up) does not account for it."""
    xyxy = np.asarray(xyxy, np.float32)
    owned = pose_box_match(poses.xyxy, xyxy)[1].any(0) if len(poses) else np.zeros(len(xyxy), bool)
    keep = np.flatnonzero(~owned)[:max(max_rows, 0)].tolist()
    n = len(keep)
    if n == 0:
        return Detections.empty(with_landmarks=True)
    boxes = np.asarray(xyxy, np.float32)[keep]
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return Detections(frame=np.full(n, frame_index, np.int64), xyxy=boxes,
                      score=np.asarray(score, np.float32)[keep],
                      keypoints=np.repeat(centre[:, None, :], 17, axis=1).astype(np.float32),
                      keypoint_scores=np.zeros((n, 17), np.float32),
                      landmarks=np.zeros((n, 33, 3), np.float32), landmark_scores=np.zeros((n, 33), np.float32),
                      world_landmarks=np.zeros((n, 33, 3), np.float32))


def _landmark_file():
    from humact.perception.model_files import MODEL_FILES

    return MODEL_FILES["landmarks"]


#: Where `LandmarkAssist` looks for close-ups nobody found: ROIs centred on the frame's
#: bottom edge at these fractions of its width.
SCAN_CENTRES = (0.25, 0.5, 0.75)


class LandmarkAssist:
    """BlazePose's landmark model for the people a bottom-up model misses (ours).

    MoveNet, trained on whole bodies, does not see people cut off by the frame's bottom
    edge in close-ups (the two arm-wrestlers of MMAction2's demo video: person scores
    below 0.1 in every crop we tried), while BlazePose's landmark model, given a ROI that
    puts their hips at or below the frame edge, finds them with pose presence 0.7-1.0.
    Each frame this assistant:

    1. follows every person it found in the previous frame with the ROI of their
       landmarks (as BlazePose does between detections);
    2. tries the ROIs of the bottom-up model's weak detections (`roi_hypotheses`);
    3. every `scan_every` frames, tries cut-off ROIs centred on the bottom edge at
       `SCAN_CENTRES`, `scan_scale` times the frame height wide; a scan that finds nobody
       new doubles the wait for the next one, up to `max_scan_every` frames, and a scan
       that finds someone, or a followed person lost, brings it back to `scan_every`;

    keeps the poses whose presence passes, drops those that duplicate a person the
    bottom-up model found (`_duplicates`) or each other (`merge_persons`),
    and returns them. Its cost is one landmark pass per assisted person per frame plus
    len(SCAN_CENTRES) passes every `scan_every` frames.

    Args:
        landmark_model: a `blazepose.LandmarkModel`.
        scan_every: frames between scans (0 = never scan).
        scan_scale: the scan ROIs' side over the frame height.
        duplicate_iou: IoU with a bottom-up person's box above which a pose is theirs.
        max_persons: at most this many assisted persons.
        max_scan_every: the longest wait between scans (frames) after scans that found
            nobody new (`scan_every` = no backing off).
    """

    def __init__(self, landmark_model: LandmarkModel, *, scan_every: int = 10, scan_scale: float = 2.5,
                 duplicate_iou: float = 0.4, max_persons: int = 4, merge_distance: float = 0.1,
                 merge_iou: float = 0.5, max_scan_every: int = 40) -> None:
        if scan_every < 0:
            raise ValueError(f"scan_every: expected >= 0, got {scan_every}")
        if max_scan_every < scan_every:
            raise ValueError(f"max_scan_every: expected >= scan_every ({scan_every}), got {max_scan_every}")
        self.max_scan_every = int(max_scan_every)
        self.landmark_model = landmark_model
        self.scan_every = int(scan_every)
        self.scan_scale = float(scan_scale)
        self.duplicate_iou = float(duplicate_iou)
        self.max_persons = int(max_persons)
        self.merge_distance = float(merge_distance)
        self.merge_iou = float(merge_iou)
        self.reset()

    def reset(self) -> None:
        self._persons: list[Person] = []
        self._frames_seen = 0
        self._interval = self.scan_every      # frames from one scan to the next
        self._last_scan = -self.scan_every    # the first frame is scanned

    def _best(self, frame: np.ndarray, rois: list[Roi]) -> Person | None:
        best = None
        for roi in rois:
            q = self.landmark_model(frame, roi)
            if q is not None and (best is None or q.presence > best.presence):
                best = q
        if best is not None:   # once more in the ROI its own landmarks give
            q = self.landmark_model(frame, best.next_roi)
            if q is not None:
                best = q
        return best

    def __call__(self, frame: np.ndarray, found_boxes: np.ndarray, weak_boxes: np.ndarray) -> list[Person]:
        """Persons the bottom-up model missed in `frame`.

        Args:
            found_boxes: (n, 4) xyxy boxes of the people the bottom-up model found.
            weak_boxes: (k, 4) xyxy boxes of its detections too weak to count as people.
        """
        h, w = frame.shape[:2]
        found_boxes = np.asarray(found_boxes, np.float32).reshape(-1, 4)
        candidates: list[list[Roi]] = [[p.next_roi] for p in self._persons]
        followed = len(candidates)
        candidates += [roi_hypotheses(b, h) for b in np.asarray(weak_boxes, np.float32).reshape(-1, 4)]
        scan = bool(self.scan_every) and self._frames_seen - self._last_scan >= self._interval
        unscanned = len(candidates)
        if scan:
            candidates += [[Roi(cx=c * w, cy=float(h), size=self.scan_scale * h, rotation=0.0)] for c in SCAN_CENTRES]
            self._last_scan = self._frames_seen
        self._frames_seen += 1
        persons: list[Person] = []
        origin: list[int] = []     # index of the candidate each person came from
        lost = False
        for k, rois in enumerate(candidates):
            p = self._best(frame, rois)
            if p is None:
                lost |= k < followed
                continue
            if len(found_boxes) and _duplicates(p, found_boxes, self.duplicate_iou):
                continue
            persons.append(p)
            origin.append(k)
        if scan:
            base = [p for p, k in zip(persons, origin) if k < unscanned]
            new = any(k >= unscanned and not any(same_body(p, q) or box_iou(p.box, q.box)[0, 0] > self.merge_iou
                                                 for q in base) for p, k in zip(persons, origin))
            self._interval = self.scan_every if new else min(2 * self._interval, self.max_scan_every)
        if lost:
            self._interval = self.scan_every
        # One pose per body: BlazePose's presence is ~1 in any ROI near a body, so the same
        # close-up reached from its follow ROI, a weak box and a scan ROI gives several
        # hypotheses that agree on what is visible (head, shoulders) and differ on the rest.
        kept: list[Person] = []
        for p in merge_persons(persons, merge_distance=self.merge_distance, merge_iou=self.merge_iou,
                               max_persons=len(persons)):
            if not any(same_body(p, q) for q in kept):
                kept.append(p)
        self._persons = kept[:self.max_persons]
        return self._persons


def _duplicates(p: Person, others: np.ndarray, iou: float) -> bool:
    """Whether the pose `p` is of people already in the boxes `others`: its box's IoU with
    one is above `iou`, or more than 60 % of its box lies inside one (a partial pose of a
    person found whole), or 80 % of its visible landmarks lie inside their union (a pose
    spanning two people found side by side)."""
    from humact.perception.boxes import box_area

    box = p.box
    others = np.asarray(others, np.float64).reshape(-1, 4)
    if box_iou(box, others).max() > iou:
        return True
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    if (inter > 0.6 * max(float(box_area(box)), 1e-6)).any():
        return True
    xy = p.landmarks[p.visibility >= 0.5, :2]
    if not len(xy):
        return False
    inside = ((xy[:, None, 0] >= others[None, :, 0]) & (xy[:, None, 0] <= others[None, :, 2])
              & (xy[:, None, 1] >= others[None, :, 1]) & (xy[:, None, 1] <= others[None, :, 3])).any(1)
    return bool(inside.mean() >= 0.8)


def same_body(a: Person, b: Person, *, visibility: float = 0.5, max_distance: float = 0.2) -> bool:
    """Whether two poses are of one body: the landmarks visible in both lie on average
    within `max_distance` of the larger box's diagonal (at least 3 in common)."""
    common = (a.visibility >= visibility) & (b.visibility >= visibility)
    if common.sum() < 3:
        return False
    d = np.linalg.norm(a.landmarks[common, :2] - b.landmarks[common, :2], axis=1).mean()
    diag = max(np.hypot(*(a.box[2:] - a.box[:2])), np.hypot(*(b.box[2:] - b.box[:2])), 1e-6)
    return bool(d / diag < max_distance)
