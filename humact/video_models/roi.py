"""RoIAlign in pure PyTorch (mmcv's CPU kernel semantics) and MMAction2's 3D RoI extractor.

No compiled extension: bilinear sampling is separable, so for one RoI the pooled
output is `Wy @ F @ Wx^T` with two small interpolation matrices (pooled x H and
pooled x W) built exactly as mmcv's `roi_align` CPU kernel places and weights its
sample points; autograd gives the backward pass.

Boxes are `[batch_index, x1, y1, x2, y2]` in input pixels; `spatial_scale` maps them
onto the feature map (1/16 for the AVA detectors).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["roi_align", "RoIAlign", "RoIExtractor3D"]


def _axis_weights(start: torch.Tensor, bin_size: torch.Tensor, grid: int, pooled: int, size: int,
                  dtype: torch.dtype) -> torch.Tensor:
    """(pooled, size) matrix: average over `grid` samples per bin of the 1-D bilinear weights.

    Follows mmcv's `bilinear_interpolate`: a sample outside [-1, size] contributes 0;
    coordinates in [-1, 0] clamp to 0; past the last pixel they clamp to it.
    """
    out = torch.zeros(pooled, size, dtype=dtype)
    if grid <= 0 or size == 0:
        return out
    p = torch.arange(pooled, dtype=torch.float32).view(-1, 1)
    i = torch.arange(grid, dtype=torch.float32).view(1, -1)
    # Same float32 arithmetic and order as the kernel: start + p*bin + (i + .5) * bin / grid.
    c = start + p * bin_size + (i + 0.5) * bin_size / grid                 # (pooled, grid)
    valid = (c >= -1.0) & (c <= size)
    c = c.clamp(min=0.0)
    low = c.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    c = torch.where(at_end, low.to(c.dtype), c)
    high = torch.where(at_end, low, low + 1)
    frac = c - low.to(c.dtype)
    w_low = ((1.0 - frac) * valid).to(dtype)
    w_high = (frac * valid).to(dtype)
    rows = p.long().expand_as(low)
    out.index_put_((rows.reshape(-1), low.reshape(-1)), w_low.reshape(-1), accumulate=True)
    out.index_put_((rows.reshape(-1), high.reshape(-1)), w_high.reshape(-1), accumulate=True)
    return out


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int], *,
              spatial_scale: float, sampling_ratio: int = 0, aligned: bool = True) -> torch.Tensor:
    """Average RoIAlign (He et al. 2017) with mmcv's semantics.

    Args:
        features: (N, C, H, W) feature map.
        rois: (R, 5) `[batch_index, x1, y1, x2, y2]`, input pixels.
        output_size: pooled (h, w), or one int for both.
        spatial_scale: feature pixels per input pixel.
        sampling_ratio: samples per bin per axis; 0 = adaptive, ceil(roi size / pooled size).
        aligned: shift boxes by -0.5 feature pixels (pixel centres; mmcv `aligned=True`).
            Without it, boxes are at least one feature pixel wide.

    Returns:
        (R, C, h, w) pooled features, same dtype as `features`.
    """
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"roi_align rois: expected shape (R, 5), got {tuple(rois.shape)}")
    n, c, h, w = features.shape
    out = []
    boxes = rois.detach().to(torch.float32).cpu()
    offset = 0.5 if aligned else 0.0
    for r in range(boxes.shape[0]):
        b = int(boxes[r, 0])
        if not 0 <= b < n:
            raise ValueError(f"roi_align rois[{r}]: batch index {b} outside 0..{n - 1}")
        x1, y1, x2, y2 = (boxes[r, 1:] * torch.tensor(spatial_scale, dtype=torch.float32) - offset).unbind()
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
        bin_h, bin_w = rh / ph, rw / pw
        gh = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(rh / ph))
        gw = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(rw / pw))
        count = max(gh * gw, 1)
        wy = _axis_weights(y1, bin_h, gh, ph, h, features.dtype).to(features.device)
        wx = _axis_weights(x1, bin_w, gw, pw, w, features.dtype).to(features.device)
        out.append(torch.einsum("ph,chw,qw->cpq", wy, features[b], wx) / count)
    if not out:
        return features.new_zeros(0, c, ph, pw)
    return torch.stack(out)


class RoIAlign(nn.Module):
    """Module form of `roi_align` (mmcv `RoIAlign(output_size, spatial_scale, sampling_ratio, aligned=True)`)."""

    def __init__(self, output_size: int | tuple[int, int] = 8, *, spatial_scale: float = 1 / 16,
                 sampling_ratio: int = 0, aligned: bool = True) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(features, rois, self.output_size, spatial_scale=self.spatial_scale,
                         sampling_ratio=self.sampling_ratio, aligned=self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


class RoIExtractor3D(nn.Module):
    """MMAction2's `SingleRoIExtractor3D`: per-person features from 3D feature maps.

    Several pathways (SlowFast) are first brought to the longest temporal length by
    nearest interpolation, then (with `temporal_pool`) averaged over time and
    concatenated on channels; RoIAlign runs per remaining frame. With `with_global`
    (MMAction2's context feature), each RoI's features are followed on channels by its
    clip's whole frame feature average-pooled to the same `output_size` grid.

    Input: a (N, C, T, H, W) map or a tuple of them; rois (R, 5).
    Output: (R, sum C, T', h, w) (2 x sum C with `with_global`), T' = 1 with temporal pooling.
    """

    def __init__(self, *, output_size: int = 8, spatial_scale: float = 1 / 16, sampling_ratio: int = 0,
                 aligned: bool = True, temporal_pool: str | None = "avg", with_global: bool = False) -> None:
        super().__init__()
        if temporal_pool not in ("avg", "max", None):
            raise ValueError(f"RoIExtractor3D temporal_pool: expected 'avg', 'max' or None, got {temporal_pool!r}")
        self.temporal_pool = temporal_pool
        self.with_global = with_global
        self.output_size = output_size
        self.roi_layer = RoIAlign(output_size, spatial_scale=spatial_scale, sampling_ratio=sampling_ratio,
                                  aligned=aligned)

    def pooled_map(self, feats: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The map RoIAlign runs on (MMAction2's second output of the extractor): pathways brought to the
        longest T (nearest), pooled over time with `temporal_pool`, concatenated -> (N, sum C, T', H, W)."""
        feats = (feats,) if isinstance(feats, torch.Tensor) else tuple(feats)
        if len(feats) >= 2:
            t_max = max(f.shape[2] for f in feats)
            feats = tuple(F.interpolate(f, (t_max,) + tuple(feats[0].shape[3:])) for f in feats)
        if self.temporal_pool == "avg":
            feats = tuple(f.mean(dim=2, keepdim=True) for f in feats)
        elif self.temporal_pool == "max":
            feats = tuple(f.amax(dim=2, keepdim=True) for f in feats)
        return torch.cat(feats, dim=1)

    def forward(self, feats: torch.Tensor | tuple[torch.Tensor, ...], rois: torch.Tensor) -> torch.Tensor:
        feat = self.pooled_map(feats)
        out = []
        for t in range(feat.shape[2]):
            roi_feat = self.roi_layer(feat[:, :, t], rois)
            if self.with_global:
                whole = F.adaptive_avg_pool2d(feat[:, :, t], self.output_size)
                roi_feat = torch.cat([roi_feat, whole[rois[:, 0].long()]], dim=1)
            out.append(roi_feat)
        return torch.stack(out, dim=2)
