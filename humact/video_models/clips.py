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
- `read_video_list`, `VideoClipDataset`: a folder of videos + MMAction2's `path label`
  list as training / test items for the shared trainer (`humact.train.trainer.Trainer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipSpec", "sample_frames", "resize_short_side", "center_crop",
           "three_crop", "flip_horizontal", "normalize", "clip_views", "fuse_scores", "read_video_list",
           "VideoClipDataset"]

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


def read_video_list(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[tuple[Path, int]]:
    """MMAction2's video list: `relative/or/absolute/path label` per line -> [(path, label)].

    Paths are resolved against `root` (default: the list file's folder). Blank lines and
    `#` comments are skipped. ValueError names the file, the line and what is wrong.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
            raise ValueError(f"{path}:{n}: expected '<video path> <label index>', got {line!r}")
        video = Path(parts[0])
        out.append((video if video.is_absolute() else root / video, int(parts[1])))
    return out


class VideoClipDataset:
    """Labelled videos -> `(clip (3, T, S, S) float32, label)` items for the shared `Trainer`.

    Training items: a random `spec.clip_len x spec.frame_interval` clip (`sample_frames`
    in training mode), short side resized to `short_side`, a random `crop_size` crop and a
    random horizontal flip, normalised; test items: the centre clip and crop. Randomness
    is seeded by (seed, epoch, item), and `set_epoch` is called by the trainer, so runs
    are reproducible. With `cache`, each video is decoded once (all frames, already
    resized); otherwise only the frames each clip needs are decoded, per item.
    """

    def __init__(self, videos: Sequence[tuple[str | os.PathLike, int]], spec: ClipSpec, *, train: bool = True,
                 clips_per_video: int = 1, short_side: int | None = None, crop_size: int | None = None,
                 seed: int = 0, cache: bool = True) -> None:
        from humact.video import probe

        self.videos = [(Path(p), int(y)) for p, y in videos]
        self.spec = spec
        self.train = train
        self.clips_per_video = clips_per_video
        self.short_side = short_side or spec.short_side
        self.crop_size = crop_size or spec.crop_size
        self.seed = seed
        self.epoch = 0
        self.num_frames = [probe(p).num_frames for p, _ in self.videos]
        self._cache: dict[int, np.ndarray] = {}
        if cache:
            from humact.video import read_frames

            for v, (p, _) in enumerate(self.videos):
                frames = np.stack([f for _, f in read_frames(p)])
                self._cache[v] = resize_short_side(frames, self.short_side)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    def _frames(self, v: int, indices: np.ndarray) -> np.ndarray:
        if v in self._cache:
            return self._cache[v][indices]
        from humact.video import read_frames

        got = dict(read_frames(self.videos[v][0], indices=np.unique(indices)))
        return resize_short_side(np.stack([got[int(i)] for i in indices]), self.short_side)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        v = i // self.clips_per_video
        rng = np.random.default_rng((self.seed, self.epoch, i))
        if self.train:
            idx = sample_frames(self.num_frames[v], clip_len=self.spec.clip_len,
                                frame_interval=self.spec.frame_interval, num_clips=1, test_mode=False, rng=rng)[0]
        else:
            k = i % self.clips_per_video
            idx = sample_frames(self.num_frames[v], clip_len=self.spec.clip_len,
                                frame_interval=self.spec.frame_interval, num_clips=self.clips_per_video)[k]
        frames = self._frames(v, idx)
        _, h, w, _ = frames.shape
        s = self.crop_size
        if self.train:
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            frames = frames[:, y:y + s, x:x + s]
            if rng.random() < 0.5:
                frames = flip_horizontal(frames)
        else:
            frames = center_crop(frames, s)
        return normalize(frames, self.spec.mean, self.spec.std), self.videos[v][1]
