"""`Recognizer3D`: a video backbone + a classification head, MMAction2's checkpoint layout.

Named recognizers (keyword builders; parameter counts are MMAction2's published
figures for Kinetics-400, checked in the tests):

| builder                          | input (N, 3, T, H, W) | params (400 classes) |
|----------------------------------|-----------------------|----------------------|
| `slowonly_r50_recognizer`        | T = 4 (4x16) or 8 (8x8) | 32,454,096         |
| `slowonly_r101_recognizer`       | T = 8                 | 60,359,120           |
| `i3d_r50_recognizer`             | T = 32                | 28,043,472           |
| `i3d_r50_recognizer(non_local=True)` | T = 32            | 35,397,840           |
| `slowfast_recognizer` (R50 4x16) | T = 32                | 34,479,288           |
| `slowfast_recognizer` (R50 8x8)  | T = 32                | 34,565,560           |
| `slowfast_recognizer` (R101 8x8) | T = 32                | 62,912,312           |
| `slowfast_recognizer` (R101/R50 4x16) | T = 32           | 62,384,312           |
| `csn_recognizer` (ir-CSN-152)    | T = 32                | 29,703,568           |
| `csn_recognizer` (ip-CSN-152)    | T = 32                | 33.02 M (ours 33,016,592) |
| `csn_recognizer` (ir-CSN-50)     | T = 32                | 13.13 M (ours 13,131,152) |

PoseConv3D is a `Recognizer3D` too, on heatmap volumes (N, K, T, H, W), as PYSKL's config
defines it (`humact.skeleton.posec3d.posec3d_slowonly_r50_model`). The eval-only inference
twin of any of them is `humact.deploy.fuse(model)`.
"""

from __future__ import annotations

import os
from typing import Mapping

import torch
from torch import nn

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
from humact.predict import predict_clips
from humact.video_models.heads import I3DHead, SlowFastHead
from humact.video_models.resnet3d import i3d_r50, slowonly_r50, slowonly_r101

__all__ = ["Recognizer3D", "slowonly_r50_recognizer", "slowonly_r101_recognizer", "i3d_r50_recognizer",
           "slowfast_recognizer", "csn_recognizer", "load_mmaction2_recognizer", "checkpoint_filter_fn"]


class Recognizer3D(nn.Module):
    """Backbone + `I3DHead` (`backbone.*`, `cls_head.fc_cls.*`; MMAction2's and PYSKL's `Recognizer3D`).

    `forward_features` returns the last feature map (N, C, T', H', W'), or for SlowFast
    the (slow, fast) pair; `forward_head` maps it to (N, num_classes) logits; `predict`
    averages the scores of a sample's test views (`average_clips` mode, default 'prob').
    """

    def __init__(self, backbone: nn.Module, cls_head: I3DHead, *, average_clips: str = "prob") -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head
        self.average_clips_mode = average_clips
        self.channels_last = False

    def to_channels_last(self) -> "Recognizer3D":
        """Keep weights and activations in the channels-last 3D layout (N, T, H, W, C in memory).

        oneDNN's CPU convolutions are faster there (markedly for CSN's depthwise convs; see
        benchmarks/video_backbones.py); results equal the default layout's up to float rounding.
        """
        self.to(memory_format=torch.channels_last_3d)
        self.channels_last = True
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        feats = self.backbone(x)
        return feats[0] if isinstance(feats, tuple) and len(feats) == 1 else feats

    def forward_head(self, feats) -> torch.Tensor:
        return self.cls_head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) normalised clips (PoseConv3D: (N, K, T, H, W) heatmaps) -> (N, num_classes) logits."""
        return self.forward_head(self.forward_features(x))

    def predict(self, x: torch.Tensor, *, batch_size: int = 0) -> torch.Tensor:
        """(N, views, C, T, H, W) test views (clips x crops x flips; PoseConv3D: clips x flip) ->
        (N, num_classes) scores averaged with `average_clips` (a 5-d input is one view per sample).

        `batch_size` > 0 runs the views in chunks to bound memory. Call `.eval()` first.
        """
        if x.dim() == 5:
            x = x[:, None]
        return predict_clips(self, x, mode=self.average_clips_mode, batch_size=batch_size)


def _head(backbone_dim: int, num_classes: int, dropout: float) -> I3DHead:
    return I3DHead(in_channels=backbone_dim, num_classes=num_classes, dropout=dropout)


def slowonly_r50_recognizer(*, num_classes: int = 400, dropout: float = 0.5, **backbone_kw) -> Recognizer3D:
    """MMAction2 `slowonly_r50_{4x16x1,8x8x1}_256e_kinetics400_rgb`."""
    backbone = slowonly_r50(**backbone_kw)
    return Recognizer3D(backbone, _head(backbone.feat_dim, num_classes, dropout))


def slowonly_r101_recognizer(*, num_classes: int = 400, dropout: float = 0.5, **backbone_kw) -> Recognizer3D:
    """MMAction2 `slowonly_r101_8x8x1_196e_kinetics400_rgb`."""
    backbone = slowonly_r101(**backbone_kw)
    return Recognizer3D(backbone, _head(backbone.feat_dim, num_classes, dropout))


def i3d_r50_recognizer(*, num_classes: int = 400, dropout: float = 0.5, non_local: bool = False,
                       non_local_mode: str = "embedded_gaussian", **backbone_kw) -> Recognizer3D:
    """MMAction2 `i3d_r50_32x2x1_100e_kinetics400_rgb` and its `nl_{embedded_gaussian,dot_product}` variants."""
    backbone = i3d_r50(non_local=non_local, non_local_mode=non_local_mode, **backbone_kw)
    return Recognizer3D(backbone, _head(backbone.feat_dim, num_classes, dropout))


def slowfast_recognizer(*, num_classes: int = 400, dropout: float = 0.5, depth: int = 50, sampling: str = "4x16",
                        **backbone_kw) -> Recognizer3D:
    """MMAction2 `slowfast_r50_{4x16x1,8x8x1}_256e_kinetics400_rgb` (32 input frames either way).

    4x16: tau 16 over 32 frames sampled every 2 (resample_rate 8, alpha 8, fusion kernel 5);
    8x8: resample_rate 4, alpha 4, fusion kernel 7.
    """
    from humact.video_models.slowfast import ResNet3dSlowFast

    presets = {"4x16": dict(resample_rate=8, speed_ratio=8, fusion_kernel=5),
               "8x8": dict(resample_rate=4, speed_ratio=4, fusion_kernel=7)}
    if sampling not in presets:
        raise ValueError(f"slowfast_recognizer sampling: expected one of {sorted(presets)}, got {sampling!r}")
    backbone = ResNet3dSlowFast(depth=depth, **{**presets[sampling], **backbone_kw})
    return Recognizer3D(backbone, SlowFastHead(in_channels=sum(backbone.feat_dims), num_classes=num_classes,
                                               dropout=dropout))


def csn_recognizer(*, num_classes: int = 400, dropout: float = 0.5, depth: int = 152, bottleneck_mode: str = "ir",
                   **backbone_kw) -> Recognizer3D:
    """MMAction2 `{ir,ip}csn_*-r{50,152}*_32x2x1_*_kinetics400-rgb` (ir/ip bottlenecks, 32 frames)."""
    from humact.video_models.csn import ResNet3dCSN

    backbone = ResNet3dCSN(depth=depth, bottleneck_mode=bottleneck_mode, **backbone_kw)
    return Recognizer3D(backbone, _head(backbone.feat_dim, num_classes, dropout))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """MMAction2 recognizer checkpoint -> our keys: unwrap, strip `module.`, `cls_head.fc.` -> `cls_head.fc_cls.`,
    and drop `data_preprocessor.*` buffers (mean / std, which MMAction2 1.x stores in the model)."""
    state_dict, _ = read_foreign(state_dict)
    return mmaction_filter(state_dict)


def load_mmaction2_recognizer(model: Recognizer3D, checkpoint: str | os.PathLike | Mapping) -> Recognizer3D:
    """Load an MMAction2 recognizer checkpoint (path or dict) strictly; errors name the file and the keys."""
    return load_foreign(model, checkpoint, checkpoint_filter_fn)
