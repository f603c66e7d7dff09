"""Clip sampling, test-time views and score fusion for RGB video recognizers.

Plain functions first (STYLE.md, PyTorchVideo's habit), in MMAction2's vocabulary:

- `sample_frames`: MMAction2's `SampleFrames` — `num_clips` clips of `clip_len` frames
  taken every `frame_interval` frames ("T x tau", e.g. 8 x 8 for SlowOnly, 32 x 2 for
  CSN / SlowFast); uniformly spaced at test time, randomly jittered in training.
- `resize_short_side`, `center_crop`, `three_crop`, `flip_horizontal`: the test
  transforms (short side 256, one centre crop of 224 or three crops of 256 along the
  long side, optional horizontal flip), on (T, H, W, 3) uint8 RGB arrays.
- `normalize`: (T, H, W, 3) uint8 -> (3, T, H, W) float32 with the checkpoint's mean / std.
- `clip_views`: all of the above for one video -> (views, 3, T, H, W).
- `fuse_scores`: a weighted ensemble of several models' (and heads') video scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipSpec", "sample_frames", "resize_short_side", "center_crop",
           "three_crop", "flip_horizontal", "normalize", "clip_views", "fuse_scores"]

#: MMAction2's RGB normalisation (ImageNet statistics in 0..255 pixel units), used by all its RGB configs.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ClipSpec:
    """How a checkpoint wants its input: sampling, test views and normalisation.

    Attributes:
        clip_len: frames per clip (T).
        frame_interval: stride between sampled frames (tau), in decoded frames.
        num_clips: clips per video at test time (10 for most Kinetics models).
        short_side: resize target of the shorter image side, pixels.
        crop: 'center' (one crop of `crop_size`) or 'three' (three `crop_size` crops along the long side).
        crop_size: square crop side, pixels.
        flip: also evaluate the horizontally flipped views.
        mean, std: per-channel RGB normalisation, 0..255 units.
    """

    clip_len: int
    frame_interval: int
    num_clips: int = 10
    short_side: int = 256
    crop: str = "three"
    crop_size: int = 256
    flip: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def views_per_clip(self) -> int:
        return (3 if self.crop == "three" else 1) * (2 if self.flip else 1)


def sample_frames(num_frames: int, *, clip_len: int, frame_interval: int = 1, num_clips: int = 1,
                  test_mode: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices of `num_clips` clips, shape (num_clips, clip_len), MMAction2's `SampleFrames`.

    Each clip spans `clip_len * frame_interval` frames. Test mode: clip starts evenly
    spaced, each at the centre of its segment (`(k + 0.5) * avg_interval`). Training:
    one random start per segment (TSN-style), or sorted random starts when the video is
    shorter than `num_clips` segments. Indices past the end wrap around (MMAction2's 'loop').
    """
    if num_frames < 1:
        raise ValueError(f"sample_frames: the video has no frames (num_frames={num_frames})")
    span = clip_len * frame_interval
    if test_mode:
        avg = (num_frames - span + 1) / float(num_clips)
        if num_frames > span - 1:
            starts = (np.arange(num_clips) * avg + avg / 2.0).astype(np.int64)
        else:
            starts = np.zeros(num_clips, dtype=np.int64)
    else:
        rng = rng if rng is not None else np.random.default_rng()
        avg = (num_frames - span + 1) // num_clips
        if avg > 0:
            starts = np.arange(num_clips) * avg + rng.integers(0, avg, size=num_clips)
        elif num_frames > max(num_clips, span):
            starts = np.sort(rng.integers(0, num_frames - span + 1, size=num_clips))
        elif avg == 0:
            ratio = (num_frames - span + 1.0) / num_clips
            starts = np.around(np.arange(num_clips) * ratio).astype(np.int64)
        else:
            starts = np.zeros(num_clips, dtype=np.int64)
    idx = starts[:, None] + np.arange(clip_len)[None, :] * frame_interval
    return np.mod(idx, num_frames).astype(np.int64)


def resize_short_side(frames: np.ndarray, short_side: int) -> np.ndarray:
    """(T, H, W, 3) -> (T, H', W', 3) with min(H', W') = short_side, aspect kept (bilinear, as mmcv)."""
    import cv2

    t, h, w, _ = frames.shape
    if min(h, w) == short_side:
        return frames
    if h < w:
        nh, nw = short_side, int(round(w * short_side / h))
    else:
        nh, nw = int(round(h * short_side / w)), short_side
    return np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames])


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) -> (T, size, size, 3) centred (offsets rounded down, as MMAction2's CenterCrop)."""
    _, h, w, _ = frames.shape
    if size > h or size > w:
        raise ValueError(f"center_crop: crop {size} larger than the frames ({h} x {w})")
    y, x = (h - size) // 2, (w - size) // 2
    return frames[:, y:y + size, x:x + size]


def three_crop(frames: np.ndarray, size: int) -> list[np.ndarray]:
    """Three (T, size, size, 3) crops along the long side: start, centre, end (MMAction2's ThreeCrop)."""
    _, h, w, _ = frames.shape
    if size > h or size > w:
        raise ValueError(f"three_crop: crop {size} larger than the frames ({h} x {w})")
    if w >= h:
        y = (h - size) // 2
        xs = (0, (w - size) // 2, w - size)
        return [frames[:, y:y + size, x:x + size] for x in xs]
    x = (w - size) // 2
    ys = (0, (h - size) // 2, h - size)
    return [frames[:, y:y + size, x:x + size] for y in ys]


def flip_horizontal(frames: np.ndarray) -> np.ndarray:
    """Mirror (T, H, W, 3) frames left-right."""
    return frames[:, :, ::-1]


def normalize(frames: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (3, T, H, W) float32 `(x - mean) / std`."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    x = (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    return x.permute(3, 0, 1, 2).contiguous()


def clip_views(frames: Mapping[int, np.ndarray], clip_indices: np.ndarray, spec: ClipSpec) -> torch.Tensor:
    """Decoded frames {index: (H, W, 3)} + (clips, T) indices -> (clips * views_per_clip, 3, T, S, S).

    Views are ordered clip-major: for each clip, each crop, then its flip.
    """
    views = []
    for clip in clip_indices:
        stack = resize_short_side(np.stack([frames[int(i)] for i in clip]), spec.short_side)
        crops = three_crop(stack, spec.crop_size) if spec.crop == "three" else [center_crop(stack, spec.crop_size)]
        for c in crops:
            views.append(normalize(c, spec.mean, spec.std))
            if spec.flip:
                views.append(normalize(flip_horizontal(c), spec.mean, spec.std))
    return torch.stack(views)


def fuse_scores(scores: Mapping[str, torch.Tensor | Mapping[str, torch.Tensor]],
                weights: Mapping[str, float | Mapping[str, float]] | None = None) -> torch.Tensor:
    """Weighted ensemble of video-level scores: sum over models (and heads) of weight x score.

    Args:
        scores: {model: (N, K) scores} or {model: {head: (N, K)}} (e.g. RGBPoseConv3D's
            'rgb' and 'pose' heads).
        weights: {model: w} or {model: {head: w}}; missing models / heads weigh 1.
            Weights are used as given (not renormalised), as the seeds' fusion does.

    Returns:
        (N, K) fused scores.
    """
    weights = weights or {}
    total = None
    for model, s in scores.items():
        w = weights.get(model, 1.0)
        if isinstance(s, Mapping):
            for head, t in s.items():
                hw = w.get(head, 1.0) if isinstance(w, Mapping) else w
                total = t * hw if total is None else total + t * hw
        else:
            if isinstance(w, Mapping):
                raise ValueError(f"fuse_scores: weights for {model!r} are per head but its scores are one tensor")
            total = s * w if total is None else total + s * w
    if total is None:
        raise ValueError("fuse_scores: no scores given")
    return total
