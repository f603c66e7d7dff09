"""ST-GCN and ST-GCN++: spatial-temporal graph convolution networks for skeleton actions.

One file, one family (STYLE.md): the blocks (:class:`UnitGCN`, :class:`UnitTCN`,
:class:`MSTCN`, :class:`STGCNBlock`), the backbone :class:`STGCN`, PYSKL's
:class:`GCNHead`, the recognizer :class:`RecognizerGCN` (``forward_features`` /
``forward_head``), keyword builders per named variant (:func:`stgcn`, :func:`stgcnpp`,
:data:`VARIANTS`), :func:`load_pyskl_checkpoint` and the eval-only, BN-folded inference twin
(:func:`fuse_for_inference`, :class:`FusedRecognizerGCN`: same outputs, ~0.5x MMAction2's time).

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

import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
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
    "FusedRecognizerGCN",
    "fuse_for_inference",
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

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 6:
            raise ValueError(f"predict: expected (N, clips, M, T, V, C), got shape {tuple(x.shape)}")
        n, nc = x.shape[:2]
        logits = self.forward(x.reshape((n * nc,) + x.shape[2:]))
        return F.softmax(logits, dim=1).view(n, nc, -1).mean(dim=1)


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


# ---------------------------------------------------------------- fused inference path


def _bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift`` (per channel)."""
    if isinstance(bn, nn.Identity):
        raise TypeError("no BatchNorm")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _conv1x1(conv: nn.Conv2d, bn: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 conv (optionally followed by an eval BN) as a matrix ``(O, C)`` and a bias ``(O,)``."""
    w = conv.weight.reshape(conv.out_channels, -1)
    b = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    if bn is not None:
        s, t = _bn_affine(bn)
        w, b = w * s[:, None], b * s + t
    return w, b


class _Workspace:
    """Scratch buffers and a recorded op list for one input shape (per model and thread).

    The first pass for an input shape runs the fused modules, which take every buffer from
    :meth:`get` and run every tensor op through :meth:`op`: all ops write into workspace
    buffers (``out=`` or in place) and read only buffers, weights and views of them, all
    fixed once the shape is. Later passes for that shape just :meth:`replay` the list: no
    Python module logic, slicing or allocation, which was ~4.5 ms of a ~48 ms batch-1
    ST-GCN++ pass. Reused buffers also spare the fresh pages a new multi-megabyte tensor
    gets from the kernel (~2,500 page faults a pass).

    Buffers are named by role, and modules whose buffers are never live at the same time
    share one role (all graph convs share ``gcn_z``; block outputs alternate between two
    roles): ~19 MB instead of ~83 MB at batch 1, so more of it stays in cache. A role's
    size is its largest use, found by a first *sizing* pass on ``meta`` tensors that runs
    no op. The zero padding of the im2col buffers (a role per padding pattern) is written
    once, when they are made.
    """

    def __init__(self, key, sizes: dict | None = None) -> None:
        self.key = key
        self.sizing = sizes is None
        self.sizes = {} if sizes is None else sizes
        self.bufs: dict = {}
        self.ops: list = []
        self.out: torch.Tensor | None = None

    def get(self, role, shape: tuple, dtype: torch.dtype, zero: bool = False) -> torch.Tensor:
        numel = math.prod(shape)
        if self.sizing:
            self.sizes[role] = max(self.sizes.get(role, 0), numel)
            return torch.empty(shape, dtype=dtype, device="meta")
        buf = self.bufs.get(role)
        if buf is None:
            # Ordinary tensors even under inference_mode: later passes may run outside it.
            with torch.inference_mode(False):
                size = self.sizes[role]
                buf = torch.zeros(size, dtype=dtype) if zero else torch.empty(size, dtype=dtype)
            self.bufs[role] = buf
        return buf[:numel].view(shape)

    def op(self, fn, *args, **kwargs) -> None:
        """Run ``fn(*args, **kwargs)`` and record it (not in the sizing pass)."""
        if not self.sizing:
            self.ops.append((fn, args, kwargs))
            fn(*args, **kwargs)

    def replay(self) -> None:
        for fn, args, kwargs in self.ops:
            fn(*args, **kwargs)


_WORKSPACES = threading.local()


#: Largest workspace kept for one input shape; bigger batches run in chunks of samples.
WORKSPACE_BYTES = 32 << 20


def _workspace(model: nn.Module, key, sizes: dict | None = None) -> _Workspace | None:
    """``model``'s workspace for the calling thread and ``key`` (None if there is none), or,
    with ``sizes``, a new one with those role sizes. A model keeps the workspaces of its two
    latest keys (a batch and its last, smaller, chunk); they go with the model or the thread."""
    table = getattr(_WORKSPACES, "table", None)
    if table is None:
        table = _WORKSPACES.table = weakref.WeakKeyDictionary()
    spaces = table.setdefault(model, {})
    if sizes is None:
        return spaces.get(key)
    if len(spaces) >= 2:
        del spaces[next(iter(spaces))]
    ws = spaces[key] = _Workspace(key, sizes)
    return ws


def _max3(x: torch.Tensor, buf: torch.Tensor, ws: _Workspace) -> torch.Tensor:
    """3x1 temporal max-pool, padding 1 (``MaxPool2d((3, 1), 1, (1, 0))``) on dim 2, of
    ``relu(x)``, into ``buf``: ``max(relu(a), b, c) = relu(max(a, b, c))``, so only the
    centre needs the ReLU."""
    ws.op(torch.clamp_min, x, 0.0, out=buf)
    ws.op(torch.maximum, buf[:, :, 1:], x[:, :, :-1], out=buf[:, :, 1:])
    ws.op(torch.maximum, buf[:, :, :-1], x[:, :, 1:], out=buf[:, :, :-1])
    return buf


def _conv2d_into(out: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                 stride: int, pad: int, dilation: int) -> None:
    """``out (O, S, T', V) = conv(x (C, S, T, V))`` with a ``k x 1`` kernel, through oneDNN."""
    y = F.conv2d(x.transpose(0, 1), w, b, (stride, 1), (pad, 0), (dilation, 1))
    out.copy_(y.transpose(0, 1))


def _sparse_plan(A_k: torch.Tensor) -> tuple:
    """How to compute ``X @ A_k`` (``X``: rows of joints) cheaper than a ``(R, V) @ (V, V)``
    product (which runs far below peak and costs ~8x a copy), when ``A_k`` is sparse as graph
    partitions usually are. Returns ``(scale, kind, index, values, empty)``:

    - ``'copy'``: ``A_k = scale * I`` -> ``X`` (the scale goes into the mixing weights);
    - ``'mul'``: diagonal -> ``X * values``;
    - ``'select'``: at most one nonzero per column, all equal to ``scale`` -> the columns
      ``X[:, index]``, with the ``empty`` columns (no nonzero) zeroed;
    - ``'select_mul'``: at most one nonzero per column -> ``X[:, index] * values`` (0 where empty);
    - ``'mm'``: anything else, the product.

    All are exact: each output is one product (or a copy), the same as the sum over ``v`` whose
    other terms are exact zeros.
    """
    v = A_k.shape[0]
    nz = A_k != 0
    per_col = nz.sum(0)
    if bool((per_col > 1).any()):
        return 1.0, "mm", None, None, None
    index = torch.where(per_col > 0, nz.float().argmax(0), torch.arange(v))
    values = A_k[index, torch.arange(v)] * (per_col > 0)
    empty = [int(w) for w in torch.nonzero(per_col == 0).flatten()]
    if bool((index == torch.arange(v)).all()):
        if not empty and bool((values == values[0]).all()):
            return float(values[0]), "copy", None, None, None
        return 1.0, "mul", None, values.contiguous(), None
    nonzero = values[per_col > 0]
    if len(empty) <= 2 and len(nonzero) and bool((nonzero == nonzero[0]).all()):
        return float(nonzero[0]), "select", index, None, empty
    return 1.0, "select_mul", index, values.contiguous(), None


class _FusedGCN(nn.Module):
    """:class:`UnitGCN` in eval mode with the graph, the conv and BN folded into matrix products.

    ``out = relu(sum_k W_k x A_k + bias + res)`` (channels mixed by ``W_k``, joints by
    ``A_k``; the two commute). The ``C`` input channels are aggregated over the graph first
    (``X A_k`` for each partition, written partition-major into the rows of one buffer ``Z``),
    then mixed by one ``O x K*C`` product. Aggregating first costs the same multiply-adds as
    PYSKL's conv-then-aggregate when ``C <= O`` and gives the mixing product a ``K*C`` inner
    dimension. ``X A_k`` is a scaling or a column selection when ``A_k`` is that sparse
    (:func:`_sparse_plan`: the inward partition is a selection), else a ``(C*S*T, V) @ (V, V)``
    product; when it is ``X`` itself (the self-link partition: ``A_0 = I``) it is not computed:
    ``x`` is the previous block's output, written into the first rows of this unit's ``Z``
    (a shared workspace role). Those rows' weights then also carry a residual 1x1 conv and an
    identity residual (``+ I``). The BN-folded bias initialises the output, which the product
    accumulates into. Layout ``(C, S, T, V)`` -> ``(O, S, T, V)``.
    """

    def __init__(self, unit: UnitGCN) -> None:
        super().__init__()
        A = unit.graph().detach()
        k, v, _ = A.shape
        o, c = unit.out_channels, unit.in_channels
        s, t = _bn_affine(unit.bn)
        if unit.conv_pos == "pre":
            w = unit.conv.weight.reshape(k, o, c)               # W[k, o, c]
            b = unit.conv.bias.reshape(k, o)
            # The conv bias, spread over the graph: sum_k b[k, o] * sum_v A[k, v, w].
            bias = torch.einsum("ko,kw->ow", b, A.sum(1)) * s[:, None] + t[:, None]
        else:
            w = unit.conv.weight.reshape(o, k, c).permute(1, 0, 2)
            bias = (unit.conv.bias * s + t)[:, None].expand(o, v).clone()
        w = w * s[None, :, None]                                 # BN scale folded in
        res = "none" if not unit.with_res else ("conv" if unit.down is not None else "identity")
        # Partitions whose X A_k is X itself (times a scale) need no work: x's own rows, which
        # sit right in front of the computed partitions in the same buffer (see forward). The
        # weights of those rows (wx) also take a 1x1 residual conv and, then, an identity
        # residual (+ I); without them an identity residual is added to the output instead.
        wx = torch.zeros(o, c)
        use_x = res == "conv"
        self.plan, w_parts = [], []
        for i in range(k):
            scale, kind, index, values, empty = _sparse_plan(A[i])
            if kind == "copy":
                wx += w[i] * scale
                use_x = True
            else:
                self.plan.append((i, kind, index, values, empty))
                w_parts.append(w[i])
        if res == "conv":
            wd, bd = _conv1x1(unit.down[0], unit.down[1])
            wx += wd
            bias = bias + bd[:, None]                            # the residual's bias joins the bias
        self.add_identity = res == "identity" and not use_x
        if res == "identity" and use_x:
            wx += torch.eye(o)
        # w2[o, j*C + c]: columns in the row order of the buffer (x first when it is used).
        w2 = torch.cat(([wx] if use_x else []) + w_parts, dim=1)
        self.use_x, self.o, self.c = use_x, o, c
        self.register_buffer("A", A.clone(memory_format=torch.contiguous_format))
        self.register_buffer("w2", w2.contiguous())
        self.register_buffer("bias", bias.reshape(o, 1, v).contiguous())

    def forward(self, x: torch.Tensor, ws: _Workspace, in_role) -> torch.Tensor:
        """``x``: the first ``C*S*T*V`` elements of the workspace buffer of role ``in_role``,
        whose next rows receive the computed partitions."""
        c, n, t, v = x.shape
        o, p = self.o, n * t * v
        z = ws.get(in_role, (c * (1 + len(self.plan)), p), x.dtype)
        if not ws.sizing and z.data_ptr() != x.data_ptr():
            raise RuntimeError("_FusedGCN: x must lead its workspace buffer")
        x_rows = x.view(c * n * t, v)
        for j, (i, kind, index, values, empty) in enumerate(self.plan, start=1):
            z_i = z[j * c:(j + 1) * c].view(c * n * t, v)
            if kind == "mul":
                ws.op(torch.mul, x_rows, values, out=z_i)
            elif kind == "mm":
                ws.op(torch.mm, x_rows, self.A[i], out=z_i)
            else:
                ws.op(torch.index_select, x_rows, 1, index, out=z_i)
                if kind == "select_mul":
                    ws.op(torch.Tensor.mul_, z_i, values)
                else:
                    for col in empty:
                        ws.op(torch.Tensor.zero_, z_i[:, col])
        y = ws.get("gcn_y", (o, n * t, v), x.dtype)
        if self.add_identity:
            ws.op(torch.add, x.view(o, n * t, v), self.bias, out=y)
        else:
            ws.op(torch.Tensor.copy_, y, self.bias.expand(o, n * t, v))
        ws.op(torch.Tensor.addmm_, y.view(o, p), self.w2, z if self.use_x else z[c:])
        ws.op(torch.Tensor.relu_, y)
        return y.view(o, n, t, v)


class _FusedTCN(nn.Module):
    """:class:`UnitTCN` (k x 1 conv + BN, eval) with the BN folded into the conv.

    Layout ``(C, S, T, V)`` -> ``(O, S, T', V)`` (a workspace buffer).
    """

    def __init__(self, unit: UnitTCN) -> None:
        super().__init__()
        conv = unit.conv
        w, b = conv.weight, conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
        if isinstance(unit.bn, nn.BatchNorm2d):
            s, t = _bn_affine(unit.bn)
            w, b = w * s[:, None, None, None], b * s + t
        o, c, k, _ = w.shape
        # w_cols[o, j*C + c] = w[o, c, j]: the taps side by side, for one product with im2col.
        w_cols = w[..., 0].permute(0, 2, 1).reshape(o, k * c)
        self.register_buffer("w_cols", w_cols.clone(memory_format=torch.contiguous_format))
        # Copies (clone): without a BN, w and b would otherwise be the source's parameters.
        self.register_buffer("w", w.clone(memory_format=torch.contiguous_format))
        self.register_buffer("b", b.clone())
        self.k = k
        self.stride, self.pad, self.dilation = conv.stride[0], conv.padding[0], conv.dilation[0]

    def fold_output_affine(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Make the unit compute ``unit(x) * scale + shift`` (per output channel) directly."""
        self.w_cols.mul_(scale[:, None])
        self.w.mul_(scale[:, None, None, None])
        self.b.mul_(scale).add_(shift)

    def forward(self, x: torch.Tensor, ws: _Workspace, out: torch.Tensor | None = None,
                out_role="tcn_out", relu_input: bool = False) -> torch.Tensor:
        """``x`` contiguous; ``out``: an optional contiguous ``(O, S, T', V)`` destination,
        else a workspace buffer of role ``out_role``; ``relu_input``: convolve ``relu(x)``
        (3x1 kernels: the im2col copies apply it; others: in place, on ``x``)."""
        c, n, t, v = x.shape
        s, d, o = self.stride, self.dilation, self.w.shape[0]
        t_out = (t + 2 * self.pad - d * (self.k - 1) - 1) // s + 1
        if out is None:
            out = ws.get(out_role, (o, n, t_out, v), x.dtype)
        if relu_input and self.k != 3:
            ws.op(torch.Tensor.relu_, x)   # x: the caller's scratch rows
        if self.k > 3:
            # Wide kernels (ST-GCN's 9x1): oneDNN's convolution is the faster one.
            ws.op(_conv2d_into, out, x, self.w, self.b, s, self.pad, d)
            return out
        if self.k == 1:
            if s > 1:
                xs = ws.get("tcn_x", (c, n, t_out, v), x.dtype)
                ws.op(torch.Tensor.copy_, xs, x[:, :, ::s])
                x = xs
            ws.op(torch.addmm, self.b[:, None], self.w_cols, x.view(c, -1), out=out.view(o, -1))
            return out
        # Thin 3x1 (dilated) kernels of ST-GCN++: temporal im2col + one product is faster
        # than oneDNN's convolution here (measured 1.1-1.6x), with the same sums.
        # cols[j, :, :, u] = x[:, :, u*s + j*d - pad] (zero outside the clip): the taps'
        # shifted copies written straight into one buffer, no padded copy of x first. The
        # zeros are written once, when the workspace buffer is made; passes only fill [lo, hi).
        cols = ws.get(("cols", self.k, c, n, t, t_out, v, s, d, self.pad), (self.k, c, n, t_out, v), x.dtype, zero=True)
        for j in range(self.k):
            off = j * d - self.pad
            lo = min(max(0, -(off // s)), t_out)
            hi = max(min(t_out, (t - 1 - off) // s + 1), lo) if t - 1 - off >= 0 else lo
            if hi > lo:
                src, dest = x[:, :, lo * s + off: (hi - 1) * s + off + 1: s], cols[j, :, :, lo:hi]
                if relu_input:
                    ws.op(torch.clamp_min, src, 0.0, out=dest)
                else:
                    ws.op(torch.Tensor.copy_, dest, src)
        ws.op(torch.addmm, self.b[:, None], self.w_cols, cols.view(self.k * c, -1), out=out.view(o, -1))
        return out


class _FusedMSTCN(nn.Module):
    """:class:`MSTCN` in eval mode, with its block's residual.

    - The branches' 1x1 convs (+ BN) are one matrix product; the transform's leading BN
      (an affine map before its ReLU) is folded into whatever is linear before it (the
      dilated convs' weights, the plain 1x1 branch's rows of that product); only the
      max-pool branch (a ReLU and a max before it) applies it itself. The max-pool is two
      element-wise maxima; the transform's conv has the final BN folded in.
    - Strided (stride ``s``) units: the rows that only ever read frames ``0, s, 2s, ...``
      (the plain 1x1 branch and dilated convs whose dilation ``s`` divides, which become
      dilation ``d/s`` convs of the subsampled input) are computed on ``x[:, :, ::s]`` only:
      half the input product's multiply-adds for those rows.
    - The branch outputs go straight into their rows of one buffer (no concat), and the
      plain 1x1 branch's rows of the input product *are* the first rows of that buffer
      (the two share memory: no copy). The branches' ReLU is applied by the copies that
      read the input product's rows anyway (im2col, max-pool), not by a pass of its own.
    - The block's residual is added by the output product: a strided 1x1 conv as extra rows
      of its input (a strided copy of the block input) and columns of its weight, an
      identity as the output's initial value.

    Layout ``(C, S, T, V)``; the output (before the block's final ReLU) is a workspace buffer.
    """

    def __init__(self, unit: MSTCN, residual_kind: str = "none", residual: UnitTCN | None = None) -> None:
        super().__init__()
        s_tr, t_tr = _bn_affine(unit.transform[0])
        found, start, stride = [], 0, 1
        for cfg, branch in zip(unit.ms_cfg, unit.branches):
            temporal = None
            if cfg == "1x1":
                w, b = _conv1x1(branch)
                kind, stride = "1x1", branch.stride[0]
            else:
                w, b = _conv1x1(branch[0], branch[1])
                if cfg[0] == "max":
                    kind, stride = "max", branch[3].stride[0]
                else:
                    kind, temporal, stride = "conv", _FusedTCN(branch[3]), branch[3].stride
            rows = slice(start, start + w.shape[0])
            start += w.shape[0]
            scale, shift = s_tr[rows], t_tr[rows]
            affine = None
            if kind == "1x1":
                w, b = w * scale[:, None], b * scale + shift
            elif kind == "conv":
                temporal.fold_output_affine(scale, shift)
            else:
                affine = (scale[:, None, None, None].contiguous(), shift[:, None, None, None].contiguous())
            found.append(dict(kind=kind, w=w, b=b, temporal=temporal, affine=affine, cols=rows))
        self.stride = stride
        for br in found:   # which rows can be computed on the subsampled input
            tcn = br["temporal"]
            br["sub"] = stride > 1 and (br["kind"] == "1x1" or (
                br["kind"] == "conv" and tcn.dilation % stride == 0 and tcn.pad % stride == 0))
            if br["sub"] and tcn is not None:   # stride s, dilation d == stride 1, dilation d/s on x[::s]
                tcn.stride, tcn.dilation, tcn.pad = 1, tcn.dilation // stride, tcn.pad // stride
        # Row groups of the input product: "full" (every frame) and "sub" (frames 0, s, ...);
        # with stride 1 everything is "full". The group that ends with the 1x1 branch (its
        # output has the output's length) shares its buffer with ``feat``.
        first = [br for br in found if br["kind"] == "1x1"]
        others = [br for br in found if br["kind"] != "1x1"]
        full = [br for br in others if not br["sub"]]
        sub = [br for br in others if br["sub"]]
        if stride == 1:
            full, shared = full + first, full
        else:
            sub, shared = sub + first, sub
        self.n_before = sum(br["w"].shape[0] for br in shared)   # rows of the shared group before feat
        for group_name, group in (("full", full), ("sub", sub)):
            row = 0
            for br in group:
                br["group"], br["rows"] = group_name, (row, row + br["w"].shape[0])
                row += br["w"].shape[0]
            cat = lambda key, dim=0: torch.cat([br[key] for br in group], dim) if group else torch.zeros(0)
            self.register_buffer(f"w_{group_name}", cat("w").contiguous())
            self.register_buffer(f"b_{group_name}", cat("b").contiguous())
        # feat rows: the 1x1 branch first (shared memory), then the others in config order.
        order, row = [], 0
        self.plan = []
        for br in first + others:
            width = br["w"].shape[0]
            if br["kind"] != "1x1":
                self.plan.append((br["kind"], br["group"], br["rows"], (row, row + width), br["affine"]))
            order.append(br["cols"])
            row += width
        self.c_feat = row
        self.temporal = nn.ModuleList([br["temporal"] if br["temporal"] is not None else nn.Identity()
                                       for br in others])
        w, b = _conv1x1(unit.transform[2], unit.bn)
        w = torch.cat([w[:, cols] for cols in order], dim=1)   # columns in feat's row order
        self.residual_kind = residual_kind
        self.residual_stride = 1
        if residual_kind == "conv":
            wr, br_ = _conv1x1(residual.conv, residual.bn)
            self.residual_stride = residual.conv.stride[0]
            w, b = torch.cat([w, wr], dim=1), b + br_
        self.register_buffer("w_out", w.contiguous())
        self.register_buffer("b_out", b.contiguous())

    def forward(self, x: torch.Tensor, ws: _Workspace, skip: torch.Tensor | None = None,
                out_role="ms_out") -> torch.Tensor:
        """``skip``: the block input, for the residual; the output: role ``out_role``."""
        ci, n, t, v = x.shape
        s, dt = self.stride, x.dtype
        t_out = (t - 1) // s + 1
        arena = ws.get("ms_arena", (self.n_before + self.w_out.shape[1], n, t_out, v), dt)
        feat = arena[self.n_before:]
        groups = {}
        n_full, n_sub = self.w_full.shape[0], self.w_sub.shape[0]
        if n_full:
            yf = arena[:n_full] if s == 1 else ws.get("ms_full", (n_full, n, t, v), dt)
            ws.op(torch.addmm, self.b_full[:, None], self.w_full, x.view(ci, -1), out=yf.view(n_full, -1))
            groups["full"] = yf
        if n_sub:
            xs = ws.get("ms_xs", (ci, n, t_out, v), dt)
            ws.op(torch.Tensor.copy_, xs, x[:, :, ::s])
            ys = arena[:n_sub]
            ws.op(torch.addmm, self.b_sub[:, None], self.w_sub, xs.view(ci, -1), out=ys.view(n_sub, -1))
            groups["sub"] = ys
        for (kind, group, rows, frows, affine), temporal in zip(self.plan, self.temporal):
            part, dest = groups[group][rows[0]:rows[1]], feat[frows[0]:frows[1]]
            if kind == "max":
                pooled = _max3(part, ws.get("ms_max", part.shape, dt), ws)
                ws.op(torch.addcmul, affine[1], pooled[:, :, ::s] if s > 1 else pooled, affine[0], out=dest)
            else:
                temporal(part, ws, out=dest, relu_input=True)
        ws.op(torch.Tensor.relu_, feat[:self.c_feat])
        if self.residual_kind == "conv":
            ws.op(torch.Tensor.copy_, feat[self.c_feat:], skip[:, :, ::self.residual_stride])
        o = self.w_out.shape[0]
        out = ws.get(out_role, (o, n, t_out, v), dt)
        out_mat, feat_mat = out.view(o, -1), feat.view(feat.shape[0], -1)
        if self.residual_kind == "identity":
            ws.op(torch.add, skip, self.b_out[:, None, None, None], out=out)
            ws.op(torch.Tensor.addmm_, out_mat, self.w_out, feat_mat)
        else:
            ws.op(torch.addmm, self.b_out[:, None], self.w_out, feat_mat, out=out_mat)
        return out


class _FusedBlock(nn.Module):
    def __init__(self, block: STGCNBlock, index: int = 0) -> None:
        super().__init__()
        # Block outputs live until the next block is done (its residual): two roles, alternating.
        self.out_role = ("block_out", index % 2)
        self.gcn = _FusedGCN(block.gcn)
        self.residual_kind = block.residual_kind
        self.mstcn = isinstance(block.tcn, MSTCN)
        if self.mstcn:   # the residual goes into the MSTCN's output product
            self.tcn = _FusedMSTCN(block.tcn, self.residual_kind,
                                   block.residual if self.residual_kind == "conv" else None)
        else:
            self.tcn = _FusedTCN(block.tcn)
            if self.residual_kind == "conv":
                self.residual = _FusedTCN(block.residual)

    def forward(self, x: torch.Tensor, ws: _Workspace, in_role) -> torch.Tensor:
        """``x``: the previous block's output (role ``in_role``)."""
        if self.mstcn:
            y = self.tcn(self.gcn(x, ws, in_role), ws, x, out_role=self.out_role)
        else:
            y = self.tcn(self.gcn(x, ws, in_role), ws, out_role=self.out_role)
            if self.residual_kind == "identity":
                ws.op(torch.Tensor.add_, y, x)
            elif self.residual_kind == "conv":
                ws.op(torch.Tensor.add_, y, self.residual(x, ws, out_role="residual_out"))
        ws.op(torch.Tensor.relu_, y)
        return y


class FusedRecognizerGCN(nn.Module):
    """Inference-only twin of a :class:`RecognizerGCN` (same outputs to ~1e-6, faster).

    Built by :func:`fuse_for_inference` from a trained model in eval mode: every BatchNorm
    is folded into the neighbouring conv, the graph convolution is a cheap aggregation of the
    sparse graph partitions plus one matrix product (see :class:`_FusedGCN`), ST-GCN++'s six
    branch convs are one or two products and its block residual joins the output product
    (:class:`_FusedMSTCN`). Holds copies of the weights (buffers), so later changes to the
    source model do not reach it.

    The ops of the first pass for an input shape are recorded and replayed by later passes,
    on scratch buffers kept between calls (:class:`_Workspace`; per thread, the two latest
    shapes; ~19 MB per sample of 2 x 100 frames; bigger batches than ``WORKSPACE_BYTES``
    allows run in chunks of samples). What the methods return is never one of those buffers.
    Same ``forward`` / ``forward_features`` / ``forward_head`` / ``predict`` as the source.
    """

    def __init__(self, model: RecognizerGCN) -> None:
        super().__init__()
        bb = model.backbone
        self.data_bn_type = bb.data_bn_type
        if isinstance(bb.data_bn, nn.BatchNorm1d):
            s, t = _bn_affine(bb.data_bn)
            self.register_buffer("in_scale", s.contiguous())
            self.register_buffer("in_shift", t.contiguous())
        else:
            self.in_scale = self.in_shift = None
        self.blocks = nn.ModuleList([_FusedBlock(b, i) for i, b in enumerate(bb.gcn)])
        self.register_buffer("fc_w", model.cls_head.fc_cls.weight.detach().clone())
        self.register_buffer("fc_b", model.cls_head.fc_cls.bias.detach().clone())

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_features`` as a view of a workspace buffer (valid until the next call)."""
        N, M, T, V, C = x.shape
        # The key: the input's shape and dtype, and the identity of the weights (``.to()`` or
        # ``.double()`` replace them, which a recorded pass would not see).
        key = (tuple(x.shape), x.dtype, id(self.fc_w))
        ws = _workspace(self, key)
        if ws is None:   # first pass for this shape: size the buffers, then record
            sizing = _Workspace(key)
            self._run_blocks(sizing.get("input", (C, N * M, T, V), x.dtype), sizing)
            total = sum(sizing.sizes.values()) * x.element_size()
            if total > WORKSPACE_BYTES and N > 1:
                chunk = max(1, N * WORKSPACE_BYTES // total)
                return torch.cat([self._features(x[i:i + chunk]).clone() for i in range(0, N, chunk)])
            ws = _workspace(self, key, sizing.sizes)
        # Channel-major (C, N*M, T, V): every 1x1 conv is then one plain matrix product
        # over all samples and persons, which runs up to 2x faster than a batched one.
        inp = ws.get("input", (C, N * M, T, V), x.dtype)
        xp = x.permute(4, 0, 1, 2, 3)
        if self.in_scale is not None:
            # data_bn normalises each (joint, channel) (and person for 'MVC') over time.
            shape = (1, M, 1, V, C) if self.data_bn_type == "MVC" else (1, 1, 1, V, C)
            torch.addcmul(self.in_shift.view(shape).permute(4, 0, 1, 2, 3), xp,
                          self.in_scale.view(shape).permute(4, 0, 1, 2, 3), out=inp.view(C, N, M, T, V))
        else:
            inp.view(C, N, M, T, V).copy_(xp)
        if ws.out is None:
            ws.out = self._run_blocks(inp, ws)
        else:
            ws.replay()
        c, _, t, v = ws.out.shape
        return ws.out.view(c, N, M, t, v).permute(1, 2, 0, 3, 4)

    def _run_blocks(self, x: torch.Tensor, ws: _Workspace) -> torch.Tensor:
        """``x``: the workspace's ``input`` buffer."""
        role = "input"
        for block in self.blocks:
            x, role = block(x, ws, role), block.out_role
        return x

    @torch.no_grad()
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x).clone()

    @torch.no_grad()
    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        return F.linear(feat.mean(dim=(3, 4)).mean(dim=1), self.fc_w, self.fc_b)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self._features(x)   # (N, M, C, T, V), a permuted view of a (C, N, M, T, V) buffer
        n, m, c, t, v = feat.shape
        if not feat.permute(2, 0, 1, 3, 4).is_contiguous():   # the chunked path's fresh tensor
            return self.forward_head(feat)
        # forward_head's means, on the buffer's own layout: no permuted copy of the features.
        pooled = feat.permute(2, 0, 1, 3, 4).reshape(c, n, m, t * v).mean(dim=3).mean(dim=2)
        return F.linear(pooled.t(), self.fc_w, self.fc_b)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        n, nc = x.shape[:2]
        logits = self.forward(x.reshape((n * nc,) + x.shape[2:]))
        return F.softmax(logits, dim=1).view(n, nc, -1).mean(dim=1)


@torch.no_grad()
def fuse_for_inference(model: RecognizerGCN) -> FusedRecognizerGCN:
    """The fast inference twin of ``model`` (which must be in eval mode: BN statistics fixed)."""
    if model.training:
        raise ValueError("fuse_for_inference: call model.eval() first (BatchNorm must use running statistics)")
    return FusedRecognizerGCN(model).eval()
