"""RGBPoseConv3D (Duan et al., CVPR 2022, "Revisiting skeleton-based action recognition"), PYSKL's layout.

Two ResNet3d pathways, SlowFast-style, with *bidirectional* lateral connections:
- RGB pathway ("slow"): SlowOnly-R50 on (N, 3, 8, 224, 224) frames;
- pose pathway ("fast"): PoseConv3D's SlowOnly (3 stages (4, 6, 3), base 32) on
  (N, 17, 32, 56, 56) heatmap volumes: 4x more frames (speed_ratio), 1/4 of the
  resolution (heatmaps are made at scaling 0.25);
- pose -> RGB before RGB res4 and res5: a (7, 1, 1) conv with temporal stride 4
  (`rgb_path.layer{2,3}_lateral`, no norm, no bias);
- RGB -> pose before pose stages 2 and 3: a (7, 1, 1) *transposed* conv with temporal
  stride 4 + BN + ReLU (`pose_path.layer{1,2}_lateral`), upsampling RGB features to the
  pose pathway's frame rate.

Outputs (RGB (N, 2048, 8, 7, 7), pose (N, 512, 32, 7, 7)); `RGBPoseHead` classifies each
stream (`fc_rgb`, `fc_pose`); PYSKL fuses the two streams' probabilities 1:1 at test time.

Same-named options as PYSKL: `rgb_detach` / `pose_detach` stop gradients through the
laterals into the other pathway; `rgb_drop_path` / `pose_drop_path` zero a lateral's
output with that probability per training step.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

import torch
from torch import nn

from humact.io.checkpoints import load_strict, read_foreign
from humact.predict import predict_clips
from humact.video_models.heads import RGBPoseHead
from humact.video_models.resnet3d import ConvBNAct, ResNet3d

__all__ = ["DeConvBNAct", "RGBPoseConv3D", "RGBPoseRecognizer", "rgbposeconv3d", "load_pyskl_rgbpose",
           "from_pyskl_checkpoint", "LOSS_WEIGHTS", "FUSION_WEIGHTS"]


class DeConvBNAct(nn.Module):
    """ConvTranspose3d -> BN -> ReLU (PYSKL's `DeConvModule`); output exactly `stride` times the input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride, padding) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.conv = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                       bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        size = (t * self.stride[0], h * self.stride[1], w * self.stride[2])
        return self.relu(self.bn(self.conv(x, output_size=size)))


class RGBPoseConv3D(nn.Module):
    """The two-stream backbone: (imgs (N, 3, T, H, W), heatmaps (N, K, 4T, H/4, W/4)) -> (rgb, pose) features.

    Args:
        speed_ratio: pose frames per RGB frame (4).
        channel_ratio: used with `lateral_infl` to size the laterals, as in PYSKL (4).
        fusion_kernel: temporal kernel of every lateral (7).
        pose_in_channels: heatmap channels (17 keypoints, or limbs).
    """

    def __init__(self, *, speed_ratio: int = 4, channel_ratio: int = 4, fusion_kernel: int = 7,
                 pose_in_channels: int = 17, rgb_base_channels: int = 64, pose_base_channels: int = 32,
                 rgb_detach: bool = False, pose_detach: bool = False, rgb_drop_path: float = 0.0,
                 pose_drop_path: float = 0.0, rgb_kw: dict | None = None, pose_kw: dict | None = None) -> None:
        super().__init__()
        for name, p in (("rgb_drop_path", rgb_drop_path), ("pose_drop_path", pose_drop_path)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"RGBPoseConv3D {name}: expected a probability in [0, 1], got {p}")
        b, pb = rgb_base_channels, pose_base_channels
        if b < 1 or pb < 1:
            raise ValueError(f"RGBPoseConv3D widths: expected positive base channels, got rgb {b}, pose {pb}")
        self.speed_ratio = speed_ratio
        self.rgb_detach, self.pose_detach = rgb_detach, pose_detach
        self.rgb_drop_path, self.pose_drop_path = rgb_drop_path, pose_drop_path
        rgb_infl, pose_infl = 1, 16               # PYSKL's `lateral_infl` of each pathway
        # Channels entering each stage of a bottleneck ResNet with base width b: b, 4b, 8b, 16b.
        rgb_in = [b, 4 * b, 8 * b, 16 * b]
        pose_in = [pb, 4 * pb, 8 * pb]
        # pose -> rgb laterals feed RGB stages 3, 4; rgb -> pose laterals feed pose stages 2, 3.
        rgb_lat = [0, 0, rgb_in[2] * rgb_infl // channel_ratio, rgb_in[3] * rgb_infl // channel_ratio]
        pose_lat = [0, pose_in[1] * channel_ratio // pose_infl, pose_in[2] * channel_ratio // pose_infl]
        self.rgb_path = ResNet3d(depth=50, in_channels=3, base_channels=b, num_stages=4, conv1_kernel=(1, 7, 7),
                                 inflate=(0, 0, 1, 1), lateral_inplanes=rgb_lat, **(rgb_kw or {}))
        self.pose_path = ResNet3d(depth=50, in_channels=pose_in_channels, base_channels=pb, num_stages=3,
                                  stage_blocks=(4, 6, 3), out_indices=(2,), conv1_kernel=(1, 7, 7),
                                  conv1_stride_s=1, pool1_stride_s=1, inflate=(0, 1, 1), spatial_strides=(2, 2, 2),
                                  temporal_strides=(1, 1, 1), dilations=(1, 1, 1), lateral_inplanes=pose_lat,
                                  **(pose_kw or {}))
        pad = ((fusion_kernel - 1) // 2, 0, 0)
        # pose stage-i output (= 4 * 32 * 2^(i-1)) -> RGB: same width in, `infl / channel_ratio` of RGB's width out
        self.rgb_path.layer2_lateral = ConvBNAct(pose_in[1], rgb_lat[2], (fusion_kernel, 1, 1),
                                                 stride=(speed_ratio, 1, 1), padding=pad, norm=False, act=False,
                                                 bias=False)
        self.rgb_path.layer3_lateral = ConvBNAct(pose_in[2], rgb_lat[3], (fusion_kernel, 1, 1),
                                                 stride=(speed_ratio, 1, 1), padding=pad, norm=False, act=False,
                                                 bias=False)
        self.pose_path.layer1_lateral = DeConvBNAct(rgb_in[2], pose_lat[1], (fusion_kernel, 1, 1),
                                                    stride=(speed_ratio, 1, 1), padding=pad)
        self.pose_path.layer2_lateral = DeConvBNAct(rgb_in[3], pose_lat[2], (fusion_kernel, 1, 1),
                                                    stride=(speed_ratio, 1, 1), padding=pad)
        self.feat_dims = (self.rgb_path.feat_dim, self.pose_path.feat_dim)

    def _lateral(self, module: nn.Module, x: torch.Tensor, detach: bool, drop: bool) -> torch.Tensor:
        out = module(x.detach() if detach else x)
        return torch.zeros_like(out) if drop else out

    def forward(self, imgs: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            drop_rgb = bool(torch.rand(1) < self.rgb_drop_path)
            drop_pose = bool(torch.rand(1) < self.pose_drop_path)
        else:
            drop_rgb = drop_pose = False
        rgb, pose = self.rgb_path, self.pose_path
        x_rgb = rgb.layer2(rgb.layer1(rgb.stem(imgs)))
        x_pose = pose.layer1(pose.stem(heatmaps))
        to_rgb = self._lateral(rgb.layer2_lateral, x_pose, self.rgb_detach, drop_rgb)
        to_pose = self._lateral(pose.layer1_lateral, x_rgb, self.pose_detach, drop_pose)
        x_rgb = rgb.layer3(torch.cat((x_rgb, to_rgb), dim=1))
        x_pose = pose.layer2(torch.cat((x_pose, to_pose), dim=1))
        to_rgb = self._lateral(rgb.layer3_lateral, x_pose, self.rgb_detach, drop_rgb)
        to_pose = self._lateral(pose.layer2_lateral, x_rgb, self.pose_detach, drop_pose)
        x_rgb = rgb.layer4(torch.cat((x_rgb, to_rgb), dim=1))
        x_pose = pose.layer3(torch.cat((x_pose, to_pose), dim=1))
        return x_rgb, x_pose


#: PYSKL's `RGBPoseHead` training loss: one cross-entropy per stream, weighted (`loss_components`,
#: `loss_weights` of configs/rgbpose_conv3d/rgbpose_conv3d.py), and its 1:1 test-time fusion.
LOSS_WEIGHTS: dict[str, float] = {"rgb": 1.0, "pose": 1.0}
FUSION_WEIGHTS: dict[str, float] = {"rgb": 1.0, "pose": 1.0}


class RGBPoseRecognizer(nn.Module):
    """PYSKL's `MMRecognizer3D`: `RGBPoseConv3D` + `RGBPoseHead` (`backbone.*`, `cls_head.fc_{rgb,pose}.*`).

    `loss` is PYSKL's two-pathway training loss (what `humact.train.trainer.Trainer` calls for a
    model that has one); `predict` averages each stream's softmax over the views and adds the
    weighted sum under 'fused' (PYSKL's 1:1 "RGBPose_1:1" score).
    """

    def __init__(self, backbone: RGBPoseConv3D, cls_head: RGBPoseHead, *, average_clips: str = "prob",
                 loss_weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head
        self.average_clips_mode = average_clips
        self.loss_weights = dict(LOSS_WEIGHTS if loss_weights is None else loss_weights)
        self.last_losses: dict[str, float] = {}

    def loss(self, out: Mapping[str, torch.Tensor], label: torch.Tensor,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of weight x loss_fn(stream logits, label), fused probabilities for accuracy).

        PYSKL's `MMRecognizer3D.forward_train`: `rgb_loss_cls` and `pose_loss_cls`, each scaled by its
        weight, summed by the optimiser step; the per-stream values of the last call stay in
        `last_losses`.
        """
        total, parts = None, {}
        for name, weight in self.loss_weights.items():
            part = loss_fn(out[name].float(), label) * weight
            parts[name] = float(part.detach())
            total = part if total is None else total + part
        self.last_losses = parts
        fused = sum(out[k].float().softmax(1) * w for k, w in FUSION_WEIGHTS.items())
        return total, fused

    def forward_features(self, imgs: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(imgs, heatmaps)

    def forward_head(self, feats: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.cls_head(feats)

    def forward(self, imgs: torch.Tensor, heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
        """-> {'rgb': (N, classes), 'pose': (N, classes)} logits."""
        return self.forward_head(self.forward_features(imgs, heatmaps))

    def predict(self, imgs: torch.Tensor, heatmaps: torch.Tensor,
                weights: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
        """(N, clips, ...) views -> per-stream clip-averaged scores plus their weighted sum under 'fused'
        (PYSKL's default 1:1)."""
        if imgs.dim() == 5:
            imgs, heatmaps = imgs[:, None], heatmaps[:, None]
        scores = predict_clips(self, imgs, heatmaps, mode=self.average_clips_mode)
        weights = dict(weights or FUSION_WEIGHTS)
        scores["fused"] = sum(scores[k] * w for k, w in weights.items())
        return scores


def rgbposeconv3d(*, num_classes: int = 60, pose_in_channels: int = 17, dropout: float = 0.5,
                  base_channels: int = 64, **backbone_kw) -> RGBPoseRecognizer:
    """PYSKL / MMAction2 `configs/.../rgbpose_conv3d/rgbpose_conv3d.py` (NTU-60: 60 classes, 17 keypoints).

    `base_channels` is the RGB pathway's first width (PYSKL: 64); the pose pathway gets half of it
    (PYSKL: 32), so a narrower variant keeps the two pathways' ratio and the laterals' shapes.
    """
    if base_channels < 2 or base_channels % 2:
        raise ValueError(f"rgbposeconv3d base_channels: expected an even width >= 2, got {base_channels}")
    backbone_kw.setdefault("rgb_base_channels", base_channels)
    backbone_kw.setdefault("pose_base_channels", base_channels // 2)
    backbone = RGBPoseConv3D(pose_in_channels=pose_in_channels, **backbone_kw)
    head = RGBPoseHead(in_channels=backbone.feat_dims, num_classes=num_classes, dropout=dropout)
    return RGBPoseRecognizer(backbone, head)


def load_pyskl_rgbpose(model: RGBPoseRecognizer, checkpoint: str | os.PathLike | Mapping) -> RGBPoseRecognizer:
    """Load a PYSKL / MMAction2 RGBPoseConv3D checkpoint strictly (`state_dict` or bare, `module.` stripped;
    MMAction2's `data_preprocessor.*` buffers ignored)."""
    state_dict, name = _pyskl_state(checkpoint)
    return load_strict(model, state_dict, name)


def _pyskl_state(checkpoint: str | os.PathLike | Mapping) -> tuple[dict, str]:
    state_dict, name = read_foreign(checkpoint)
    return {k: v for k, v in state_dict.items() if not k.startswith("data_preprocessor.")}, name


def from_pyskl_checkpoint(checkpoint: str | os.PathLike | Mapping) -> RGBPoseRecognizer:
    """A PYSKL / MMAction2 RGBPoseConv3D checkpoint as a model: classes, heatmap channels and width read from
    its `cls_head.fc_rgb.weight` and first convolutions, then loaded strictly (eval mode)."""
    from humact.errors import CheckpointError

    state_dict, name = _pyskl_state(checkpoint)
    shapes = {}
    for key in ("cls_head.fc_rgb.weight", "backbone.pose_path.conv1.conv.weight",
                "backbone.rgb_path.conv1.conv.weight"):
        if key not in state_dict or state_dict[key].dim() < 2:
            raise CheckpointError(f"{name}: no {key!r}: not an RGBPoseConv3D checkpoint")
        shapes[key] = tuple(state_dict[key].shape)
    model = rgbposeconv3d(num_classes=shapes["cls_head.fc_rgb.weight"][0],
                          pose_in_channels=shapes["backbone.pose_path.conv1.conv.weight"][1],
                          rgb_base_channels=shapes["backbone.rgb_path.conv1.conv.weight"][0],
                          pose_base_channels=shapes["backbone.pose_path.conv1.conv.weight"][0])
    return load_strict(model, state_dict, name).eval()
