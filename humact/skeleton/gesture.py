"""Hand gestures from hand tracks: PYSKL's published HaGRID ST-GCN++ on a sliding window.

The model is PYSKL's `demo/hagrid.pth` (config `demo/stgcnpp_gesture.py`): ST-GCN++ on the
`handmp` graph (MediaPipe's 21 hand landmarks), 2 input channels (x, y in MediaPipe's
normalised image coordinates, i.e. pixels / frame size), 6 stages with the one stride-2 stage
last, one person, 40 classes (`HAGRID_CLASSES`: 27 Jester-style dynamic gestures, then 13
HaGRID static ones). `tests/test_hagrid.py` checks it against PYSKL's own outputs to 1e-5.

`GestureRecognizer` does what PYSKL's gesture demo (`demo/demo_gesture.py`) does per hand:
the hand's last frames, up to 10, taken back only while the hand was seen on every frame
(here: the same `HandTracker` id on consecutive frames; the demo chains boxes of IoU >= 0.5),
through the config's test pipeline (PreNormalize2D 'auto', a no-op on [0, 1] coordinates;
joints; UniformSample 10, which loops a shorter window; FormatGCNInput one person), softmax,
every `every` frames (the demo: 2). All windows of one frame run as one batch.

The checkpoint is never shipped: `humact setup --gestures` downloads it from PYSKL's public
repository (`HAGRID_URL`, sha256 pinned) into the model directory, or `--model PATH` takes
any copy.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import numpy as np
import torch

from humact.errors import CheckpointError
from humact.types import GesturePrediction, HandDetections

__all__ = ["HAGRID_CLASSES", "HAGRID_URL", "HAGRID_NAME", "HAGRID_SHA256", "HAGRID_SIZE", "CLIP_LEN",
           "hagrid_model", "load_hagrid", "find_gesture_checkpoint", "download_gesture_checkpoint",
           "GestureRecognizer", "window_input"]

#: PYSKL's GestureDataset.label_names, in the checkpoint's class order.
HAGRID_CLASSES: tuple[str, ...] = (
    "Doing other things", "Drumming Fingers", "No gesture", "Pulling Hand In", "Pulling Two Fingers In",
    "Pushing Hand Away", "Pushing Two Fingers Away", "Rolling Hand Backward", "Rolling Hand Forward",
    "Shaking Hand", "Sliding Two Fingers Down", "Sliding Two Fingers Left", "Sliding Two Fingers Right",
    "Sliding Two Fingers Up", "Stop Sign", "Swiping Down", "Swiping Left", "Swiping Right", "Swiping Up",
    "Dislike", "Like", "Turning Hand Clockwise", "Turning Hand Counterclockwise", "Zooming In With Full Hand",
    "Zooming In With Two Fingers", "Zooming Out With Full Hand", "Zooming Out With Two Fingers", "Call", "Fist",
    "Four", "Mute", "OK", "One", "Palm", "Peace", "Rock", "Three-Middle", "Three-Left", "Two Up", "No Gesture",
)
#: PYSKL's public copy (kennymckormick/pyskl, demo/hagrid.pth).
HAGRID_URL = "https://github.com/kennymckormick/pyskl/raw/main/demo/hagrid.pth"
HAGRID_NAME = "pyskl_hagrid_stgcnpp.pth"
HAGRID_SHA256 = "14d3e55e7c29ee73d22a2306050c7156d516bdeee3ab47547174e38256f807e7"
HAGRID_SIZE = 927_485
CLIP_LEN = 10
SETUP_HINT = "run `humact setup --gestures` (it downloads PYSKL's demo/hagrid.pth) or pass --model PATH"


def hagrid_model() -> torch.nn.Module:
    """PYSKL's HaGRID config as builder arguments (random weights until loaded)."""
    from humact.skeleton.stgcn import stgcnpp

    return stgcnpp(num_classes=len(HAGRID_CLASSES), layout="handmp", in_channels=2, num_person=1, num_stages=6,
                   down_stages=(6,), inflate_stages=(6,))


def load_hagrid(path: str | os.PathLike) -> torch.nn.Module:
    """The HaGRID model with the checkpoint at `path` loaded strictly, in eval mode.

    Raises:
        CheckpointError: no such file, not a torch checkpoint, or keys / shapes that are not
            this model's (the message names the file and every mismatch).
    """
    from humact.skeleton.stgcn import load_pyskl_checkpoint

    model = hagrid_model()
    load_pyskl_checkpoint(model, Path(path))
    return model.eval()


def find_gesture_checkpoint(path: str | os.PathLike | None = None, *,
                            model_dir: str | os.PathLike | None = None) -> Path:
    """`path` when given (used as it is), else the model directory's verified copy.

    Raises:
        CheckpointError: the file is missing or (in the model directory) not PYSKL's file.
    """
    from humact.perception.model_files import find_model_file

    return find_model_file(path, model_dir, HAGRID_NAME, flag="--model", what="gesture model",
                           known={HAGRID_SHA256}, hint=SETUP_HINT, error=CheckpointError)


def download_gesture_checkpoint(model_dir: str | os.PathLike | None = None, *, url: str | None = None,
                                sha256: str = HAGRID_SHA256, log=print) -> Path:
    """Download the HaGRID checkpoint into the model directory (atomic, sha256 checked; kept
    when a verified copy is there). `url` defaults to `HAGRID_URL`; any http(s)/file URL works.

    Raises:
        humact.io.download.DownloadError: no network, wrong size or checksum (nothing left behind).
    """
    from humact.io.download import fetch
    from humact.perception.model_files import default_model_dir

    d = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    url = url or HAGRID_URL
    log(f"gesture model: {url}")
    path = fetch(url, dest_dir=d, name=HAGRID_NAME, sha256=sha256, max_bytes=64 << 20, progress=False)
    log(f"  {path}")
    return path


def window_input(window: np.ndarray, clip_len: int = CLIP_LEN) -> np.ndarray:
    """One hand's window `(T, 21, 2)` of normalised (x, y) -> the model input `(1, 1, clip_len, 21, 2)`
    by the HaGRID config's test pipeline (a window shorter than `clip_len` is looped)."""
    from humact.skeleton.pipelines import format_gcn_input, gen_ske_feat, pose_decode, pre_normalize_2d, \
        uniform_sample_indices

    kp = pre_normalize_2d(np.asarray(window, np.float32)[None], (1, 1), threshold=0, mode="auto")
    kp = gen_ske_feat(kp, None, "handmp", ("j",))
    inds = uniform_sample_indices(kp.shape[1], clip_len, num_clips=1, test_mode=True)
    kp, _ = pose_decode(kp, None, inds)
    return format_gcn_input(kp, num_person=1, num_clips=1)


class GestureRecognizer:
    """Per hand track, a sliding window of its last `clip_len` frames -> gesture probabilities.

    Args:
        model: the HaGRID model (`load_hagrid`), or any GCN with `predict` on
            `(N, clips, 1, T, 21, 2)` and `len(labels)` outputs.
        labels: class names.
        clip_len: window length (the config's 10).
        every: predict on every N-th frame (PYSKL's demo: 2); 1 = every frame.
        min_window: frames a hand must have been seen in a row before it is classified.

    Memory: one window of at most `clip_len` x 21 x 2 floats per live track.
    """

    def __init__(self, model: torch.nn.Module, labels: tuple[str, ...] = HAGRID_CLASSES, *,
                 clip_len: int = CLIP_LEN, every: int = 2, min_window: int = 1) -> None:
        if every < 1 or clip_len < 1 or min_window < 1:
            raise ValueError(f"every, clip_len, min_window: expected integers >= 1, got {every}, {clip_len}, "
                             f"{min_window}")
        self.model = model.eval()
        self.labels = tuple(labels)
        self.clip_len = int(clip_len)
        self.every = int(every)
        self.min_window = int(min_window)
        self._windows: dict[int, tuple[int, deque]] = {}   # track id -> (last frame, window)
        self._frames = 0

    def update(self, hands: HandDetections, frame: int, time_s: float, width: int, height: int,
               ) -> list[GesturePrediction]:
        """Add one frame's tracked hands; return the predictions made on this frame (maybe none)."""
        size = np.array([max(width, 1), max(height, 1)], np.float32)
        live: dict[int, tuple[int, deque]] = {}
        for i in range(len(hands)):
            tid = int(hands.track_id[i])
            last, win = self._windows.get(tid, (None, None))
            if win is None or last != frame - 1:
                win = deque(maxlen=self.clip_len)      # the chain broke: start again
            win.append(hands.keypoints[i, :, :2] / size)
            live[tid] = (frame, win)
        self._windows = live
        self._frames += 1
        if (self._frames - 1) % self.every:
            return []
        ready = [(tid, win) for tid, (_, win) in live.items() if len(win) >= self.min_window]
        if not ready:
            return []
        x = torch.from_numpy(np.stack([window_input(np.stack(win), self.clip_len) for _, win in ready]))
        with torch.no_grad():
            prob = self.model.predict(x).numpy()
        out = []
        for (tid, win), p in zip(ready, prob):
            top = np.argsort(-p, kind="stable")[:5]
            out.append(GesturePrediction(frame=frame, time_s=float(time_s), track_id=tid, window=len(win),
                                         top=[(self.labels[k], float(p[k])) for k in top]))
        return out
