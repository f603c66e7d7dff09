"""Inference twins of the ResNet3d family: SlowOnly / I3D / PoseConv3D backbones, SlowFast,
and the models around them (:class:`FusedRecognizer3D`, an ``AVADetector`` with a fused backbone).

``humact.deploy.fuse(model)`` builds them from a trained model in eval mode; they give the
same outputs (to float32 rounding, ~1e-6 relative) in less time on a CPU:

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

SlowFast (:class:`FusedSlowFast`) is two such pathways plus their lateral convolutions,
run in the source's order. Non-local blocks, CSN's grouped convolutions and the ``advanced``
average-pool shortcut are not rewritten: a backbone that has them raises
:class:`~humact.deploy.common.Unfusable` naming the part, and ``fuse`` falls back to running
the model itself channels-last. :func:`fuse_backbone` picks the right twin for a backbone.

A twin holds copies of the weights (buffers; the head a frozen copy): later changes to the
source model do not reach it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from humact.deploy.common import Unfusable, fold_bn, register_twin, require_type
from humact.video_models.acrn import ContextDetector
from humact.video_models.ava import AVADetector
from humact.video_models.csn import ResNet3dCSN
from humact.video_models.lfb import LFBDetector
from humact.video_models.recognizer import Recognizer3D
from humact.video_models.resnet3d import Bottleneck3d, ConvBNAct, ResNet3d
from humact.video_models.slowfast import ResNet3dSlowFast

__all__ = ["FusedConv3d", "FusedBottleneck3d", "FusedResNet3d", "FusedSlowFast", "FusedRecognizer3D",
           "fuse_backbone"]

_CL3 = torch.channels_last_3d
_CL = torch.channels_last


class FusedConv3d(nn.Module):
    """A :class:`ConvBNAct` (conv3d + eval BN + optional ReLU) with the BN folded in.

    Input and output ``(N, C, T, H, W)`` in channels-last-3D memory. Which kernel runs
    depends on the shape of the convolution (see the module docstring); ``kind`` says which.
    """

    def __init__(self, unit: ConvBNAct) -> None:
        super().__init__()
        if not isinstance(unit, ConvBNAct):
            raise Unfusable(f"fuse: only conv + BN (+ ReLU) units are rewritten, not a {type(unit).__name__}")
        conv = unit.conv
        if conv.groups != 1:
            raise Unfusable(f"fuse: grouped convolutions are not rewritten ({conv})")
        w = conv.weight.detach()
        b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        if unit.bn is not None:
            w, b = fold_bn(w, b, unit.bn)
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
            raise Unfusable("fuse: Bottleneck3d with a non-local block is not rewritten")
        if block.downsample is not None and not isinstance(block.downsample, ConvBNAct):
            raise Unfusable("fuse: only a conv + BN shortcut is rewritten (not PYSKL's 'advanced' one)")
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
        require_type(backbone, ResNet3d, "the backbone")
        self.conv1 = FusedConv3d(backbone.conv1)
        self.with_pool1, self.with_pool2 = backbone.with_pool1, backbone.with_pool2
        self.maxpool, self.pool2 = copy.deepcopy(backbone.maxpool), copy.deepcopy(backbone.pool2)
        self.out_indices = backbone.out_indices
        self.res_layers = list(backbone.res_layers)
        for name in self.res_layers:
            layer = getattr(backbone, name)
            for i, block in enumerate(layer):
                require_type(block, Bottleneck3d, f"{name}.{i}")
            self.add_module(name, nn.Sequential(*[FusedBottleneck3d(b) for b in layer]))
        self.eval()   # an inference twin is never in training mode

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x.contiguous(memory_format=_CL3))
        return self.maxpool(x) if self.with_pool1 else x

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # The source's own stage loop (stem, stages, pool2 after the first, the out_indices outputs)
        # on the fused modules, which carry the same names.
        return ResNet3d.forward(self, x)


class FusedSlowFast(nn.Module):
    """Inference twin of :class:`humact.video_models.slowfast.ResNet3dSlowFast`:
    ``(N, 3, T, H, W)`` -> ``(slow, fast)`` features, the source's shapes and values."""

    def __init__(self, backbone: ResNet3dSlowFast) -> None:
        super().__init__()
        require_type(backbone, ResNet3dSlowFast, "the backbone")
        self.resample_rate, self.speed_ratio = backbone.resample_rate, backbone.speed_ratio
        self.slow_path = FusedResNet3d(backbone.slow_path)
        self.fast_path = FusedResNet3d(backbone.fast_path)
        # The laterals sit on the slow path under the source's names, as in the source.
        self.lateral_connections = list(backbone.lateral_connections)
        for name in ["conv1_lateral"] + self.lateral_connections:
            setattr(self.slow_path, name, FusedConv3d(getattr(backbone.slow_path, name)))
        self.eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The source's own forward (temporal resampling, stems, laterals into the slow path) on the fused modules.
        return ResNet3dSlowFast.forward(self, x)


def fuse_backbone(backbone: nn.Module) -> FusedResNet3d | FusedSlowFast:
    """The twin of a ResNet3d or SlowFast backbone in eval mode (:class:`Unfusable` for other
    backbones and for parts the twin does not rewrite: CSN's grouped convolutions, non-local blocks)."""
    if isinstance(backbone, ResNet3dSlowFast):
        return FusedSlowFast(backbone)
    if isinstance(backbone, ResNet3d):
        return FusedResNet3d(backbone)
    raise Unfusable(f"fuse: no inference twin for a {type(backbone).__name__}")


class FusedRecognizer3D(Recognizer3D):
    """Inference twin of a :class:`~humact.video_models.recognizer.Recognizer3D` (SlowOnly, I3D,
    SlowFast, PoseConv3D): the backbone's twin (:func:`fuse_backbone`), a frozen copy of the head.

    ``forward`` / ``forward_features`` / ``forward_head`` / ``predict`` are ``Recognizer3D``'s:
    ``(N, C, T, H, W)`` clips or heatmap volumes -> ``(N, num_classes)`` logits, clip-averaged
    scores with the source's ``average_clips`` mode; inputs are taken to channels-last-3D memory.
    """

    def __init__(self, model: Recognizer3D) -> None:
        require_type(model, Recognizer3D, "the model")
        super().__init__(fuse_backbone(model.backbone), copy.deepcopy(model.cls_head).requires_grad_(False),
                         average_clips=model.average_clips_mode)
        self.channels_last = True
        self.eval()


def _run_channels_last(model: Recognizer3D) -> Recognizer3D:
    """No twin (CSN, non-local I3D, any other backbone): the model itself, switched to the channels-last
    3D layout in place, where oneDNN's convolutions run faster (markedly for CSN's depthwise ones)."""
    return model.to_channels_last()


def _fuse_ava_detector(model: AVADetector) -> AVADetector:
    """An AVA detector (the plain one, or the feature-bank / context detectors of `video_models.lfb` /
    `video_models.acrn`, whose parts after the backbone are all in the RoI head) on the twin of its
    backbone, with a frozen copy of its RoI head."""
    require_type(model, (AVADetector, LFBDetector, ContextDetector), "the model")
    return type(model)(fuse_backbone(model.backbone), copy.deepcopy(model.roi_head).requires_grad_(False)).eval()


register_twin(Recognizer3D, FusedRecognizer3D, backbone=ResNet3d)
register_twin(Recognizer3D, FusedRecognizer3D, backbone=ResNet3dSlowFast)
register_twin(Recognizer3D, _run_channels_last, backbone=ResNet3dCSN)
register_twin(Recognizer3D, _run_channels_last)                     # non-local I3D, any other backbone
register_twin(FusedRecognizer3D, lambda twin: twin)                  # already a twin
for _detector in (AVADetector, LFBDetector, ContextDetector):
    register_twin(_detector, _fuse_ava_detector, backbone=ResNet3d)
    register_twin(_detector, _fuse_ava_detector, backbone=ResNet3dSlowFast)
