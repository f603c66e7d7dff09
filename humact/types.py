"""The typed data that flows between humact's stages.

A video goes through the package as these types, never as loose dicts:

    VideoMeta  --decode-->  frames (T, H, W, 3) uint8 RGB
    frames     --perception backend-->  Detections (flat over frames, per person)
    Detections --tracker-->  Detections with track_id  -->  PoseTracks
    PoseTracks --parts-->  PartBoxes
    PoseTracks --skeleton model-->  ActionScores
    keyframes + person boxes --skeleton / AVA detector-->  ActionDetections
    all of it  -->  VideoResult (written as JSON / PYSKL pickle / annotated video)

    frames     --hand backend + hand tracker-->  HandDetections (flat over frames, per hand)
    HandDetections --gesture model, sliding window-->  GestureResult (JSON / annotated video)

Conventions, everywhere:
- Image coordinates are pixels of the *original* frame, x to the right, y down,
  origin at the top-left corner of the top-left pixel (continuous coordinates).
- Boxes are `xyxy`: (x1, y1, x2, y2) with x1 <= x2, y1 <= y2.
- Frame indices are 0-based decode order (presentation order); times are seconds.
- Missing values in dense (persons, frames, ...) arrays are 0 and flagged by a
  boolean `valid` array (or a zero score for keypoints), never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from humact.keypoints import PART_NAMES

__all__ = ["VideoMeta", "Detections", "PoseTracks", "PartBoxes", "ActionScores", "ActionDetections",
           "VideoResult", "HandDetections", "GesturePrediction", "GestureResult"]


def _check(name: str, arr: np.ndarray, shape: tuple, dtype=None) -> np.ndarray:
    """Validate `arr` against `shape` (None = any size); cast to `dtype`."""
    arr = np.asarray(arr) if dtype is None else np.asarray(arr, dtype=dtype)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(arr.shape)}")
    return arr


@dataclass
class VideoMeta:
    """What we know about a video before looking at its pixels.

    Attributes:
        path: the file it was read from.
        width, height: frame size in pixels (after the container's rotation is NOT applied).
        fps: average frame rate (frames / second) as reported by the stream.
        num_frames: number of decodable frames.
        frame_times: (num_frames,) float64, presentation time of each frame in seconds,
            from the stream's timestamps (exact for variable frame rate video).
    """

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    frame_times: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        self.frame_times = _check("frame_times", self.frame_times, (self.num_frames,), np.float64)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        if self.num_frames == 0:
            return 0.0
        return float(self.frame_times[-1] - self.frame_times[0] + 1.0 / max(self.fps, 1e-6))

    @property
    def name(self) -> str:
        return Path(self.path).stem


@dataclass
class Detections:
    """Person detections with poses, flat over the frames of one video (n rows).

    One row is one person in one frame. Optional arrays are None when the
    backend does not produce them.

    Attributes:
        frame: (n,) int64 frame index.
        xyxy: (n, 4) float32 person box, pixels.
        score: (n,) float32 person confidence in [0, 1].
        keypoints: (n, 17, 2) float32 COCO-17 keypoints, pixels.
        keypoint_scores: (n, 17) float32 per-keypoint confidence in [0, 1].
        track_id: (n,) int64 track identity, -1 before tracking.
        landmarks: (n, 33, 3) float32 full BlazePose landmarks: x, y in pixels, z a
            relative depth in the same pixel scale (smaller = closer), or None.
        landmark_scores: (n, 33) float32 landmark visibility in [0, 1], or None.
        world_landmarks: (n, 33, 3) float32 metric 3D landmarks in metres, origin at
            the hips' centre (BlazePose's world coordinates), or None.
    """

    frame: np.ndarray
    xyxy: np.ndarray
    score: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    track_id: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    landmark_scores: np.ndarray | None = None
    world_landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.frame)
        self.frame = _check("frame", self.frame, (n,), np.int64)
        self.xyxy = _check("xyxy", self.xyxy, (n, 4), np.float32)
        self.score = _check("score", self.score, (n,), np.float32)
        self.keypoints = _check("keypoints", self.keypoints, (n, 17, 2), np.float32)
        self.keypoint_scores = _check("keypoint_scores", self.keypoint_scores, (n, 17), np.float32)
        if self.track_id is None:
            self.track_id = np.full(n, -1, np.int64)
        self.track_id = _check("track_id", self.track_id, (n,), np.int64)
        if self.landmarks is not None:
            self.landmarks = _check("landmarks", self.landmarks, (n, 33, 3), np.float32)
        if self.landmark_scores is not None:
            self.landmark_scores = _check("landmark_scores", self.landmark_scores, (n, 33), np.float32)
        if self.world_landmarks is not None:
            self.world_landmarks = _check("world_landmarks", self.world_landmarks, (n, 33, 3), np.float32)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls, with_landmarks: bool = False) -> "Detections":
        z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
        return cls(
            frame=np.zeros(0, np.int64), xyxy=z(0, 4), score=z(0), keypoints=z(0, 17, 2),
            keypoint_scores=z(0, 17),
            landmarks=z(0, 33, 3) if with_landmarks else None,
            landmark_scores=z(0, 33) if with_landmarks else None,
            world_landmarks=z(0, 33, 3) if with_landmarks else None,
        )

    def __getitem__(self, index) -> "Detections":
        """Select rows with an index array, a boolean mask or a slice."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = None if v is None else v[index]
        return Detections(**kw)

    @classmethod
    def merge(cls, parts: list["Detections"]) -> "Detections":
        """Concatenate rows; optional arrays survive only if every part has them."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        kw = {}
        for f in fields(cls):
            vals = [getattr(p, f.name) for p in parts]
            kw[f.name] = None if any(v is None for v in vals) else np.concatenate(vals)
        return cls(**kw)

    def in_frame(self, t: int) -> "Detections":
        return self[self.frame == t]


@dataclass
class PoseTracks:
    """Tracked people of one video as dense (persons, frames) arrays.

    This is the form skeleton models consume (PYSKL's `keypoint` layout).

    Attributes:
        track_ids: (M,) int64 identity of each person (row).
        keypoints: (M, T, 17, 2) float32 COCO-17 keypoints in pixels; 0 where absent.
        keypoint_scores: (M, T, 17) float32; 0 where the person is absent.
        boxes: (M, T, 4) float32 pose-refined person boxes (xyxy, pixels); 0 where absent.
        box_scores: (M, T) float32 detection confidence; 0 where absent.
        valid: (M, T) bool, True where the person was seen in that frame (or, where `filled`
            says so, placed there by gap filling).
        world_landmarks: (M, T, 33, 3) float32 metric 3D landmarks, or None.
        filled: (M, T) bool, True where the row was not seen but interpolated between two
            frames where it was (`tracking.fill_gaps`: box and keypoints interpolated,
            keypoint scores 0), or None when nothing was filled.
    """

    track_ids: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    valid: np.ndarray
    world_landmarks: np.ndarray | None = None
    filled: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.track_ids)
        self.track_ids = _check("track_ids", self.track_ids, (m,), np.int64)
        self.keypoints = _check("keypoints", self.keypoints, (m, None, 17, 2), np.float32)
        t = self.keypoints.shape[1]
        self.keypoint_scores = _check("keypoint_scores", self.keypoint_scores, (m, t, 17), np.float32)
        self.boxes = _check("boxes", self.boxes, (m, t, 4), np.float32)
        self.box_scores = _check("box_scores", self.box_scores, (m, t), np.float32)
        self.valid = _check("valid", self.valid, (m, t), bool)
        if self.world_landmarks is not None:
            self.world_landmarks = _check("world_landmarks", self.world_landmarks, (m, t, 33, 3), np.float32)
        if self.filled is not None:
            self.filled = _check("filled", self.filled, (m, t), bool)

    @property
    def seen(self) -> np.ndarray:
        """(M, T) bool: where each person was actually seen (`valid` without the filled rows)."""
        return self.valid if self.filled is None else self.valid & ~self.filled

    @property
    def num_persons(self) -> int:
        return self.keypoints.shape[0]

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[1]

    @classmethod
    def empty(cls, num_frames: int) -> "PoseTracks":
        return cls(
            track_ids=np.zeros(0, np.int64), keypoints=np.zeros((0, num_frames, 17, 2), np.float32),
            keypoint_scores=np.zeros((0, num_frames, 17), np.float32),
            boxes=np.zeros((0, num_frames, 4), np.float32), box_scores=np.zeros((0, num_frames), np.float32),
            valid=np.zeros((0, num_frames), bool),
        )

    @classmethod
    def from_detections(cls, det: Detections, num_frames: int) -> "PoseTracks":
        """Scatter tracked detections (track_id >= 0) into dense arrays, one row per id."""
        keep = det.track_id >= 0
        det = det[keep]
        ids = np.unique(det.track_id)
        m = len(ids)
        row = np.searchsorted(ids, det.track_id)
        out = cls.empty(num_frames)
        kp = np.zeros((m, num_frames, 17, 2), np.float32)
        ks = np.zeros((m, num_frames, 17), np.float32)
        bx = np.zeros((m, num_frames, 4), np.float32)
        bs = np.zeros((m, num_frames), np.float32)
        va = np.zeros((m, num_frames), bool)
        kp[row, det.frame] = det.keypoints
        ks[row, det.frame] = det.keypoint_scores
        bx[row, det.frame] = det.xyxy
        bs[row, det.frame] = det.score
        va[row, det.frame] = True
        wl = None
        if det.world_landmarks is not None:
            wl = np.zeros((m, num_frames, 33, 3), np.float32)
            wl[row, det.frame] = det.world_landmarks
        out = cls(track_ids=ids, keypoints=kp, keypoint_scores=ks, boxes=bx, box_scores=bs, valid=va,
                  world_landmarks=wl)
        return out


@dataclass
class PartBoxes:
    """The 10 Kinetics-TPS body-part boxes per person and frame.

    Attributes:
        boxes: (M, T, 10, 4) float32 xyxy pixels, parts in `PART_NAMES` order; 0 where invalid.
        valid: (M, T, 10) bool, False where the part's keypoints were not visible.
    """

    boxes: np.ndarray
    valid: np.ndarray
    names: tuple[str, ...] = PART_NAMES

    def __post_init__(self) -> None:
        self.boxes = _check("boxes", self.boxes, (None, None, len(self.names), 4), np.float32)
        m, t = self.boxes.shape[:2]
        self.valid = _check("valid", self.valid, (m, t, len(self.names)), bool)


@dataclass
class ActionScores:
    """Action recognition output for the people of one video (or the whole video).

    Attributes:
        labels: class names, length C.
        scores: (M, C) float32 probabilities per person (M = 1 for a whole-video result).
        track_ids: (M,) int64 person identity, -1 for a whole-video result.
        model: name of the model that produced them.
        reasons: per person, "" when recognised, else why not (e.g. a track too short): such a
            person has no actions (`topk` gives none) and zero scores, never made-up labels.
    """

    labels: tuple[str, ...]
    scores: np.ndarray
    track_ids: np.ndarray
    model: str = ""
    reasons: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        self.scores = _check("scores", self.scores, (None, len(self.labels)), np.float32)
        self.track_ids = _check("track_ids", self.track_ids, (self.scores.shape[0],), np.int64)
        m = self.scores.shape[0]
        self.reasons = tuple(self.reasons) if self.reasons is not None else ("",) * m
        if len(self.reasons) != m:
            raise ValueError(f"reasons: expected {m} entries, got {len(self.reasons)}")

    @property
    def recognized(self) -> np.ndarray:
        """(M,) bool: persons that have actions."""
        return np.array([not r for r in self.reasons], bool)

    def topk(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """Per person, the k best (label, score) pairs, best first; none for a person not recognised."""
        k = min(k, len(self.labels))
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        return [[(self.labels[j], float(self.scores[i, j])) for j in row] if not self.reasons[i] else []
                for i, row in enumerate(order)]


@dataclass
class ActionDetections:
    """Spatio-temporal action detection: every person's action scores at every keyframe (AVA-style).

    One row is one person box on one keyframe; scores are multi-label (AVA detectors: sigmoids) or
    a distribution (the skeleton default: softmax over its classes).

    Attributes:
        labels: class names, length C.
        class_ids: (C,) int64 the action id of each class in the CSV (AVA's 1-based label-map ids;
            1..C for a model without a label map).
        times: (K,) float64 keyframe times, seconds on the video's clock.
        frames: (K,) int64 the frame index of each keyframe (the frame nearest its time).
        timestamps: (K,) int64 the keyframe's AVA timestamp (whole seconds, what the CSV says).
        keyframe: (R,) int64 index into `times` of each row.
        track_ids: (R,) int64 the person's track id, -1 when the box came from a file without ids.
        boxes: (R, 4) float32 xyxy pixels of the original frame.
        scores: (R, C) float32 action scores.
        model: the model(s) that gave the scores.
        threshold: rows x classes below it are left out of the CSV and the JSON action lists.
        reasons: (K,) per keyframe, "" or why it has no rows (e.g. nobody seen long enough).
    """

    labels: tuple[str, ...]
    class_ids: np.ndarray
    times: np.ndarray
    frames: np.ndarray
    timestamps: np.ndarray
    keyframe: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    model: str = ""
    threshold: float = 0.0
    reasons: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        c = len(self.labels)
        self.class_ids = _check("class_ids", self.class_ids, (c,), np.int64)
        self.times = _check("times", self.times, (None,), np.float64)
        k = len(self.times)
        self.frames = _check("frames", self.frames, (k,), np.int64)
        self.timestamps = _check("timestamps", self.timestamps, (k,), np.int64)
        self.scores = _check("scores", np.asarray(self.scores, np.float32).reshape(-1, c), (None, c), np.float32)
        r = self.scores.shape[0]
        self.keyframe = _check("keyframe", self.keyframe, (r,), np.int64)
        self.track_ids = _check("track_ids", self.track_ids, (r,), np.int64)
        self.boxes = _check("boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4), (r, 4), np.float32)
        if r and (self.keyframe.min() < 0 or self.keyframe.max() >= k):
            raise ValueError(f"keyframe: indices must be in [0, {k})")
        self.reasons = tuple(self.reasons) if self.reasons is not None else ("",) * k
        if len(self.reasons) != k:
            raise ValueError(f"reasons: expected {k} entries, got {len(self.reasons)}")

    def __len__(self) -> int:
        return self.scores.shape[0]

    def above(self, row: int, threshold: float | None = None) -> list[tuple[str, float]]:
        """The (label, score) pairs of one row at or above the threshold, best first."""
        thr = self.threshold if threshold is None else threshold
        s = self.scores[row]
        order = np.argsort(-s, kind="stable")
        return [(self.labels[j], float(s[j])) for j in order if s[j] >= thr]


@dataclass
class VideoResult:
    """Everything humact found in one video.

    `partial` is True when not every frame of the video was processed (a truncated or
    corrupt file, live frames dropped); then `frames_decoded` frames were, of the
    `frames_announced` the container announced (None when it states no count), and
    `warnings` says why in one line each. `detections` holds per-person, per-keyframe actions
    (`humact detect`).
    """

    meta: VideoMeta
    tracks: PoseTracks
    parts: PartBoxes | None = None
    actions: ActionScores | None = None
    backend: str = ""
    partial: bool = False
    frames_decoded: int | None = None
    frames_announced: int | None = None
    warnings: list[str] = field(default_factory=list)
    detections: ActionDetections | None = None


@dataclass
class HandDetections:
    """Hands found by a hand backend (`humact.perception.hands`), flat over frames (n rows).

    One row is one hand in one frame.

    Attributes:
        frame: (n,) int64 frame index.
        xyxy: (n, 4) float32 box of the 21 landmarks, pixels (not clipped to the frame).
        score: (n,) float32 hand presence in [0, 1] (the landmark model's hand flag).
        handedness: (n,) float32 probability that the hand is a right hand *as MediaPipe
            labels it*: MediaPipe's labels assume a mirrored (selfie) image, so in an
            unmirrored video a value near 1 is the person's left hand.
        keypoints: (n, 21, 3) float32 MediaPipe's 21 hand landmarks (wrist, then 4 joints
            per finger from the thumb): x, y in pixels, z a relative depth in the same
            pixel scale (smaller = closer to the camera, origin at the wrist).
        world: (n, 21, 3) float32 metric 3D landmarks in metres, origin at the hand's
            centre (MediaPipe's world landmarks).
        track_id: (n,) int64 hand track identity, -1 before tracking.
    """

    frame: np.ndarray
    xyxy: np.ndarray
    score: np.ndarray
    handedness: np.ndarray
    keypoints: np.ndarray
    world: np.ndarray
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.frame)
        self.frame = _check("frame", self.frame, (n,), np.int64)
        self.xyxy = _check("xyxy", self.xyxy, (n, 4), np.float32)
        self.score = _check("score", self.score, (n,), np.float32)
        self.handedness = _check("handedness", self.handedness, (n,), np.float32)
        self.keypoints = _check("keypoints", self.keypoints, (n, 21, 3), np.float32)
        self.world = _check("world", self.world, (n, 21, 3), np.float32)
        if self.track_id is None:
            self.track_id = np.full(n, -1, np.int64)
        self.track_id = _check("track_id", self.track_id, (n,), np.int64)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> "HandDetections":
        z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
        return cls(frame=np.zeros(0, np.int64), xyxy=z(0, 4), score=z(0), handedness=z(0),
                   keypoints=z(0, 21, 3), world=z(0, 21, 3))

    def __getitem__(self, index) -> "HandDetections":
        """Select rows with an index array, a boolean mask or a slice."""
        return HandDetections(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def merge(cls, parts: list["HandDetections"]) -> "HandDetections":
        """Concatenate rows."""
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass
class GesturePrediction:
    """The gesture model's output for one hand track at one frame (its window's last frame).

    Attributes:
        frame: frame index the window ends at; time_s: its time, seconds.
        track_id: the hand track.
        window: frames of this track in the window (1 .. clip length; shorter clips are looped).
        top: [(label, probability)], best first (top 5).
    """

    frame: int
    time_s: float
    track_id: int
    window: int
    top: list[tuple[str, float]]


@dataclass
class GestureResult:
    """Everything `humact gesture` found in one video or stream.

    Attributes:
        meta: the video (for a live source: frames received, their times).
        hands: every tracked hand row (`HandDetections` with track ids).
        predictions: gesture predictions, in frame order.
        labels: the model's class names; model: what the model is (name, checkpoint).
        backend: the hand backend's name.
        frames_decoded: frames actually processed (a live source may drop some).
        partial, warnings: as in `VideoResult`.
        seconds: wall time of the processing; fps: frames processed per second.
    """

    meta: VideoMeta
    hands: HandDetections
    predictions: list[GesturePrediction]
    labels: tuple[str, ...]
    model: str
    backend: str
    frames_decoded: int | None = None
    partial: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        n = self.frames_decoded if self.frames_decoded is not None else self.meta.num_frames
        return n / self.seconds if self.seconds > 0 else 0.0
