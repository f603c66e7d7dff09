"""Inference-only fast twin of a ResNet3d (SlowOnly / I3D / PoseConv3D) backbone and its I3D head.

:func:`fuse_resnet3d` / :func:`fuse_posec3d` copy a trained model that is in eval mode into
a form that gives the same outputs (to float32 rounding, ~1e-6 relative) in less time
on a CPU:

- every BatchNorm (or :class:`~humact.video_models.resnet3d.FrozenBatchNorm3d`) is folded
  into the convolution before it (``w * scale``, ``b * scale + shift``), so a block is three
  convolutions, one add and in-place ReLUs;
- activations stay in the channels-last 3D memory format, ``(N, T, H, W, C)`` in memory,
  while the shape stays ``(N, C, T, H, W)``. In that format oneDNN's kernels run without
  re-ordering (the PoseConv3D stem and its max pool run ~2x and ~4x faster than in the
  default format, measured on this 2-core AVX-512 machine);
- a convolution whose temporal kernel is 1 (``1 x k x k``) runs as a 2D convolution on the
  ``(N*T, C, H, W)`` view of the same memory, a ``k x 1 x 1`` one as a 2D ``(k, 1)``
  convolution on the ``(N, C, T, H*W)`` view, a ``1 x 1 x 1`` one as one matrix product
  over all ``N*T*H*W`` positions: views, no copies.

SlowFast (:func:`fuse_slowfast`) is two such pathways plus their lateral convolutions,
run in the source's order. Non-local blocks and the ``advanced`` average-pool shortcut are
not rewritten; a backbone that has them is refused (ValueError naming the part).
:func:`fuse_backbone` picks the right twin for a backbone.

The twin holds copies of the weights (buffers, no parameters): it cannot be trained and
later changes to the source model do not reach it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humact.video_models.resnet3d import Bottleneck3d, ConvBNAct, FrozenBatchNorm3d, ResNet3d

__all__ = ["FusedConv3d", "FusedBottleneck3d", "FusedResNet3d", "FusedSlowFast", "FusedPoseConv3D",
           "fuse_resnet3d", "fuse_slowfast", "fuse_backbone", "fuse_posec3d"]

_CL3 = torch.channels_last_3d
_CL = torch.channels_last


def _bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as per-channel ``x * scale + shift``."""
    if not isinstance(bn, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm3d)):
        raise ValueError(f"fuse: cannot fold a {type(bn).__name__} (expected a BatchNorm)")
    weight = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bias - bn.running_mean * scale


class FusedConv3d(nn.Module):
    """A :class:`ConvBNAct` (conv3d + eval BN + optional ReLU) with the BN folded in.

    Input and output ``(N, C, T, H, W)`` in channels-last-3D memory. Which kernel runs
    depends on the shape of the convolution (see the module docstring); ``kind`` says which.
    """

    def __init__(self, unit: ConvBNAct) -> None:
        super().__init__()
        if not isinstance(unit, ConvBNAct):
            raise ValueError(f"fuse: only conv + BN (+ ReLU) units are rewritten, not a {type(unit).__name__}")
        conv = unit.conv
        if conv.groups != 1:
            raise ValueError(f"fuse: grouped convolutions are not rewritten ({conv})")
        w = conv.weight.detach()
        b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        if unit.bn is not None:
            s, t = _bn_affine(unit.bn)
            w, b = w * s[:, None, None, None, None], b * s + t
        self.relu = unit.act is not None
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        kt, kh, kw = conv.kernel_size
        if (kt, kh, kw) == (1, 1, 1) and self.padding == (0, 0, 0):
            self.kind = "pointwise"
            self.register_buffer("w", w.reshape(w.shape[0], -1).t().contiguous())  # (C, O) for x @ w
        elif kt == 1 and self.padding[0] == 0:
            self.kind = "spatial"
            self.register_buffer("w", w[:, :, 0].contiguous(memory_format=_CL))
        elif (kh, kw) == (1, 1) and self.padding[1:] == (0, 0) and self.stride[1:] == (1, 1):
            self.kind = "temporal"
            self.register_buffer("w", w[..., 0].contiguous(memory_format=_CL))      # (O, C, kt, 1)
        else:
            self.kind = "general"
            self.register_buffer("w", w.contiguous(memory_format=_CL3))
        self.register_buffer("b", b.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st, sh, sw = self.stride
        if self.kind == "pointwise":
            if (st, sh, sw) != (1, 1, 1):
                x = x[:, :, ::st, ::sh, ::sw].contiguous(memory_format=_CL3)
            n, c, t, h, w = x.shape
            # (N*T*H*W, C) @ (C, O): the channels-last memory is exactly this matrix.
            y = torch.addmm(self.b, x.permute(0, 2, 3, 4, 1).reshape(-1, c), self.w)
            y = y.view(n, t, h, w, -1).permute(0, 4, 1, 2, 3)
        elif self.kind == "spatial":
            if st != 1:
                x = x[:, :, ::st]
            n, c, t, h, w = x.shape
            x2 = x.transpose(1, 2).reshape(n * t, c, h, w)          # a view: (N*T, C, H, W) channels-last
            y2 = F.conv2d(x2, self.w, self.b, (sh, sw), self.padding[1:], self.dilation[1:])
            y = y2.view(n, t, *y2.shape[1:]).transpose(1, 2)
        elif self.kind == "temporal":
            n, c, t, h, w = x.shape
            x2 = x.reshape(n, c, t, h * w)                           # a view: (N, C, T, H*W) channels-last
            y2 = F.conv2d(x2, self.w, self.b, (st, 1), (self.padding[0], 0), (self.dilation[0], 1))
            y = y2.view(n, -1, y2.shape[2], h, w)
        else:
            y = F.conv3d(x.contiguous(memory_format=_CL3), self.w, self.b, self.stride, self.padding,
                         self.dilation)
        return y.relu_() if self.relu else y


class FusedBottleneck3d(nn.Module):
    """:class:`Bottleneck3d` with folded BNs: ``relu(conv3(conv2(conv1(x))) + shortcut(x))``."""

    def __init__(self, block: Bottleneck3d) -> None:
        super().__init__()
        if block.non_local_block is not None:
            raise ValueError("fuse: Bottleneck3d with a non-local block is not rewritten")
        if block.downsample is not None and not isinstance(block.downsample, ConvBNAct):
            raise ValueError("fuse: only a conv + BN shortcut is rewritten (not PYSKL's 'advanced' one)")
        self.conv1 = FusedConv3d(block.conv1)
        self.conv2 = FusedConv3d(block.conv2)
        self.conv3 = FusedConv3d(block.conv3)
        self.downsample = FusedConv3d(block.downsample) if block.downsample is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return out.add_(identity).relu_()


class FusedResNet3d(nn.Module):
    """Inference twin of a :class:`ResNet3d`: ``(N, C, T, H, W)`` -> tuple of the ``out_indices``
    stage outputs, the same shapes and values as the source (returned in channels-last-3D memory)."""

    def __init__(self, backbone: ResNet3d) -> None:
        super().__init__()
        if backbone.training:
            raise ValueError("fuse: call .eval() first (BatchNorm must use its running statistics)")
        self.conv1 = FusedConv3d(backbone.conv1)
        self.with_pool1, self.with_pool2 = backbone.with_pool1, backbone.with_pool2
        mp = backbone.maxpool
        self.pool1_args = (mp.kernel_size, mp.stride, mp.padding)
        self.out_indices = backbone.out_indices
        self.res_layers = list(backbone.res_layers)
        for name in self.res_layers:
            layer = getattr(backbone, name)
            if not all(isinstance(b, Bottleneck3d) for b in layer):
                raise ValueError(f"fuse: {name} has blocks other than Bottleneck3d")
            self.add_module(name, nn.Sequential(*[FusedBottleneck3d(b) for b in layer]))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x.contiguous(memory_format=_CL3))
        return F.max_pool3d(x, *self.pool1_args) if self.with_pool1 else x

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i == 0 and self.with_pool2:
                x = F.max_pool3d(x, (2, 1, 1), (2, 1, 1))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class FusedSlowFast(nn.Module):
    """Inference twin of :class:`humact.video_models.slowfast.ResNet3dSlowFast`:
    ``(N, 3, T, H, W)`` -> ``(slow, fast)`` features, the source's shapes and values."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if backbone.training:
            raise ValueError("fuse: call .eval() first (BatchNorm must use its running statistics)")
        self.resample_rate, self.speed_ratio = backbone.resample_rate, backbone.speed_ratio
        self.slow_path = FusedResNet3d(backbone.slow_path)
        self.fast_path = FusedResNet3d(backbone.fast_path)
        self.conv1_lateral = FusedConv3d(backbone.slow_path.conv1_lateral)
        self.laterals = nn.ModuleList(FusedConv3d(getattr(backbone.slow_path, name))
                                      for name in backbone.lateral_connections)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The same nearest-neighbour temporal resampling as the source.
        x_slow = F.interpolate(x, mode="nearest", scale_factor=(1.0 / self.resample_rate, 1.0, 1.0))
        x_fast = F.interpolate(x, mode="nearest",
                               scale_factor=(1.0 / (self.resample_rate // self.speed_ratio), 1.0, 1.0))
        x_slow, x_fast = self.slow_path.stem(x_slow), self.fast_path.stem(x_fast)
        x_slow = torch.cat((x_slow, self.conv1_lateral(x_fast)), dim=1)
        names = self.slow_path.res_layers
        for i, name in enumerate(names):
            x_slow = getattr(self.slow_path, name)(x_slow)
            x_fast = getattr(self.fast_path, name)(x_fast)
            if i != len(names) - 1:
                x_slow = torch.cat((x_slow, self.laterals[i](x_fast)), dim=1)
        return x_slow, x_fast


class FusedPoseConv3D(nn.Module):
    """Inference twin of :class:`humact.skeleton.posec3d.PoseConv3D` (backbone + I3D head).

    ``forward``: ``(N, K, T, H, W)`` heatmap volumes -> ``(N, num_classes)`` logits;
    ``forward_features`` -> ``(N, 512, T/2, H/8, W/8)``; ``predict``: ``(N, clips, K, T, H, W)``
    -> clip-averaged scores, as the source model's.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = FusedResNet3d(model.backbone)
        self.register_buffer("fc_w", model.cls_head.fc_cls.weight.detach().clone())
        self.register_buffer("fc_b", model.cls_head.fc_cls.bias.detach().clone())
        self.average_clips_mode = model.average_clips_mode

    @torch.no_grad()
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[-1]

    @torch.no_grad()
    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        # I3DHead in eval: global average over (T, H, W), dropout is the identity, fc.
        return F.linear(feat.mean(dim=(2, 3, 4)), self.fc_w, self.fc_b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        from humact.video_models.heads import average_clips

        if x.dim() == 5:
            x = x[:, None]
        n, clips = x.shape[:2]
        logits = self(x.reshape(n * clips, *x.shape[2:]))
        return average_clips(logits, clips, self.average_clips_mode)


@torch.no_grad()
def fuse_resnet3d(backbone: ResNet3d) -> FusedResNet3d:
    """The fast inference twin of a ResNet3d backbone in eval mode."""
    return FusedResNet3d(backbone).eval()


@torch.no_grad()
def fuse_slowfast(backbone: nn.Module) -> FusedSlowFast:
    """The fast inference twin of a SlowFast backbone in eval mode."""
    return FusedSlowFast(backbone).eval()


def fuse_backbone(backbone: nn.Module) -> nn.Module:
    """The fast inference twin of a ResNet3d or SlowFast backbone (ValueError for others,
    e.g. CSN's grouped convolutions or non-local blocks)."""
    from humact.video_models.slowfast import ResNet3dSlowFast

    if isinstance(backbone, ResNet3dSlowFast):
        return fuse_slowfast(backbone)
    if isinstance(backbone, ResNet3d):
        return fuse_resnet3d(backbone)
    raise ValueError(f"fuse: no inference twin for a {type(backbone).__name__}")


@torch.no_grad()
def fuse_posec3d(model: nn.Module) -> FusedPoseConv3D:
    """The fast inference twin of a PoseConv3D model (``posec3d_slowonly_r50_model``) in eval mode."""
    if model.training:
        raise ValueError("fuse_posec3d: call model.eval() first (BatchNorm must use its running statistics)")
    return FusedPoseConv3D(model).eval()
