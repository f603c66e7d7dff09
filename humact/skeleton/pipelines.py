"""PYSKL's skeleton data pipeline, typed and vectorised.

Every transform exists twice (STYLE.md): as a plain function on arrays (``pose_compact``,
``generate_pose_target``, ...) and as a thin class with PYSKL's name and arguments
(``PoseCompact``, ``GeneratePoseTarget``, ...) that maps a :class:`PoseSample` to a new
:class:`PoseSample`. :class:`Compose` chains the classes; :func:`gcn_pipeline` and
:func:`posec3d_pipeline` build PYSKL's standard train / test recipes.

The sample type (instead of PYSKL's untyped ``results`` dict)::

    PoseSample(
        keypoint,        # (M, T, V, C) float32: M persons, T frames, V joints;
                         # C = 2 (x, y pixels) or 3 (x, y, z metres / or x, y, score after GenSkeFeat)
        keypoint_score,  # (M, T, V) float32 confidence in [0, 1], or None (3D / ground truth)
        img_shape,       # (h, w) pixels of the frame the 2D coordinates live in
        total_frames,    # T of the full video (before sampling)
        label=-1,        # class index
        frame_inds=None, # (num_clips * clip_len,) int indices into T, set by UniformSampleFrames
        clip_len=None, num_clips=1,
        crop_quadruple=(0., 0., 1., 1.),  # x, y, w, h of the current view in the original frame (0..1)
        flip=False,
        imgs=None,       # heatmaps (frames, K, H, W) float32 after GeneratePoseTarget
        test_mode=False, # fixed-seed sampling (PYSKL's test mode)
        name="",         # PYSKL's frame_dir
    )

Network inputs: :func:`format_gcn_input` gives ``(num_clips, M, clip_len, V, C)`` for the
GCNs (``humact.skeleton.stgcn``); :func:`format_heatmap_input` gives
``(crops * num_clips, K, clip_len, H, W)`` for PoseConv3D.

Randomness: every random transform takes an ``rng`` (a ``numpy.random.RandomState``); test-
time sampling re-seeds its own ``RandomState(seed)`` (PYSKL's fixed seed 255) and never
touches numpy's global state. ``UniformSampleFrames`` in test mode draws exactly the
numbers PYSKL draws, so its indices are PYSKL's.

Differences from PYSKL: functions never modify their inputs (PYSKL's PoseCompact /
GeneratePoseTarget write into the caller's array); ``GeneratePoseTarget`` evaluates all
Gaussian windows of all frames at once (NumPy, no per-joint Python loop) with the same
window bounds and the same float32 arithmetic as PYSKL's loops: keypoint heatmaps are
bit-identical to PYSKL's; limb heatmaps skip the pixels whose value would be under
``LIMB_TAIL`` = 1e-7 x score (far from the limb) and take the exponential in float32
where PYSKL's is float64, so they differ from PYSKL's by less than 2e-7.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from humact.errors import InputError
from humact.skeleton.graph import Layout, get_layout

__all__ = [
    "PoseSample",
    "COCO_LIMBS", "COCO_LEFT_LIMB", "COCO_RIGHT_LIMB", "COCO_LEFT_KP", "COCO_RIGHT_KP",
    "POSEC3D_COCO_LIMBS", "POSEC3D_LEFT_LIMB", "POSEC3D_RIGHT_LIMB",
    "pre_normalize_2d", "pre_normalize_3d", "joint_to_bone", "to_motion", "gen_ske_feat", "STREAMS",
    "body_normalize", "normalize_skeleton", "stretch_indices", "rotation_3d",
    "TemporalCrop", "StretchSample", "RandomRot", "RandomScale", "FlipSkeleton", "ViewRotate",
    "MinMaxNormalize", "PadPersons", "SkeletonStream", "skeleton_pipeline",
    "uniform_sample_indices", "pose_decode", "compact_box", "pose_compact", "resize", "random_resized_crop",
    "flip", "random_joint_drop", "generate_pose_target", "format_gcn_input",
    "format_heatmap_input",
    "PreNormalize2D", "PreNormalize3D", "GenSkeFeat", "UniformSampleFrames", "UniformSample",
    "PoseDecode", "PoseCompact", "Resize", "RandomResizedCrop", "Flip", "RandomJointDrop",
    "GeneratePoseTarget", "FormatGCNInput", "Compose", "gcn_pipeline", "posec3d_pipeline",
]

#: PYSKL's COCO-17 limbs for limb heatmaps, and which of them are left / right.
COCO_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (5, 7), (7, 9), (0, 6), (6, 8), (8, 10),
    (5, 11), (11, 13), (13, 15), (6, 12), (12, 14), (14, 16), (11, 12))
COCO_LEFT_LIMB: tuple[int, ...] = (0, 2, 4, 5, 6, 10, 11, 12)
COCO_RIGHT_LIMB: tuple[int, ...] = (1, 3, 7, 8, 9, 13, 14, 15)
#: The limb list, left and right limbs of PYSKL's PoseConv3D limb configs
#: (``configs/posec3d/*/limb.py``), which the released limb models were trained with.
POSEC3D_COCO_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 5), (0, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (11, 13), (13, 15), (6, 12),
    (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4), (11, 12))
POSEC3D_LEFT_LIMB: tuple[int, ...] = (0, 2, 3, 6, 7, 8, 12, 14)
POSEC3D_RIGHT_LIMB: tuple[int, ...] = (1, 4, 5, 9, 10, 11, 13, 15)
COCO_LEFT_KP: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)
COCO_RIGHT_KP: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16)

#: Scores below this draw nothing (PYSKL's heatmap EPS).
HEATMAP_EPS = 1e-3
#: exp(-x) * v (v <= 1) rounds to exactly 0 in float32 for x > 104 (the smallest float32
#: subnormal is 1.4e-45 = exp(-103.3)); those pixels are not computed.
_UNDERFLOW = 104.0
#: Limb heatmaps skip the pixels whose value would be below this (relative to the score):
#: they are far from the limb; skipping them halves the work.
LIMB_TAIL = 1e-7


@dataclass
class PoseSample:
    """One skeleton sample flowing through the pipeline (see the module docstring)."""

    keypoint: np.ndarray
    keypoint_score: np.ndarray | None = None
    img_shape: tuple[int, int] = (1080, 1920)
    total_frames: int = -1
    label: int = -1
    frame_inds: np.ndarray | None = None
    clip_len: int | None = None
    num_clips: int = 1
    crop_quadruple: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    flip: bool = False
    imgs: np.ndarray | None = None
    test_mode: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        self.keypoint = np.asarray(self.keypoint)
        # 5-D only after FormatGCNInput: (num_clips, M, clip_len, V, C).
        if self.keypoint.ndim not in (4, 5):
            raise ValueError(f"PoseSample {self.name!r}: keypoint must be (M, T, V, C), got {self.keypoint.shape}")
        if self.keypoint_score is not None:
            self.keypoint_score = np.asarray(self.keypoint_score)
            if self.keypoint_score.shape != self.keypoint.shape[:3]:
                raise ValueError(f"PoseSample {self.name!r}: keypoint_score must be "
                                 f"{self.keypoint.shape[:3]}, got {self.keypoint_score.shape}")
        if self.total_frames < 0:
            self.total_frames = self.keypoint.shape[-3]
        self.img_shape = (int(self.img_shape[0]), int(self.img_shape[1]))

    def replace(self, **changes) -> "PoseSample":
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------- normalisation and features


def pre_normalize_2d(keypoint: np.ndarray, img_shape: tuple[int, int],
                     keypoint_score: np.ndarray | None = None, *, threshold: float = 0.01,
                     mode: str = "fix") -> np.ndarray:
    """Pixel coordinates -> about [-1, 1] (PYSKL's ``PreNormalize2D``).

    Args:
        keypoint: ``(M, T, V, 2)`` pixels, or ``(M, T, V, 3)`` with the score already last.
        img_shape: ``(h, w)`` of the frame (``mode='fix'``: centre and half-size of the frame).
        keypoint_score: ``(M, T, V)``; when given it becomes channel 2 of the result.
        threshold: joints scoring at most this get x = y = 0 (PYSKL's "missing").
        mode: ``'fix'`` (the frame) or ``'auto'`` (the box of the confident joints, when it
            is over 10 px wide and high).

    Returns:
        ``(M, T, V, C)`` float32, ``C = 3`` when a score is present.
    """
    kp = np.asarray(keypoint, dtype=np.float32).copy()
    if keypoint_score is not None:
        kp = np.concatenate([kp, np.asarray(keypoint_score, np.float32)[..., None]], axis=-1)
    mask = maskout = None
    if kp.shape[-1] == 3:
        mask = kp[..., 2] > threshold
        maskout = ~mask
    if mode == "auto":
        pts = kp[mask] if mask is not None else kp.reshape(-1, kp.shape[-1])
        if len(pts):
            x_max, x_min = pts[:, 0].max(), pts[:, 0].min()
            y_max, y_min = pts[:, 1].max(), pts[:, 1].min()
        else:
            x_max = x_min = y_max = y_min = 0
        if (x_max - x_min) > 10 and (y_max - y_min) > 10:
            kp[..., 0] = (kp[..., 0] - (x_max + x_min) / 2) / (x_max - x_min) * 2
            kp[..., 1] = (kp[..., 1] - (y_max + y_min) / 2) / (y_max - y_min) * 2
    elif mode == "fix":
        h, w = img_shape
        kp[..., 0] = (kp[..., 0] - (w / 2)) / (w / 2)
        kp[..., 1] = (kp[..., 1] - (h / 2)) / (h / 2)
    else:
        raise ValueError(f"pre_normalize_2d: mode must be 'fix' or 'auto', got {mode!r}")
    if maskout is not None:
        kp[..., 0][maskout] = 0
        kp[..., 1][maskout] = 0
    return kp


def _rotation_matrix(axis: np.ndarray, theta: float) -> np.ndarray:
    """Counter-clockwise rotation by ``theta`` about ``axis`` (Euler-Rodrigues)."""
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def _angle_between(v1: np.ndarray, v2) -> float:
    v2 = np.asarray(v2, dtype=np.float64)
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0.0
    v1u, v2u = v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    return float(np.arccos(np.clip(np.dot(v1u, v2u), -1.0, 1.0)))


def pre_normalize_3d(keypoint: np.ndarray, *, zaxis: Sequence[int] = (0, 1),
                     xaxis: Sequence[int] = (8, 4), align_spine: bool = True,
                     align_center: bool = True) -> np.ndarray:
    """Centre and rotate 3D skeletons (PYSKL's ``PreNormalize3D``, from 2s-AGCN).

    Drops the frames where the main person is all zero (the person with more non-empty
    frames becomes person 0), subtracts the first frame's body centre (joint 1 for 25-joint
    NTU skeletons, else the last joint), rotates the first frame's ``zaxis`` bone onto +z
    and its ``xaxis`` bone onto +x. ``keypoint``: ``(M, T, V, 3)``, M <= 2; returns
    ``(M, T', V, 3)``.
    """
    skeleton = np.asarray(keypoint)
    M, T, V, C = skeleton.shape
    if C != 3:
        raise ValueError(f"pre_normalize_3d: expects (M, T, V, 3), got {skeleton.shape}")
    if skeleton.sum() == 0:
        return skeleton.copy()
    if M not in (1, 2):
        raise ValueError(f"pre_normalize_3d: supports 1 or 2 persons, got {M}")
    nonempty = ~np.all(np.isclose(skeleton, 0), axis=(2, 3))  # (M, T)
    index0 = np.flatnonzero(nonempty[0])
    if M == 2:
        index1 = np.flatnonzero(nonempty[1])
        if len(index0) < len(index1):
            skeleton = skeleton[:, index1][[1, 0]]
        else:
            skeleton = skeleton[:, index0]
    else:
        skeleton = skeleton[:, index0]

    if align_center:
        center = skeleton[0, 0, 1].copy() if V == 25 else skeleton[0, 0, -1].copy()
        mask = ((skeleton != 0).sum(-1) > 0)[..., None]
        skeleton = (skeleton - center) * mask
    if align_spine:
        bottom, top = skeleton[0, 0, zaxis[0]], skeleton[0, 0, zaxis[1]]
        axis = np.cross(top - bottom, [0, 0, 1])
        rot_z = _rotation_matrix(axis, _angle_between(top - bottom, [0, 0, 1]))
        skeleton = np.einsum("abcd,kd->abck", skeleton, rot_z)
        right, left = skeleton[0, 0, xaxis[0]], skeleton[0, 0, xaxis[1]]
        axis = np.cross(right - left, [1, 0, 0])
        rot_x = _rotation_matrix(axis, _angle_between(right - left, [1, 0, 0]))
        skeleton = np.einsum("abcd,kd->abck", skeleton, rot_x)
    return skeleton


def _layout(layout: str | Layout) -> Layout:
    return get_layout(layout) if isinstance(layout, str) else layout


def joint_to_bone(keypoint: np.ndarray, layout: str | Layout, *, score_channel: bool = False) -> np.ndarray:
    """Bones ``joint[v] - joint[parent(v)]`` with the layout's PYSKL bone pairs (``JointToBone``).

    ``keypoint``: ``(M, T, V, C)``, C in (2, 3). With ``score_channel`` (2D joints with their
    confidence as third channel, PYSKL's 2D input), channel 2 of a bone is the mean score of its two
    joints instead of a difference. Joints not in a pair get a zero bone. Returns float32.
    """
    lay = _layout(layout)
    M, T, V, C = keypoint.shape
    if C not in (2, 3):
        raise ValueError(f"joint_to_bone: C must be 2 or 3, got {C}")
    pairs = np.asarray(lay.bone_pairs, dtype=np.int64)
    v1, v2 = pairs[:, 0], pairs[:, 1]
    bone = np.zeros((M, T, V, C), dtype=np.float32)
    bone[..., v1, :] = keypoint[..., v1, :] - keypoint[..., v2, :]
    if score_channel and C == 3:
        bone[..., v1, 2] = (keypoint[..., v1, 2] + keypoint[..., v2, 2]) / 2
    return bone


def to_motion(data: np.ndarray, *, score_channel: bool = False) -> np.ndarray:
    """Temporal difference ``x[t + 1] - x[t]``, last frame zero (PYSKL's ``ToMotion``).

    With ``score_channel`` (2D + score), channel 2 is the mean score of the two frames.
    """
    M, T, V, C = data.shape
    motion = np.zeros_like(data)
    motion[:, :T - 1] = np.diff(data, axis=1)
    if score_channel and C == 3:
        motion[:, :T - 1, :, 2] = (data[:, :T - 1, :, 2] + data[:, 1:, :, 2]) / 2
    return motion


#: The four PYSKL / CTR-GCN input streams: joint, bone, joint-motion, bone-motion.
STREAMS: tuple[str, ...] = ("j", "b", "jm", "bm")


def gen_ske_feat(keypoint: np.ndarray, keypoint_score: np.ndarray | None, layout: str | Layout,
                 feats: Sequence[str] = ("j",), *, score_channel: bool | None = None) -> np.ndarray:
    """Joint / bone / motion streams concatenated on the last axis (PYSKL's ``GenSkeFeat``).

    The one implementation of the streams (training, testing, analysis and ensembles all use it).
    ``feats``: any of ``'j'`` (joints), ``'b'`` (bones), ``'jm'`` (joint motion), ``'bm'`` (bone
    motion). 2D keypoints with scores become ``(x, y, score)`` first. ``score_channel``: whether
    channel 2 is a confidence (averaged, not differenced); by default, when scores were given or the
    layout is a 2D one with 3 channels (PYSKL: coco, openpose). Returns ``(M, T, V, C * len(feats))``.
    """
    lay = _layout(layout)
    j = np.asarray(keypoint)
    if keypoint_score is not None:
        if j.shape[-1] != 2:
            raise ValueError("gen_ske_feat: only 2D keypoints come with keypoint_score")
        j = np.concatenate([j, keypoint_score[..., None]], -1)
        score_channel = True if score_channel is None else score_channel
    if score_channel is None:
        score_channel = j.shape[-1] == 3 and lay.dims == 2
    unknown = set(feats) - set(STREAMS)
    if unknown:
        raise ValueError(f"gen_ske_feat: unknown feats {sorted(unknown)}; use j, b, jm, bm")
    out = {"j": j}
    if "b" in feats or "bm" in feats:
        out["b"] = joint_to_bone(j, lay, score_channel=score_channel)
    if "jm" in feats:
        out["jm"] = to_motion(j, score_channel=score_channel)
    if "bm" in feats:
        out["bm"] = to_motion(out["b"], score_channel=score_channel)
    return np.asarray(np.concatenate([out[f] for f in feats], axis=-1), np.float32)


def body_normalize(keypoint: np.ndarray, *, center: int | tuple[int, ...], top: int | tuple[int, ...],
                   valid: np.ndarray | None = None) -> np.ndarray:
    """Centre a 2D skeleton sequence on a body point's mean position and scale it by torso size.

    The same function is applied to JHMDB's ground truth and to our COCO-derived joints, so the
    model sees one coordinate system whatever the camera or resolution: origin at the mean of
    the `center` point over the valid frames, unit = median distance between `center` and `top`.
    A point is a joint index or a tuple of joints whose mean is taken (COCO: mid-hips (11, 12),
    mid-shoulders (5, 6); the layout's `body_center` / `body_top`).

    Args:
        keypoint: (M, T, V, 2) coordinates (any unit, y down).
        center, top: body points (JHMDB: belly 1, neck 0).
        valid: (M, T) bool frames where the person is present; default all.
    Returns:
        (M, T, V, 2) float32, 0 where not valid.
    """
    kp = np.asarray(keypoint, np.float32)
    if valid is None:
        valid = np.ones(kp.shape[:2], bool)
    cj, tj = np.atleast_1d(center), np.atleast_1d(top)
    out = np.zeros_like(kp)
    for m in range(kp.shape[0]):
        v = valid[m]
        if not v.any():
            continue
        mid, up = kp[m, v][:, cj].mean(1), kp[m, v][:, tj].mean(1)
        size = float(np.median(np.linalg.norm(up - mid, axis=-1)))
        size = size if size > 1e-6 else 1.0
        out[m, v] = (kp[m, v] - mid.mean(0)) / size
    return out


def normalize_skeleton(keypoint: np.ndarray, layout: str | Layout, mode: str,
                       img_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The whole-sequence normalisations of joint coordinates (M, T, V, C), float32.

    ``"pre2d"``: PYSKL's ``PreNormalize2D`` (``pre_normalize_2d``, mode 'fix'): pixels of the
    ``img_shape`` (h, w) frame to [-1, 1], joints scoring at most 0.01 (channel 2) set to 0.
    ``"ucla"``: origin at the spine joint (index 1) of the first person's first frame, for every
    person (CTR-GCN's NW-UCLA feeder; a shared origin keeps the offset between two people).
    ``"body"``: `body_normalize` on the first two channels with the layout's ``body_center`` /
    ``body_top``, each person on its own, frames where a person is all zeros left at zero.
    ``"none"``: unchanged.
    """
    kp = np.asarray(keypoint, np.float32)
    if mode == "none":
        return kp
    if mode == "pre2d":
        if img_shape is None:
            raise InputError("input.normalize: 'pre2d' scales pixels by the frame size, and this sample has no "
                             "img_shape (use 'body' for data in other units)")
        return pre_normalize_2d(kp, img_shape, mode="fix")
    if mode == "ucla":
        return kp - kp[:1, :1, 1:2, :]
    if mode == "body":
        lay = _layout(layout)
        if not lay.body_center or not lay.body_top:
            raise InputError(f"input.normalize: 'body' needs a layout with body_center and body_top joints; "
                             f"{lay.name!r} has none")
        valid = np.abs(kp[..., :2]).sum((2, 3)) > 0
        kp = kp.copy()
        kp[..., :2] = body_normalize(kp[..., :2], center=lay.body_center, top=lay.body_top, valid=valid)
        return kp
    raise InputError(f"input.normalize: unknown {mode!r}, expected pre2d, ucla, body or none")


# ---------------------------------------------------------------- temporal sampling


def _uniform_clip(rng: np.random.RandomState, num_frames: int, clip_len: int, i: int,
                  num_clips: int, test_mode: bool, p_interval: tuple[float, float]) -> np.ndarray:
    old = num_frames
    ratio = rng.rand() * (p_interval[1] - p_interval[0]) + p_interval[0]
    num_frames = int(ratio * num_frames)
    off = rng.randint(old - num_frames + 1)
    if num_frames < clip_len:
        if test_mode:
            start = i if num_frames < num_clips else i * num_frames // num_clips
        else:
            start = rng.randint(0, num_frames)
        inds = np.arange(start, start + clip_len)
    elif num_frames < 2 * clip_len:
        # clip_len <= n < 2 clip_len: consecutive frames with n - clip_len random skips.
        basic = np.arange(clip_len)
        skips = rng.choice(clip_len + 1, num_frames - clip_len, replace=False)
        offset = np.zeros(clip_len + 1, dtype=np.int64)
        offset[skips] = 1
        inds = basic + np.cumsum(offset)[:-1]
    else:
        # One random frame from each of clip_len equal segments.
        bids = np.array([k * num_frames // clip_len for k in range(clip_len + 1)])
        inds = bids[:clip_len] + rng.randint(np.diff(bids))
    return inds + off


def uniform_sample_indices(total_frames: int, clip_len: int, *, num_clips: int = 1,
                           test_mode: bool = False, seed: int = 255,
                           p_interval: float | tuple[float, float] = 1.0,
                           rng: np.random.RandomState | None = None) -> np.ndarray:
    """PYSKL's ``UniformSampleFrames`` indices: ``(num_clips * clip_len,)`` int64 in ``[0, T)``.

    Each clip splits the (optionally randomly cropped to ``p_interval`` of its length) video
    into ``clip_len`` segments and takes one random frame from each; short videos are looped.
    ``test_mode`` re-seeds with ``seed`` (255) and, for videos shorter than a clip, starts
    clip ``i`` at ``i * T // num_clips`` instead of a random frame, exactly as PYSKL does.
    """
    if total_frames <= 0:
        raise ValueError(f"uniform_sample_indices: total_frames must be positive, got {total_frames}")
    if not isinstance(p_interval, tuple):
        p_interval = (float(p_interval), float(p_interval))
    if test_mode:
        rng = np.random.RandomState(seed)
    elif rng is None:
        rng = np.random.RandomState()
    inds = np.concatenate([
        _uniform_clip(rng, total_frames, clip_len, i, num_clips, test_mode, p_interval)
        for i in range(num_clips)])
    return np.mod(inds, total_frames).astype(np.int64)


def pose_decode(keypoint: np.ndarray, keypoint_score: np.ndarray | None,
                frame_inds: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Gather the sampled frames (PYSKL's ``PoseDecode``): ``(M, len(frame_inds), V, C)`` float32."""
    frame_inds = np.asarray(frame_inds).reshape(-1)
    kp = keypoint[:, frame_inds].astype(np.float32)
    score = None if keypoint_score is None else keypoint_score[:, frame_inds].astype(np.float32)
    return kp, score


# ---------------------------------------------------------------- spatial transforms (2D pixels)


def _combine_quadruple(a, b):
    return (a[0] + a[2] * b[0], a[1] + a[3] * b[1], a[2] * b[2], a[3] * b[3])


def compact_box(keypoint: np.ndarray, img_shape: tuple[int, int], *, padding: float = 0.25,
                threshold: float = 10, hw_ratio: float | tuple[float, float] | None = None,
                allow_imgpad: bool = True) -> tuple[int, int, int, int] | None:
    """The box ``(x0, y0, x1, y1)`` PYSKL's ``PoseCompact`` / ``MMCompact`` crop to, or None.

    The tight box around every non-zero coordinate of all persons and frames (NaN counts as
    zero), grown by ``padding`` and to ``hw_ratio``, truncated to integers; inside the frame
    unless ``allow_imgpad``. None when it is under ``threshold`` pixels wide or high.
    """
    h, w = img_shape
    kp = np.asarray(keypoint)[..., :2]  # in its own dtype: PYSKL computes the box in float32
    kp = np.where(np.isnan(kp), kp.dtype.type(0), kp)
    kx, ky = kp[..., 0], kp[..., 1]
    nzx, nzy = kx != 0, ky != 0
    min_x = np.min(kx[nzx], initial=np.inf)
    min_y = np.min(ky[nzy], initial=np.inf)
    max_x = np.max(kx[nzx], initial=-np.inf)
    max_y = np.max(ky[nzy], initial=-np.inf)
    if max_x - min_x < threshold or max_y - min_y < threshold:
        return None
    center = ((max_x + min_x) / 2, (max_y + min_y) / 2)
    half_w = (max_x - min_x) / 2 * (1 + padding)
    half_h = (max_y - min_y) / 2 * (1 + padding)
    if hw_ratio is not None:
        ratio = (hw_ratio, hw_ratio) if np.isscalar(hw_ratio) else tuple(hw_ratio)
        half_h = max(ratio[0] * half_w, half_h)
        half_w = max(1 / ratio[1] * half_h, half_w)
    x0, x1 = center[0] - half_w, center[0] + half_w
    y0, y1 = center[1] - half_h, center[1] + half_h
    if allow_imgpad:
        return int(x0), int(y0), int(x1), int(y1)
    return int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))


def pose_compact(keypoint: np.ndarray, img_shape: tuple[int, int], *, padding: float = 0.25,
                 threshold: float = 10, hw_ratio: float | tuple[float, float] | None = None,
                 allow_imgpad: bool = True,
                 crop_quadruple=(0.0, 0.0, 1.0, 1.0)) -> tuple[np.ndarray, tuple[int, int], tuple]:
    """Crop the frame to the subjects (PYSKL's ``PoseCompact``).

    The keypoints are shifted into :func:`compact_box`. Zero coordinates (missing joints)
    stay zero; NaNs become zero. Returns ``(keypoint, new img_shape (h, w), crop_quadruple)``;
    unchanged when the box is under ``threshold`` pixels wide or high.
    """
    h, w = img_shape
    kp = np.array(keypoint, copy=True)
    kp[np.isnan(kp)] = 0.0
    box = compact_box(kp, img_shape, padding=padding, threshold=threshold, hw_ratio=hw_ratio,
                      allow_imgpad=allow_imgpad)
    if box is None:
        return kp, (h, w), tuple(crop_quadruple)
    x0, y0, x1, y1 = box
    kx, ky = kp[..., 0], kp[..., 1]
    kx[kx != 0] -= x0
    ky[ky != 0] -= y0
    quad = _combine_quadruple(crop_quadruple, (x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h))
    return kp, (y1 - y0, x1 - x0), quad


def rescale_size(old_wh: tuple[int, int], scale) -> tuple[int, int]:
    """mmcv's ``rescale_size``: the (w, h) that fits ``scale`` keeping the aspect ratio.

    ``scale`` is a factor, or ``(long, short)`` edge limits (``-1`` = unlimited).
    """
    w, h = old_wh
    if isinstance(scale, (int, float)):
        factor = float(scale)
    else:
        long_edge, short_edge = max(scale), min(scale)
        if short_edge == -1:
            long_edge, short_edge = np.inf, long_edge
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def resize(keypoint: np.ndarray, img_shape: tuple[int, int], scale, *,
           keep_ratio: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """Rescale x, y to a new frame size (PYSKL's ``Resize`` on keypoints).

    ``scale``: with ``keep_ratio``, a factor or ``(long, short)`` edge limits (``(-1, 64)``:
    short edge 64); without, the output ``(w, h)``. Returns ``(keypoint, (h, w))``.
    """
    h, w = img_shape
    if keep_ratio:
        new_w, new_h = rescale_size((w, h), scale)
    else:
        new_w, new_h = int(scale[0]), int(scale[1])
    factor = np.array([new_w / w, new_h / h], dtype=np.float32)
    kp = np.array(keypoint, copy=True)
    kp[..., :2] = kp[..., :2] * factor
    return kp, (new_h, new_w)


def random_resized_crop(keypoint: np.ndarray, img_shape: tuple[int, int], *,
                        area_range: tuple[float, float] = (0.08, 1.0),
                        aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
                        max_attempts: int = 10, rng: np.random.RandomState | None = None,
                        ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int]]:
    """Random crop of a random area and aspect ratio (PYSKL's ``RandomResizedCrop``).

    Tries ``max_attempts`` (area, log-uniform aspect) candidates, falls back to the central
    square. Keypoints are shifted by the crop's corner (they may leave the crop, as in
    PYSKL). Returns ``(keypoint, (h, w), (x0, y0, x1, y1))``.
    """
    rng = rng if rng is not None else np.random.RandomState()
    if not (0 < area_range[0] <= area_range[1] <= 1):
        raise ValueError(f"random_resized_crop: area_range must be within (0, 1], got {area_range}")
    img_h, img_w = img_shape
    area = img_h * img_w
    min_ar, max_ar = aspect_ratio_range
    ars = np.exp(rng.uniform(np.log(min_ar), np.log(max_ar), size=max_attempts))
    areas = rng.uniform(*area_range, size=max_attempts) * area
    cw = np.round(np.sqrt(areas * ars)).astype(np.int32)
    ch = np.round(np.sqrt(areas / ars)).astype(np.int32)
    ok = np.flatnonzero((ch <= img_h) & (cw <= img_w))
    if len(ok):
        i = ok[0]
        x0 = int(rng.randint(0, img_w - cw[i] + 1))
        y0 = int(rng.randint(0, img_h - ch[i] + 1))
        box = (x0, y0, x0 + int(cw[i]), y0 + int(ch[i]))
    else:
        size = min(img_h, img_w)
        x0, y0 = (img_w - size) // 2, (img_h - size) // 2
        box = (x0, y0, x0 + size, y0 + size)
    kp = np.array(keypoint, copy=True)
    kp[..., 0] -= box[0]
    kp[..., 1] -= box[1]
    return kp, (box[3] - box[1], box[2] - box[0]), box


def flip(keypoint: np.ndarray, keypoint_score: np.ndarray | None, img_width: float,
         flip_index: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Horizontal flip with left/right joint swap (PYSKL's ``Flip`` on keypoints).

    Non-zero x become ``img_width - x`` (zero = missing stays zero); joints are permuted
    by ``flip_index`` (e.g. ``Layout.flip_index``).
    """
    kp = np.array(keypoint, copy=True)
    kx = kp[..., 0]
    nz = kx != 0
    kx[nz] = img_width - kx[nz]
    order = np.asarray(flip_index)
    kp = kp[:, :, order]
    score = None if keypoint_score is None else keypoint_score[:, :, order]
    return kp, score


def random_joint_drop(keypoint: np.ndarray, keypoint_score: np.ndarray | None, *,
                      p: float = 0.1, rng: np.random.RandomState | None = None,
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop each (person, frame, joint) with probability ``p`` for robustness to missed joints.

    A dropped joint gets all-zero coordinates and score 0, which is how PYSKL's data and
    humact's perception mark a joint that was not detected. Not a PYSKL transform.
    """
    rng = rng if rng is not None else np.random.RandomState()
    keep = rng.rand(*keypoint.shape[:3]) >= p
    kp = keypoint * keep[..., None].astype(keypoint.dtype)
    score = None if keypoint_score is None else keypoint_score * keep.astype(keypoint_score.dtype)
    return kp, score


# ---------------------------------------------------------------- heatmaps (vectorised)


def _window(c: np.ndarray, r: np.float32, size: int) -> tuple[np.ndarray, np.ndarray]:
    """PYSKL's ``[max(int(c - r), 0), min(int(c + r) + 1, size))`` in float32, int() truncating."""
    lo = np.maximum(np.trunc(c - r), 0).astype(np.int64)
    hi = np.minimum(np.trunc(c + r).astype(np.int64) + 1, size)
    return lo, hi


def _window_rows(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, strip=None):
    """The image rows of the windows ``[x0, x1) x [y0, y1)``, window after window.

    Returns ``(window (R,), row_y, row_x0, row_w)``: for each row its window, its y, and
    its span of pixels ``[row_x0, row_x0 + row_w)``. No per-window Python loop.

    ``strip = (ax, ay, bx, by, radius)`` (per window) keeps, in each row, only the pixels
    within ``radius`` of the line through ``a`` and ``b`` (a superset of those within
    ``radius`` of the segment): the row's span is solved in closed form.
    """
    w = np.maximum(x1 - x0, 0)
    h = np.maximum(y1 - y0, 0)
    rows = np.repeat(np.arange(len(w)), h)                                  # window of each row
    row_y = y0[rows] + (np.arange(len(rows)) - np.repeat(np.cumsum(h) - h, h))
    row_x0 = x0[rows]
    row_w = w[rows]
    if strip is not None:
        ax, ay, bx, by, radius = (np.asarray(c, np.float64) for c in strip)
        dx, dy = bx - ax, by - ay
        length = np.hypot(dx, dy)
        ux, uy = (dx / length)[rows], (dy / length)[rows]
        r = np.broadcast_to(radius, ax.shape)[rows] + 1e-3  # margin for rounding
        ry = row_y - ay[rows]
        steep = np.abs(uy) > 1e-9
        safe_uy = np.where(steep, uy, 1.0)
        centre = ax[rows] + ry * ux / safe_uy
        half = r / np.abs(safe_uy)
        # |(x - ax) uy - (y - ay) ux| <= r; a (near) horizontal line keeps whole rows or none.
        lo = np.where(steep, np.ceil(centre - half), np.where(np.abs(ry * ux) <= r, -np.inf, np.inf))
        hi = np.where(steep, np.floor(centre + half) + 1, np.where(np.abs(ry * ux) <= r, np.inf, -np.inf))
        new_x0 = np.clip(lo, row_x0, row_x0 + row_w).astype(np.int64)
        new_x1 = np.clip(hi, row_x0, row_x0 + row_w).astype(np.int64)
        row_x0, row_w = new_x0, np.maximum(new_x1 - new_x0, 0)
    return rows, row_y, row_x0, row_w


def _row_pixels(row_y: np.ndarray, row_x0: np.ndarray, row_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)`` of all pixels of the row spans, row after row (1-D, contiguous).

    A per-row constant ``c`` expands to the pixels as ``np.repeat(c, row_w)``.
    """
    xs = np.repeat(row_x0, row_w) + (np.arange(row_w.sum()) - np.repeat(np.cumsum(row_w) - row_w, row_w))
    return xs, np.repeat(row_y, row_w)


def _window_pixels(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray):
    """Every pixel of the windows, window after window: ``(area (N,), xs (P,), ys (P,))``.

    The pixels of window ``i`` are the ``area[i]`` consecutive entries after those of
    window ``i - 1``, so a per-window constant expands as ``np.repeat(c, area)``.
    """
    _, row_y, row_x0, row_w = _window_rows(x0, y0, x1, y1)
    xs, ys = _row_pixels(row_y, row_x0, row_w)
    return np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0), xs, ys


def _scatter_max(out_flat: np.ndarray, bounds: np.ndarray, index: np.ndarray, value: np.ndarray,
                 single: bool = False) -> None:
    """``out[index] = max(out[index], value)``, one person's pixels at a time.

    ``bounds`` splits the pixels by person. Windows come person after person, and one
    person draws each (frame, channel) once, so one person's indices are unique: one
    vectorised read-max-write per person. With a ``single`` person nothing else is ever
    drawn on these pixels (the output is zero there), so a plain write is the maximum.
    """
    if not len(bounds) and single:
        out_flat[index] = value
        return
    for idx, val in zip(np.split(index, bounds), np.split(value, bounds)):
        out_flat[idx] = np.maximum(out_flat[idx], val)


def _kp_patch(fx, fy, cx, cy, val, sigma):
    """PYSKL's ``generate_a_heatmap`` values, float32 in the same order of operations."""
    return np.exp(-((fx - cx) ** 2 + (fy - cy) ** 2) / 2 / sigma ** 2) * val


def _limb_patch(fx, fy, sx, sy, ex, ey, val, sigma, area):
    """PYSKL's ``generate_a_limb_heatmap`` values (Gaussian of the distance to the segment).

    ``fx, fy``: pixel coordinates (P,) float32; ``sx .. val``: per-limb (N,) float32,
    expanded with ``area``. The float32 distances follow PYSKL's order of operations, so
    they are PYSKL's to the bit (see :func:`_gaussian` for the exponential).
    """
    d2_ab = (sx - ex) ** 2 + (sy - ey) ** 2
    sx_p, sy_p, ex_p, ey_p = (np.repeat(c, area) for c in (sx, sy, ex, ey))
    d2_start = fx - sx_p
    d2_start *= d2_start
    t = fy - sy_p
    t *= t
    d2_start += t
    d2_end = fx - ex_p
    d2_end *= d2_end
    np.subtract(fy, ey_p, out=t)
    t *= t
    d2_end += t
    d2_ab_p = np.repeat(d2_ab, area)
    coeff = d2_start - d2_end
    coeff += d2_ab_p
    coeff /= 2.0
    coeff /= d2_ab_p
    # Distance to the projection on the line: (f - (s + coeff * (e - s)))^2, per axis.
    d2 = np.subtract(ex_p, sx_p, out=d2_ab_p)
    d2 *= coeff
    d2 += sx_p
    np.subtract(fx, d2, out=d2)
    d2 *= d2
    np.subtract(ey_p, sy_p, out=t)
    t *= coeff
    t += sy_p
    np.subtract(fy, t, out=t)
    t *= t
    d2 += t
    np.copyto(d2, d2_start, where=coeff <= 0)  # nearest point: the start joint
    np.copyto(d2, d2_end, where=coeff >= 1)    # ... the end joint
    return _gaussian(d2, np.repeat(val, area), sigma)


def _gaussian(d2: np.ndarray, val: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-d2 / 2 / sigma^2) * val`` in float32.

    PYSKL evaluates this step in float64 (its int64 mask promotes the distances) and
    rounds on store; float32 here differs by a few float32 ulps (< 1e-7 on values <= 1)
    and is 3x faster. The exponent is floored at -104, where the float32 result is already
    0: that keeps far pixels off the CPU's very slow path for float32 subnormals.
    """
    e = d2 / np.float32(-2.0)
    e /= np.float32(sigma ** 2)
    np.maximum(e, np.float32(-_UNDERFLOW), out=e)
    np.exp(e, out=e)
    e *= val
    return e


def generate_pose_target(keypoint: np.ndarray, keypoint_score: np.ndarray | None,
                         img_shape: tuple[int, int], *, sigma: float = 0.6,
                         use_score: bool = True, with_kp: bool = True, with_limb: bool = False,
                         skeletons: Sequence[tuple[int, int]] = COCO_LIMBS, double: bool = False,
                         left_kp: Sequence[int] = COCO_LEFT_KP, right_kp: Sequence[int] = COCO_RIGHT_KP,
                         left_limb: Sequence[int] = COCO_LEFT_LIMB,
                         right_limb: Sequence[int] = COCO_RIGHT_LIMB,
                         scaling: float = 1.0) -> np.ndarray:
    """Pseudo heatmaps of keypoints or limbs (PYSKL's ``GeneratePoseTarget``), vectorised.

    Args:
        keypoint: ``(M, T, V, 2)`` pixel coordinates in a frame of ``img_shape`` (h, w).
        keypoint_score: ``(M, T, V)`` or None (all ones).
        sigma: Gaussian std in pixels; each Gaussian is cut to PYSKL's ``+-3 sigma`` window
            (limbs: the segment's bounding box grown by ``3 sigma``).
        use_score: scale each Gaussian by the joint's score (limbs: the smaller of the two).
        with_kp / with_limb: exactly one: a channel per joint, or per ``skeletons`` limb.
        double: append the horizontally flipped copy (left/right channels swapped), as
            PYSKL's test-time flip.
        scaling: heatmap resolution relative to ``img_shape``.

    Returns:
        ``(T, K, H, W)`` float32 (``(2T, K, H, W)`` with ``double``); persons are combined
        by a pixel-wise maximum; scores below 1e-3 draw nothing; limbs shorter than one
        pixel draw their start joint, as in PYSKL. Keypoints: PYSKL's values exactly;
        limbs: within 2e-7 (values under ``LIMB_TAIL`` x score are not drawn).

    All windows of all frames, joints and persons are evaluated together (see
    :func:`_window_pixels`); only the pixels inside the windows are computed and written.
    """
    if with_kp + with_limb != 1:
        raise ValueError("generate_pose_target: exactly one of with_kp and with_limb must be True")
    kps = np.asarray(keypoint, dtype=np.float32)[..., :2]
    M, T, V, _ = kps.shape
    if keypoint_score is None or not use_score:
        scores = np.ones((M, T, V), dtype=np.float32)
    else:
        scores = np.asarray(keypoint_score, dtype=np.float32)
    img_h = int(img_shape[0] * scaling + 0.5)
    img_w = int(img_shape[1] * scaling + 0.5)
    if scaling != 1.0:
        kps = kps * np.float32(scaling)
    sigma = float(sigma)
    r = np.float32(3 * sigma)
    K = V if with_kp else len(skeletons)
    out = np.zeros(((2 if double else 1) * T, K, img_h, img_w), dtype=np.float32)
    flat = out.reshape(-1)
    plane = img_h * img_w
    if double:
        left, right = (left_kp, right_kp) if with_kp else (left_limb, right_limb)
        swap = np.arange(K)
        for a, b in zip(left, right):
            swap[a], swap[b] = b, a

    def store(mi, ti, ki, area, xs, ys, patch):
        """Write the windows' pixels into ``out`` (and into its mirrored copy)."""
        bounds = np.cumsum(area)[np.flatnonzero(np.diff(mi))]
        rows = ys * img_w
        base = np.repeat((ti * K + ki) * plane, area)
        _scatter_max(flat, bounds, base + rows + xs, patch, M == 1)
        if double:
            # The flipped copy: frame T + t, channel swap[k], column W - 1 - x.
            base = np.repeat(((T + ti) * K + swap[ki]) * plane + img_w - 1, area)
            _scatter_max(flat, bounds, base + rows - xs, patch, M == 1)

    def draw_kp(mi, ti, ki, cx, cy, val):
        x0, x1 = _window(cx, r, img_w)
        y0, y1 = _window(cy, r, img_h)
        keep = np.flatnonzero((val >= HEATMAP_EPS) & (x1 > x0) & (y1 > y0))
        area, xs, ys = _window_pixels(x0[keep], y0[keep], x1[keep], y1[keep])
        patch = _kp_patch(xs.astype(np.float32), ys.astype(np.float32),
                          *(np.repeat(c[keep], area) for c in (cx, cy, val)), sigma)
        store(mi[keep], ti[keep], ki[keep], area, xs, ys, patch)

    mi = np.repeat(np.arange(M), T * K)
    ti = np.tile(np.repeat(np.arange(T), K), M)
    ki = np.tile(np.arange(K), M * T)
    if with_kp:
        draw_kp(mi, ti, ki, kps[..., 0].reshape(-1), kps[..., 1].reshape(-1), scores.reshape(-1))
    else:
        limbs = np.asarray(skeletons, dtype=np.int64).reshape(-1, 2)
        start = kps[:, :, limbs[:, 0]].reshape(-1, 2)
        end = kps[:, :, limbs[:, 1]].reshape(-1, 2)
        sval = scores[:, :, limbs[:, 0]].reshape(-1)
        val = np.minimum(sval, scores[:, :, limbs[:, 1]].reshape(-1))
        sx, sy, ex, ey = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
        x0 = np.maximum(np.trunc(np.minimum(sx, ex) - r), 0).astype(np.int64)
        x1 = np.minimum(np.trunc(np.maximum(sx, ex) + r).astype(np.int64) + 1, img_w)
        y0 = np.maximum(np.trunc(np.minimum(sy, ey) - r), 0).astype(np.int64)
        y1 = np.minimum(np.trunc(np.maximum(sy, ey) + r).astype(np.int64) + 1, img_h)
        drawn = (val >= HEATMAP_EPS) & (x1 > x0) & (y1 > y0)
        short = drawn & ((sx - ex) ** 2 + (sy - ey) ** 2 < 1)
        if short.any():
            # PYSKL draws the start joint (with its own score) for limbs under one pixel.
            i = np.flatnonzero(short)
            draw_kp(mi[i], ti[i], ki[i], sx[i], sy[i], sval[i])
        todo = np.flatnonzero(drawn & ~short)
        # Pixels further than this from the limb's line would get less than LIMB_TAIL
        # (times the score): not drawn, the only departure from PYSKL's exact values.
        radius = sigma * np.sqrt(2 * np.log(1 / LIMB_TAIL))
        rows, row_y, row_x0, row_w = _window_rows(x0[todo], y0[todo], x1[todo], y1[todo],
                                                  strip=(sx[todo], sy[todo], ex[todo], ey[todo], radius))
        limb = todo[rows]
        # Each row is drawn as a window of its own (rows come limb after limb, person after
        # person), in cache-sized chunks of rows.
        for c in _chunks(np.arange(len(rows)), row_w):
            i, w = limb[c], row_w[c]
            xs, ys = _row_pixels(row_y[c], row_x0[c], w)
            patch = _limb_patch(xs.astype(np.float32), ys.astype(np.float32),
                                sx[i], sy[i], ex[i], ey[i], val[i], sigma, w)
            store(mi[i], ti[i], ki[i], w, xs, ys, patch)
    return out


def _chunks(items: np.ndarray, area: np.ndarray, limit: int = 32768):
    """Split ``items`` (in order) into runs of about ``limit`` pixels.

    Chunks bound the size of the temporaries (cache-sized) whatever the number of people,
    frames and limbs: long clips do not allocate hundreds of MB at once.
    """
    ends = np.searchsorted(np.cumsum(area), np.arange(limit, int(area.sum()) + limit, limit), side="right")
    start = 0
    for end in np.unique(np.maximum(ends, 1)):
        end = min(int(end), len(items))
        if end > start:
            yield items[start:end]
            start = end


# ---------------------------------------------------------------- formatting


def format_gcn_input(keypoint: np.ndarray, keypoint_score: np.ndarray | None = None, *,
                     num_person: int = 2, mode: str = "zero", num_clips: int = 1) -> np.ndarray:
    """``(M, num_clips * L, V, C)`` -> ``(num_clips, num_person, L, V, C)`` (PYSKL's ``FormatGCNInput``).

    Extra persons are dropped; missing ones are zeros (``mode='zero'``) or, for a single
    person, copies of it (``mode='loop'``). A score, when given, becomes the last channel.
    """
    if mode not in ("zero", "loop"):
        raise ValueError(f"format_gcn_input: mode must be 'zero' or 'loop', got {mode!r}")
    kp = np.asarray(keypoint)
    if keypoint_score is not None:
        kp = np.concatenate((kp, keypoint_score[..., None]), axis=-1)
    if kp.shape[0] < num_person:
        single = kp.shape[0] == 1
        pad = np.zeros((num_person - kp.shape[0],) + kp.shape[1:], dtype=kp.dtype)
        kp = np.concatenate((kp, pad), axis=0)
        if mode == "loop" and single:
            kp[1:] = kp[0]
    elif kp.shape[0] > num_person:
        kp = kp[:num_person]
    M, T, V, C = kp.shape
    if T % num_clips:
        raise ValueError(f"format_gcn_input: {T} frames do not split into {num_clips} clips")
    kp = kp.reshape((M, num_clips, T // num_clips, V, C)).transpose(1, 0, 2, 3, 4)
    return np.ascontiguousarray(kp)


def format_heatmap_input(imgs: np.ndarray, *, num_clips: int, clip_len: int) -> np.ndarray:
    """Heatmaps ``(crops * num_clips * clip_len, K, H, W)`` -> ``(crops * num_clips, K, clip_len, H, W)``.

    PYSKL's ``FormatShape('NCTHW_Heatmap')``; with ``double`` heatmaps the order is
    (clip 0, ..., clip n-1, flipped clip 0, ...).
    """
    x = imgs.reshape((-1, num_clips, clip_len) + imgs.shape[1:])
    x = np.transpose(x, (0, 1, 3, 2, 4, 5))
    return np.ascontiguousarray(x.reshape((-1,) + x.shape[2:]))


# ---------------------------------------------------------------- thin PYSKL-named classes


@dataclass
class PreNormalize2D:
    """Sample version of :func:`pre_normalize_2d` (the sample's ``img_shape``).

    The score is merged into ``keypoint`` as channel 2; ``keypoint_score`` becomes None.
    """

    threshold: float = 0.01
    mode: str = "fix"

    def __call__(self, s: PoseSample) -> PoseSample:
        kp = pre_normalize_2d(s.keypoint, s.img_shape, s.keypoint_score,
                              threshold=self.threshold, mode=self.mode)
        return s.replace(keypoint=kp, keypoint_score=None)


@dataclass
class PreNormalize3D:
    """Sample version of :func:`pre_normalize_3d`."""

    zaxis: tuple[int, int] = (0, 1)
    xaxis: tuple[int, int] = (8, 4)
    align_spine: bool = True
    align_center: bool = True

    def __call__(self, s: PoseSample) -> PoseSample:
        kp = pre_normalize_3d(s.keypoint, zaxis=self.zaxis, xaxis=self.xaxis,
                              align_spine=self.align_spine, align_center=self.align_center)
        return s.replace(keypoint=kp, total_frames=kp.shape[1])


@dataclass
class GenSkeFeat:
    """Sample version of :func:`gen_ske_feat` (PYSKL's ``dataset`` is the layout name).

    The score is merged into ``keypoint``; ``keypoint_score`` becomes None.
    """

    dataset: str = "nturgb+d"
    feats: tuple[str, ...] = ("j",)

    def __call__(self, s: PoseSample) -> PoseSample:
        kp = gen_ske_feat(s.keypoint, s.keypoint_score, self.dataset, self.feats)
        return s.replace(keypoint=kp, keypoint_score=None)


@dataclass
class UniformSampleFrames:
    """Sample version of :func:`uniform_sample_indices` (sets ``frame_inds``, ``clip_len``, ``num_clips``)."""

    clip_len: int
    num_clips: int = 1
    p_interval: float | tuple[float, float] = 1.0
    seed: int = 255
    rng: np.random.RandomState | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        inds = uniform_sample_indices(s.total_frames, self.clip_len, num_clips=self.num_clips,
                                      test_mode=s.test_mode, seed=self.seed,
                                      p_interval=self.p_interval, rng=self.rng)
        return s.replace(frame_inds=inds, clip_len=self.clip_len, num_clips=self.num_clips)


#: PYSKL's name for the same sampler in GCN configs.
UniformSample = UniformSampleFrames


class PoseDecode:
    """Sample version of :func:`pose_decode` (all frames when ``frame_inds`` is unset)."""

    def __call__(self, s: PoseSample) -> PoseSample:
        inds = s.frame_inds if s.frame_inds is not None else np.arange(s.total_frames)
        kp, score = pose_decode(s.keypoint, s.keypoint_score, inds)
        return s.replace(keypoint=kp, keypoint_score=score)


@dataclass
class PoseCompact:
    """Sample version of :func:`pose_compact`."""

    padding: float = 0.25
    threshold: float = 10
    hw_ratio: float | tuple[float, float] | None = None
    allow_imgpad: bool = True

    def __call__(self, s: PoseSample) -> PoseSample:
        kp, shape, quad = pose_compact(s.keypoint, s.img_shape, padding=self.padding,
                                       threshold=self.threshold, hw_ratio=self.hw_ratio,
                                       allow_imgpad=self.allow_imgpad, crop_quadruple=s.crop_quadruple)
        return s.replace(keypoint=kp, img_shape=shape, crop_quadruple=quad)


@dataclass
class Resize:
    """Sample version of :func:`resize`."""

    scale: float | tuple[int, int]
    keep_ratio: bool = True

    def __call__(self, s: PoseSample) -> PoseSample:
        kp, shape = resize(s.keypoint, s.img_shape, self.scale, keep_ratio=self.keep_ratio)
        return s.replace(keypoint=kp, img_shape=shape)


@dataclass
class RandomResizedCrop:
    """Sample version of :func:`random_resized_crop`."""

    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3)
    rng: np.random.RandomState | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        kp, shape, (x0, y0, x1, y1) = random_resized_crop(
            s.keypoint, s.img_shape, area_range=self.area_range,
            aspect_ratio_range=self.aspect_ratio_range, rng=self.rng)
        h, w = s.img_shape
        quad = _combine_quadruple(s.crop_quadruple, (x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h))
        return s.replace(keypoint=kp, img_shape=shape, crop_quadruple=quad)


@dataclass
class Flip:
    """Random horizontal flip with probability ``flip_ratio`` (PYSKL's ``Flip``)."""

    flip_ratio: float = 0.5
    left_kp: tuple[int, ...] = COCO_LEFT_KP
    right_kp: tuple[int, ...] = COCO_RIGHT_KP
    rng: np.random.RandomState | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        rng = self.rng if self.rng is not None else np.random
        if not rng.rand() < self.flip_ratio:
            return s.replace(flip=False)
        order = list(range(s.keypoint.shape[2]))
        for a, b in zip(self.left_kp, self.right_kp):
            order[a], order[b] = b, a
        kp, score = flip(s.keypoint, s.keypoint_score, s.img_shape[1], order)
        return s.replace(keypoint=kp, keypoint_score=score, flip=True)


@dataclass
class RandomJointDrop:
    """Sample version of :func:`random_joint_drop`."""

    p: float = 0.1
    rng: np.random.RandomState | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        kp, score = random_joint_drop(s.keypoint, s.keypoint_score, p=self.p, rng=self.rng)
        return s.replace(keypoint=kp, keypoint_score=score)


@dataclass
class GeneratePoseTarget:
    """Sample version of :func:`generate_pose_target`; the heatmaps go to ``imgs``."""

    sigma: float = 0.6
    use_score: bool = True
    with_kp: bool = True
    with_limb: bool = False
    skeletons: tuple[tuple[int, int], ...] = COCO_LIMBS
    double: bool = False
    left_kp: tuple[int, ...] = COCO_LEFT_KP
    right_kp: tuple[int, ...] = COCO_RIGHT_KP
    left_limb: tuple[int, ...] = COCO_LEFT_LIMB
    right_limb: tuple[int, ...] = COCO_RIGHT_LIMB
    scaling: float = 1.0

    def __call__(self, s: PoseSample) -> PoseSample:
        imgs = generate_pose_target(
            s.keypoint, s.keypoint_score, s.img_shape, sigma=self.sigma, use_score=self.use_score,
            with_kp=self.with_kp, with_limb=self.with_limb, skeletons=self.skeletons,
            double=self.double, left_kp=self.left_kp, right_kp=self.right_kp,
            left_limb=self.left_limb, right_limb=self.right_limb, scaling=self.scaling)
        return s.replace(imgs=imgs)


@dataclass
class FormatGCNInput:
    """Sample version of :func:`format_gcn_input`: ``keypoint`` becomes ``(clips, M, L, V, C)``."""

    num_person: int = 2
    mode: str = "zero"

    def __call__(self, s: PoseSample) -> PoseSample:
        kp = format_gcn_input(s.keypoint, s.keypoint_score, num_person=self.num_person,
                              mode=self.mode, num_clips=s.num_clips)
        return s.replace(keypoint=kp, keypoint_score=None)


@dataclass
class FormatHeatmapInput:
    """PYSKL's ``FormatShape('NCTHW_Heatmap')``: ``imgs`` becomes ``(crops * clips, K, L, H, W)``."""

    def __call__(self, s: PoseSample) -> PoseSample:
        clip_len = s.clip_len if s.clip_len is not None else s.imgs.shape[0]
        return s.replace(imgs=format_heatmap_input(s.imgs, num_clips=s.num_clips, clip_len=clip_len))


# ---------------------------------------------------------------- humact's GCN recipe steps
#
# The steps of `humact train` / `test` / `analyze` for the GCNs (`skeleton_pipeline`). They take a
# `numpy.random.Generator` (seeded per item by `SkeletonClips`), or None for the deterministic
# variant (test clip 0: segment centres, no augmentation). Coordinates are centred already
# (`normalize_skeleton`), so rotations, scales and flips act about the origin.


def stretch_indices(num_frames: int, clip_len: int, rng: np.random.Generator | None) -> np.ndarray:
    """Pick `clip_len` frame indices spread over the video, one per equal segment.

    Same as PYSKL's UniformSample for videos at least `clip_len` long (random offset inside each
    segment; the segment centre when `rng` is None), except that shorter videos are stretched
    (frames repeated in order) instead of looped: looping turns "sit down" into "sit down,
    stand up", which is another class of NW-UCLA.
    """
    if num_frames <= 0:
        raise ValueError("stretch_indices: a video with no frames")
    edges = np.arange(clip_len + 1) * num_frames / clip_len
    start, size = edges[:-1], np.diff(edges)
    off = 0.5 * size if rng is None else rng.random(clip_len) * size
    return np.minimum((start + off).astype(np.int64), num_frames - 1)


def rotation_3d(angles: np.ndarray) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` for angles (x, y, z) in radians, float32."""
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


@dataclass
class TemporalCrop:
    """Keep a random contiguous stretch of at least ``min_ratio`` of the frames (off when 1 or no rng)."""

    min_ratio: float = 1.0
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        t = s.keypoint.shape[1]
        if self.rng is None or self.min_ratio >= 1.0 or t <= 4:
            return s
        keep = max(4, int(round(t * self.rng.uniform(self.min_ratio, 1.0))))
        start = int(self.rng.integers(0, t - keep + 1))
        return s.replace(keypoint=s.keypoint[:, start:start + keep], total_frames=keep)


@dataclass
class StretchSample:
    """Sample ``clip_len`` frames with `stretch_indices` and take them (PYSKL's UniformSample +
    PoseDecode for one clip, except that short videos are stretched, not looped)."""

    clip_len: int
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        idx = stretch_indices(s.keypoint.shape[1], self.clip_len, self.rng)
        return s.replace(keypoint=s.keypoint[:, idx], frame_inds=idx, clip_len=self.clip_len)


@dataclass
class RandomRot:
    """Random rotation of the coordinates (PYSKL's ``RandomRot``): 3D, an angle in
    [-theta, theta] about each axis (``rotation_3d``); 2D, one in-plane angle."""

    theta: float = 0.3
    dims: int = 3
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        if self.rng is None or self.theta <= 0:
            return s
        d = self.dims
        if d == 3:
            rot = rotation_3d(self.rng.uniform(-self.theta, self.theta, 3))
        else:
            a = self.rng.uniform(-self.theta, self.theta)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
        kp = s.keypoint.copy()
        kp[..., :d] = kp[..., :d] @ rot.T
        return s.replace(keypoint=kp)


@dataclass
class RandomScale:
    """Scale each coordinate axis by a random factor in [1 - scale, 1 + scale] (PYSKL's ``RandomScale``)."""

    scale: float = 0.1
    dims: int = 3
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        if self.rng is None or self.scale <= 0:
            return s
        d = self.dims
        kp = s.keypoint.copy()
        kp[..., :d] = kp[..., :d] * self.rng.uniform(1 - self.scale, 1 + self.scale, d).astype(np.float32)
        return s.replace(keypoint=kp)


@dataclass
class FlipSkeleton:
    """With probability ``flip_ratio``: swap left/right joints (``flip_index``) and negate x, a mirror
    about the vertical axis through the origin (for centred coordinates; `Flip` mirrors pixels)."""

    flip_ratio: float = 0.5
    flip_index: tuple[int, ...] = ()
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        if self.rng is None or self.flip_ratio <= 0 or not self.rng.random() < self.flip_ratio:
            return s
        kp = s.keypoint[:, :, list(self.flip_index)].copy()
        kp[..., 0] = -kp[..., 0]
        return s.replace(keypoint=kp, flip=True)


@dataclass
class ViewRotate:
    """A random rotation about the x and y axes only, angles in [-theta, theta] (CTR-GCN's NW-UCLA
    view augmentation; 3D data only)."""

    theta: float = 1.047
    rng: np.random.Generator | None = field(default=None, repr=False)

    def __call__(self, s: PoseSample) -> PoseSample:
        if self.rng is None or self.theta <= 0:
            return s
        ax, ay = self.rng.uniform(-self.theta, self.theta, 2)
        return s.replace(keypoint=s.keypoint @ rotation_3d(np.array([ax, ay, 0.0])).T)


@dataclass
class MinMaxNormalize:
    """Scale each of the first ``dims`` channels of the clip to [-1, 1] (CTR-GCN's NW-UCLA feeder)."""

    dims: int = 3

    def __call__(self, s: PoseSample) -> PoseSample:
        d = self.dims
        x = s.keypoint
        pts = x[..., :d].reshape(-1, d)
        lo, hi = pts.min(0), pts.max(0)
        x = x.copy()
        x[..., :d] = 2 * (x[..., :d] - lo) / np.maximum(hi - lo, 1e-6) - 1
        return s.replace(keypoint=x)


@dataclass
class PadPersons:
    """Keep ``num_person`` persons: extra ones dropped, missing ones zeros (FormatGCNInput's rule)."""

    num_person: int = 1

    def __call__(self, s: PoseSample) -> PoseSample:
        x = s.keypoint
        out = np.zeros((self.num_person,) + x.shape[1:], np.float32)
        out[: min(x.shape[0], self.num_person)] = x[: self.num_person]
        return s.replace(keypoint=out)


@dataclass
class SkeletonStream:
    """One stream of PYSKL's GenSkeFeat on a sample whose score (if any) is already channel 2."""

    layout: str | Layout = "coco"
    stream: str = "j"
    score_channel: bool = False

    def __call__(self, s: PoseSample) -> PoseSample:
        return s.replace(keypoint=gen_ske_feat(s.keypoint, None, self.layout, (self.stream,),
                                               score_channel=self.score_channel))


def skeleton_pipeline(*, layout: str | Layout, clip_len: int, stream: str = "j", max_persons: int = 1,
                      dims: int = 2, score_channel: bool = False, rotate: float = 0.0, scale: float = 0.0,
                      flip: float = 0.0, crop: float = 1.0, view_rotate: float = 0.0, minmax: bool = False,
                      rng: np.random.Generator | None = None) -> Compose:
    """humact's GCN clip recipe, one clip per call: TemporalCrop -> StretchSample -> RandomRot ->
    RandomScale -> FlipSkeleton -> ViewRotate (3D) -> MinMaxNormalize -> PadPersons -> SkeletonStream.

    With ``rng`` None every random step is off (test clip 0); the random steps draw from ``rng`` in
    that order, so a seeded generator reproduces a clip exactly. Input: a `PoseSample` whose keypoint
    is the whole normalised sequence (`normalize_skeleton`), score merged as channel 2 when present.
    """
    lay = _layout(layout)
    steps: list = [TemporalCrop(crop, rng), StretchSample(clip_len, rng)]
    if rng is not None:
        steps += [RandomRot(rotate, dims, rng), RandomScale(scale, dims, rng),
                  FlipSkeleton(flip, lay.flip_index, rng)]
        if dims == 3:
            steps.append(ViewRotate(view_rotate, rng))
    if minmax:
        steps.append(MinMaxNormalize(dims))
    steps += [PadPersons(max_persons), SkeletonStream(lay, stream, score_channel)]
    return Compose(steps)


class Compose:
    """Apply transforms in order: ``Compose([PreNormalize2D(), ...])(sample)``."""

    def __init__(self, transforms: Sequence[Callable[[PoseSample], PoseSample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, s: PoseSample) -> PoseSample:
        for t in self.transforms:
            s = t(s)
        return s

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def gcn_pipeline(*, layout: str = "coco", feats: tuple[str, ...] = ("j",), clip_len: int = 100,
                 num_clips: int = 1, train: bool = False, num_person: int = 2,
                 prenormalize: str | None = "2d",
                 rng: np.random.RandomState | None = None) -> Compose:
    """PYSKL's ST-GCN / ST-GCN++ recipe: normalise, features, uniform sampling, decode, format.

    ``prenormalize``: ``'2d'`` (pixels -> [-1, 1]), ``'3d'`` (NTU-style centring and
    rotation) or None. Training adds nothing else (PYSKL's 2D GCN configs use no spatial
    augmentation); set ``test_mode`` on the sample for PYSKL's fixed-seed test sampling.
    """
    steps: list = []
    if prenormalize == "2d":
        steps.append(PreNormalize2D())
    elif prenormalize == "3d":
        steps.append(PreNormalize3D())
    elif prenormalize is not None:
        raise ValueError(f"gcn_pipeline: prenormalize must be '2d', '3d' or None, got {prenormalize!r}")
    steps += [GenSkeFeat(dataset=layout, feats=tuple(feats)),
              UniformSampleFrames(clip_len=clip_len, num_clips=num_clips, rng=rng if train else None),
              PoseDecode(), FormatGCNInput(num_person=num_person)]
    return Compose(steps)


def posec3d_pipeline(*, train: bool = False, clip_len: int = 48, num_clips: int = 1,
                     size: int = 56, test_size: int = 64, with_limb: bool = False,
                     double: bool = True, flip_ratio: float = 0.5,
                     left_kp: tuple[int, ...] = COCO_LEFT_KP,
                     right_kp: tuple[int, ...] = COCO_RIGHT_KP,
                     skeletons: tuple[tuple[int, int], ...] = POSEC3D_COCO_LIMBS,
                     left_limb: tuple[int, ...] = POSEC3D_LEFT_LIMB,
                     right_limb: tuple[int, ...] = POSEC3D_RIGHT_LIMB,
                     rng: np.random.RandomState | None = None) -> Compose:
    """PYSKL's PoseConv3D recipe (``configs/posec3d/slowonly_r50_*``).

    Train: sample, decode, compact (square, padded), short edge 64, random resized crop
    (area 0.56..1), resize to ``size``, random flip (``flip_ratio``, PYSKL's 0.5), heatmaps.
    Test: sample, decode, compact, resize to ``test_size``, heatmaps with the flipped copy
    (``double``). The joint and limb lists default to COCO-17's (PYSKL's limb configs); other
    layouts pass their own (``skeletons`` with its left / right limbs).
    """
    kw = dict(with_kp=not with_limb, with_limb=with_limb)
    if with_limb:
        kw.update(skeletons=skeletons, left_limb=left_limb, right_limb=right_limb)
    if train:
        steps = [UniformSampleFrames(clip_len=clip_len, num_clips=num_clips, rng=rng), PoseDecode(),
                 PoseCompact(hw_ratio=1.0, allow_imgpad=True), Resize(scale=(-1, 64)),
                 RandomResizedCrop(area_range=(0.56, 1.0), rng=rng),
                 Resize(scale=(size, size), keep_ratio=False),
                 Flip(flip_ratio=flip_ratio, left_kp=left_kp, right_kp=right_kp, rng=rng),
                 GeneratePoseTarget(**kw, left_kp=left_kp, right_kp=right_kp)]
    else:
        steps = [UniformSampleFrames(clip_len=clip_len, num_clips=num_clips), PoseDecode(),
                 PoseCompact(hw_ratio=1.0, allow_imgpad=True),
                 Resize(scale=(test_size, test_size), keep_ratio=False),
                 GeneratePoseTarget(**kw, double=double, left_kp=left_kp, right_kp=right_kp)]
    return Compose(steps + [FormatHeatmapInput()])
