"""MediaPipe Hands, offline: the palm detector and the hand landmark model run with ai-edge-litert.

Per frame (`HandBackend.__call__`), as MediaPipe 0.10.21's `hand_landmark_tracking_cpu` graph does:

    frame (H, W, 3) uint8 RGB
      ROIs of the hands followed from the previous frame (from their landmarks)
      when fewer than `max_hands` are followed:
        letterbox 192x192, [0, 1]  -> palm_detection_full.tflite -> (2016, 18) boxes, (2016, 1) logits
        decode with 2016 SSD anchors, 7 keypoints, sigmoid scores, weighted NMS -> palms, best first
        the best `max_hands` palms -> rotated square ROI (palm box shifted towards the
        fingers and grown x 2.6, rotated so that wrist -> middle-finger MCP points up)
      palm ROIs and followed ROIs associated (an ROI overlapping a later one by IoU > 0.5 is dropped;
        the followed ones come last, so they win)
      each ROI: rotated crop 224x224, [0, 1] -> hand_landmark_full.tflite
        -> 21 x (x, y, z), hand flag, handedness, 21 x 3 world landmarks
      drop hands whose flag is < `min_presence`; each hand's next ROI from its landmarks
    -> HandDetections (21 landmarks in pixels, presence, handedness, world landmarks)

Every constant is MediaPipe's; `docs/hands.md` lists each one with the graph file and the
calculator it comes from. The geometry (SSD anchors, decoding, weighted NMS, letterbox,
rotated ROI crops and their inverse) is BlazePose's, shared with `humact.perception.blazepose`.
`HandTracker` (ours: MediaPipe's graph keeps no identities) gives each hand a track id by
Hungarian assignment on box IoU, the way `humact.perception.tracking` does for persons.

Coordinates: frame pixels, x right, y down; rotations in radians as `blazepose.Roi` defines them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from humact.perception.blazepose import (
    PoseDetection,
    Roi,
    crop_roi,
    crop_to_frame,
    decode_detections,
    letterbox_matrix,
    normalize_radians,
    ssd_anchors,
    weighted_nms,
)
from humact.perception.boxes import box_iou
from humact.types import HandDetections

__all__ = [
    "HandBackend", "HandLandmarkModel", "PalmDetector", "Hand", "HandTracker", "rect_transformation",
    "roi_from_palm", "roi_from_landmarks", "associate_rois", "wrist_regions", "to_hand_detections",
    "HAND_LANDMARK_NAMES", "MAX_HANDS",
]

# --- palm_detection/palm_detection_cpu.pbtxt ----------------------------------------------
PALM_SIZE = 192                 # ImageToTensorCalculator 192x192, keep aspect ratio, zero border, [0, 1]
PALM_STRIDES = (8, 16, 16, 16)  # SsdAnchorsCalculator num_layers 4 (24x24x2 + 12x12x6 = 2016)
NUM_PALM_ANCHORS = 2016
PALM_KEYPOINTS = 7              # TensorsToDetectionsCalculator num_keypoints (num_coords 18)
PALM_MIN_SCORE = 0.5            # min_score_thresh (= min_detection_confidence's default)
PALM_NMS_IOU = 0.3              # NonMaxSuppressionCalculator min_suppression_threshold, WEIGHTED
PALM_WRIST, PALM_MIDDLE_MCP = 0, 2   # palm keypoints: 0 wrist centre, 2 middle-finger MCP

# --- hand_landmark/palm_detection_detection_to_roi.pbtxt ---------------------------------
PALM_ROI_SCALE = 2.6            # RectTransformationCalculator scale_x = scale_y, square_long
PALM_ROI_SHIFT_Y = -0.5         # shift_y (towards the fingers, in box heights)
ROI_TARGET_ANGLE = math.pi / 2  # rotation_vector_target_angle_degrees 90

# --- hand_landmark/hand_landmark_cpu.pbtxt ------------------------------------------------
LANDMARK_SIZE = 224             # ImageToTensorCalculator 224x224, [0, 1], border replicated
NUM_HAND_LANDMARKS = 21
NORMALIZE_Z = 0.4               # TensorsToLandmarksCalculator normalize_z
PRESENCE_THRESHOLD = 0.5        # ThresholdingCalculator on the hand flag

# --- hand_landmark/hand_landmark_landmarks_to_roi.pbtxt, hand_landmarks_to_rect_calculator.cc ---
ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)   # wrist, thumb CMC/MCP/IP, MCP + PIP of 4 fingers
LANDMARK_ROI_SCALE = 2.0
LANDMARK_ROI_SHIFT_Y = -0.1

# --- hand_landmark/hand_landmark_tracking_cpu.pbtxt ---------------------------------------
ASSOCIATION_IOU = 0.5           # AssociationNormRectCalculator min_similarity_threshold
MAX_HANDS = 2                   # num_hands (MediaPipe Hands' max_num_hands default)

HAND_LANDMARK_NAMES = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)

_FLT_MIN = float(np.finfo(np.float32).tiny)   # C++ std::numeric_limits<float>::min()
_FLT_MAX = float(np.finfo(np.float32).max)


# =========================================================================================
# ROI geometry (MediaPipe's rect calculators, in frame pixels)
# =========================================================================================

def rect_transformation(cx: float, cy: float, width: float, height: float, rotation: float, *,
                        scale: float, shift_x: float = 0.0, shift_y: float = 0.0) -> Roi:
    """MediaPipe's RectTransformationCalculator with `square_long`, in pixels.

    The rect is shifted by (shift_x * width, shift_y * height) along its own rotated axes,
    made square on its long side and scaled by `scale` (scale_x = scale_y).
    """
    c, s = math.cos(rotation), math.sin(rotation)
    dx = width * shift_x * c - height * shift_y * s
    dy = width * shift_x * s + height * shift_y * c
    return Roi(cx=cx + dx, cy=cy + dy, size=max(width, height) * scale, rotation=rotation)


def roi_from_palm(det: PoseDetection) -> Roi:
    """A palm detection (frame pixels) -> the hand's ROI (palm_detection_detection_to_roi).

    DetectionsToRectsCalculator: the palm box's centre and size, rotated so that the wrist
    (keypoint 0) -> middle-finger MCP (keypoint 2) vector points up; then shifted half a box
    towards the fingers and grown x 2.6, square.
    """
    x1, y1, x2, y2 = (float(v) for v in det.box)
    (x0, y0), (xe, ye) = det.keypoints[PALM_WRIST], det.keypoints[PALM_MIDDLE_MCP]
    rotation = normalize_radians(ROI_TARGET_ANGLE - math.atan2(-(float(ye) - float(y0)), float(xe) - float(x0)))
    return rect_transformation((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, rotation,
                               scale=PALM_ROI_SCALE, shift_y=PALM_ROI_SHIFT_Y)


def roi_from_landmarks(xy: np.ndarray) -> Roi:
    """21 hand landmarks (frame pixels) -> the ROI for the next frame (HandLandmarksToRectCalculator
    on the 12 stable landmarks `ROI_LANDMARKS`, then RectTransformation x 2.0, shift_y -0.1).

    The rotation points from the wrist to the mean of the middle-finger MCP and the mean of the
    index and ring MCPs; the rect is the landmarks' bounding box in that rotated frame. The
    bounds start from C++'s `numeric_limits<float>::min()` (the smallest positive float) as
    MediaPipe's do, so a maximum below 0 is 0.
    """
    p = np.asarray(xy, np.float64)[list(ROI_LANDMARKS), :2]
    x0, y0 = p[0]
    mx = ((p[4, 0] + p[8, 0]) / 2 + p[6, 0]) / 2
    my = ((p[4, 1] + p[8, 1]) / 2 + p[6, 1]) / 2
    rotation = normalize_radians(ROI_TARGET_ANGLE - math.atan2(-(my - y0), mx - x0))
    reverse = normalize_radians(-rotation)
    # MediaPipe takes the axis-aligned bounds on normalised coordinates (positive inside the
    # frame); in pixels the same bounds, with the same initial values, are
    lo, hi = np.minimum(p.min(0), _FLT_MAX), np.maximum(p.max(0), _FLT_MIN)
    centre = (lo + hi) / 2
    d = p - centre
    c, s = math.cos(reverse), math.sin(reverse)
    proj = np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c], axis=1)
    plo, phi = np.minimum(proj.min(0), _FLT_MAX), np.maximum(proj.max(0), _FLT_MIN)
    pc = (plo + phi) / 2
    cr, sr = math.cos(rotation), math.sin(rotation)
    cx = pc[0] * cr - pc[1] * sr + centre[0]
    cy = pc[0] * sr + pc[1] * cr + centre[1]
    w, h = phi - plo
    return rect_transformation(cx, cy, w, h, rotation, scale=LANDMARK_ROI_SCALE, shift_y=LANDMARK_ROI_SHIFT_Y)


def _roi_box(r: Roi) -> np.ndarray:
    """The ROI's unrotated square as xyxy (what AssociationNormRectCalculator compares)."""
    h = r.size / 2
    return np.array([r.cx - h, r.cy - h, r.cx + h, r.cy + h], np.float64)


def associate_rois(rois: list[Roi], *, min_similarity: float = ASSOCIATION_IOU) -> list[Roi]:
    """MediaPipe's AssociationNormRectCalculator over ROIs given in input order.

    Each ROI in turn removes the kept ones whose IoU with it (of the unrotated squares)
    exceeds `min_similarity` and is then kept: of overlapping ROIs the last one wins, so
    listing palm ROIs before the followed ones keeps a followed hand's ROI.
    """
    kept: list[Roi] = []
    for r in rois:
        if kept:
            iou = box_iou(_roi_box(r), np.stack([_roi_box(k) for k in kept]))[0]
            kept = [k for k, v in zip(kept, iou) if v <= min_similarity]
        kept.append(r)
    return kept


def associate_rois_of(palms: list[PoseDetection]) -> list[PoseDetection]:
    """`associate_rois` over palm detections (by their ROIs), in the same order rules."""
    rois = [roi_from_palm(d) for d in palms]
    kept = associate_rois(rois)
    return [d for d, r in zip(palms, rois) if any(r is k for k in kept)]


#: COCO-17 elbows and wrists (left, right).
_ELBOWS, _WRISTS = (7, 8), (9, 10)
WRIST_REGION_SCALE = 3.0      # region side in forearm lengths (ours)
WRIST_REGION_MIN = 48.0       # smallest region side, pixels (ours)


def wrist_regions(keypoints: np.ndarray, scores: np.ndarray, *, min_score: float = 0.3,
                  scale: float = WRIST_REGION_SCALE) -> list[np.ndarray]:
    """Square regions around the wrists of posed persons, for the palm detector (ours).

    For every elbow-wrist pair of COCO-17 keypoints both scoring >= `min_score`: a square of
    side `scale` forearm lengths (at least `WRIST_REGION_MIN` px), centred a third of a
    forearm beyond the wrist (where the palm is). A palm is then 15-35 % of the region, the
    size range the detector's anchors were made for, whatever the person's size in the frame.

    Args:
        keypoints: (n, 17, 2) pixels; scores: (n, 17).

    Returns:
        (2, 3) matrices mapping the detector's 192 x 192 input onto each region (frame pixels).
    """
    out = []
    for kp, sc in zip(np.asarray(keypoints, np.float64), np.asarray(scores)):
        for e, w in zip(_ELBOWS, _WRISTS):
            if sc[e] < min_score or sc[w] < min_score:
                continue
            fore = kp[w] - kp[e]
            side = max(scale * float(np.hypot(*fore)), WRIST_REGION_MIN)
            c = kp[w] + fore / 3.0
            k = side / PALM_SIZE
            out.append(np.array([[k, 0.0, c[0] - side / 2], [0.0, k, c[1] - side / 2]], np.float64))
    return out


# =========================================================================================
# The two models
# =========================================================================================

def _outputs_in_order(interp, shapes: list[tuple], path) -> list[int]:
    """Output tensor indices in the model's output order, checked against the expected shapes."""
    details = interp.get_output_details()
    got = [tuple(int(v) for v in d["shape"]) for d in details]
    if got != shapes:
        raise ValueError(f"{path}: outputs have shapes {got}, expected {shapes}: not MediaPipe's hand model")
    return [d["index"] for d in details]


class PalmDetector:
    """MediaPipe's palm detector on a whole frame (palm_detection_cpu).

    Args:
        path: palm_detection_full.tflite. num_threads: TFLite threads.
        min_score: detection score threshold (MediaPipe: 0.5).
    """

    def __init__(self, path: str | os.PathLike, *, num_threads: int = 2, min_score: float = PALM_MIN_SCORE) -> None:
        from humact.perception.litert import make_interpreter

        self.min_score = float(min_score)
        self._interp = make_interpreter(path, num_threads=num_threads)
        self._in = self._interp.get_input_details()[0]["index"]
        self._boxes, self._scores = _outputs_in_order(
            self._interp, [(1, NUM_PALM_ANCHORS, 4 + 2 * PALM_KEYPOINTS), (1, NUM_PALM_ANCHORS, 1)], path)
        self._anchors = ssd_anchors(input_size=PALM_SIZE, strides=PALM_STRIDES)
        assert len(self._anchors) == NUM_PALM_ANCHORS

    def __call__(self, frame: np.ndarray) -> list[PoseDetection]:
        """Palms of the whole (letterboxed) frame in frame pixels after weighted NMS, best first."""
        h, w = frame.shape[:2]
        return self.detect_in(frame, letterbox_matrix(w, h, PALM_SIZE))

    def detect_in(self, frame: np.ndarray, m: np.ndarray) -> list[PoseDetection]:
        """Palms in the square region that the (2, 3) matrix `m` maps the 192 x 192 input onto
        (`letterbox_matrix` for the whole frame), in frame pixels, best first."""
        import cv2

        # Bilinear straight from the frame, affine map on pixel indices (see blazepose.crop_roi).
        small = cv2.warpAffine(frame, m, (PALM_SIZE, PALM_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._interp.set_tensor(self._in, (small.astype(np.float32) * (1.0 / 255.0))[None])
        self._interp.invoke()
        scores, boxes, kps = decode_detections(self._interp.get_tensor(self._boxes)[0],
                                               self._interp.get_tensor(self._scores)[0], self._anchors,
                                               min_score=self.min_score, scale=float(PALM_SIZE),
                                               num_keypoints=PALM_KEYPOINTS)
        if not len(scores):
            return []
        scale = m[0, 0] * PALM_SIZE
        shift = m[:, 2].astype(np.float32)
        return weighted_nms(scores, boxes * scale + np.tile(shift, 2), kps * scale + shift,
                            min_suppression=PALM_NMS_IOU)


@dataclass
class Hand:
    """One hand's landmark-model result in one frame (frame pixels).

    Attributes:
        roi: the ROI the landmarks were computed in; next_roi: the ROI for the next frame.
        presence: hand flag in [0, 1]; handedness: P(right hand) as MediaPipe labels it
            (for a mirrored image; see `humact.types.HandDetections`).
        landmarks: (21, 3) x, y pixels, z in the same pixel scale.
        world: (21, 3) metres.
    """

    roi: Roi
    next_roi: Roi
    presence: float
    handedness: float
    landmarks: np.ndarray
    world: np.ndarray

    @property
    def box(self) -> np.ndarray:
        xy = self.landmarks[:, :2]
        return np.array([*xy.min(0), *xy.max(0)], np.float32)


class HandLandmarkModel:
    """MediaPipe's full hand landmark model on one ROI (hand_landmark_cpu).

    Args:
        path: hand_landmark_full.tflite. num_threads: TFLite threads.
        min_presence: a ROI whose hand flag is below this gives no hand (MediaPipe: 0.5).

    Attributes:
        seconds: time spent in calls (crop, model, post-processing), for benchmarks.
    """

    def __init__(self, path: str | os.PathLike, *, num_threads: int = 2,
                 min_presence: float = PRESENCE_THRESHOLD) -> None:
        from humact.perception.litert import make_interpreter

        self.min_presence = float(min_presence)
        self._interp = make_interpreter(path, num_threads=num_threads)
        self._in = self._interp.get_input_details()[0]["index"]
        # SplitTensorVectorCalculator: landmarks, hand flag, handedness, world landmarks, in this order.
        n3 = NUM_HAND_LANDMARKS * 3
        self._lmk, self._flag, self._hand, self._world = _outputs_in_order(
            self._interp, [(1, n3), (1, 1), (1, 1), (1, n3)], path)
        self.seconds = 0.0

    def __call__(self, frame: np.ndarray, roi: Roi) -> Hand | None:
        t0 = time.perf_counter()
        try:
            return self._run(frame, roi)
        finally:
            self.seconds += time.perf_counter() - t0

    def _run(self, frame: np.ndarray, roi: Roi) -> Hand | None:
        crop = crop_roi(frame, roi, LANDMARK_SIZE)
        self._interp.set_tensor(self._in, (crop.astype(np.float32) * (1.0 / 255.0))[None])
        self._interp.invoke()
        presence = float(self._interp.get_tensor(self._flag).reshape(-1)[0])
        if presence < self.min_presence:
            return None
        raw = self._interp.get_tensor(self._lmk).reshape(NUM_HAND_LANDMARKS, 3).astype(np.float64)
        world = self._interp.get_tensor(self._world).reshape(NUM_HAND_LANDMARKS, 3).astype(np.float64)
        # TensorsToLandmarks: x, y / 224, z / 224 / normalize_z; LandmarkProjection: the ROI's
        # crop -> frame map for x, y, z scaled by the ROI's width.
        pix = crop_to_frame(raw[:, :2] / LANDMARK_SIZE, roi, 1.0)
        z = raw[:, 2] / LANDMARK_SIZE / NORMALIZE_Z * roi.size
        # WorldLandmarkProjectionCalculator: x, y rotated by the ROI rotation.
        c, s = math.cos(roi.rotation), math.sin(roi.rotation)
        world = np.stack([world[:, 0] * c - world[:, 1] * s, world[:, 0] * s + world[:, 1] * c, world[:, 2]], 1)
        # TensorsToClassificationCalculator, binary: the value is P(label 0 = "Left" of handedness.txt)
        # ... in MediaPipe's mirrored convention; we store P("Right") = 1 - value.
        left = float(self._interp.get_tensor(self._hand).reshape(-1)[0])
        return Hand(roi=roi, next_roi=roi_from_landmarks(pix), presence=presence, handedness=1.0 - left,
                    landmarks=np.concatenate([pix, z[:, None]], 1).astype(np.float32),
                    world=world.astype(np.float32))


# =========================================================================================
# The backend and the hand tracker
# =========================================================================================

class HandBackend:
    """MediaPipe Hands (palm detector + full landmark model, tracking mode) on ai-edge-litert.

    Args:
        model_dir: where `humact setup` put the models (default `$HUMACT_MODEL_DIR` or
            ~/.cache/humact/models); missing files raise `ModelFilesMissing` naming the fix.
        max_hands: MediaPipe's num_hands: palms are looked for only while fewer hands than
            this are followed, and at most this many new ones are taken per frame.
        num_threads: threads of each TFLite interpreter.
        min_detection_score: palm score threshold (MediaPipe's min_detection_confidence, 0.5).
        min_presence: hand flag threshold (MediaPipe's min_tracking_confidence, 0.5).
        verify_models: check the files' sha256 when loading.
        person_backend: a pose backend (`humact.perception.backend.PoseBackend`, e.g.
            MoveNet) to look for palms near each person's wrists too (ours, see
            `wrist_regions`): MediaPipe's whole-frame palm detector sees a 192 x 192
            letterbox, where the hands of a person in a 1080p room-wide shot are 2 pixels
            wide. It runs only on frames where palms are looked for. None: MediaPipe's
            whole-frame search alone.
        person_every: the wrist search runs on every N-th frame where palms are looked for
            (the pose model costs more than the palm detector).

    Attributes:
        times: seconds in "palm", "persons" and "landmarks" since construction, for benchmarks.
    """

    name = "mediapipe-hands-full"

    def __init__(self, *, model_dir: str | os.PathLike | None = None, max_hands: int = MAX_HANDS,
                 num_threads: int = 2, min_detection_score: float = PALM_MIN_SCORE,
                 min_presence: float = PRESENCE_THRESHOLD, verify_models: bool = True,
                 person_backend=None, person_every: int = 5) -> None:
        from humact.perception.model_files import HAND_FILES, find_models

        if max_hands < 1:
            raise ValueError(f"max_hands: expected an integer >= 1, got {max_hands}")
        paths = find_models(model_dir, verify=verify_models, files=HAND_FILES, what="MediaPipe Hands")
        self.max_hands = int(max_hands)
        self.palm = PalmDetector(paths["palm"], num_threads=num_threads, min_score=min_detection_score)
        self.landmark_model = HandLandmarkModel(paths["hand_landmarks"], num_threads=num_threads,
                                                min_presence=min_presence)
        if person_every < 1:
            raise ValueError(f"person_every: expected an integer >= 1, got {person_every}")
        self.person_backend = person_backend
        self.person_every = int(person_every)
        self._searches = 0
        self._rois: list[Roi] = []
        self._frames = 0
        self.times = {"palm": 0.0, "persons": 0.0, "landmarks": 0.0}

    def reset(self) -> None:
        self._rois = []
        self._frames = 0
        self._searches = 0
        if self.person_backend is not None:
            self.person_backend.reset()

    def _palms(self, frame: np.ndarray) -> list[Roi]:
        """ROIs of new palms: MediaPipe's best `max_hands` of the whole frame, plus (with a
        person backend) those found near the wrists, the best of overlapping ones kept."""
        palms = self.palm(frame)[:self.max_hands]
        self._searches += 1
        if self.person_backend is not None and (self._searches - 1) % self.person_every == 0:
            t0 = time.perf_counter()
            people = self.person_backend(frame, self._frames)
            self.times["persons"] += time.perf_counter() - t0
            for m in wrist_regions(people.keypoints, people.keypoint_scores):
                palms += self.palm.detect_in(frame, m)
            palms.sort(key=lambda d: d.score)              # the best last: it wins the association
            palms = associate_rois_of(palms)[::-1][:self.max_hands]
        return [r for r in (roi_from_palm(d) for d in palms) if r.size >= 1]

    def hands(self, frame: np.ndarray) -> list[Hand]:
        """The hands of one frame (following the previous frame's), as `Hand`s."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        t0 = time.perf_counter()
        persons0 = self.times["persons"]
        palm_rois = self._palms(frame) if len(self._rois) < self.max_hands else []
        self._frames += 1
        t1 = time.perf_counter()
        found = [h for r in associate_rois(palm_rois + self._rois) if (h := self.landmark_model(frame, r)) is not None]
        self.times["palm"] += t1 - t0 - (self.times["persons"] - persons0)
        self.times["landmarks"] += time.perf_counter() - t1
        self._rois = [h.next_roi for h in found]
        return found

    def __call__(self, frame: np.ndarray, frame_index: int) -> HandDetections:
        return to_hand_detections(self.hands(frame), frame_index)


def to_hand_detections(hands: list[Hand], frame_index: int) -> HandDetections:
    """One frame's hands as `HandDetections` rows."""
    if not hands:
        return HandDetections.empty()
    return HandDetections(
        frame=np.full(len(hands), frame_index, np.int64), xyxy=np.stack([h.box for h in hands]),
        score=np.array([h.presence for h in hands], np.float32),
        handedness=np.array([h.handedness for h in hands], np.float32),
        keypoints=np.stack([h.landmarks for h in hands]), world=np.stack([h.world for h in hands]))


class HandTracker:
    """Track ids for hands (ours; MediaPipe's graph keeps none): Hungarian assignment on box IoU.

    A hand box is matched to the track whose last box overlaps it most (IoU >= `min_iou`,
    `scipy.optimize.linear_sum_assignment` over all pairs); an unmatched box starts a new
    track; a track unseen for more than `max_lost_frames` frames is dropped. Boxes are the
    landmarks' boxes grown by `margin` on each side (PYSKL's gesture demo chains a hand's
    frames by the IoU of such boxes). MediaPipe already follows each hand from frame to
    frame, so consecutive boxes of one hand overlap well; the assignment keeps two hands
    apart when they cross and re-finds a hand after a frame or two without it.

    Args:
        min_iou: smallest IoU for a match.
        max_lost_frames: frames a lost track keeps its id.
        margin: fraction of the box size added on each side before the IoU.
    """

    def __init__(self, *, min_iou: float = 0.3, max_lost_frames: int = 10, margin: float = 0.1) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou: expected in (0, 1], got {min_iou}")
        if max_lost_frames < 0:
            raise ValueError(f"max_lost_frames: expected >= 0, got {max_lost_frames}")
        self.min_iou = float(min_iou)
        self.max_lost_frames = int(max_lost_frames)
        self.margin = float(margin)
        self._boxes: dict[int, tuple[np.ndarray, int]] = {}   # track id -> (last box, last frame)
        self.next_id = 0

    def _grow(self, xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        pad = (xyxy[:, 2:] - xyxy[:, :2]) * self.margin
        return np.concatenate([xyxy[:, :2] - pad, xyxy[:, 2:] + pad], 1)

    def update(self, det: HandDetections, frame: int) -> HandDetections:
        """`det` (the hands of `frame`) with track ids; call once per frame, in order."""
        from scipy.optimize import linear_sum_assignment

        self._boxes = {k: v for k, v in self._boxes.items() if frame - v[1] <= self.max_lost_frames + 1}
        ids = np.full(len(det), -1, np.int64)
        boxes = self._grow(det.xyxy)
        if self._boxes and len(det):
            keys = list(self._boxes)
            iou = box_iou(np.stack([self._boxes[k][0] for k in keys]), boxes)
            rows, cols = linear_sum_assignment(iou, maximize=True)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou:
                    ids[c] = keys[r]
        for j in range(len(det)):
            if ids[j] < 0:
                ids[j] = self.next_id
                self.next_id += 1
            self._boxes[int(ids[j])] = (boxes[j], frame)
        out = det[np.arange(len(det))]
        out.track_id = ids
        return out
