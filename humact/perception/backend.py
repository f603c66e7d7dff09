"""The pose backend interface: one RGB frame in, the people in it out.

A backend is anything with a `name`, a `reset()` and a `__call__(frame, frame_index)`
that returns `Detections`. The perception pipeline (`pipeline.py`) only talks to this
interface, so another detector or pose model (an ONNX one run by onnxruntime, say) is
one new file next to `blazepose.py` plus one line in `pipeline.make_backend` (and its
name in `BACKENDS`).

What a backend must return for one frame (see `humact.types.Detections`):
- `frame`: the `frame_index` it was given, on every row.
- `xyxy`: a person box in frame pixels (the tight box of the visible keypoints is
  enough: the pipeline's box refinement and the tracker grow it later).
- `score`: person confidence in [0, 1].
- `keypoints` (n, 17, 2): COCO-17 keypoints in frame pixels, *inside* the frame
  (clip points the model puts outside and lower their score).
- `keypoint_scores` (n, 17) in [0, 1].
- `track_id`: -1 (tracking is the tracker's job, not the backend's).
- `landmarks`, `landmark_scores`, `world_landmarks`: the model's full output when it
  has one (BlazePose's 33 landmarks), else None.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from humact.types import Detections

__all__ = ["PoseBackend", "BACKENDS", "DEFAULT_BACKEND"]

#: Pose backends `pipeline.make_backend` builds (`--backend`): blazepose.py, movenet.py,
#: topdown.py (YOLOX-Nano boxes + BlazePose landmarks).
BACKENDS = ("blazepose", "movenet", "yolox")
#: The default, chosen by measurement (README, docs/movenet.md); its models come from PyPI
#: wheels through `humact setup`.
DEFAULT_BACKEND = "movenet"


@runtime_checkable
class PoseBackend(Protocol):
    """Person detection + 2D pose for single frames of one video at a time."""

    #: Short identifier written into results (e.g. "blazepose-full").
    name: str

    def reset(self) -> None:
        """Start of a new video: forget every per-person state kept between frames."""
        ...

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        """People in `frame`.

        Args:
            frame: (H, W, 3) uint8 RGB image.
            frame_index: its index in the video, copied into `Detections.frame`.
                Frames of one video must come in increasing order between `reset()`s.

        Returns:
            Detections with one row per person found (possibly zero rows).
        """
        ...
