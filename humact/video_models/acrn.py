"""Actor-context relations for AVA detection: MMAction2's `ACRNHead` and an actor-target non-local relation.

Both sit between the RoI extractor and the classifier and let each person's RoI feature see
the clip's feature map around it (the temporally pooled map the extractor pools from,
`RoIExtractor3D.pooled_map`).

- `ACRNHead` (Sun et al. 2018, "Actor-Centric Relation Network"; MMAction2's `ACRNHead`):
  the RoI feature, max-pooled to one vector, is tiled over the whole map and concatenated
  with it; a 1x1x1 conv + BN + ReLU and 1x3x3 conv(s) + BN + ReLU give a relation map
  `(R, C_out, 1, H, W)` that `BBoxHeadAVA` pools (temporal average, spatial max). Keys
  `roi_head.shared_head.conv1.*`, `conv2.*`, `convs.N.*` as MMAction2's
  `slowfast-acrn_kinetics400-pretrained-r50_8xb8-8x8x1-cosine-10e_ava21-rgb`
  (`slowfast_acrn_r50_ava`).
- `ActorContextRelation` (the actor-target relation of the AVA challenge's second system): a
  non-local operation with the RoI feature as the query and the feature map positions
  *outside* its box as keys and values (embedded Gaussian, scaled by 1/sqrt(latent)); the
  result, projected back to C channels, is added to every cell of the RoI feature before the
  classifier. The output projection starts at zero, so a new relation leaves a trained
  detector's scores unchanged (`slowfast_relation_r50_ava`, keys `roi_head.relation.*`). A box
  covering the whole map has no outside and gets nothing added.

Both detectors are `ContextDetector`s, `AVADetector`s whose `roi_features` step includes the
context module (`forward(clip, rois)` as the plain detectors); `humact.deploy.fuse` gives them
the BN-folded backbone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from humact.video_models.ava import AVADetector
from humact.video_models.heads import BBoxHeadAVA
from humact.video_models.resnet3d import ConvBNAct
from humact.video_models.roi import RoIExtractor3D
from humact.video_models.slowfast import ResNet3dSlowFast

__all__ = ["ACRNHead", "ActorContextRelation", "ContextRoIHead", "ContextDetector",
           "slowfast_acrn_r50_ava", "slowfast_relation_r50_ava", "load_plain_detector"]


class ACRNHead(nn.Module):
    """MMAction2's `ACRNHead`: (R, C, T, h, w) RoI features + (N, C, T', H, W) context map + rois (R, 5)
    -> (R, out_channels, T', H/stride, W/stride). `in_channels` = 2 C (tiled RoI feature + map)."""

    def __init__(self, *, in_channels: int, out_channels: int, stride: int = 1, num_convs: int = 1) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError("ACRNHead num_convs: expected >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1 = ConvBNAct(in_channels, out_channels, 1)
        self.conv2 = ConvBNAct(out_channels, out_channels, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))
        self.convs = nn.ModuleList(ConvBNAct(out_channels, out_channels, (1, 3, 3), padding=(0, 1, 1))
                                   for _ in range(num_convs - 1))

    def forward(self, x: torch.Tensor, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        x = x.amax(dim=(2, 3, 4), keepdim=True)                    # AdaptiveMaxPool3d(1): (R, C, 1, 1, 1)
        h, w = feat.shape[-2:]
        x_tile = x.repeat(1, 1, 1, h, w)                           # (R, C, 1, H, W), as upstream
        roi_gfeat = feat[rois[:, 0].long()]
        out = self.conv2(self.conv1(torch.cat([x_tile, roi_gfeat], dim=1)))
        for conv in self.convs:
            out = conv(out)
        return out


class ActorContextRelation(nn.Module):
    """Non-local relation of each RoI feature (query) to the context map outside its box (keys / values).

    forward(x (R, C, T, h, w), feat (N, C, T', H, W), rois (R, 5) in input pixels) -> x + delta,
    delta (R, C, 1, 1, 1) broadcast over the RoI cells. Feature cell (i, j) is outside the box when
    its centre ((j + 0.5) / spatial_scale, (i + 0.5) / spatial_scale) is not inside [x1, x2] x [y1, y2].
    """

    def __init__(self, channels: int, *, latent_channels: int = 512, spatial_scale: float = 1 / 16,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.spatial_scale = spatial_scale
        self.theta = nn.Linear(channels, latent_channels)
        self.phi = nn.Conv2d(channels, latent_channels, 1)
        self.g = nn.Conv2d(channels, latent_channels, 1)
        self.norm = nn.LayerNorm(latent_channels)
        self.out = nn.Linear(latent_channels, channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def outside_mask(self, rois: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(R, H*W) bool: the map cells whose centres lie outside each box."""
        cy = (torch.arange(h, dtype=torch.float32) + 0.5) / self.spatial_scale
        cx = (torch.arange(w, dtype=torch.float32) + 0.5) / self.spatial_scale
        b = rois[:, 1:].detach().float().cpu()
        inside_x = (cx[None] >= b[:, 0:1]) & (cx[None] <= b[:, 2:3])      # (R, W)
        inside_y = (cy[None] >= b[:, 1:2]) & (cy[None] <= b[:, 3:4])      # (R, H)
        inside = inside_y[:, :, None] & inside_x[:, None, :]
        return (~inside).reshape(len(b), h * w).to(rois.device)

    def forward(self, x: torch.Tensor, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        ctx = feat.mean(dim=2)                                              # (N, C, H, W)
        h, w = ctx.shape[-2:]
        idx = rois[:, 0].long()
        q = self.theta(x.mean(dim=2).amax(dim=(2, 3)))                      # (R, c)
        k = self.phi(ctx).flatten(2)[idx]                                   # (R, c, HW)
        v = self.g(ctx).flatten(2)[idx]                                     # (R, c, HW)
        logits = torch.einsum("rc,rcp->rp", q, k) / self.latent_channels ** 0.5
        outside = self.outside_mask(rois, h, w)
        logits = logits.masked_fill(~outside, float("-inf"))
        att = torch.where(outside.any(dim=1, keepdim=True), logits.softmax(dim=1).nan_to_num(0.0),
                          torch.zeros_like(logits))
        rel = torch.einsum("rp,rcp->rc", att, v)
        delta = self.out(self.dropout(F.relu(self.norm(rel))))
        return x + delta[:, :, None, None, None]


class ContextRoIHead(nn.Module):
    """RoI extractor + a context module (`shared_head`: ACRNHead, or `relation`: ActorContextRelation)
    + `BBoxHeadAVA`. forward(feats, rois) -> (R, num_classes) logits, like `ava.AVARoIHead`."""

    def __init__(self, *, in_channels: int, context: str = "acrn", num_classes: int = 81, dropout: float = 0.5,
                 output_size: int = 8, spatial_scale: float = 1 / 16, latent_channels: int = 512) -> None:
        super().__init__()
        if context not in ("acrn", "relation"):
            raise ValueError(f"ContextRoIHead context: expected 'acrn' or 'relation', got {context!r}")
        self.context = context
        self.bbox_roi_extractor = RoIExtractor3D(output_size=output_size, spatial_scale=spatial_scale,
                                                 sampling_ratio=0, aligned=True, temporal_pool="avg")
        if context == "acrn":
            self.shared_head = ACRNHead(in_channels=2 * in_channels, out_channels=in_channels)
        else:
            self.relation = ActorContextRelation(in_channels, latent_channels=latent_channels,
                                                 spatial_scale=spatial_scale)
        self.bbox_head = BBoxHeadAVA(in_channels=in_channels, num_classes=num_classes, dropout=dropout)

    def roi_features(self, feats, rois: torch.Tensor) -> torch.Tensor:
        """RoI features after the context module: ACRN (R, C, 1, H, W) relation maps, or relation-added
        (R, C, 1, 8, 8) RoI features; what `bbox_head` classifies."""
        ctx = self.bbox_roi_extractor.pooled_map(feats)
        x = self.bbox_roi_extractor(ctx, rois)      # the same as pooling `feats`: ctx is already pooled
        module = self.shared_head if self.context == "acrn" else self.relation
        return module(x, ctx, rois)

    def forward(self, feats, rois: torch.Tensor) -> torch.Tensor:
        return self.bbox_head(self.roi_features(feats, rois))


class ContextDetector(AVADetector):
    """An `AVADetector` whose RoI head is a `ContextRoIHead`: `forward(clip, rois)` -> (R, num_classes).

    `roi_features(feats, rois)` includes the context module and `classify` is the box head alone, so a
    pipeline that extends RoI features between the two steps sees the related features."""

    def roi_features(self, feats, rois: torch.Tensor) -> torch.Tensor:
        return self.roi_head.roi_features(feats, rois)

    def classify(self, roi_feats: torch.Tensor) -> torch.Tensor:
        return self.roi_head.bbox_head(roi_feats)

    def forward_head(self, feats, rois: torch.Tensor) -> torch.Tensor:
        return self.classify(self.roi_features(feats, rois))


def _slowfast_ava_backbone(sampling: str) -> ResNet3dSlowFast:
    if sampling == "8x8":      # MMAction2's slowfast-acrn / slowfast 8x8 AVA configs
        return ResNet3dSlowFast(depth=50, resample_rate=4, speed_ratio=4, channel_ratio=8, fusion_kernel=7,
                                spatial_strides=(1, 2, 2, 1))
    if sampling == "4x16":
        return ResNet3dSlowFast(depth=50, resample_rate=8, speed_ratio=8, channel_ratio=8,
                                spatial_strides=(1, 2, 2, 1))
    raise ValueError(f"sampling: expected '8x8' or '4x16', got {sampling!r}")


def slowfast_acrn_r50_ava(*, num_classes: int = 81, dropout: float = 0.5, sampling: str = "8x8") -> ContextDetector:
    """MMAction2's `slowfast-acrn_kinetics400-pretrained-r50_8xb8-8x8x1-cosine-10e_ava21-rgb`: SlowFast-R50 8x8
    (input (N, 3, 32, H, W), slow 8 frames, fast 32), ACRNHead(4608 -> 2304), BBoxHeadAVA(2304)."""
    backbone = _slowfast_ava_backbone(sampling)
    return ContextDetector(backbone, ContextRoIHead(in_channels=sum(backbone.feat_dims), context="acrn",
                                                    num_classes=num_classes, dropout=dropout))


def slowfast_relation_r50_ava(*, num_classes: int = 81, dropout: float = 0.5, sampling: str = "4x16",
                              latent_channels: int = 512) -> ContextDetector:
    """SlowFast-R50 AVA detector with the actor-target relation before the classifier. Its backbone and
    classifier keys are those of the plain `ava.slowfast_r50_ava` (4x16) detector, so MMAction2's AVA
    checkpoint loads into them (`load_plain_detector`); the relation trains from zero."""
    backbone = _slowfast_ava_backbone(sampling)
    return ContextDetector(backbone, ContextRoIHead(in_channels=sum(backbone.feat_dims), context="relation",
                                                    num_classes=num_classes, dropout=dropout,
                                                    latent_channels=latent_channels))


def load_plain_detector(model: ContextDetector, checkpoint) -> ContextDetector:
    """Load a plain AVA detector's checkpoint (MMAction2 `slowfast_*_ava*`) into a relation detector:
    every key strictly except `roi_head.relation.*`, which keeps its (zero-output) initialisation."""
    from humact.io.checkpoints import load_strict, mmaction_filter, read_foreign

    sd, name = read_foreign(checkpoint)
    sd = mmaction_filter(sd)
    sd.update({k: v for k, v in model.state_dict().items() if k.startswith("roi_head.relation.")})
    return load_strict(model, sd, name)
