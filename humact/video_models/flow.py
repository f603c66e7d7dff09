"""Optical flow: extraction as MMAction2's denseflow writes it, flow clips, and RGB + flow AVA detectors.

Extraction (`extract_flow`, `humact flow VIDEO --out DIR`): consecutive frames in grey, dense
flow from frame i to i + 1 with OpenCV, each component clipped to +-`bound` (20 px) and
mapped linearly to 8 bits, `round(255 * (v + bound) / (2 bound))` (denseflow's `CAST`), written
as `flow_x_%05d.jpg` / `flow_y_%05d.jpg` numbered from 1 (flow image k is the flow from frame
k - 1 to frame k, 0-based; MMAction2's `RawframeDataset` flow template `flow_{}_{:05}.jpg`).
With `uv` a third image `flow_uv_%05d.jpg` holds the product u*v of the clipped components,
as `sign(u v) sqrt(|u v|)` so that it is in pixels and in +-bound like x and y (the raw
product of sub-pixel motions would map to one grey level), through the same mapping: the
"u*v" channel of the AVA challenge system's three-channel flow (its scaling is our choice).
A folder is resumable: every image is written atomically, a run picks up after the last
complete pair, and `flow.json` (the settings and the frame count) is written last, so a
finished folder with the same settings is left alone.

Methods (`FLOW_METHODS`): `dis` (OpenCV's DIS, preset medium: the default, 35-64 ms per
340x256 pair here), `farneback` (OpenCV's Farneback, ~42 ms), `tvl1`
(`cv2.optflow.DualTVL1OpticalFlow`, the field's usual choice, ~1.7 s per 340x256 pair:
offline extraction only; docs/ava_parts.md). TV-L1 is in OpenCV's *contrib* modules, which humact does not depend on: `opencv-contrib-python-headless`
and `opencv-python-headless` both install the `cv2` package and overwrite each other, so the
contrib wheel has to *replace* the plain one (`pip uninstall opencv-python-headless && pip
install opencv-contrib-python-headless` of the same version); asking for `tvl1` without it is
a one-line `UsageError` saying so.

Network input (`read_flow_clip`): the 8-bit images of the requested pairs, normalised as
MMAction2's flow models are (mean 128, std 128), `(channels, T, H, W)` with channels 2 (x, y)
or 3 (x, y, uv). Models:

- `flow_slowonly_r50_ava(in_channels=2)`: the SlowOnly AVA detector on flow clips; its
  backbone takes MMAction2's flow checkpoint layout (`slowonly_r50_8xb16-16x4x1-256e_kinetics400-flow`:
  `conv1` with 2 input channels); `expand_flow_conv1` adds the uv channel with zero weights
  (the same outputs until trained);
- `TwoStreamDetector`: RGB + flow. `fusion="concat"` or `"add"`: both backbones' last maps
  concatenated on channels (or added; equal channels) before one RoI head (keys
  `rgb_backbone.*`, `flow_backbone.*`, `roi_head.*`); `fusion="score"`: two full detectors
  (`rgb.*`, `flow.*`, each an MMAction2 AVA detector layout) whose sigmoid scores are averaged
  with `weights`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from humact.errors import InputError, UsageError
from humact.io.atomic import atomic_path, atomic_write
from humact.video_models.ava import AVADetector, AVARoIHead, ava_hits, ava_loss, slowonly_r50_ava
from humact.video_models.resnet3d import slowonly_r50

__all__ = ["FLOW_METHODS", "FlowSpec", "FlowResult", "compute_flow", "flow_to_images", "extract_flow",
           "flow_image_path", "count_flow_pairs", "read_flow_clip", "read_flow_images", "normalize_flow", "flow_indices", "flow_slowonly_r50_ava",
           "expand_flow_conv1", "TwoStreamDetector", "tvl1_available", "FLOW_MEAN", "FLOW_STD"]

FLOW_METHODS = ("dis", "farneback", "tvl1")
FLOW_FORMAT = "humact.flow v1"
#: MMAction2's flow normalisation (ActionDataPreprocessor mean / std of its flow configs)
FLOW_MEAN, FLOW_STD = 128.0, 128.0


@dataclass(frozen=True)
class FlowSpec:
    """How flow is extracted (stored in `flow.json`; a folder made otherwise is redone)."""

    method: str = "dis"
    bound: float = 20.0
    uv: bool = False
    short_side: int = 0          # 0 = the video's own size
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise UsageError(f"flow method: expected one of {', '.join(FLOW_METHODS)}, got {self.method!r}")
        if not self.bound > 0:
            raise UsageError(f"flow bound: expected a positive number of pixels, got {self.bound}")
        if not 1 <= self.jpeg_quality <= 100 or self.short_side < 0:
            raise UsageError("flow: jpeg_quality must be 1..100 and short_side >= 0")


@dataclass
class FlowResult:
    """What `extract_flow` did for one video."""

    out_dir: Path
    pairs: int               # flow images per component in the folder
    computed: int            # pairs computed by this run (0: reused)
    seconds: float

    @property
    def seconds_per_pair(self) -> float:
        return self.seconds / self.computed if self.computed else 0.0


def tvl1_available() -> bool:
    import cv2

    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def _make_estimator(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import cv2

    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if not tvl1_available():
        raise UsageError("flow method tvl1 needs OpenCV's contrib modules (cv2.optflow), not installed: "
                         "opencv-contrib-python-headless replaces opencv-python-headless (both install cv2): "
                         "`pip uninstall opencv-python-headless && pip install opencv-contrib-python-headless` "
                         "of the same version, or use --method dis (the default)")
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)


def compute_flow(prev_gray: np.ndarray, next_gray: np.ndarray, method: str = "dis") -> np.ndarray:
    """(H, W) uint8 grey frames -> (H, W, 2) float32 flow in pixels (x, y) from `prev` to `next`."""
    return _make_estimator(method)(prev_gray, next_gray).astype(np.float32, copy=False)


def _to_uint8(v: np.ndarray, bound: float) -> np.ndarray:
    # denseflow's CAST: 0 below -bound, 255 above +bound, else round(255 * (v + bound) / (2 bound))
    return np.rint(255.0 * (np.clip(v, -bound, bound) + bound) / (2.0 * bound)).astype(np.uint8)


def flow_to_images(flow: np.ndarray, bound: float = 20.0, uv: bool = False) -> list[np.ndarray]:
    """(H, W, 2) flow -> [x, y] (+ [uv]) (H, W) uint8 images (see the module docstring)."""
    u = np.clip(flow[..., 0], -bound, bound)
    v = np.clip(flow[..., 1], -bound, bound)
    out = [_to_uint8(u, bound), _to_uint8(v, bound)]
    if uv:
        uv_ = u * v
        out.append(_to_uint8(np.sign(uv_) * np.sqrt(np.abs(uv_)), bound))
    return out


def flow_image_path(folder: str | os.PathLike, kind: str, index: int) -> Path:
    """`folder/flow_{kind}_{index:05d}.jpg` (kind x, y or uv; index from 1)."""
    return Path(folder) / f"flow_{kind}_{index:05d}.jpg"


def _kinds(uv: bool) -> tuple[str, ...]:
    return ("x", "y", "uv") if uv else ("x", "y")


def count_flow_pairs(folder: str | os.PathLike, uv: bool = False) -> int:
    """How many consecutive pairs (from 1) have all their images in `folder`."""
    n = 0
    while all(flow_image_path(folder, k, n + 1).is_file() for k in _kinds(uv)):
        n += 1
    return n


def _grey(rgb: np.ndarray, short_side: int) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if short_side:
        h, w = g.shape
        s = short_side / min(h, w)
        g = cv2.resize(g, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return g


def _write_jpeg(path: Path, img: np.ndarray, quality: int) -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError(f"{path}: JPEG encoding failed")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.tobytes())


def extract_flow(video: str | os.PathLike, out_dir: str | os.PathLike, spec: FlowSpec = FlowSpec(), *,
                 progress: Callable[[int, int], None] | None = None,
                 frames: tuple[int, Callable[[int], Iterable[tuple[int, np.ndarray]]]] | None = None) -> FlowResult:
    """Write the flow images of `video` into `out_dir` (resuming a partial folder; see the module doc).

    `frames`: (number of frames, start -> iterator of (index, RGB frame) from `start`) for a source
    that is not a video file (an AVA frame folder: `humact.detect.dataset.FrameSource.iter_frames`)."""
    from humact.video import probe, read_frames

    out = Path(out_dir)
    t0 = time.perf_counter()
    if frames is None:
        num_frames = probe(video).num_frames
        frames = (num_frames, lambda start: read_frames(video, start=start))
    num_frames, frames_from = frames
    total = max(num_frames - 1, 0)
    manifest = out / "flow.json"
    settings = {"format": FLOW_FORMAT, "spec": asdict(spec), "video": Path(video).name,
                "num_frames": num_frames, "pairs": total}
    if manifest.is_file():
        try:
            done = json.loads(manifest.read_text())
        except (OSError, ValueError):
            done = None
        if done == settings:
            return FlowResult(out, total, 0, time.perf_counter() - t0)
        manifest.unlink()                       # other settings: redo the folder
        start = 0
    else:
        start = count_flow_pairs(out, spec.uv) if out.is_dir() else 0
    estimate = _make_estimator(spec.method)     # before any decoding: a missing TV-L1 fails at once
    out.mkdir(parents=True, exist_ok=True)
    prev = None
    computed = 0
    for i, rgb in frames_from(start):
        g = _grey(rgb, spec.short_side)
        if prev is not None:
            imgs = flow_to_images(estimate(prev, g), spec.bound, spec.uv)
            for kind, img in zip(_kinds(spec.uv), imgs):
                _write_jpeg(flow_image_path(out, kind, i), img, spec.jpeg_quality)
            computed += 1
            if progress:
                progress(i, total)
        prev = g
    written = count_flow_pairs(out, spec.uv)
    if written < total:
        raise InputError(f"{video}: only {written} of {total} frame pairs could be decoded for flow")
    with atomic_write(manifest) as f:
        json.dump(settings, f)
    return FlowResult(out, total, computed, time.perf_counter() - t0)


def flow_indices(frame_indices: Iterable[int], num_pairs: int) -> list[int]:
    """The flow image (1-based) that goes with each 0-based frame: the flow leaving it, frame f -> f + 1
    (the last frame, which has none, takes the flow arriving at it)."""
    if num_pairs < 1:
        raise InputError("flow: the folder has no flow images")
    return [min(max(int(f), 0) + 1, num_pairs) for f in frame_indices]


def read_flow_clip(folder: str | os.PathLike, frame_indices: Iterable[int], *, channels: int = 2,
                   size: tuple[int, int] | None = None) -> torch.Tensor:
    """Flow images for 0-based frames -> (channels, T, H, W) float32, (v - 128) / 128 as MMAction2.

    `size` (H, W) resizes (bilinear), e.g. to the RGB clip's size, so boxes map to both streams.
    """
    return normalize_flow(read_flow_images(folder, frame_indices, channels=channels, size=size))


def normalize_flow(images: np.ndarray) -> torch.Tensor:
    """(T, H, W, C) uint8 flow images -> (C, T, H, W) float32, (v - 128) / 128 (MMAction2's)."""
    clip = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 0, 1, 2)).astype(np.float32))
    return (clip - FLOW_MEAN) / FLOW_STD


def read_flow_images(folder: str | os.PathLike, frame_indices: Iterable[int], *, channels: int = 2,
                     size: tuple[int, int] | None = None) -> np.ndarray:
    """The 8-bit flow images (x, y[, uv]) of 0-based frames -> (T, H, W, channels) uint8 (frame f: image
    f + 1, `flow_indices`); `size` (H, W) resizes them (bilinear)."""
    import cv2

    if channels not in (2, 3):
        raise UsageError(f"flow clip channels: expected 2 (x, y) or 3 (x, y, uv), got {channels}")
    folder = Path(folder)
    kinds = _kinds(channels == 3)
    n = count_flow_pairs(folder, channels == 3)
    planes = []
    for idx in flow_indices(frame_indices, n):
        frame = []
        for k in kinds:
            path = flow_image_path(folder, k, idx)
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise InputError(f"{path}: not a readable flow image")
            if size is not None and img.shape != tuple(size):
                img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            frame.append(img)
        planes.append(np.stack(frame, axis=-1))
    return np.stack(planes)                                                   # (T, H, W, C)


# ------------------------------------------------------------------------------------------ models


def flow_slowonly_r50_ava(*, in_channels: int = 2, num_classes: int = 81, dropout: float = 0.5,
                          **backbone_kw) -> AVADetector:
    """SlowOnly-R50 AVA detector on (N, 2 or 3, T, H, W) flow clips (MMAction2's flow SlowOnly backbone)."""
    return slowonly_r50_ava(in_channels=in_channels, num_classes=num_classes, dropout=dropout, **backbone_kw)


def expand_flow_conv1(weight: torch.Tensor) -> torch.Tensor:
    """A 2-channel flow `conv1` weight (O, 2, ...) -> (O, 3, ...) with a zero uv channel (same outputs)."""
    if weight.shape[1] != 2:
        raise ValueError(f"expand_flow_conv1: expected 2 input channels, got {weight.shape[1]}")
    return torch.cat([weight, torch.zeros_like(weight[:, :1])], dim=1)


class TwoStreamDetector(nn.Module):
    """RGB + flow AVA detector. forward(rgb (N, 3, T, H, W), flow (N, 2|3, T', H, W), rois (R, 5)) -> logits.

    Feature fusion ("concat" / "add"): (R, num_classes) logits from one RoI head on the fused maps
    (both backbones must give maps of the same size: same input size and stride). Score fusion
    ("score"): {'rgb': logits, 'flow': logits} (each stream is trained with its own loss);
    `predict` gives the weighted average of the two sigmoid scores. `backbone_kw` (base_channels,
    norm_eval) go to both backbones.

    Trained by `humact.train.trainer.Trainer` on `humact.detect.dataset` items with flow
    (`flow=True`: collated into ((rgb, flow, rois), labels)) through `loss` / `train_hits`: AVA's
    `ava_loss` on the fused logits, or with score fusion the sum of each stream's `ava_loss`.
    """

    def __init__(self, *, fusion: str = "concat", num_classes: int = 81, flow_channels: int = 2, dropout: float = 0.5,
                 weights: tuple[float, float] = (1.0, 1.0), **backbone_kw) -> None:
        super().__init__()
        if fusion not in ("concat", "add", "score"):
            raise ValueError(f"TwoStreamDetector fusion: expected 'concat', 'add' or 'score', got {fusion!r}")
        self.fusion = fusion
        self.weights = tuple(float(w) for w in weights)
        if fusion == "score":
            self.rgb = slowonly_r50_ava(num_classes=num_classes, dropout=dropout, **backbone_kw)
            self.flow = flow_slowonly_r50_ava(in_channels=flow_channels, num_classes=num_classes, dropout=dropout,
                                              **backbone_kw)
            return
        self.rgb_backbone = slowonly_r50(spatial_strides=(1, 2, 2, 1), **backbone_kw)
        self.flow_backbone = slowonly_r50(in_channels=flow_channels, spatial_strides=(1, 2, 2, 1), **backbone_kw)
        c = self.rgb_backbone.feat_dim
        self.roi_head = AVARoIHead(in_channels=2 * c if fusion == "concat" else c, num_classes=num_classes,
                                   dropout=dropout)

    def fused_features(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        a, b = self.rgb_backbone(rgb)[0].mean(2, keepdim=True), self.flow_backbone(flow)[0].mean(2, keepdim=True)
        if a.shape[-2:] != b.shape[-2:]:
            raise ValueError(f"TwoStreamDetector: RGB map {tuple(a.shape[-2:])} and flow map "
                             f"{tuple(b.shape[-2:])} differ: give both streams the same frame size")
        return torch.cat([a, b], dim=1) if self.fusion == "concat" else a + b

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor, rois: torch.Tensor):
        if self.fusion == "score":
            return {"rgb": self.rgb(rgb, rois), "flow": self.flow(flow, rois)}
        return self.roi_head(self.fused_features(rgb, flow), rois)

    @property
    def num_classes(self) -> int:
        head = self.rgb.roi_head if self.fusion == "score" else self.roi_head
        return int(head.bbox_head.fc_cls.out_features)

    def scores(self, out) -> torch.Tensor:
        """`forward`'s output -> (R, num_classes) sigmoid scores (score fusion: the weighted average)."""
        if self.fusion != "score":
            return out.sigmoid()
        wr, wf = self.weights
        return (wr * out["rgb"].sigmoid() + wf * out["flow"].sigmoid()) / (wr + wf)

    @torch.no_grad()
    def predict(self, rgb: torch.Tensor, flow: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.scores(self.forward(rgb, flow, rois))

    def loss(self, out, labels: torch.Tensor) -> torch.Tensor:
        if self.fusion == "score":
            return ava_loss(out["rgb"], labels) + ava_loss(out["flow"], labels)
        return ava_loss(out, labels)

    def train_hits(self, out, labels: torch.Tensor) -> tuple[int, int]:
        p = self.scores(out).clamp(1e-6, 1 - 1e-6)
        return ava_hits(torch.log(p) - torch.log1p(-p), labels)

    def load_stream(self, stream: str, checkpoint, *, backbone_only: bool = True) -> "TwoStreamDetector":
        """Load an MMAction2 checkpoint into one stream strictly: its `backbone.*` keys (a Kinetics
        recognizer or an AVA detector), or with score fusion and `backbone_only=False` a whole AVA
        detector. A 2-channel flow checkpoint into a 3-channel stream gets `expand_flow_conv1`."""
        from collections import OrderedDict

        from humact.io.checkpoints import load_foreign, mmaction_filter

        if stream not in ("rgb", "flow"):
            raise UsageError(f"stream: expected 'rgb' or 'flow', got {stream!r}")
        target = getattr(self, stream) if self.fusion == "score" else getattr(self, f"{stream}_backbone")
        prefix_needed = self.fusion == "score" and not backbone_only
        conv1 = (target.backbone if self.fusion == "score" else target).conv1.conv.weight

        def filt(sd):
            sd = mmaction_filter(sd)
            if not prefix_needed:
                sd = OrderedDict((k[9:], v) for k, v in sd.items() if k.startswith("backbone."))
            key = "backbone.conv1.conv.weight" if prefix_needed else "conv1.conv.weight"
            if key in sd and sd[key].shape[1] == 2 and conv1.shape[1] == 3:
                sd[key] = expand_flow_conv1(sd[key])
            return sd

        load_foreign(target if prefix_needed or self.fusion != "score" else target.backbone, checkpoint, filt)
        return self
