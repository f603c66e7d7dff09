"""BlazePose, multi-person, offline: MediaPipe's two pose models run with ai-edge-litert.

Per frame (`BlazePoseBackend.__call__`):

    frame (H, W, 3) uint8 RGB
      every `detect_every` frames, or when nobody is followed:
        letterbox 224x224, [-1, 1]  -> pose_detection.tflite -> (2254, 12) boxes, (2254, 1) logits
        decode with 2254 SSD anchors, sigmoid scores, weighted NMS      -> PoseDetection list
        each detection -> rotated square ROI (hip centre, full-body scale point)
      every followed person -> ROI from their previous landmarks (auxiliary points 33, 34)
      each ROI: rotated crop 256x256, [0, 1] -> pose_landmark_full.tflite
        -> 39 x (x, y, z, visibility, presence), pose presence, 64x64x39 heatmap, 39 x 3 world
        heatmap refinement, inverse warp to frame pixels
      drop persons with presence < `min_presence`, merge duplicates
    -> Detections (COCO-17 keypoints, 33 landmarks, world landmarks)

Every constant below is MediaPipe's (mediapipe 0.10.21, the version whose models we run);
`docs/blazepose.md` lists each one with the graph file it comes from. MediaPipe's own
pose graph follows one person; the multi-person logic (several ROIs, periodic
re-detection, duplicate merging) is ours and is marked as such.

Coordinates: frame pixels, x right, y down, as everywhere in humact; positions are
MediaPipe's normalised coordinates times the frame size, so they agree with MediaPipe's
to a fraction of a pixel (the half-pixel convention is MediaPipe's: see `crop_roi`).
Angles in radians as MediaPipe defines its ROI rotation: positive turns the crop's "up"
clockwise on screen (see `Roi`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from humact.keypoints import BLAZEPOSE_TO_COCO17
from humact.perception.boxes import box_iou
from humact.types import Detections

__all__ = [
    "BlazePoseBackend", "PoseDetection", "Roi", "ssd_anchors", "decode_detections",
    "weighted_nms", "letterbox_matrix", "roi_from_alignment_points", "roi_crop_matrix",
    "crop_roi", "crop_to_frame", "normalize_radians", "frame_to_crop", "refine_from_heatmap", "box_iou",
    "landmark_distance", "Person", "merge_persons", "to_detections", "LandmarkModel", "tile_layout", "MAX_TILES",
]

# --- pose_detection_cpu.pbtxt -------------------------------------------------------------
DETECTOR_SIZE = 224            # ImageToTensorCalculator output_tensor_width/height
NUM_ANCHORS = 2254             # TensorsToDetectionsCalculator num_boxes
ANCHOR_STRIDES = (8, 16, 32, 32, 32)   # SsdAnchorsCalculator strides (num_layers 5)
ANCHOR_MIN_SCALE = 0.1484375
ANCHOR_MAX_SCALE = 0.75
ANCHOR_OFFSET = 0.5            # anchor_offset_x / anchor_offset_y
DETECTOR_SCALE = 224.0         # x_scale = y_scale = w_scale = h_scale
SCORE_CLIPPING = 100.0         # score_clipping_thresh (logits clipped before the sigmoid)
NMS_MIN_SUPPRESSION = 0.3      # NonMaxSuppressionCalculator min_suppression_threshold (IoU, WEIGHTED)
# Detector keypoints: 0 mid-hip centre, 1 full-body size/rotation point,
# 2 mid-shoulder centre, 3 upper-body size/rotation point.
DET_KP_HIP, DET_KP_FULL_BODY = 0, 1

# --- pose_detection_to_roi.pbtxt / pose_landmarks_to_roi.pbtxt -----------------------------
ROI_TARGET_ANGLE = math.pi / 2  # rotation_vector_target_angle_degrees: 90 (body upright)
ROI_SCALE = 1.25                # RectTransformationCalculator scale_x = scale_y, square_long

# --- pose_landmark_by_roi_cpu.pbtxt / tensors_to_pose_landmarks_and_segmentation.pbtxt ------
LANDMARK_SIZE = 256            # ImageToTensorCalculator 256x256, range [0, 1], border replicate
NUM_LANDMARKS_ALL = 39         # 33 pose landmarks + 6 auxiliary (33 hips centre, 34 scale point)
NUM_LANDMARKS = 33
AUX_CENTER, AUX_SCALE = 33, 34
HEATMAP_KERNEL = 7             # RefineLandmarksFromHeatmapCalculator kernel_size
HEATMAP_MIN_CONFIDENCE = 0.5   # its min_confidence_to_refine (proto default)
POSE_PRESENCE_THRESHOLD = 0.5  # ThresholdingCalculator threshold on the pose flag


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # clipped so that large logits saturate instead of overflowing exp()
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


# =========================================================================================
# Detector: anchors, decoding, weighted NMS
# =========================================================================================

def ssd_anchors(*, input_size: int = DETECTOR_SIZE, strides: tuple[int, ...] = ANCHOR_STRIDES,
                min_scale: float = ANCHOR_MIN_SCALE, max_scale: float = ANCHOR_MAX_SCALE,
                offset: float = ANCHOR_OFFSET, aspect_ratios: tuple[float, ...] = (1.0,),
                interpolated_scale_aspect_ratio: float = 1.0) -> np.ndarray:
    """Anchor centres as MediaPipe's SsdAnchorsCalculator generates them (fixed_anchor_size).

    Consecutive layers with the same stride share one feature map; each cell of it gets
    one anchor per (layer, aspect ratio) plus one interpolated-scale anchor per layer.
    For pose_detection that is 28x28x2 + 14x14x2 + 7x7x6 = 2254 anchors. With
    `fixed_anchor_size` every anchor's width and height is 1, so the scales only decide
    how many anchors a cell has, not their size.

    Returns:
        (N, 2) float32 anchor centres (x, y), normalised to [0, 1] of the input.
    """
    del min_scale, max_scale  # only used for anchor sizes, which are fixed to 1 here
    centres = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += len(aspect_ratios) + (1 if interpolated_scale_aspect_ratio > 0 else 0)
            last += 1
        fm = math.ceil(input_size / strides[layer])
        ys, xs = np.meshgrid((np.arange(fm) + offset) / fm, (np.arange(fm) + offset) / fm, indexing="ij")
        cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


@dataclass
class PoseDetection:
    """One person found by the detector, in frame pixels.

    Attributes:
        score: sigmoid detection score in [0, 1].
        box: (4,) xyxy box of the detector (BlazePose's detector boxes the *face*).
        keypoints: (4, 2) mid-hip centre, full-body scale point, mid-shoulder centre,
            upper-body scale point.
    """

    score: float
    box: np.ndarray
    keypoints: np.ndarray


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, *,
                      min_score: float, scale: float = DETECTOR_SCALE,
                      num_keypoints: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the detector's raw outputs like MediaPipe's TensorsToDetectionsCalculator.

    With `reverse_output_order` each row is (cx, cy, w, h, kx0, ky0, ..., kxK-1, kyK-1)
    as offsets in input pixels relative to the anchor centre; with fixed anchor size 1:
    `value / scale + anchor`. The pose detector has 4 keypoints, the palm detector
    (`humact.perception.hands`) 7.

    Args:
        raw_boxes: (N, 4 + 2 K) float32 regressors.
        raw_scores: (N,) or (N, 1) float32 logits.
        anchors: (N, 2) anchor centres from `ssd_anchors`.
        min_score: keep detections whose sigmoid score is >= this.
        scale: the x/y/w/h scale (the detector's input size).
        num_keypoints: K.

    Returns:
        scores (n,), boxes (n, 4) xyxy, keypoints (n, K, 2); coordinates normalised to
        [0, 1] of the detector input.
    """
    logits = np.clip(raw_scores.reshape(-1), -SCORE_CLIPPING, SCORE_CLIPPING)
    scores = _sigmoid(logits)
    keep = np.nonzero(scores >= min_score)[0]
    raw = raw_boxes[keep].astype(np.float32)
    anc = anchors[keep]
    cx = raw[:, 0] / scale + anc[:, 0]
    cy = raw[:, 1] / scale + anc[:, 1]
    w = raw[:, 2] / scale
    h = raw[:, 3] / scale
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2) / scale + anc[:, None, :]
    return scores[keep].astype(np.float32), boxes, kps


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, *,
                 min_suppression: float = NMS_MIN_SUPPRESSION) -> list[PoseDetection]:
    """MediaPipe's WEIGHTED non-max suppression (NonMaxSuppressionCalculator).

    Repeatedly take the best remaining detection, gather every remaining one whose box
    IoU with it exceeds `min_suppression` (itself included), and emit the score-weighted
    mean of their boxes and keypoints with the best one's score. The rest go on.

    Args:
        scores: (n,); boxes: (n, 4) xyxy; keypoints: (n, K, 2), any consistent units.

    Returns:
        Detections, best first.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out = []
    while remaining.size:
        top = remaining[0]
        iou = box_iou(boxes[top], boxes[remaining])[0]
        group = remaining[iou > min_suppression]
        if group.size == 0:  # degenerate (zero-area) top box: it is its own group
            group = remaining[:1]
        remaining = remaining[~np.isin(remaining, group)]
        w = scores[group].astype(np.float64)
        w = w / w.sum()
        box = (boxes[group] * w[:, None]).sum(0)
        kps = (keypoints[group] * w[:, None, None]).sum(0)
        out.append(PoseDetection(score=float(scores[top]), box=box.astype(np.float32),
                                 keypoints=kps.astype(np.float32)))
    return out


def letterbox_matrix(width: int, height: int, size: int = DETECTOR_SIZE) -> np.ndarray:
    """(2, 3) affine map from detector-input coordinates to frame pixels.

    MediaPipe's ImageToTensorCalculator with keep_aspect_ratio grows the frame's rect
    into a square of side S = max(W, H) around the frame centre (the letterbox) and
    scales it to size x size: a frame of 1920x1080 fills rows 49..175 of the 224x224
    input, the rest is zero padding.
    """
    side = float(max(width, height))
    k = side / size
    return np.array([[k, 0.0, width / 2.0 - side / 2.0], [0.0, k, height / 2.0 - side / 2.0]], np.float64)


# =========================================================================================
# ROI geometry
# =========================================================================================

@dataclass
class Roi:
    """A rotated square region of the frame (MediaPipe's NormalizedRect, in pixels).

    Attributes:
        cx, cy: centre, frame pixels.
        size: side length, pixels.
        rotation: radians. The crop's "up" points along (sin r, -cos r) in the frame:
            r = 0 is an upright crop, r = pi/2 means the body's head is to the right.
    """

    cx: float
    cy: float
    size: float
    rotation: float

    def corners(self) -> np.ndarray:
        """(4, 2) frame pixels of the crop's top-left, top-right, bottom-right, bottom-left."""
        return crop_to_frame(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64), self, 1.0)

    def aabb(self) -> np.ndarray:
        """(4,) xyxy axis-aligned box around the rotated square."""
        c = self.corners()
        return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float32)


def normalize_radians(a: float) -> float:
    """`a` moved into [-pi, pi) (MediaPipe's NormalizeRadians)."""
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def roi_from_alignment_points(center: np.ndarray, scale_point: np.ndarray, *,
                              scale: float = ROI_SCALE, target_angle: float = ROI_TARGET_ANGLE) -> Roi:
    """MediaPipe's AlignmentPointsRectsCalculator followed by RectTransformationCalculator.

    The ROI is centred on `center` (the hips' centre), its side is twice the distance
    to `scale_point` (a point chosen by the model so that this circle holds the whole
    body) times `scale`, and it is rotated so that the centre->scale-point vector points
    up in the crop (`target_angle` = 90 degrees, measured with y flipped to point up).
    `square_long` keeps it square: the side is already equal in pixels on both axes.

    Args:
        center, scale_point: (2,) frame pixels.
    """
    cx, cy = float(center[0]), float(center[1])
    dx, dy = float(scale_point[0]) - cx, float(scale_point[1]) - cy
    box_size = 2.0 * math.hypot(dx, dy)
    rotation = normalize_radians(target_angle - math.atan2(-dy, dx))
    return Roi(cx=cx, cy=cy, size=box_size * scale, rotation=rotation)


def roi_crop_matrix(roi: Roi, out_size: float) -> np.ndarray:
    """(2, 3) affine matrix taking crop coordinates to frame coordinates.

    Crop coordinates (u, v) run over [0, out_size] (continuous, like frame pixels);
    (out_size / 2, out_size / 2) is the ROI centre. This is the inverse of the warp
    that MediaPipe's ImageToTensorCalculator applies and the forward map of its
    LandmarkProjectionCalculator.
    """
    k = roi.size / out_size
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    half = out_size / 2.0
    return np.array([
        [k * c, -k * s, roi.cx - k * (c * half - s * half)],
        [k * s, k * c, roi.cy - k * (s * half + c * half)],
    ], np.float64)


def crop_to_frame(points: np.ndarray, roi: Roi, out_size: float) -> np.ndarray:
    """Map (..., 2) crop coordinates to frame pixels (see `roi_crop_matrix`)."""
    m = roi_crop_matrix(roi, out_size)
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def frame_to_crop(points: np.ndarray, roi: Roi, out_size: float) -> np.ndarray:
    """Map (..., 2) frame pixels to crop coordinates: the inverse of `crop_to_frame`."""
    m = cv2.invertAffineTransform(roi_crop_matrix(roi, out_size))
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def crop_roi(frame: np.ndarray, roi: Roi, out_size: int = LANDMARK_SIZE) -> np.ndarray:
    """The rotated ROI of `frame` resampled to (out_size, out_size, C), bilinear.

    Outside the frame the border pixels are replicated (ImageToTensorCalculator's
    default border mode, which the landmark graph uses).

    Pixel convention: like MediaPipe's CPU ImageToTensorCalculator, the affine map of
    `roi_crop_matrix` is applied to pixel *indices* (cv2's convention), not to pixel
    centres; with this our crops match MediaPipe's: landmarks computed in MediaPipe's
    ROIs agree with MediaPipe 0.10.21's to 0.01-0.06 crop pixels (median) on our test
    frames, and a half-pixel-centred warp would put them off by 0.4-0.6 crop pixels.
    Landmarks are mapped back with the same matrix, so the convention cancels out to
    within a fraction of a pixel.
    """
    m = roi_crop_matrix(roi, out_size)
    return cv2.warpAffine(frame, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, *, kernel_size: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmapCalculator.

    For each landmark, the sigmoid of its heatmap channel in a kernel_size window around
    the landmark's cell is used as weights for the mean cell position; the landmark
    moves there when the window's largest weight is >= `min_confidence`. Landmarks
    outside the heatmap are left as they are. (MediaPipe's bounds check tests the column
    twice and never the row, so it would still refine a landmark up to 3 cells below
    the heatmap with a clipped window; we leave those alone.)

    Args:
        xy: (L, 2) landmark positions normalised to [0, 1] of the crop.
        heatmap: (Hh, Wh, L) raw heatmap logits.

    Returns:
        (L, 2) refined positions, normalised. Like MediaPipe, the refined value is
        `cell_index / Wh` (the cell's left edge, not its centre).
    """
    hh, wh, nl = heatmap.shape
    out = np.array(xy, np.float64, copy=True)
    off = (kernel_size - 1) // 2
    # MediaPipe's cell is an int cast of x * width: truncation toward zero.
    cols = np.trunc(out[:, 0] * wh).astype(np.int64)
    rows = np.trunc(out[:, 1] * hh).astype(np.int64)
    for i in range(min(nl, len(out))):
        c, r = cols[i], rows[i]
        if c < 0 or c >= wh or r < 0 or r >= hh:
            continue
        r0, r1 = max(0, r - off), min(hh, r + off + 1)
        c0, c1 = max(0, c - off), min(wh, c + off + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i].astype(np.float64))
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            rr, cc = np.mgrid[r0:r1, c0:c1]
            out[i, 0] = (cc * conf).sum() / wh / total
            out[i, 1] = (rr * conf).sum() / hh / total
    return out


#: Landmarks that tell two bodies apart: shoulders and hips. Faces and hands of two
#: people hugging come within a few pixels of each other; their torsos do not.
MERGE_LANDMARKS = (11, 12, 23, 24)


def landmark_distance(a: np.ndarray, b: np.ndarray, scale: float,
                      indices: tuple[int, ...] = MERGE_LANDMARKS) -> float:
    """Mean distance between the `indices` landmarks of two poses, divided by `scale`.

    Args:
        a, b: (33, 2) pixels. scale: a person size in pixels (e.g. the larger box diagonal).
    """
    a = np.asarray(a, np.float64)[list(indices)]
    b = np.asarray(b, np.float64)[list(indices)]
    return float(np.linalg.norm(a - b, axis=-1).mean() / max(scale, 1e-6))


# =========================================================================================
# The backend
# =========================================================================================

@dataclass
class Person:
    """One person's landmark-model result in one frame (frame pixels)."""

    roi: Roi                   # ROI the landmarks were computed in
    next_roi: Roi              # ROI from these landmarks' auxiliary points, for the next frame
    presence: float
    landmarks: np.ndarray      # (33, 3) pixels; z in pixels of the same scale
    visibility: np.ndarray     # (33,)
    world: np.ndarray          # (33, 3) metres
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))


#: At most this many detector tiles per frame besides the whole frame (ours; see `detect_tiled`).
MAX_TILES = 4


def tile_layout(width: int, height: int, max_tiles: int = MAX_TILES) -> tuple[float, np.ndarray]:
    """Square detector tiles along the long side of a frame (ours).

    Returns:
        (side, starts): the tiles' side in pixels, max(short, long / (max_tiles - 1)),
        and their offsets along the long side, evenly spaced from 0 to long - side:
        ceil(long / side) + 1 tiles, at most `max_tiles` (a 16:9 frame gets 3).
    """
    long_side, short = max(width, height), min(width, height)
    side = float(max(short, long_side / max(max_tiles - 1, 1)))
    n = min(max_tiles, math.ceil(long_side / side) + 1)
    return side, np.linspace(0.0, max(long_side - side, 0.0), n)


def _same_roi(a: Roi, b: Roi) -> bool:
    """ROIs of one person: centres within 10 % of the larger size, sizes within x1.5 (ours)."""
    return (math.hypot(a.cx - b.cx, a.cy - b.cy) < 0.1 * max(a.size, b.size)
            and 1 / 1.5 < a.size / max(b.size, 1e-6) < 1.5)


def merge_persons(persons: list[Person], *, merge_distance: float, merge_iou: float,
                  max_persons: int) -> list[Person]:
    """Keep one person per body (our multi-person logic, not MediaPipe's).

    Best presence first; a later person is dropped when its torso lies on top of an
    already kept person's (`landmark_distance` < `merge_distance`) or its box mostly
    covers the same pixels (box IoU > `merge_iou`). Two people hugging (the NTU sample)
    keep torsos >= 0.12 box diagonals apart and box IoU <= 0.52; two pose hypotheses of
    one partly visible body (UCF101 close-ups) can disagree on the torso by far more,
    but then their boxes overlap (IoU ~0.7-0.9).

    Returns:
        At most `max_persons` persons, best presence first.
    """
    kept: list[Person] = []
    for p in sorted(persons, key=lambda p: -p.presence):
        dup = False
        for q in kept:
            diag = max(np.hypot(*(p.box[2:] - p.box[:2])), np.hypot(*(q.box[2:] - q.box[:2])))
            if (landmark_distance(p.landmarks[:, :2], q.landmarks[:, :2], diag) < merge_distance
                    or box_iou(p.box, q.box)[0, 0] > merge_iou):
                dup = True
                break
        if not dup:
            kept.append(p)
    return kept[:max_persons]


def to_detections(persons: list[Person], frame_index: int, width: int, height: int, *,
                  outside_score_cap: float) -> Detections:
    """Persons of one frame as `Detections` rows.

    COCO-17 keypoints are landmarks `BLAZEPOSE_TO_COCO17` with their visibility as score.
    Keypoints the model puts outside the frame are clipped into [0, W) x [0, H) and their
    score is capped at `outside_score_cap` (a clipped position is a guess). The 33
    landmarks are returned as the model gave them (they may lie outside the frame). The
    person box is the landmark box clipped to the frame.
    """
    n = len(persons)
    if n == 0:
        return Detections.empty(with_landmarks=True)
    lm = np.stack([p.landmarks for p in persons])
    vis = np.stack([p.visibility for p in persons])
    kp = lm[:, BLAZEPOSE_TO_COCO17, :2].astype(np.float32)
    ks = vis[:, BLAZEPOSE_TO_COCO17].astype(np.float32).copy()
    hi = np.array([np.nextafter(np.float32(width), np.float32(0)),
                   np.nextafter(np.float32(height), np.float32(0))], np.float32)
    clipped = np.clip(kp, 0, hi)
    outside = np.any(clipped != kp, axis=-1)
    ks[outside] = np.minimum(ks[outside], outside_score_cap)
    boxes = np.clip(np.stack([p.box for p in persons]), 0, np.array([width, height, width, height], np.float32))
    return Detections(
        frame=np.full(n, frame_index, np.int64), xyxy=boxes,
        score=np.array([p.presence for p in persons], np.float32),
        keypoints=clipped, keypoint_scores=ks, landmarks=lm, landmark_scores=vis,
        world_landmarks=np.stack([p.world for p in persons]),
    )


def _outputs_by_shape(interp, want: dict[str, tuple], path) -> dict[str, int]:
    """Tensor index of each named output, found by its shape (names differ across exports)."""
    by_shape = {tuple(int(s) for s in d["shape"]): d["index"] for d in interp.get_output_details()}
    out = {}
    for key, shape in want.items():
        if shape not in by_shape:
            raise ValueError(f"{path}: no output of shape {shape} ({key}); outputs are "
                             f"{sorted(by_shape)}: not the expected BlazePose model")
        out[key] = by_shape[shape]
    return out


class LandmarkModel:
    """BlazePose GHUM's full landmark model on one ROI (MediaPipe's pose_landmark_by_roi graph).

    Shared by `BlazePoseBackend` (ROIs from BlazePose's detector or the previous
    landmarks) and `topdown.TopDownBackend` (ROIs from a person detector's boxes).

    Args:
        path: pose_landmark_full.tflite.
        num_threads: threads of the TFLite interpreter.
        min_presence: a ROI whose pose presence is below this gives no person.
        visibility_threshold: landmarks at least this visible make the person box.

    Attributes:
        seconds: time spent in calls (crop, model, post-processing), for benchmarks.
    """

    def __init__(self, path: str | os.PathLike, *, num_threads: int = 2,
                 min_presence: float = POSE_PRESENCE_THRESHOLD, visibility_threshold: float = 0.5) -> None:
        from humact.perception.litert import make_interpreter

        self.min_presence = float(min_presence)
        self.visibility_threshold = float(visibility_threshold)
        self._lmk = make_interpreter(path, num_threads=num_threads)
        self._lmk_in = self._lmk.get_input_details()[0]["index"]
        self._lmk_out = _outputs_by_shape(self._lmk, {
            "landmarks": (1, NUM_LANDMARKS_ALL * 5), "presence": (1, 1),
            "heatmap": (1, 64, 64, NUM_LANDMARKS_ALL), "world": (1, NUM_LANDMARKS_ALL * 3),
        }, path)
        self.seconds = 0.0

    def __call__(self, frame: np.ndarray, roi: Roi) -> Person | None:
        """Run the landmark model in `roi`; None when the pose presence is below `min_presence`."""
        t0 = time.perf_counter()
        try:
            return self._run(frame, roi)
        finally:
            self.seconds += time.perf_counter() - t0

    def _run(self, frame: np.ndarray, roi: Roi) -> Person | None:
        crop = crop_roi(frame, roi, LANDMARK_SIZE)
        self._lmk.set_tensor(self._lmk_in, (crop.astype(np.float32) * (1.0 / 255.0))[None])
        self._lmk.invoke()
        presence = float(self._lmk.get_tensor(self._lmk_out["presence"]).reshape(-1)[0])
        if presence < self.min_presence:
            return None
        raw = self._lmk.get_tensor(self._lmk_out["landmarks"]).reshape(NUM_LANDMARKS_ALL, 5)
        heatmap = self._lmk.get_tensor(self._lmk_out["heatmap"])[0]
        world = self._lmk.get_tensor(self._lmk_out["world"]).reshape(NUM_LANDMARKS_ALL, 3)
        # TensorsToLandmarks: x, y, z / 256; visibility and presence through a sigmoid.
        xy = raw[:, :2].astype(np.float64) / LANDMARK_SIZE
        xy = refine_from_heatmap(xy, heatmap)
        pix = crop_to_frame(xy, roi, 1.0)
        # LandmarkProjection scales z by the ROI width: z stays in the x scale (pixels here).
        z = raw[:, 2].astype(np.float64) / LANDMARK_SIZE * roi.size
        visibility = _sigmoid(raw[:, 3].astype(np.float64))
        # WorldLandmarkProjectionCalculator: rotate x, y by the ROI rotation.
        c, s = math.cos(roi.rotation), math.sin(roi.rotation)
        wx = world[:, 0] * c - world[:, 1] * s
        wy = world[:, 0] * s + world[:, 1] * c
        world_rot = np.stack([wx, wy, world[:, 2]], axis=1)
        next_roi = roi_from_alignment_points(pix[AUX_CENTER], pix[AUX_SCALE])
        lm = np.concatenate([pix, z[:, None]], axis=1)[:NUM_LANDMARKS]
        vis = visibility[:NUM_LANDMARKS]
        return Person(roi=roi, next_roi=next_roi, presence=presence, landmarks=lm.astype(np.float32),
                       visibility=vis.astype(np.float32), world=world_rot[:NUM_LANDMARKS].astype(np.float32),
                       box=self._box(lm[:, :2], vis))

    def _box(self, xy: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Tight box of the visible landmarks (all of them when fewer than 2 are visible)."""
        pts = xy[vis >= self.visibility_threshold]
        if len(pts) < 2:
            pts = xy
        return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float32)


class BlazePoseBackend:
    """Multi-person BlazePose (detector + full landmark model) on ai-edge-litert.

    Args:
        model_dir: where `humact setup` put the models (default: `$HUMACT_MODEL_DIR`
            or ~/.cache/humact/models). Missing files raise `ModelFilesMissing`, whose
            message names the command that fixes it.
        detect_every: run the detector on frame 0 and then every N frames (and on every
            frame where nobody is followed); in between, each person is followed with
            the ROI of their previous landmarks. 1 = detect on every frame.
        num_threads: threads of each TFLite interpreter.
        min_detection_score: detector score threshold (MediaPipe: 0.5).
        min_presence: drop a person whose pose presence (landmark model's pose flag) is
            below this (MediaPipe's tracking threshold: 0.5).
        max_persons: at most this many persons per frame (best presence first).
        visibility_threshold: landmarks at least this visible make the person box.
        merge_distance: two persons are one when the mean distance of their shoulders
            and hips is below this fraction of the larger person's box diagonal...
        merge_iou: ... or when their boxes' IoU is above this.
        tile_min_aspect: also run the detector on square tiles of frames whose long side
            is at least this many times the short one (see `detect_tiled`); 0 = never.
        outside_score_cap: COCO keypoints the model puts outside the frame are clipped
            to the frame and their score is capped at this value.
        verify_models: check the model files' sha256 when loading (about 20 ms).

    Attributes:
        times: seconds spent in "detect" and "landmarks" since construction
            (pre- and post-processing included), for benchmarks.
    """

    name = "blazepose-full"

    def __init__(self, *, model_dir: str | os.PathLike | None = None, detect_every: int = 5,
                 num_threads: int = 2, min_detection_score: float = 0.5,
                 min_presence: float = POSE_PRESENCE_THRESHOLD, max_persons: int = 10,
                 visibility_threshold: float = 0.5, merge_distance: float = 0.1, merge_iou: float = 0.65,
                 tile_min_aspect: float = 1.5, outside_score_cap: float = 0.1,
                 verify_models: bool = True) -> None:
        from humact.perception.litert import make_interpreter
        from humact.perception.model_files import find_models

        if detect_every < 1:
            raise ValueError(f"detect_every: expected an integer >= 1, got {detect_every}")
        if num_threads < 1:
            raise ValueError(f"num_threads: expected an integer >= 1, got {num_threads}")
        paths = find_models(model_dir, verify=verify_models)
        self.detect_every = int(detect_every)
        self.min_detection_score = float(min_detection_score)
        self.max_persons = int(max_persons)
        self.merge_distance = float(merge_distance)
        self.merge_iou = float(merge_iou)
        self.outside_score_cap = float(outside_score_cap)
        self.tile_min_aspect = float(tile_min_aspect)
        self._det = make_interpreter(paths["detector"], num_threads=num_threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        self._det_out = _outputs_by_shape(self._det, {"boxes": (1, NUM_ANCHORS, 12),
                                                      "scores": (1, NUM_ANCHORS, 1)}, paths["detector"])
        self.landmark_model = LandmarkModel(paths["landmarks"], num_threads=num_threads, min_presence=min_presence,
                                            visibility_threshold=visibility_threshold)
        self._anchors = ssd_anchors()
        self._persons: list[Person] = []
        self._frames_seen = 0
        self.times: dict[str, float] = {"detect": 0.0, "landmarks": 0.0}

    def reset(self) -> None:
        self._persons = []
        self._frames_seen = 0

    # --- detector --------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> list[PoseDetection]:
        """Run the person detector on a whole frame, as MediaPipe does.

        Returns:
            PoseDetections in frame pixels after weighted NMS, best first.
        """
        h, w = frame.shape[:2]
        return self._detect_in(frame, letterbox_matrix(w, h))

    def detect_tiled(self, frame: np.ndarray) -> list[PoseDetection]:
        """`detect` on the whole frame plus on square tiles of a wide (or tall) frame (ours).

        Letterboxing a 16:9 frame to 224 x 224 leaves people small; two people side by
        side then often give one detection (on the NTU hug video the whole-frame detector
        finds the second person on 16 of 24 sampled frames, whole frame + tiles on 19).
        When the long side is at least `tile_min_aspect` times the short one, the
        detector also runs on `tile_layout(w, h)` evenly spaced squares: short-side
        squares, ceil(long / short) + 1 of them, but never more than `MAX_TILES` (on a
        very elongated frame the squares grow beyond the short side and the detector
        letterboxes them, so a 1 x 1000 video costs 1 + MAX_TILES detector runs a frame,
        not a thousand).
        Detections of one person from several runs are reduced to the best-scoring one
        when their ROIs nearly coincide (`_same_roi`); what remains is left for the
        landmark-level merge.
        """
        h, w = frame.shape[:2]
        dets = self.detect(frame)
        if not self.tile_min_aspect or max(w, h) < self.tile_min_aspect * min(w, h):
            return dets
        side, starts = tile_layout(w, h)
        for start in starts:
            # a square centred across the short side (it overhangs both edges when side > short)
            x0, y0 = (start, (h - side) / 2.0) if w >= h else ((w - side) / 2.0, start)
            k = side / DETECTOR_SIZE
            dets += self._detect_in(frame, np.array([[k, 0.0, x0], [0.0, k, y0]], np.float64))
        dets.sort(key=lambda d: -d.score)
        kept: list[tuple[PoseDetection, Roi]] = []
        for d in dets:
            roi = roi_from_alignment_points(d.keypoints[DET_KP_HIP], d.keypoints[DET_KP_FULL_BODY])
            if not any(_same_roi(roi, r) for _, r in kept):
                kept.append((d, roi))
        return [d for d, _ in kept]

    def _detect_in(self, frame: np.ndarray, m: np.ndarray) -> list[PoseDetection]:
        """Detector on the square region that the (2, 3) matrix `m` maps 224 x 224 onto."""
        # Bilinear straight from the full frame, like MediaPipe's CPU ImageToTensorCalculator
        # (no anti-aliasing: the detector was trained on such input, and an INTER_AREA
        # resize moved its keypoints by 10-30 px on our test videos). See crop_roi for
        # the pixel convention.
        small = cv2.warpAffine(frame, m, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        inp = (small.astype(np.float32) * (2.0 / 255.0) - 1.0)[None]
        self._det.set_tensor(self._det_in, inp)
        self._det.invoke()
        raw_boxes = self._det.get_tensor(self._det_out["boxes"])[0]
        raw_scores = self._det.get_tensor(self._det_out["scores"])[0]
        scores, boxes, kps = decode_detections(raw_boxes, raw_scores, self._anchors,
                                               min_score=self.min_detection_score)
        if not len(scores):
            return []
        # normalised input -> frame pixels (NMS is done in frame pixels: the same IoU, the
        # scale is uniform; MediaPipe does it before letterbox removal).
        scale = m[0, 0] * DETECTOR_SIZE
        shift = m[:, 2].astype(np.float32)
        boxes = boxes * scale + np.tile(shift, 2)
        kps = kps * scale + shift
        return weighted_nms(scores, boxes, kps)

    # --- landmark model --------------------------------------------------------------------
    def landmarks(self, frame: np.ndarray, roi: Roi) -> Person | None:
        """Run the landmark model in `roi`; None when the pose presence is below `min_presence`."""
        return self.landmark_model(frame, roi)

    @property
    def min_presence(self) -> float:
        return self.landmark_model.min_presence

    # --- multi-person logic (ours, not MediaPipe's) ------------------------------------------
    def _is_followed(self, det: PoseDetection, roi: Roi, persons: list[Person]) -> bool:
        """Whether a detection is a person already followed in this frame (its landmark run
        is then skipped): its hips' centre lies in a followed person's torso box (the box
        of their shoulders and hips), or its ROI nearly equals that person's ROI (centres
        within 10 % of the size, sizes within a factor 1.5).

        Without this, a detection of a followed person whose ROI differs a little from
        theirs yields a second, different pose hypothesis of the same body (seen on
        UCF101 close-ups where the hips are out of the frame), which the landmark-based
        merge cannot tell from a second person.
        """
        hip = det.keypoints[DET_KP_HIP]
        for p in persons:
            torso = p.landmarks[list(MERGE_LANDMARKS), :2]
            x1, y1 = torso.min(0)
            x2, y2 = torso.max(0)
            if x1 <= hip[0] <= x2 and y1 <= hip[1] <= y2:
                return True
            if _same_roi(roi, p.roi):
                return True
        return False

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        clock = time.perf_counter
        t0 = clock()
        rois = [p.next_roi for p in self._persons]
        found: list[Person] = []
        for roi in rois:
            p = self.landmarks(frame, roi)
            if p is not None:
                found.append(p)
        t1 = clock()
        self.times["landmarks"] += t1 - t0
        if not found or self._frames_seen % self.detect_every == 0:
            dets = self.detect_tiled(frame)
            t2 = clock()
            self.times["detect"] += t2 - t1
            followed = list(found)
            for d in dets:
                roi = roi_from_alignment_points(d.keypoints[DET_KP_HIP], d.keypoints[DET_KP_FULL_BODY])
                if roi.size < 1 or self._is_followed(d, roi, followed):
                    continue
                p = self.landmarks(frame, roi)
                if p is not None:
                    found.append(p)
                    followed.append(p)   # weaker detections of this new person add nothing
            self.times["landmarks"] += clock() - t2
        self._frames_seen += 1
        self._persons = merge_persons(found, merge_distance=self.merge_distance, merge_iou=self.merge_iou,
                                      max_persons=self.max_persons)
        return to_detections(self._persons, frame_index, w, h, outside_score_cap=self.outside_score_cap)
