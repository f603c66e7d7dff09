"""RGBPoseConv3D's input: RGB frames decoded from a sample's video and pose heatmaps from its keypoints.

PYSKL's `configs/rgbpose_conv3d/rgbpose_conv3d.py` pipeline, step by step (`rgbpose_views`):

    MMUniformSampleFrames clip_len {RGB: T/4, Pose: T}   RGB then Pose indices, each PYSKL's uniform
                                                         sampling over the whole video (`uniform_sample_indices`)
    MMDecode                                             only the RGB indices are decoded (`video.read_frames`,
                                                         seeking); keypoints rescaled if the video's frame
                                                         size differs from the sample's `img_shape`
    MMCompact hw_ratio 1, allow_imgpad                   one square box around the sampled poses
                                                         (`pipelines.compact_box`), frames zero-padded and cut
    Resize 4 x heatmap_test_size (256), square           frames and keypoints
    train: RandomResizedCrop area 0.56..1, Resize 4 x heatmap_size (224), Flip 0.5 (frames and
           keypoints, left/right joints swapped)
    GeneratePoseTarget sigma 0.7, scaling 0.25           heatmaps at a quarter of the frames' side (56 / 64)
    Normalize (ImageNet mean / std, RGB), FormatShape NCTHW

so an item is `imgs (clips, 3, T/4, S, S)` float32 and `heatmaps (clips, K, T, S/4, S/4)`; training
gives one clip, testing `num_clips` (PYSKL's fixed-seed test sampling, no flip). Each frame is cut
and resized as it is decoded, so memory is `clips x T/4` frames of S x S whatever the video's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from humact.errors import ConfigError, InputError
from humact.skeleton import pipelines as P
from humact.skeleton.datasets import Recipe, SkeletonDataset, SkeletonSample, layout_limbs, to_pixel_frame

__all__ = ["SPEED_RATIO", "RGBPOSE_SIGMA", "RGBPoseViews", "sample_modalities", "crop_frame", "rgbpose_views",
           "RGBPoseClips"]

#: Pose frames per RGB frame, and RGB pixels per heatmap pixel (PYSKL's `speed_ratio` 4, `scaling` 0.25).
SPEED_RATIO = 4
#: PYSKL's GeneratePoseTarget sigma in the rgbpose_conv3d configs (PoseConv3D alone uses 0.6).
RGBPOSE_SIGMA = 0.7
#: MMCompact's padding around the poses, and PYSKL's RandomResizedCrop area range.
COMPACT_PADDING = 0.25
CROP_AREA = (0.56, 1.0)


@dataclass
class RGBPoseViews:
    """One sample's network input and how it was drawn.

    Attributes:
        imgs: (clips, 3, T / 4, S, S) float32 normalised RGB.
        heatmaps: (clips, K, T, S / 4, S / 4) float32.
        rgb_inds, pose_inds: (clips * T / 4,) and (clips * T,) frame indices of the video.
        box: (x0, y0, x1, y1) MMCompact's crop in the video's pixels (may reach outside the frame).
        flipped: whether the horizontal flip was applied (training).
    """

    imgs: torch.Tensor
    heatmaps: torch.Tensor
    rgb_inds: np.ndarray
    pose_inds: np.ndarray
    box: tuple[int, int, int, int]
    flipped: bool = False


def sample_modalities(total_frames: int, clip_len: int, *, num_clips: int = 1, test_mode: bool = False,
                      rng: np.random.RandomState | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PYSKL's `MMUniformSampleFrames` with `clip_len=dict(RGB=clip_len / 4, Pose=clip_len)`:
    (RGB indices, pose indices), each `uniform_sample_indices` over the whole video, RGB drawn first
    from the same generator (training) or both with the fixed test seed (testing)."""
    if clip_len % SPEED_RATIO:
        raise ConfigError(f"input.clip_len: RGBPoseConv3D takes clip_len / {SPEED_RATIO} RGB frames, so clip_len "
                          f"must be a multiple of {SPEED_RATIO}, got {clip_len}")
    if not test_mode and rng is None:
        rng = np.random.RandomState()
    rgb = P.uniform_sample_indices(total_frames, clip_len // SPEED_RATIO, num_clips=num_clips, test_mode=test_mode,
                                   rng=rng)
    pose = P.uniform_sample_indices(total_frames, clip_len, num_clips=num_clips, test_mode=test_mode, rng=rng)
    return rgb, pose


def crop_frame(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """MMCompact's image crop: (H, W, 3) -> (y1 - y0, x1 - x0, 3), zeros where the box leaves the frame."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    out = np.zeros((y1 - y0, x1 - x0) + frame.shape[2:], frame.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return out


def _resize(frame: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    if frame.shape[0] == h and frame.shape[1] == w:
        return frame
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)  # mmcv.imresize's bilinear


def rgbpose_views(keypoint: np.ndarray, keypoint_score: np.ndarray | None, img_shape: tuple[int, int],
                  video: str | os.PathLike, *, train: bool, clip_len: int = 32, num_clips: int = 1,
                  heatmap_size: int = 56, heatmap_test_size: int = 64, flip_ratio: float = 0.5,
                  flip_index: tuple[int, ...] | None = None, with_limb: bool = False,
                  skeletons: tuple[tuple[int, int], ...] = P.POSEC3D_COCO_LIMBS,
                  mean=None, std=None, rng: np.random.RandomState | None = None,
                  frames: dict[int, np.ndarray] | None = None, name: str = "") -> RGBPoseViews:
    """PYSKL's RGBPoseConv3D pipeline (module docstring) for one sample.

    Args:
        keypoint: (M, T, V, 2) pixels of the video's frames of size `img_shape` (h, w).
        keypoint_score: (M, T, V) or None (all 1).
        video: the file the frames are decoded from (only the sampled ones).
        train: PYSKL's train pipeline (random sampling, crop, flip; one clip) or its test one
            (`num_clips` fixed-seed clips).
        clip_len: pose frames per clip (the RGB clip has clip_len / 4).
        heatmap_size / heatmap_test_size: heatmap side in training / testing; the RGB side is 4x.
        flip_index: left/right joint permutation (default COCO-17's).
        frames: already decoded frames {index: (H, W, 3)} instead of decoding `video` (tests).
    """
    from humact.video import probe, read_frames
    from humact.video_models.clips import IMAGENET_MEAN, IMAGENET_STD, normalize

    where = name or os.fspath(video)
    total = keypoint.shape[1]
    rgb_inds, pose_inds = sample_modalities(total, clip_len, num_clips=1 if train else num_clips,
                                            test_mode=not train, rng=rng)
    clips = 1 if train else num_clips
    kp, score = P.pose_decode(keypoint, keypoint_score, pose_inds)
    h, w = int(img_shape[0]), int(img_shape[1])
    if frames is None:
        meta = probe(video)
        if meta.num_frames < total:
            raise InputError(f"{where}: the video {os.fspath(video)} has {meta.num_frames} frames, its keypoints "
                             f"{total} (field keypoint): is it the video they were extracted from?")
        vh, vw = meta.height, meta.width
    else:
        vh, vw = next(iter(frames.values())).shape[:2]
    if (vh, vw) != (h, w):
        # MMDecode: keypoints follow the decoded frames' size (missing joints stay 0).
        present = np.linalg.norm(kp, axis=-1, keepdims=True) > 1e-4
        kp = np.where(present, kp * np.array([vw / w, vh / h], np.float32), kp)
        h, w = vh, vw
    box = P.compact_box(kp, (h, w), padding=COMPACT_PADDING, hw_ratio=1.0, allow_imgpad=True) or (0, 0, w, h)
    x0, y0, x1, y1 = box
    kp = kp.copy()
    kp[..., 0][kp[..., 0] != 0] -= x0
    kp[..., 1][kp[..., 1] != 0] -= y0
    shape = (y1 - y0, x1 - x0)
    base = SPEED_RATIO * heatmap_test_size
    kp, shape = P.resize(kp, shape, (base, base), keep_ratio=False)
    crop, flipped = None, False
    side = base
    if train:
        kp, shape, crop = P.random_resized_crop(kp, shape, area_range=CROP_AREA, rng=rng)
        side = SPEED_RATIO * heatmap_size
        kp, shape = P.resize(kp, shape, (side, side), keep_ratio=False)
        flipped = bool(rng.rand() < flip_ratio)
        if flipped:
            order = flip_index if flip_index is not None else _coco_flip()
            kp, score = P.flip(kp, score, side, order)

    def view(frame: np.ndarray) -> np.ndarray:
        out = _resize(crop_frame(frame, box), base, base)
        if crop is not None:
            cx0, cy0, cx1, cy1 = crop
            out = _resize(out[cy0:cy1, cx0:cx1], side, side)
        return out[:, ::-1] if flipped else out

    wanted = np.unique(rgb_inds)
    if frames is None:
        got = {i: view(f) for i, f in read_frames(video, indices=wanted)}
    else:
        got = {int(i): view(frames[int(i)]) for i in wanted}
    missing = [int(i) for i in wanted if int(i) not in got]
    if missing:
        raise InputError(f"{where}: frame {missing[0]} of {os.fspath(video)} could not be decoded")
    rgb = np.stack([got[int(i)] for i in rgb_inds]).reshape(clips, clip_len // SPEED_RATIO, side, side, 3)
    mean = IMAGENET_MEAN if mean is None else mean
    std = IMAGENET_STD if std is None else std
    imgs = torch.stack([normalize(c, mean, std) for c in rgb])
    kw = dict(with_kp=not with_limb, with_limb=with_limb)
    if with_limb:
        kw["skeletons"] = skeletons
    heat = P.generate_pose_target(kp, score, shape, sigma=RGBPOSE_SIGMA, scaling=1.0 / SPEED_RATIO, **kw)
    heat = P.format_heatmap_input(heat, num_clips=clips, clip_len=clip_len)
    return RGBPoseViews(imgs, torch.from_numpy(heat), rgb_inds, pose_inds, box, flipped)


def _coco_flip() -> tuple[int, ...]:
    order = list(range(17))
    for a, b in zip(P.COCO_LEFT_KP, P.COCO_RIGHT_KP):
        order[a], order[b] = b, a
    return tuple(order)


class RGBPoseClips:
    """A torch-style dataset of RGBPoseConv3D inputs: `((imgs, heatmaps), label)` items (`rgbpose_views`).

    Every sample needs its `video` (recorded by `humact extract`: the pickle's `filename`) and pixel
    keypoints (`img_shape`). Training: one clip per item, drawn from a generator seeded by (seed,
    epoch, index) so an epoch is reproducible; testing: `num_clips` clips of PYSKL's fixed-seed test
    sampling. `recipe.clip_len` is the pose clip (PYSKL: 32; RGB gets a quarter), `heatmap_size` /
    `heatmap_test_size` the heatmap side (56 / 64; RGB 4x: 224 / 256), `flip` the flip probability,
    `heatmap` keypoint or limb channels, `max_persons` the persons drawn.
    """

    def __init__(self, data: SkeletonDataset, recipe: Recipe, *, train: bool, num_clips: int = 1, seed: int = 0):
        from humact.skeleton.graph import get_layout

        if recipe.clip_len % SPEED_RATIO:
            raise ConfigError(f"input.clip_len: RGBPoseConv3D takes clip_len / {SPEED_RATIO} RGB frames; clip_len "
                              f"must be a multiple of {SPEED_RATIO}, got {recipe.clip_len}")
        if recipe.heatmap not in ("keypoint", "limb"):
            raise InputError(f"heatmap: expected 'keypoint' or 'limb', got {recipe.heatmap!r}")
        where = data.source or "data"
        for s in data.samples:
            if not s.video:
                raise InputError(f"{where}: sample {s.name!r} records no video (field filename): RGBPoseConv3D "
                                 f"decodes the frames of the video its poses came from; re-run `humact extract` "
                                 f"on the videos")
            if s.img_shape is None or s.keypoint.shape[-1] != 2:
                raise InputError(f"{where}: sample {s.name!r}: RGBPoseConv3D needs 2D keypoints in the video's "
                                 f"pixels (fields keypoint, img_shape)")
        self.data, self.recipe, self.train, self.num_clips, self.seed = data, recipe, train, num_clips, seed
        self.epoch = 0
        lay = get_layout(data.layout)
        limbs, _, _ = layout_limbs(data.layout)
        self.num_channels = len(limbs) if recipe.heatmap == "limb" else lay.num_node
        self._kw = dict(clip_len=recipe.clip_len, heatmap_size=recipe.heatmap_size,
                        heatmap_test_size=recipe.heatmap_test_size, flip_ratio=recipe.flip,
                        flip_index=tuple(lay.flip_index), with_limb=recipe.heatmap == "limb", skeletons=limbs)
        self._prepared = [to_pixel_frame(s, recipe.max_persons) for s in data.samples]

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def views(self, i: int) -> RGBPoseViews:
        s: SkeletonSample = self.data.samples[i]
        kp, score, shape = self._prepared[i]
        rng = np.random.RandomState([self.seed, self.epoch, i]) if self.train else None
        return rgbpose_views(kp, score, shape, s.video, train=self.train, num_clips=self.num_clips, rng=rng,
                             name=s.name, **self._kw)

    def __getitem__(self, i: int):
        v = self.views(i)
        return (v.imgs, v.heatmaps), int(self.data.samples[i].label)
