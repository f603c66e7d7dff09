"""SlowFast (Feichtenhofer et al., ICCV 2019), MMAction2's `ResNet3dSlowFast` layout.

Two ResNet3d pathways over the same clip:
- slow: every `resample_rate`-th frame (tau), full width, temporal kernels only in
  res4/res5 (inflate (0, 0, 1, 1));
- fast: `speed_ratio` (alpha) times more frames, 1/`channel_ratio` (beta) of the width,
  temporal kernels everywhere (conv1 (5, 7, 7));
- lateral connections fast -> slow after the stem and after res2..res4: a
  (fusion_kernel, 1, 1) conv with temporal stride alpha and 2*beta*C outputs
  ("time-strided convolution", the paper's best fusion), concatenated to the slow path.

Input (N, 3, T, H, W) with T = alpha * T_slow (e.g. 32 frames for 4x16 with alpha 8);
`forward_features` returns both pathways: ((N, 2048, T/tau, H/32, W/32),
(N, 256, T*alpha/tau, H/32, W/32)) for R50 (output stride 16 with the AVA
detector's spatial strides (1, 2, 2, 1)). Keys: `slow_path.*`, `fast_path.*`
(`slow_path.conv1_lateral`, `slow_path.layer{i}_lateral`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from humact.video_models.resnet3d import ConvBNAct, ResNet3d

__all__ = ["ResNet3dSlowFast", "slowfast_r50", "slowfast_r101"]


def _lateral(in_channels: int, *, speed_ratio: int, fusion_kernel: int) -> ConvBNAct:
    """Time-strided conv fast -> slow: C/beta -> 2C/beta channels, no norm, no bias, no activation."""
    return ConvBNAct(in_channels, in_channels * 2, (fusion_kernel, 1, 1), stride=(speed_ratio, 1, 1),
                     padding=((fusion_kernel - 1) // 2, 0, 0), norm=False, act=False, bias=False)


class ResNet3dSlowFast(nn.Module):
    """The two-pathway backbone. See the module docstring for shapes.

    Args:
        depth: 50, 101 or 152 (slow pathway; also the fast one unless `fast_depth` is given,
            e.g. MMAction2's `slowfast_r101_r50_4x16x1`: slow R101, fast R50).
        resample_rate: tau, the slow path's frame stride over the input clip.
        speed_ratio: alpha, how many more frames the fast path sees.
        channel_ratio: beta, the fast path's width divisor (fast base = 64 / beta).
        fusion_kernel: temporal kernel of the lateral convolutions (5; 7 in some configs).
        spatial_strides: per stage, both pathways; (1, 2, 2, 1) for AVA detection.
        slow_kw / fast_kw: extra ResNet3d arguments per pathway (e.g. norm_eval).
        base_channels: the slow path's first width (the fast path's is base_channels / channel_ratio).
    """

    def __init__(self, *, depth: int = 50, resample_rate: int = 8, speed_ratio: int = 8, channel_ratio: int = 8,
                 fusion_kernel: int = 5, spatial_strides=(1, 2, 2, 2), fast_depth: int | None = None,
                 slow_kw: dict | None = None, fast_kw: dict | None = None, base_channels: int = 64) -> None:
        super().__init__()
        self.resample_rate = resample_rate
        self.speed_ratio = speed_ratio
        self.channel_ratio = channel_ratio
        if resample_rate % speed_ratio:
            raise ValueError(f"ResNet3dSlowFast: resample_rate {resample_rate} must be a multiple of "
                             f"speed_ratio {speed_ratio}")
        base = base_channels  # 64 in every published SlowFast; smaller for quick tests
        if base % channel_ratio:
            raise ValueError(f"ResNet3dSlowFast: base_channels {base} must be a multiple of channel_ratio {channel_ratio}")
        # The slow path's stage i sees 2/beta of the channels entering that stage from the fast path.
        stage_in = [base] + [base * 2 ** i * 4 for i in range(3)]
        self.slow_path = ResNet3d(depth=depth, base_channels=base, conv1_kernel=(1, 7, 7), conv1_stride_t=1, pool1_stride_t=1,
                                  inflate=(0, 0, 1, 1), spatial_strides=spatial_strides,
                                  lateral_inplanes=[c * 2 // channel_ratio for c in stage_in],
                                  **(slow_kw or {}))
        self.fast_path = ResNet3d(depth=fast_depth or depth, base_channels=base // channel_ratio, conv1_kernel=(5, 7, 7),
                                  conv1_stride_t=1, pool1_stride_t=1, inflate=(1, 1, 1, 1),
                                  spatial_strides=spatial_strides, **(fast_kw or {}))
        fast_out = [base // channel_ratio] + [base // channel_ratio * 2 ** i * 4 for i in range(3)]
        # Registered on the slow path, as MMAction2 does, so checkpoint keys match.
        self.slow_path.conv1_lateral = _lateral(fast_out[0], speed_ratio=speed_ratio, fusion_kernel=fusion_kernel)
        self.lateral_connections = []
        for i in range(3):
            name = f"layer{i + 1}_lateral"
            setattr(self.slow_path, name, _lateral(fast_out[i + 1], speed_ratio=speed_ratio,
                                                   fusion_kernel=fusion_kernel))
            self.lateral_connections.append(name)
        self.feat_dims = (self.slow_path.feat_dim, self.fast_path.feat_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, T, H, W) -> (slow (N, 2048, T/tau, h, w), fast (N, 256, T*alpha/tau, h, w))."""
        # Nearest-neighbour resampling in time = taking every k-th frame, as MMAction2 does.
        x_slow = F.interpolate(x, mode="nearest", scale_factor=(1.0 / self.resample_rate, 1.0, 1.0))
        x_fast = F.interpolate(x, mode="nearest",
                               scale_factor=(1.0 / (self.resample_rate // self.speed_ratio), 1.0, 1.0))
        x_slow = self.slow_path.stem(x_slow)
        x_fast = self.fast_path.stem(x_fast)
        x_slow = torch.cat((x_slow, self.slow_path.conv1_lateral(x_fast)), dim=1)
        names = self.slow_path.res_layers
        for i, name in enumerate(names):
            x_slow = getattr(self.slow_path, name)(x_slow)
            x_fast = getattr(self.fast_path, name)(x_fast)
            if i != len(names) - 1:
                lateral = getattr(self.slow_path, self.lateral_connections[i])
                x_slow = torch.cat((x_slow, lateral(x_fast)), dim=1)
        return x_slow, x_fast


def slowfast_r50(**kw) -> ResNet3dSlowFast:
    """SlowFast-R50. 4x16: 32 input frames at stride 2, resample_rate 8, alpha 8 (slow path 4 frames);
    8x8: resample_rate 4, alpha 4, fusion kernel 7 (slow path 8 frames)."""
    return ResNet3dSlowFast(depth=50, **kw)


def slowfast_r101(**kw) -> ResNet3dSlowFast:
    """SlowFast-R101 (both pathways (3, 4, 23, 3) blocks)."""
    return ResNet3dSlowFast(depth=101, **kw)
