"""YOLOX-Nano person detector (Megvii's COCO-80 model, ONNX, run with onnxruntime).

    frame (H, W, 3) uint8 RGB
      -> BGR, resize by r = min(416 / H, 416 / W) (bilinear), top-left on a 416 x 416
         canvas filled with 114, float32 0..255, NCHW                  (`preprocess`)
      -> yolox_nano.onnx -> (1, 3549, 85) raw: per anchor x, y, w, h offsets,
         objectness and 80 class probabilities (both already sigmoided)
      -> grid / stride decoding: xy = (out + cell) * stride, wh = exp(out) * stride,
         strides 8, 16, 32 (52^2 + 26^2 + 13^2 anchors), boxes / r     (`decode_yolox`)
      -> score = objectness x class probability; greedy NMS            (`nms`)
    -> PersonBoxes (xyxy in frame pixels, scores)

Every step is YOLOX's own demo (`demo/ONNXRuntime/onnx_inference.py` with
`yolox.data.data_augment.preproc` and `yolox.utils.demo_postprocess` / `multiclass_nms`);
`docs/yolox.md` lists each constant with its source. `detect_all` reproduces the
demo's class-agnostic output exactly (checked against the reference detections in
`../shared/reference/yolox/`); `__call__` is the person detector humact uses, which
scores every anchor by its *person* probability and suppresses only among persons, so a
person is never suppressed by an overlapping object of another class (skis, a chair).

Why onnxruntime and not OpenCV's DNN module (already a dependency): onnxruntime is the
runtime the model was exported for and the reference detections were made with, and the
faster of the two here: 33.8 ms against 37.7 ms per pass with one thread (one run on the
shared, loaded machine; see `docs/yolox.md`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["YoloxDetector", "PersonBoxes", "preprocess", "decode_yolox", "nms", "INPUT_SIZE", "STRIDES",
           "PERSON_CLASS"]

INPUT_SIZE = 416          # exps/default/yolox_nano.py test_size
STRIDES = (8, 16, 32)     # YOLOXHead strides
PAD_VALUE = 114           # preproc's canvas fill
PERSON_CLASS = 0          # COCO-80 class 0
NMS_IOU = 0.45            # demo nms_thr
NUM_CLASSES = 80


@dataclass
class PersonBoxes:
    """People found by a detector in one frame.

    Attributes:
        xyxy: (n, 4) float32 boxes in frame pixels, clipped to the frame.
        score: (n,) float32 in [0, 1], best first.
    """

    xyxy: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def preprocess(frame_rgb: np.ndarray, input_size: int = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """YOLOX's `preproc`: (1, 3, S, S) float32 BGR 0..255 canvas and the resize ratio r.

    The frame is resized by r = min(S / H, S / W) to (int(W r), int(H r)) with bilinear
    interpolation and placed at the canvas's top-left corner; the rest is 114.
    """
    h, w = frame_rgb.shape[:2]
    r = min(input_size / h, input_size / w)
    rw, rh = max(1, int(w * r)), max(1, int(h * r))
    canvas = np.full((input_size, input_size, 3), PAD_VALUE, np.uint8)
    canvas[:rh, :rw] = cv2.resize(np.ascontiguousarray(frame_rgb[..., ::-1]), (rw, rh),
                                  interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), r


def _grid(input_size: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    cells, steps = [], []
    for s in strides:
        n = input_size // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full((n * n, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(raw: np.ndarray, ratio: float, *, input_size: int = INPUT_SIZE,
                 strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX's `demo_postprocess` and box conversion.

    Args:
        raw: (N, 5 + C) raw output, N = sum((S / s)^2), anchors in stride order, each
            cell row-major (x fastest).
        ratio: the `preprocess` resize ratio.

    Returns:
        boxes (N, 4) float32 xyxy in frame pixels (not clipped), scores (N, C) float32 =
        objectness x class probability.
    """
    raw = np.asarray(raw, np.float32)
    cells, steps = _grid(input_size, strides)
    if raw.ndim != 2 or raw.shape[0] != len(cells):
        raise ValueError(f"raw: expected ({len(cells)}, 5 + classes), got {raw.shape}")
    xy = (raw[:, :2] + cells) * steps
    wh = np.exp(raw[:, 2:4]) * steps
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
    return boxes.astype(np.float32), (raw[:, 4:5] * raw[:, 5:]).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS as YOLOX's demo `nms` does it: areas with the +1 pixel convention.

    Returns:
        Indices of the kept boxes, best score first.
    """
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= iou_threshold]
    return np.array(keep, np.int64)


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = boxes.copy()
    out[:, 0] = np.maximum(out[:, 0], 0)
    out[:, 1] = np.maximum(out[:, 1], 0)
    out[:, 2] = np.minimum(out[:, 2], width)
    out[:, 3] = np.minimum(out[:, 3], height)
    return out


class YoloxDetector:
    """YOLOX-Nano on onnxruntime: person boxes for one frame at a time.

    Args:
        model_path: the ONNX file (`model_files.find_detector`).
        num_threads: onnxruntime intra-op threads.
        min_score: person score threshold (objectness x person probability).
        nms_iou: IoU above which a lower-scored person box is suppressed (the demo's 0.45).

    Raises:
        ValueError: the file is not a YOLOX model with a (1, 3, S, S) input and a
            (1, N, 85) output for S's three strides.

    Attributes:
        seconds: time spent in calls (pre-processing, model, decoding), for benchmarks.
    """

    def __init__(self, model_path: str | os.PathLike, *, num_threads: int = 2, min_score: float = 0.3,
                 nms_iou: float = NMS_IOU) -> None:
        import onnxruntime as ort

        from humact.errors import CheckpointError

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3   # no onnxruntime warnings about unused initialisers
        try:
            self._sess = ort.InferenceSession(os.fspath(model_path), sess_options=opts,
                                              providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime raises its own classes for a file that is not ONNX
            raise CheckpointError(f"{model_path}: not an ONNX model onnxruntime can load ({e})") from e
        inp = self._sess.get_inputs()
        out = self._sess.get_outputs()
        shape = tuple(inp[0].shape) if len(inp) == 1 else ()
        size = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else None
        anchors = sum((size // s) ** 2 for s in STRIDES) if size else None
        oshape = tuple(out[0].shape) if len(out) == 1 else ()
        if size is None or shape[1] != 3 or shape[3] != size or len(oshape) != 3 or oshape[1] != anchors \
                or oshape[2] != 5 + NUM_CLASSES:
            raise CheckpointError(f"{model_path}: inputs {[i.shape for i in inp]}, outputs {[o.shape for o in out]}; "
                                  f"expected YOLOX's (1, 3, S, S) input and (1, N, 85) output")
        self.input_size = int(size)
        self._in = inp[0].name
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.seconds = 0.0

    def raw(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's (N, 85) output for `frame_rgb` and the resize ratio."""
        blob, ratio = preprocess(frame_rgb, self.input_size)
        return self._sess.run(None, {self._in: blob})[0][0], ratio

    def detect_all(self, frame_rgb: np.ndarray, *, score_threshold: float = 0.1,
                   nms_iou: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every class, as YOLOX's ONNX demo reports it (class-agnostic NMS).

        Each anchor takes its best class; anchors scoring above `score_threshold` go
        through one NMS regardless of class; boxes are clipped to the frame.

        Returns:
            boxes (n, 4) float32 xyxy frame pixels, scores (n,), class ids (n,), best first.
        """
        h, w = frame_rgb.shape[:2]
        raw, ratio = self.raw(frame_rgb)
        boxes, scores = decode_yolox(raw, ratio, input_size=self.input_size)
        cls = scores.argmax(1)
        best = scores[np.arange(len(cls)), cls]
        sel = np.flatnonzero(best > score_threshold)
        keep = sel[nms(boxes[sel], best[sel], self.nms_iou if nms_iou is None else nms_iou)]
        return _clip(boxes[keep], w, h), best[keep], cls[keep]

    def __call__(self, frame_rgb: np.ndarray) -> PersonBoxes:
        """Person boxes: every anchor scored by its person probability, NMS among persons."""
        t0 = time.perf_counter()
        h, w = frame_rgb.shape[:2]
        raw, ratio = self.raw(frame_rgb)
        boxes, scores = decode_yolox(raw, ratio, input_size=self.input_size)
        person = scores[:, PERSON_CLASS]
        sel = np.flatnonzero(person >= self.min_score)
        keep = sel[nms(boxes[sel], person[sel], self.nms_iou)]
        out = PersonBoxes(xyxy=_clip(boxes[keep], w, h).astype(np.float32), score=person[keep].astype(np.float32))
        self.seconds += time.perf_counter() - t0
        return out
