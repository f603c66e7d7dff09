"""The model registry: every named model humact builds, with what it eats and how it is trained.

One entry per name. `input` says what the model takes, and so which data pipeline feeds it:

    "skeleton"  (N, M, T, V, C) joint clips             humact.skeleton.datasets.SkeletonClips
    "heatmap"   (N, K, T, H, W) keypoint/limb heatmaps  humact.skeleton.datasets.HeatmapClips
    "rgb"       (N, 3, T, H, W) normalised RGB clips    humact.video_models.clips (classify)
    "ava"       RGB clip + person boxes (R, 5)          humact.video_models.ava (detect): AVA detectors
    "rgbpose"   ((N, 3, T/4, H, W) RGB, (N, K, T, H/4, W/4) heatmaps) from a video and its poses
                                                        humact.skeleton.rgbpose.RGBPoseClips

Skeleton and heatmap models are built by `build(num_classes=, layout=, in_channels=, num_person=,
base_channels=, dropout=)` (keyword-only, the model files' builders) and trained by `humact train`
with `train_defaults` (flat `humact.config` field names) under the file and the flags: that is
where PoseConv3D gets PYSKL's posec3d recipe. RGB recognizers are built by `build(num_classes=)` and
carry their MMAction2 test sampling (`spec`, a `ClipSpec`).

Builders are imported when called, so importing the registry is cheap (`humact --help`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from torch import nn

__all__ = ["ModelEntry", "MODELS", "get", "trainable", "of_input"]

Input = Literal["skeleton", "heatmap", "rgb", "ava", "rgbpose"]


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its builder, what it eats, its training defaults or test sampling."""

    name: str
    build: Callable[..., nn.Module]
    input: Input
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)
    spec: Any = None  # ClipSpec for "rgb" models, humact.video_models.ava.AVASpec for "ava" detectors

    @property
    def trainable(self) -> bool:
        """Whether `humact train` builds it (skeleton, heatmap and RGB+pose models today)."""
        return self.input in ("skeleton", "heatmap", "rgbpose")


def _gcn(family: str, builder: str) -> Callable[..., nn.Module]:
    def build(*, num_classes: int, layout: Any, in_channels: int, num_person: int, base_channels: int = 64,
              dropout: float = 0.0) -> nn.Module:
        import importlib

        module = importlib.import_module(f"humact.skeleton.{family}")
        return getattr(module, builder)(num_classes=num_classes, layout=layout, in_channels=in_channels,
                                        num_person=num_person, base_channels=base_channels, dropout=dropout)

    return build


def _posec3d(*, num_classes: int, layout: Any, in_channels: int, num_person: int, base_channels: int = 32,
             dropout: float = 0.5) -> nn.Module:
    from humact.skeleton.posec3d import posec3d_slowonly_r50_model

    # The layout and persons shape the heatmaps, not the network.
    return posec3d_slowonly_r50_model(num_classes=num_classes, in_channels=in_channels, dropout=dropout,
                                      base_channels=base_channels)


def _rgbpose(*, num_classes: int, layout: Any, in_channels: int, num_person: int, base_channels: int = 64,
             dropout: float = 0.5) -> nn.Module:
    from humact.errors import ConfigError
    from humact.video_models.rgbposeconv3d import rgbposeconv3d

    if base_channels < 2 or base_channels % 2:
        raise ConfigError(f"model.base_channels: RGBPoseConv3D's pose pathway is half as wide as its RGB one, so "
                          f"the width must be even (PYSKL: 64), got {base_channels}")
    # in_channels: heatmap channels (keypoints or limbs); the layout and persons shape the heatmaps only.
    return rgbposeconv3d(num_classes=num_classes, pose_in_channels=in_channels, dropout=dropout,
                         base_channels=base_channels)


def _rgb(builder: str, **fixed: Any) -> Callable[..., nn.Module]:
    def build(**kw: Any) -> nn.Module:
        from humact.video_models import recognizer

        return getattr(recognizer, builder)(**fixed, **kw)

    return build


#: PYSKL's posec3d recipe (configs/posec3d/slowonly_r50_ntu60_xsub/joint.py): 48 frames, flip 0.5,
#: dropout 0.5, SGD without Nesterov, weight decay 3e-4, gradient clipping at 40, width 32, and
#: lr 0.4 for batch 256 scaled linearly to the default batch of 16.
POSEC3D_RECIPE: dict[str, Any] = dict(clip_len=48, flip=0.5, dropout=0.5, nesterov=False, lr=0.4 * 16 / 256,
                                      weight_decay=3e-4, clip_grad=40.0, base_channels=32)


#: PYSKL's RGBPoseConv3D recipe (configs/rgbpose_conv3d/rgbpose_conv3d.py): 32 pose frames (8 RGB), heatmaps
#: 56 / 64 (RGB 224 / 256), flip 0.5, dropout 0.5, SGD without Nesterov, weight decay 1e-4, clipping at 40,
#: 20 epochs with x0.1 after epochs 12 and 16, no warm-up, lr 0.0075 for 8 GPUs x 6 videos scaled linearly to
#: the default batch of 16. PYSKL fine-tunes from its RGB-only and pose-only models (`rgbpose_conv3d_init.pth`).
RGBPOSE_RECIPE: dict[str, Any] = dict(clip_len=32, flip=0.5, heatmap_size=56, heatmap_test_size=64, dropout=0.5,
                                      nesterov=False, lr=0.0075 * 16 / 48, weight_decay=1e-4, clip_grad=40.0,
                                      schedule="multistep", milestones=[12, 16], epochs=20, warmup_iters=0,
                                      base_channels=64)


def _entries() -> dict[str, ModelEntry]:
    from humact.video_models.clips import ClipSpec

    gcn = [
        ModelEntry("stgcnpp", _gcn("stgcn", "stgcnpp"), "skeleton",
                   "ST-GCN++ (PYSKL): adaptive graph, residual GCN, multi-branch TCN"),
        ModelEntry("stgcn", _gcn("stgcn", "stgcn"), "skeleton",
                   "ST-GCN (Yan et al. 2018) as in PYSKL: distance partition, edge importance"),
        ModelEntry("aagcn", _gcn("aagcn", "aagcn"), "skeleton",
                   "AAGCN (Shi et al. 2020) as in PYSKL: adaptive graphs with spatial/temporal/channel attention"),
        ModelEntry("msg3d", _gcn("msg3d", "msg3d"), "skeleton",
                   "MS-G3D (Liu et al. 2020) as in PYSKL: multi-scale GCN and spatial-temporal window graphs"),
        ModelEntry("ctrgcn", _gcn("ctrgcn", "ctrgcn"), "skeleton",
                   "CTR-GCN (Chen et al. 2021) as in PYSKL: channel-wise topology refinement"),
        ModelEntry("dgstgcn", _gcn("dgstgcn", "dgstgcn"), "skeleton",
                   "DG-STGCN (Duan et al. 2022) as in PYSKL: dynamic group GCN from random graphs"),
        ModelEntry("posec3d", _posec3d, "heatmap",
                   "PoseConv3D SlowOnly-R50 (PYSKL) on keypoint or limb heatmaps of 2D poses",
                   train_defaults=POSEC3D_RECIPE),
        ModelEntry("rgbposeconv3d", _rgbpose, "rgbpose",
                   "RGBPoseConv3D (PYSKL): RGB frames of the video + pose heatmaps, two pathways with laterals, "
                   "two heads fused 1:1", train_defaults=RGBPOSE_RECIPE),
    ]
    three = dict(num_clips=10)
    center = dict(num_clips=10, crop="center", crop_size=224)
    rgb = [
        ("slowonly_r50_4x16", _rgb("slowonly_r50_recognizer"), ClipSpec(4, 16, **three),
         "SlowOnly-R50, 4 frames every 16, 10 clips x 3 crops"),
        ("slowonly_r50_8x8", _rgb("slowonly_r50_recognizer"), ClipSpec(8, 8, **three),
         "SlowOnly-R50, 8 frames every 8, 10 clips x 3 crops"),
        ("slowonly_r101_8x8", _rgb("slowonly_r101_recognizer"), ClipSpec(8, 8, **three),
         "SlowOnly-R101, 8 frames every 8, 10 clips x 3 crops"),
        ("slowfast_r50_4x16", _rgb("slowfast_recognizer", sampling="4x16"), ClipSpec(32, 2, **three),
         "SlowFast-R50 4x16 (32 frames every 2, alpha 8), 10 clips x 3 crops"),
        ("slowfast_r50_8x8", _rgb("slowfast_recognizer", sampling="8x8"), ClipSpec(32, 2, **three),
         "SlowFast-R50 8x8 (32 frames every 2, alpha 4), 10 clips x 3 crops"),
        ("slowfast_r101_8x8", _rgb("slowfast_recognizer", sampling="8x8", depth=101), ClipSpec(32, 2, **three),
         "SlowFast-R101 8x8, 10 clips x 3 crops"),
        ("slowfast_r101_r50_4x16", _rgb("slowfast_recognizer", sampling="4x16", depth=101, fast_depth=50),
         ClipSpec(32, 2, **three), "SlowFast R101 slow / R50 fast 4x16, 10 clips x 3 crops"),
        ("i3d_r50", _rgb("i3d_r50_recognizer"), ClipSpec(32, 2, **three),
         "I3D-R50, 32 frames every 2, 10 clips x 3 crops"),
        ("i3d_r50_nl", _rgb("i3d_r50_recognizer", non_local=True), ClipSpec(32, 2, **three),
         "I3D-R50 with embedded-gaussian non-local blocks, 10 clips x 3 crops"),
        ("i3d_r50_nl_dot", _rgb("i3d_r50_recognizer", non_local=True, non_local_mode="dot_product"),
         ClipSpec(32, 2, **three), "I3D-R50 with dot-product non-local blocks"),
        ("ircsn_r152", _rgb("csn_recognizer", depth=152, bottleneck_mode="ir"), ClipSpec(32, 2, **center),
         "ir-CSN-152, 32 frames every 2, 10 clips x centre crop 224"),
        ("ipcsn_r152", _rgb("csn_recognizer", depth=152, bottleneck_mode="ip"), ClipSpec(32, 2, **center),
         "ip-CSN-152, 32 frames every 2, 10 clips x centre crop 224"),
        ("ircsn_r50", _rgb("csn_recognizer", depth=50, bottleneck_mode="ir"), ClipSpec(32, 2, **center),
         "ir-CSN-50, 32 frames every 2, 10 clips x centre crop 224"),
        ("ipcsn_r50", _rgb("csn_recognizer", depth=50, bottleneck_mode="ip"), ClipSpec(32, 2, **center),
         "ip-CSN-50, 32 frames every 2, 10 clips x centre crop 224"),
    ]
    out = {e.name: e for e in gcn}
    out.update({name: ModelEntry(name, build, "rgb", desc, spec=spec) for name, build, spec, desc in rgb})
    from humact.video_models.ava import DETECTORS

    out.update({name: ModelEntry(name, _ava(name), "ava", f"AVA detector as MMAction2's {spec.config}", spec=spec)
                for name, (_, _, spec) in DETECTORS.items()})
    return out


def _ava(name: str) -> Callable[..., nn.Module]:
    def build(**kw: Any) -> nn.Module:
        from humact.video_models.ava import build_detector

        return build_detector(name, **kw)[0]

    return build


MODELS: dict[str, ModelEntry] = _entries()


def get(name: str, input: Input | None = None) -> ModelEntry:
    """The entry for `name` (of the given input kind); ValueError listing the known names otherwise."""
    names = of_input(input) if input else tuple(MODELS)
    if name not in names:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(names))}")
    return MODELS[name]


def trainable() -> tuple[str, ...]:
    """Names `humact train` accepts."""
    return tuple(n for n, e in MODELS.items() if e.trainable)


def of_input(input: Input) -> tuple[str, ...]:
    """Names of the models that take `input`."""
    return tuple(n for n, e in MODELS.items() if e.input == input)
