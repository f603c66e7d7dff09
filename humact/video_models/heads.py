"""Classification heads for 3D CNN features, with MMAction2 / PYSKL parameter names.

- `I3DHead`: global average pool -> dropout -> `fc_cls` (recognition; PYSKL's
  PoseConv3D head, MMAction2's I3D / SlowOnly / CSN heads).
- `SlowFastHead`: the same over both SlowFast pathways, fast features first (MMAction2).
- `BBoxHeadAVA`: per-RoI temporal average + spatial max pool -> dropout -> `fc_cls`
  (MMAction2's AVA detector head; 81 outputs, index 0 = background).
- `RGBPoseHead`: PYSKL's two-branch head of RGBPoseConv3D (`fc_rgb`, `fc_pose`).
- `average_clips` (from `humact.predict`, where every recognizer's multi-view `predict`
  lives): how multi-clip test scores become one video score.
"""

from __future__ import annotations

import torch
from torch import nn

from humact.predict import average_clips

__all__ = ["I3DHead", "SlowFastHead", "BBoxHeadAVA", "RGBPoseHead", "average_clips"]


class I3DHead(nn.Module):
    """(N, C, T, H, W) feature map, or a tuple of them (SlowFast: concatenated on C) -> (N, num_classes) logits."""

    def __init__(self, *, in_channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def pool(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Global average over T, H, W -> (N, C); a tuple is pooled per pathway then concatenated."""
        if isinstance(x, (tuple, list)):
            return torch.cat([t.mean(dim=(2, 3, 4)) for t in x], dim=1)
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"I3DHead: expected {self.in_channels} feature channels, got {x.shape[1]}")
        return self.fc_cls(self.dropout(x))


class SlowFastHead(I3DHead):
    """MMAction2's `SlowFastHead`: pool each pathway, concatenate **fast first** (`torch.cat((x_fast,
    x_slow))`, so an MMAction2 checkpoint's `fc_cls` columns are [fast 256 | slow 2048]), dropout, fc_cls.

    Input: the backbone's (slow, fast) pair; output (N, num_classes) logits.
    """

    def pool(self, x: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        slow, fast = x
        return torch.cat([fast.mean(dim=(2, 3, 4)), slow.mean(dim=(2, 3, 4))], dim=1)


class BBoxHeadAVA(nn.Module):
    """MMAction2's `BBoxHeadAVA`: (R, C, T, 8, 8) RoI features -> (R, num_classes) logits.

    Dropout (before pooling, MMAction2's default), temporal average pool then spatial max
    pool (MMAction2's defaults 'avg' / 'max'), then `fc_cls`: one Linear, or with `mlp_head` Linear -> ReLU -> Linear
    (keys `fc_cls.0`, `fc_cls.2`). AVA is multi-label: scores are sigmoids of these
    logits, column 0 is the background class.
    """

    def __init__(self, *, in_channels: int = 2048, num_classes: int = 81, dropout: float = 0.5,
                 mlp_head: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if mlp_head:
            self.fc_cls = nn.Sequential(nn.Linear(in_channels, in_channels), nn.ReLU(),
                                        nn.Linear(in_channels, num_classes))
        else:
            self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)                      # before pooling, as MMAction2's dropout_before_pool=True
        x = x.mean(dim=2, keepdim=True)          # temporal average: (R, C, 1, h, w)
        x = x.amax(dim=(3, 4))                   # spatial max: (R, C, 1)
        return self.fc_cls(x.reshape(x.shape[0], -1))


class RGBPoseHead(nn.Module):
    """PYSKL's `RGBPoseHead`: ((N, C_rgb, ...), (N, C_pose, ...)) -> {'rgb': logits, 'pose': logits}.

    Each branch: global average pool, dropout, its own Linear (`fc_rgb`, `fc_pose`).
    PYSKL trains both with loss weights (1, 1) and fuses test scores with per-head
    weights (see `average_clips` and `humact.video_models.clips.fuse_scores`).
    """

    def __init__(self, *, in_channels: tuple[int, int] = (2048, 512), num_classes: int = 60,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = tuple(in_channels)
        self.dropout_rgb = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dropout_pose = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_rgb = nn.Linear(in_channels[0], num_classes)
        self.fc_pose = nn.Linear(in_channels[1], num_classes)

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        rgb, pose = (t.mean(dim=(2, 3, 4)) for t in x)
        return {"rgb": self.fc_rgb(self.dropout_rgb(rgb)), "pose": self.fc_pose(self.dropout_pose(pose))}
