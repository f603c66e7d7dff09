"""ResNet3d: the 3D ResNet family behind SlowOnly, I3D (with non-local blocks) and PoseConv3D.

One file, one family (see ../shared/STYLE.md). Module and parameter names follow
MMAction2 / PYSKL (`conv1.conv`, `conv1.bn`, `layer{i}.{j}.conv{k}`, `downsample`,
`non_local_block.{g,theta,phi,conv_out}`), so their checkpoints load strictly with
only the `backbone.` prefix removed.

Tensors are `(N, C, T, H, W)`: batch, channels, frames, height, width.

Named variants (keyword builders, no registry):
- `slowonly_r50(...)`: SlowOnly-R50 (Feichtenhofer et al. 2019): conv1 (1, 7, 7), no
  temporal convolutions in res2/res3 (inflate (0, 0, 1, 1)), no temporal striding.
- `i3d_r50(...)`: I3D-R50 as in MMAction2 (conv1 (5, 7, 7) stride 2 in time, pool2),
  optionally with non-local blocks (Wang et al. 2018) at MMAction2's positions.
- `posec3d_slowonly_r50(...)`: PoseConv3D's SlowOnly-R50 for heatmap volumes
  (Duan et al. 2022): 17 input channels, base 32, 3 stages (4, 6, 3), inflate
  (0, 1, 1), conv1 stride 1, pool1 stride 1, temporal stride 2 in the last stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "ConvBNAct",
    "NonLocal3d",
    "Bottleneck3d",
    "ResNet3d",
    "FrozenBatchNorm3d",
    "freeze_batch_norm",
    "slowonly_r50",
    "slowonly_r101",
    "i3d_r50",
    "posec3d_slowonly_r50",
    "STAGE_BLOCKS",
]

#: Blocks per stage of the bottleneck ResNets (He et al. 2016).
STAGE_BLOCKS: dict[int, tuple[int, ...]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


def _triple(v) -> tuple[int, int, int]:
    if isinstance(v, int):
        return (v, v, v)
    v = tuple(v)
    if len(v) != 3:
        raise ValueError(f"expected an int or 3 ints, got {v}")
    return v  # type: ignore[return-value]


class ConvBNAct(nn.Module):
    """Conv3d -> BatchNorm3d -> ReLU, named like mmcv's `ConvModule` (`conv`, `bn`).

    The convolution has no bias when a norm follows (the norm's shift replaces it),
    which is what mmcv's `bias='auto'` does; without a norm it has one unless
    `bias=False` is given (SlowFast's lateral convolutions).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 dilation=1, groups: int = 1, norm: bool = True, act: bool = True,
                 bias: bool | None = None) -> None:
        super().__init__()
        if bias is None:
            bias = not norm
        self.conv = nn.Conv3d(in_channels, out_channels, _triple(kernel_size), stride=_triple(stride),
                              padding=_triple(padding), dilation=_triple(dilation), groups=groups,
                              bias=bias)
        self.bn = nn.BatchNorm3d(out_channels) if norm else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class NonLocal3d(nn.Module):
    """Non-local block (Wang et al. 2018), mmcv's `NonLocal3d` layout.

    y = x + W_z( softmax(theta(x)^T phi(x)) g(x) ), the attention taken over all
    T*H*W positions. With `sub_sample`, g and phi are max-pooled 2x2 in space (as in
    the paper) so the pairwise matrix is (THW, THW/4).

    Args:
        in_channels: C of the block's input and output.
        reduction: inner channels are C // reduction.
        mode: 'embedded_gaussian' (softmax of the dot products) or 'dot_product'
            (dot products divided by the number of positions).
        use_scale: divide embedded-gaussian logits by sqrt(inner channels).
        norm: a BatchNorm after the output projection (MMAction2's I3D-NL configs use one).
    """

    def __init__(self, in_channels: int, *, reduction: int = 2, mode: str = "embedded_gaussian",
                 use_scale: bool = True, sub_sample: bool = False, norm: bool = True) -> None:
        super().__init__()
        if mode not in ("embedded_gaussian", "dot_product"):
            raise ValueError(f"NonLocal3d mode: expected 'embedded_gaussian' or 'dot_product', got {mode!r}")
        self.mode = mode
        self.use_scale = use_scale
        self.inter_channels = max(in_channels // reduction, 1)
        inter = self.inter_channels
        g = ConvBNAct(in_channels, inter, 1, norm=False, act=False)
        phi = ConvBNAct(in_channels, inter, 1, norm=False, act=False)
        if sub_sample:
            # mmcv wraps the pooled branches in a Sequential: keys become g.0.conv.*, phi.0.conv.*
            g = nn.Sequential(g, nn.MaxPool3d(kernel_size=(1, 2, 2)))
            phi = nn.Sequential(phi, nn.MaxPool3d(kernel_size=(1, 2, 2)))
        self.g = g
        self.theta = ConvBNAct(in_channels, inter, 1, norm=False, act=False)
        self.phi = phi
        self.conv_out = ConvBNAct(inter, in_channels, 1, norm=norm, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g_x = self.g(x).reshape(n, self.inter_channels, -1).transpose(1, 2)          # (N, P', C')
        theta_x = self.theta(x).reshape(n, self.inter_channels, -1).transpose(1, 2)  # (N, P, C')
        phi_x = self.phi(x).reshape(n, self.inter_channels, -1)                      # (N, C', P')
        w = torch.matmul(theta_x, phi_x)                                             # (N, P, P')
        if self.mode == "embedded_gaussian":
            if self.use_scale:
                w = w / theta_x.shape[-1] ** 0.5
            w = w.softmax(dim=-1)
        else:
            w = w / w.shape[-1]
        y = torch.matmul(w, g_x).transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.conv_out(y)


class Bottleneck3d(nn.Module):
    """The 3D bottleneck: 1x1 reduce, 3x3 spatial, 1x1 expand (x4), plus the shortcut.

    `inflate` puts the temporal kernel of 3 in conv1 ('3x1x1', SlowOnly/I3D) or
    conv2 ('3x3x3'); without it the block is purely spatial. Strides sit on conv2
    ('pytorch' style) or conv1 ('caffe' style). A non-local block, when asked for,
    follows the final ReLU (MMAction2's position).

    Args:
        inplanes: input channels (for SlowFast's slow path, including the lateral ones).
        planes: bottleneck width; the output has 4 * planes channels.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, spatial_stride: int = 1, temporal_stride: int = 1,
                 dilation: int = 1, downsample: nn.Module | None = None, style: str = "pytorch",
                 inflate: bool = True, inflate_style: str = "3x1x1", non_local: bool = False,
                 non_local_cfg: dict | None = None) -> None:
        super().__init__()
        if style not in ("pytorch", "caffe"):
            raise ValueError(f"Bottleneck3d style: expected 'pytorch' or 'caffe', got {style!r}")
        if inflate_style not in ("3x1x1", "3x3x3"):
            raise ValueError(f"Bottleneck3d inflate_style: expected '3x1x1' or '3x3x3', got {inflate_style!r}")
        if style == "pytorch":
            s1, s2, t1, t2 = 1, spatial_stride, 1, temporal_stride
        else:
            s1, s2, t1, t2 = spatial_stride, 1, temporal_stride, 1
        if inflate and inflate_style == "3x1x1":
            k1, p1, k2, p2 = (3, 1, 1), (1, 0, 0), (1, 3, 3), (0, dilation, dilation)
        elif inflate:
            k1, p1, k2, p2 = (1, 1, 1), (0, 0, 0), (3, 3, 3), (1, dilation, dilation)
        else:
            k1, p1, k2, p2 = (1, 1, 1), (0, 0, 0), (1, 3, 3), (0, dilation, dilation)
        self.conv1 = ConvBNAct(inplanes, planes, k1, stride=(t1, s1, s1), padding=p1)
        self.conv2 = ConvBNAct(planes, planes, k2, stride=(t2, s2, s2), padding=p2,
                               dilation=(1, dilation, dilation))
        self.conv3 = ConvBNAct(planes, planes * self.expansion, 1, act=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)
        self.non_local_block = (NonLocal3d(planes * self.expansion, **(non_local_cfg or {}))
                                if non_local else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)
        if self.non_local_block is not None:
            out = self.non_local_block(out)
        return out


def _per_block(value, blocks: int, what: str) -> tuple[int, ...]:
    """An int for the whole stage, or one value per block."""
    if isinstance(value, int):
        return (value,) * blocks
    value = tuple(value)
    if len(value) != blocks:
        raise ValueError(f"{what}: expected {blocks} per-block values, got {len(value)}")
    return value


def make_res_layer(inplanes: int, planes: int, blocks: int, *, spatial_stride: int = 1,
                   temporal_stride: int = 1, dilation: int = 1, style: str = "pytorch",
                   inflate=1, inflate_style: str = "3x1x1", non_local=0,
                   non_local_cfg: dict | None = None, lateral_inplanes: int = 0,
                   advanced_downsample: bool = False, block: type = None,
                   block_kw: dict | None = None) -> nn.Sequential:
    """One ResNet stage (`layer{i}`) of bottleneck blocks.

    The shortcut of the first block is a strided 1x1x1 conv + BN when the shape
    changes (MMAction2's rule: spatial stride != 1 or channels differ); with
    `advanced_downsample` (PYSKL's `advanced=True`) the conv is unstrided and an
    average pool does the striding. `lateral_inplanes` are extra input channels
    concatenated from SlowFast's fast path, seen only by the first block.
    """
    block = block or Bottleneck3d
    block_kw = block_kw or {}
    inflate = _per_block(inflate, blocks, "inflate")
    non_local = _per_block(non_local, blocks, "non_local")
    first_in = inplanes + lateral_inplanes
    downsample = None
    if spatial_stride != 1 or first_in != planes * Bottleneck3d.expansion:
        if advanced_downsample:
            k = (temporal_stride, spatial_stride, spatial_stride)
            downsample = nn.Sequential(
                ConvBNAct(first_in, planes * Bottleneck3d.expansion, 1, act=False),
                nn.AvgPool3d(kernel_size=k, stride=k, ceil_mode=True))
        else:
            downsample = ConvBNAct(first_in, planes * Bottleneck3d.expansion, 1, act=False,
                                   stride=(temporal_stride, spatial_stride, spatial_stride))
    layers = [block(first_in, planes, spatial_stride=spatial_stride, temporal_stride=temporal_stride,
                    dilation=dilation, downsample=downsample, style=style, inflate=inflate[0] == 1,
                    inflate_style=inflate_style, non_local=non_local[0] == 1,
                    non_local_cfg=non_local_cfg, **block_kw)]
    for i in range(1, blocks):
        layers.append(block(planes * Bottleneck3d.expansion, planes, dilation=dilation, style=style,
                            inflate=inflate[i] == 1, inflate_style=inflate_style,
                            non_local=non_local[i] == 1, non_local_cfg=non_local_cfg, **block_kw))
    return nn.Sequential(*layers)


class FrozenBatchNorm3d(nn.Module):
    """BatchNorm3d with statistics AND affine parameters fixed (buffers, not parameters).

    Same state-dict keys as `nn.BatchNorm3d` (weight, bias, running_mean,
    running_var, num_batches_tracked), so checkpoints load unchanged. `train()`
    has no effect on it: fine-tuning never updates it. The seeds found this decisive
    when fine-tuning ip/ir-CSN on small data (+9.9 points top-1).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batch_norm(cls, bn: nn.modules.batchnorm._BatchNorm) -> "FrozenBatchNorm3d":
        out = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.affine:
                out.weight.copy_(bn.weight)
                out.bias.copy_(bn.bias)
            if bn.track_running_stats:
                out.running_mean.copy_(bn.running_mean)
                out.running_var.copy_(bn.running_var)
                out.num_batches_tracked.copy_(bn.num_batches_tracked)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.reshape(shape) + shift.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm (1d/2d/3d) inside `module` by a `FrozenBatchNorm3d`, in place.

    Returns `module` (or the replacement when `module` itself is a BatchNorm).
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return FrozenBatchNorm3d.from_batch_norm(module)
    for name, child in module.named_children():
        new = freeze_batch_norm(child)
        if new is not child:
            setattr(module, name, new)
    return module


class ResNet3d(nn.Module):
    """A 3D ResNet backbone (MMAction2's `ResNet3d` / PYSKL's `ResNet3d`), bottleneck blocks.

    Input (N, in_channels, T, H, W) -> the outputs of the stages in `out_indices`
    (a tuple of (N, C_i, T_i, H_i, W_i)). Stem: conv1 (conv1_kernel, stride
    (conv1_stride_t, s, s)) + BN + ReLU, then an optional 1x3x3 max pool with stride
    (pool1_stride_t, s, s), padding 1 in space; `with_pool2` halves time after
    layer1 (I3D).

    Frozen BN: `norm_eval=True` keeps every BN in eval mode under `train()` (running
    statistics fixed); `bn_frozen=True` also stops gradients to their affine
    parameters (MMAction2's CSN `bn_frozen`). `freeze_batch_norm(model)` is the
    module-conversion alternative.
    """

    def __init__(self, *, depth: int = 50, stage_blocks: Sequence[int] | None = None, in_channels: int = 3,
                 base_channels: int = 64, num_stages: int = 4, out_indices: Sequence[int] = (3,),
                 spatial_strides: Sequence[int] = (1, 2, 2, 2), temporal_strides: Sequence[int] = (1, 1, 1, 1),
                 dilations: Sequence[int] = (1, 1, 1, 1), conv1_kernel=(3, 7, 7), conv1_stride_s: int = 2,
                 conv1_stride_t: int = 1, pool1_stride_s: int = 2, pool1_stride_t: int = 1,
                 with_pool1: bool = True, with_pool2: bool = False, style: str = "pytorch",
                 inflate=(1, 1, 1, 1), inflate_style: str = "3x1x1", non_local=(0, 0, 0, 0),
                 non_local_cfg: dict | None = None, lateral_inplanes: Sequence[int] | None = None,
                 advanced_downsample: bool = False, norm_eval: bool = False, bn_frozen: bool = False,
                 frozen_stages: int = -1, block: type | None = None, block_kw: dict | None = None) -> None:
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"ResNet3d depth: expected one of {sorted(STAGE_BLOCKS)}, got {depth}")
        if not 1 <= num_stages <= 4:
            raise ValueError(f"ResNet3d num_stages: expected 1..4, got {num_stages}")
        stage_blocks = tuple(stage_blocks) if stage_blocks is not None else STAGE_BLOCKS[depth][:num_stages]
        for name, seq in (("stage_blocks", stage_blocks), ("spatial_strides", spatial_strides),
                          ("temporal_strides", temporal_strides), ("dilations", dilations)):
            if len(seq) < num_stages:
                raise ValueError(f"ResNet3d {name}: expected {num_stages} values, got {len(seq)}")
        if max(out_indices) >= num_stages:
            raise ValueError(f"ResNet3d out_indices {tuple(out_indices)} exceed num_stages {num_stages}")
        inflate = tuple(inflate) if not isinstance(inflate, int) else (inflate,) * num_stages
        non_local = tuple(non_local) if not isinstance(non_local, int) else (non_local,) * num_stages
        lateral_inplanes = tuple(lateral_inplanes) if lateral_inplanes is not None else (0,) * num_stages

        self.in_channels = in_channels
        self.base_channels = base_channels
        self.out_indices = tuple(out_indices)
        self.with_pool1 = with_pool1
        self.with_pool2 = with_pool2
        self.norm_eval = norm_eval
        self.bn_frozen = bn_frozen
        self.frozen_stages = frozen_stages

        k = _triple(conv1_kernel)
        self.conv1 = ConvBNAct(in_channels, base_channels, k, stride=(conv1_stride_t, conv1_stride_s, conv1_stride_s),
                               padding=tuple((x - 1) // 2 for x in k))
        self.maxpool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(pool1_stride_t, pool1_stride_s, pool1_stride_s),
                                    padding=(0, 1, 1))
        self.pool2 = nn.MaxPool3d(kernel_size=(2, 1, 1), stride=(2, 1, 1))

        self.res_layers: list[str] = []
        inplanes = base_channels
        for i in range(num_stages):
            planes = base_channels * 2 ** i
            layer = make_res_layer(inplanes, planes, stage_blocks[i], spatial_stride=spatial_strides[i],
                                   temporal_stride=temporal_strides[i], dilation=dilations[i], style=style,
                                   inflate=inflate[i], inflate_style=inflate_style, non_local=non_local[i],
                                   non_local_cfg=non_local_cfg, lateral_inplanes=lateral_inplanes[i],
                                   advanced_downsample=advanced_downsample, block=block, block_kw=block_kw)
            inplanes = planes * Bottleneck3d.expansion
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
        #: channels of the last stage's output
        self.feat_dim = inplanes
        self._freeze()

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.maxpool(x) if self.with_pool1 else x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, C, T, H, W) -> tuple of the `out_indices` stage outputs."""
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i == 0 and self.with_pool2:
                x = self.pool2(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze(self) -> None:
        if self.frozen_stages >= 0:
            self.conv1.eval()
            for p in self.conv1.parameters():
                p.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            m = getattr(self, f"layer{i}")
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        if self.bn_frozen:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    for p in m.parameters():
                        p.requires_grad = False

    def train(self, mode: bool = True) -> "ResNet3d":
        """Set training mode, then re-apply frozen stages and, with `norm_eval`, keep BN in eval."""
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


# ---------------------------------------------------------------------------------------
# Named variants


@dataclass(frozen=True)
class SlowOnlySpec:
    """What a SlowOnly checkpoint expects at its input."""

    clip_len: int
    frame_interval: int


SLOWONLY_SAMPLING = {"4x16": SlowOnlySpec(4, 16), "8x8": SlowOnlySpec(8, 8)}


def slowonly_r50(*, in_channels: int = 3, spatial_strides=(1, 2, 2, 2), out_indices=(3,), **kw) -> ResNet3d:
    """SlowOnly-R50 (MMAction2 `ResNet3dSlowOnly`, depth 50): (N, 3, T, H, W) -> (N, 2048, T, H/32, W/32).

    The same network serves 4x16 and 8x8 sampling (T = 4 or 8). For the AVA detector
    MMAction2 uses spatial_strides (1, 2, 2, 1): output stride 16.
    """
    return ResNet3d(depth=50, in_channels=in_channels, conv1_kernel=(1, 7, 7), conv1_stride_t=1,
                    pool1_stride_t=1, inflate=(0, 0, 1, 1), with_pool2=False, spatial_strides=spatial_strides,
                    out_indices=out_indices, **kw)


def slowonly_r101(*, in_channels: int = 3, spatial_strides=(1, 2, 2, 2), out_indices=(3,), **kw) -> ResNet3d:
    """SlowOnly-R101: as `slowonly_r50` with (3, 4, 23, 3) blocks."""
    return ResNet3d(depth=101, in_channels=in_channels, conv1_kernel=(1, 7, 7), conv1_stride_t=1,
                    pool1_stride_t=1, inflate=(0, 0, 1, 1), with_pool2=False, spatial_strides=spatial_strides,
                    out_indices=out_indices, **kw)


#: MMAction2's I3D-R50 inflation pattern (per block) and non-local positions
I3D_INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
I3D_NON_LOCAL = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))


def i3d_r50(*, non_local: bool = False, non_local_mode: str = "embedded_gaussian", **kw) -> ResNet3d:
    """I3D-R50 as in MMAction2's `i3d_imagenet-pretrained-r50(-nl-*)` configs.

    (N, 3, 32, H, W) -> (N, 2048, 4, H/32, W/32): conv1 (5, 7, 7) stride 2 in time,
    pool1 stride 2 in time, pool2 after layer1. With `non_local`, 5 non-local blocks
    (res3: blocks 1, 3; res4: blocks 1, 3, 5), sub-sampled, unscaled, with BN.
    """
    return ResNet3d(depth=50, conv1_kernel=(5, 7, 7), conv1_stride_t=2, pool1_stride_t=2, with_pool2=True,
                    inflate=I3D_INFLATE, inflate_style="3x1x1",
                    non_local=I3D_NON_LOCAL if non_local else (0, 0, 0, 0),
                    non_local_cfg=dict(sub_sample=True, use_scale=False, norm=True, mode=non_local_mode),
                    **kw)


def posec3d_slowonly_r50(*, in_channels: int = 17, base_channels: int = 32, **kw) -> ResNet3d:
    """PoseConv3D's SlowOnly-R50 (PYSKL `ResNet3dSlowOnly`, posec3d configs).

    (N, K, T, H, W) heatmap volume (K = 17 keypoints or limbs; typically T = 48,
    H = W = 56) -> (N, 512, T/2, H/8, W/8). Differences from the RGB SlowOnly:
    stem conv stride 1 and pool1 stride 1 (PYSKL still applies its 1x3x3 max pool,
    at stride 1), three stages (4, 6, 3) starting at 32 channels, a temporal kernel
    in the last two stages, temporal stride 2 in the last stage.
    """
    return ResNet3d(depth=50, in_channels=in_channels, base_channels=base_channels, num_stages=3,
                    stage_blocks=(4, 6, 3), out_indices=(2,), conv1_kernel=(1, 7, 7), conv1_stride_s=1,
                    conv1_stride_t=1, pool1_stride_s=1, pool1_stride_t=1, inflate=(0, 1, 1),
                    spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2), dilations=(1, 1, 1), **kw)
