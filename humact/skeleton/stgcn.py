"""ST-GCN and ST-GCN++: spatial-temporal graph convolution networks for skeleton actions.

One file, one family (STYLE.md): the blocks (:class:`UnitGCN`, :class:`UnitTCN`,
:class:`MSTCN`, :class:`STGCNBlock`), the backbone :class:`STGCN`, PYSKL's
:class:`GCNHead`, the recognizer :class:`RecognizerGCN` (``forward_features`` /
``forward_head``), keyword builders per named variant (:func:`stgcn`, :func:`stgcnpp`,
:data:`VARIANTS`) and :func:`load_pyskl_checkpoint`. The eval-only, BN-folded inference twin
(same outputs, ~0.5x MMAction2's time) is ``humact.deploy.fuse(model)``
(:class:`humact.deploy.stgcn.FusedRecognizerGCN`).

Same architecture and parameter names as PYSKL (``pyskl/models/gcns/stgcn.py``,
``utils/gcn.py``, ``utils/tcn.py``, ``heads/simple_head.py``), so PYSKL checkpoints load
strictly and give PYSKL's outputs. Differences from PYSKL: explicit keyword arguments
instead of ``gcn_*``/``tcn_*`` prefixed ``**kwargs`` (per-stage tuples are not supported);
no registry; the graph convolution is evaluated as a batched matrix product instead of an
``einsum`` (same result, fewer copies).

Shapes (N batch, M persons, T frames, V joints, C channels):

- input ``(N, M, T, V, C)`` float32, C = 3 for (x, y, score) 2D or (x, y, z) 3D joints;
- ``forward_features`` -> ``(N, M, 256, T / 4, V)`` (two temporal stride-2 stages);
- ``forward_head`` -> logits ``(N, num_classes)``.

The variants (ST-GCN: ``stgcn_spatial`` graph, learnable edge ``importance``, 9x1
temporal conv; ST-GCN++: ``spatial`` graph, adaptive ``init`` graph, residual GCN,
multi-branch ``mstcn`` temporal conv) have, with 60 classes on COCO-17, 3,088,704 and
1,393,016 parameters (PYSKL's counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
from humact.predict import predict_clips
from humact.skeleton.graph import Graph, Layout

__all__ = [
    "UnitGCN",
    "UnitTCN",
    "MSTCN",
    "STGCNBlock",
    "STGCN",
    "GCNHead",
    "RecognizerGCN",
    "VARIANTS",
    "build_model",
    "stgcn",
    "stgcnpp",
    "load_pyskl_checkpoint",
    "checkpoint_filter_fn",
]

EPS = 1e-4

#: ST-GCN++'s temporal branches: (kernel, dilation) convs, a 3x1 max-pool, a 1x1 conv.
MSTCN_DEFAULT_CFG: tuple = ((3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1")


class UnitGCN(nn.Module):
    """Spatial graph convolution (PYSKL's ``unit_gcn``).

    ``out = act(bn(sum_k conv_k(x) @ A_k) + down(x))`` with ``conv_pos='pre'`` (1x1 conv to
    ``K * out_channels``, then aggregate over joints), or aggregate first and convolve the
    ``K * in_channels`` result with ``conv_pos='post'``.

    Args:
        in_channels, out_channels: channel counts.
        A: ``(K, V, V)`` adjacency; ``A[k, v, w]`` weights joint ``v`` into joint ``w``.
        adaptive: ``None`` (fixed ``A`` buffer), ``'init'`` (``A`` is a learnable
            parameter initialised from the graph), ``'importance'`` (fixed ``A`` times a
            learnable ``PA`` initialised to 1, ST-GCN's edge importance), ``'offset'``
            (``A + PA``, ``PA`` initialised near 0).
        conv_pos: ``'pre'`` or ``'post'`` (see above).
        with_res: add a residual (1x1 conv + BN when channels change), ST-GCN++'s choice.

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *,
                 adaptive: str | None = "importance", conv_pos: str = "pre",
                 with_res: bool = False) -> None:
        super().__init__()
        if adaptive not in (None, "init", "offset", "importance"):
            raise ValueError(f"unit_gcn: adaptive must be None/'init'/'offset'/'importance', got {adaptive!r}")
        if conv_pos not in ("pre", "post"):
            raise ValueError(f"unit_gcn: conv_pos must be 'pre' or 'post', got {conv_pos!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_subsets = A.size(0)
        self.adaptive = adaptive
        self.conv_pos = conv_pos
        self.with_res = with_res

        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        if adaptive == "init":
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A.clone())
        if adaptive in ("offset", "importance"):
            self.PA = nn.Parameter(A.clone())
            if adaptive == "offset":
                nn.init.uniform_(self.PA, -1e-6, 1e-6)
            else:
                nn.init.constant_(self.PA, 1)

        if conv_pos == "pre":
            self.conv = nn.Conv2d(in_channels, out_channels * self.num_subsets, 1)
        else:
            self.conv = nn.Conv2d(self.num_subsets * in_channels, out_channels, 1)

        # `down` only exists as a module (with keys in the checkpoint) when it has weights.
        self.down = None
        if with_res and in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                      nn.BatchNorm2d(out_channels))

    def graph(self) -> torch.Tensor:
        """The effective ``(K, V, V)`` adjacency for this forward pass."""
        if self.adaptive == "importance":
            return self.A * self.PA
        if self.adaptive == "offset":
            return self.A + self.PA
        return self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        A = self.graph()
        k = self.num_subsets
        if self.conv_pos == "pre":
            y = self.conv(x)  # (n, k * o, t, v)
            o = y.shape[1] // k
            # sum_k y_k @ A_k as one matmul: (n, o*t, k*v) @ (k*v, w).
            y = y.view(n, k, o * t, v).transpose(1, 2).reshape(n, o * t, k * v)
            y = torch.matmul(y, A.reshape(k * v, v)).view(n, o, t, v)
        else:
            # (n, c*t, v) @ (v, k*w) -> (n, c, t, k, w) -> (n, k*c, t, w)
            y = torch.matmul(x.reshape(n, c * t, v), A.permute(1, 0, 2).reshape(v, k * v))
            y = y.view(n, c, t, k, v).permute(0, 3, 1, 2, 4).reshape(n, k * c, t, v)
            y = self.conv(y)
        y = self.bn(y)
        if self.with_res:
            y = y + (self.down(x) if self.down is not None else x)
        return self.act(y)


class UnitTCN(nn.Module):
    """Temporal convolution ``kernel_size x 1`` + BN + dropout (PYSKL's ``unit_tcn``).

    Shape: ``(N, C_in, T, V)`` -> ``(N, C_out, T / stride, V)``; ``same`` padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, *,
                 stride: int = 1, dilation: int = 1, norm: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1),
                              padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))


class MSTCN(nn.Module):
    """ST-GCN++'s multi-branch temporal convolution (PYSKL's ``mstcn``).

    Each branch: 1x1 conv -> BN -> ReLU -> dilated ``k x 1`` conv (or 3x1 max-pool, or just a
    strided 1x1 conv); the concatenation goes through BN -> ReLU -> 1x1 conv, then BN and
    dropout. The first branch takes the remainder channels so the widths add up.

    Shape: ``(N, C_in, T, V)`` -> ``(N, C_out, T / stride, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *,
                 mid_channels: float | None = None, dropout: float = 0.0,
                 ms_cfg: Sequence = MSTCN_DEFAULT_CFG, stride: int = 1) -> None:
        super().__init__()
        self.ms_cfg = tuple(ms_cfg)
        nb = len(self.ms_cfg)
        if mid_channels is None:
            mid = out_channels // nb
            rem = out_channels - mid * (nb - 1)
        else:
            if not (isinstance(mid_channels, float) and mid_channels > 0):
                raise ValueError(f"mstcn: mid_channels must be a positive float ratio, got {mid_channels!r}")
            mid = rem = int(out_channels * mid_channels)
        self.mid_channels, self.rem_mid_channels = mid, rem
        branches = []
        for i, cfg in enumerate(self.ms_cfg):
            bc = rem if i == 0 else mid
            if cfg == "1x1":
                branches.append(nn.Conv2d(in_channels, bc, kernel_size=1, stride=(stride, 1)))
                continue
            kind, arg = cfg
            if kind == "max":
                branches.append(nn.Sequential(
                    nn.Conv2d(in_channels, bc, kernel_size=1), nn.BatchNorm2d(bc), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=(arg, 1), stride=(stride, 1), padding=(1, 0))))
                continue
            branches.append(nn.Sequential(
                nn.Conv2d(in_channels, bc, kernel_size=1), nn.BatchNorm2d(bc), nn.ReLU(),
                UnitTCN(bc, bc, kernel_size=int(kind), stride=stride, dilation=int(arg), norm=False)))
        self.branches = nn.ModuleList(branches)
        tin = mid * (nb - 1) + rem
        self.transform = nn.Sequential(nn.BatchNorm2d(tin), nn.ReLU(),
                                       nn.Conv2d(tin, out_channels, kernel_size=1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.drop(self.bn(self.transform(feat)))


class STGCNBlock(nn.Module):
    """One ST-GCN stage: graph conv, temporal conv, residual, ReLU.

    ``residual``: ``False`` (first block), identity when shapes match, else a strided
    1x1 :class:`UnitTCN` (PYSKL's ``residual`` key).
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *,
                 stride: int = 1, residual: bool = True,
                 gcn_adaptive: str | None = "importance", gcn_conv_pos: str = "pre",
                 gcn_with_res: bool = False, tcn_type: str = "unit_tcn",
                 tcn_dropout: float = 0.0, tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG,
                 tcn_mid_channels: float | None = None) -> None:
        super().__init__()
        self.gcn = UnitGCN(in_channels, out_channels, A, adaptive=gcn_adaptive,
                           conv_pos=gcn_conv_pos, with_res=gcn_with_res)
        if tcn_type == "unit_tcn":
            self.tcn = UnitTCN(out_channels, out_channels, 9, stride=stride, dropout=tcn_dropout)
        elif tcn_type == "mstcn":
            self.tcn = MSTCN(out_channels, out_channels, stride=stride, dropout=tcn_dropout,
                             ms_cfg=tcn_ms_cfg, mid_channels=tcn_mid_channels)
        else:
            raise ValueError(f"STGCN block: tcn_type must be 'unit_tcn' or 'mstcn', got {tcn_type!r}")
        self.relu = nn.ReLU()
        self.residual_kind = ("none" if not residual else
                              "identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_kind == "conv":
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual_kind == "identity":
            y = y + x
        elif self.residual_kind == "conv":
            y = y + self.residual(x)
        return self.relu(y)


class STGCN(nn.Module):
    """The ST-GCN / ST-GCN++ backbone (PYSKL's ``STGCN``).

    Args:
        graph: a :class:`~humact.skeleton.graph.Graph` (or anything with ``.A``), or a
            ``(K, V, V)`` adjacency array.
        in_channels: C of the input joints (3: x, y, score or x, y, z).
        base_channels: width of the first stages (64).
        data_bn_type: ``'VC'`` (BatchNorm1d over V*C, shared by persons), ``'MVC'`` (over
            M*V*C) or ``None``.
        ch_ratio: width multiplier at each ``inflate_stages`` stage.
        num_person: M, only used by ``'MVC'``.
        num_stages: number of blocks (10).
        inflate_stages, down_stages: 1-based stages that double width / halve T.
        gcn_*, tcn_*: forwarded to every :class:`STGCNBlock` (the first block gets no
            temporal dropout, as in PYSKL).

    Shape: ``(N, M, T, V, C)`` -> ``(N, M, C_out, T / 4, V)``.
    """

    def __init__(self, graph, *, in_channels: int = 3, base_channels: int = 64,
                 data_bn_type: str | None = "VC", ch_ratio: float = 2, num_person: int = 2,
                 num_stages: int = 10, inflate_stages: Sequence[int] = (5, 8),
                 down_stages: Sequence[int] = (5, 8), gcn_adaptive: str | None = "importance",
                 gcn_conv_pos: str = "pre", gcn_with_res: bool = False,
                 tcn_type: str = "unit_tcn", tcn_dropout: float = 0.0,
                 tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG,
                 tcn_mid_channels: float | None = None) -> None:
        super().__init__()
        A_np = graph.A if hasattr(graph, "A") else np.asarray(graph)
        A = torch.tensor(np.asarray(A_np), dtype=torch.float32)
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"STGCN: graph adjacency must be (K, V, V), got {tuple(A.shape)}")
        self.graph = graph if hasattr(graph, "A") else None
        self.num_node = A.shape[1]
        self.data_bn_type = data_bn_type
        if data_bn_type == "MVC":
            self.data_bn = nn.BatchNorm1d(num_person * in_channels * self.num_node)
        elif data_bn_type == "VC":
            self.data_bn = nn.BatchNorm1d(in_channels * self.num_node)
        elif data_bn_type is None:
            self.data_bn = nn.Identity()
        else:
            raise ValueError(f"STGCN: data_bn_type must be 'VC', 'MVC' or None, got {data_bn_type!r}")
        block_kw = dict(gcn_adaptive=gcn_adaptive, gcn_conv_pos=gcn_conv_pos,
                        gcn_with_res=gcn_with_res, tcn_type=tcn_type, tcn_dropout=tcn_dropout,
                        tcn_ms_cfg=tcn_ms_cfg, tcn_mid_channels=tcn_mid_channels)
        first_kw = dict(block_kw, tcn_dropout=0.0)
        self.in_channels = in_channels
        self.base_channels = base_channels

        blocks = []
        if in_channels != base_channels:
            blocks.append(STGCNBlock(in_channels, base_channels, A, stride=1, residual=False, **first_kw))
        inflate_times = 0
        width = base_channels
        for i in range(2, num_stages + 1):
            stride = 1 + (i in down_stages)
            if i in inflate_stages:
                inflate_times += 1
            out = int(base_channels * ch_ratio ** inflate_times + EPS)
            blocks.append(STGCNBlock(width, out, A, stride=stride, **block_kw))
            width = out
        self.gcn = nn.ModuleList(blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if V != self.num_node:
            raise ValueError(f"STGCN: input has {V} joints, the graph has {self.num_node}")
        x = x.permute(0, 1, 3, 4, 2).contiguous()  # N, M, V, C, T
        if self.data_bn_type == "MVC":
            x = self.data_bn(x.view(N, M * V * C, T))
        else:
            x = self.data_bn(x.view(N * M, V * C, T))
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)
        for block in self.gcn:
            x = block(x)
        return x.reshape((N, M) + x.shape[1:])


class GCNHead(nn.Module):
    """PYSKL's ``GCNHead``: average over T and V, then over persons M, dropout, linear.

    Shape: ``(N, M, C, T, V)`` -> logits ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int, in_channels: int = 256, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, M, C, T, V)`` -> ``(N, C)``: mean over T and V per person, then over persons."""
        return x.mean(dim=(3, 4)).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc_cls(x)


class RecognizerGCN(nn.Module):
    """Backbone + head (PYSKL's ``RecognizerGCN``; state-dict keys ``backbone.*``, ``cls_head.*``).

    ``forward(x)``: ``(N, M, T, V, C)`` -> logits ``(N, num_classes)``.
    ``predict(x)``: ``(N, num_clips, M, T, V, C)`` -> class probabilities ``(N, num_classes)``,
    the softmax averaged over clips (PYSKL's test mode, ``average_clips='prob'``).
    """

    def __init__(self, backbone: STGCN, cls_head: GCNHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        return self.cls_head(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return predict_clips(self, x, layout="(N, clips, M, T, V, C)")


#: Named variants: backbone keyword arguments and the default graph mode (PYSKL configs
#: ``stgcn/*`` and ``stgcn++/*``).
VARIANTS: dict[str, dict] = {
    "stgcn": dict(mode="stgcn_spatial", backbone=dict(gcn_adaptive="importance", tcn_type="unit_tcn")),
    "stgcnpp": dict(mode="spatial", backbone=dict(gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn")),
}


def build_model(name: str, *, num_classes: int, layout: str | Layout | dict = "coco",
                mode: str | None = None, in_channels: int = 3, num_person: int = 2,
                dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """Build the named variant (``'stgcn'`` or ``'stgcnpp'``) for ``layout``.

    ``mode`` defaults to the variant's graph partition; ``backbone_kw`` overrides any
    :class:`STGCN` argument (e.g. ``tcn_dropout``, ``base_channels``).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown GCN model {name!r}; known: {sorted(VARIANTS)}")
    spec = VARIANTS[name]
    graph = Graph(layout, mode or spec["mode"])
    kw = dict(spec["backbone"], in_channels=in_channels, num_person=num_person)
    kw.update(backbone_kw)
    backbone = STGCN(graph, **kw)
    return RecognizerGCN(backbone, GCNHead(num_classes, backbone.out_channels, dropout=dropout))


def stgcn(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "stgcn_spatial",
          in_channels: int = 3, dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """ST-GCN (Yan et al., AAAI 2018) as in PYSKL: distance partition, edge importance."""
    return build_model("stgcn", num_classes=num_classes, layout=layout, mode=mode,
                       in_channels=in_channels, dropout=dropout, **backbone_kw)


def stgcnpp(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "spatial",
            in_channels: int = 3, dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """ST-GCN++ (Duan et al., PYSKL 2022): adaptive graph, residual GCN, multi-branch TCN."""
    return build_model("stgcnpp", num_classes=num_classes, layout=layout, mode=mode,
                       in_channels=in_channels, dropout=dropout, **backbone_kw)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PYSKL / MMAction2 GCN checkpoint onto :class:`RecognizerGCN`'s keys.

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2 1.x's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd, _ = read_foreign(state_dict)
    return dict(mmaction_filter(sd))


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping) -> nn.Module:
    """Load a PYSKL (or MMAction2) GCN checkpoint into ``model``, strictly.

    ``ckpt`` is a path (read with ``torch.load(weights_only=True)``) or an already loaded
    dict. Raises :class:`~humact.errors.CheckpointError` naming the file and the missing /
    unexpected / mis-shaped keys.
    """
    return load_foreign(model, ckpt, checkpoint_filter_fn)
