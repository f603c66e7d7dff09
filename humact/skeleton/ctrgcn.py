"""CTR-GCN: channel-wise topology refinement graph convolution (Chen et al., ICCV 2021).

One file, one family (STYLE.md): the blocks (:class:`CTRGC`, :class:`UnitCTRGCN`,
:class:`CTRGCNBlock`), the backbone :class:`CTRGCN`, the named variants (:data:`VARIANTS`,
:func:`ctrgcn`), :func:`checkpoint_filter_fn` and :func:`load_pyskl_checkpoint`. The temporal
module is MS-G3D's multi-scale TCN (:class:`humact.skeleton.msg3d.MultiScaleTCN`, as in
PYSKL), head and recognizer are ST-GCN's (:class:`~humact.skeleton.stgcn.GCNHead`,
:class:`~humact.skeleton.stgcn.RecognizerGCN`), so state-dict keys are PYSKL's
(``backbone.*``, ``cls_head.fc_cls.*``).

Same architecture and parameter names as PYSKL's ``pyskl/models/gcns/ctrgcn.py`` and
``utils/gcn.py`` (``CTRGC``, ``unit_ctrgcn``) at commit 3f6795f. For each subset ``k`` of the
``spatial`` graph, :class:`CTRGC` builds one graph per output channel,
``alpha * conv4(tanh(phi(x)_v - psi(x)_w)) + A_k`` (``phi``, ``psi``: 1x1 convs averaged over
time to ``R`` channels), and aggregates ``conv3(x)`` with it channel by channel; the subsets
are summed, then BN, the residual ``down`` and ReLU. Each block follows with a 4-branch
temporal conv (5x1 convs at dilations 1 and 2, a max-pool, a 1x1), no inner residual.

Differences from PYSKL: no registry; explicit keyword arguments.

Shapes: input ``(N, M, T, V, C)``; ``forward_features`` -> ``(N, M, 4 base_channels, T / 4, V)``;
logits ``(N, num_classes)``.

Parameters with 60 classes on COCO-17 (``ctrgcn``): 1,436,496, PYSKL's count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
from humact.skeleton.graph import Graph, Layout
from humact.skeleton.msg3d import MultiScaleTCN
from humact.skeleton.stgcn import GCNHead, RecognizerGCN, UnitTCN

__all__ = [
    "CTRGC",
    "UnitCTRGCN",
    "CTRGCNBlock",
    "CTRGCN",
    "VARIANTS",
    "ctrgcn",
    "checkpoint_filter_fn",
    "load_pyskl_checkpoint",
]


class CTRGC(nn.Module):
    """One subset's channel-wise topology refinement (PYSKL's ``CTRGC``).

    ``R = 8`` relation channels when ``in_channels <= 16``, else ``in_channels // rel_reduction``.
    ``forward(x, A, alpha)``: ``(N, C_in, T, V)``, ``(V, V)`` -> ``(N, C_out, T, V)``, where
    output channel ``c`` aggregates ``conv3(x)[c]`` over joints with its own graph
    ``alpha * conv4(tanh(conv1(x)_v - conv2(x)_w))[c] + A`` (conv1/conv2 averaged over T).
    """

    def __init__(self, in_channels: int, out_channels: int, *, rel_reduction: int = 8) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.rel_channels = 8 if in_channels <= 16 else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, self.rel_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(in_channels, self.rel_channels, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(self.rel_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, A: torch.Tensor | None = None, alpha: torch.Tensor | float = 1.0) -> torch.Tensor:
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)   # (N,R,V) (N,R,V) (N,C,T,V)
        rel = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))                          # (N, R, V, V)
        graph = self.conv4(rel) * alpha                                                # (N, C, V, V)
        if A is not None:
            graph = graph + A
        # out[n, c, t, v] = sum_u x3[n, c, t, u] graph[n, c, u, v]
        return torch.matmul(x3, graph)


class UnitCTRGCN(nn.Module):
    """CTR-GCN's graph convolution (PYSKL's ``unit_ctrgcn``): the subsets' :class:`CTRGC`
    summed, BN, plus ``down(x)`` (1x1 conv + BN when the width changes, else ``x``), ReLU.

    ``A`` (``(K, V, V)``) is a learnable parameter initialised from the graph; ``alpha``
    (one scalar, initialised 0) scales the refinements.
    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor) -> None:
        super().__init__()
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"unit_ctrgcn: A must be (K, V, V), got {tuple(A.shape)}")
        self.in_c, self.out_c = in_channels, out_channels
        self.num_subset = A.shape[0]
        self.convs = nn.ModuleList([CTRGC(in_channels, out_channels) for _ in range(self.num_subset)])
        self.down = None
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.A = nn.Parameter(A.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = None
        for i, conv in enumerate(self.convs):
            z = conv(x, self.A[i], self.alpha)
            y = z if y is None else z + y
        y = self.bn(y) + (self.down(x) if self.down is not None else x)
        return F.relu(y)


class CTRGCNBlock(nn.Module):
    """One CTR-GCN stage (PYSKL's ``CTRGCNBlock``): :class:`UnitCTRGCN`, a
    :class:`~humact.skeleton.msg3d.MultiScaleTCN` (``kernel_size`` x 1 convs at ``dilations``,
    a max-pool and a 1x1 branch; no inner residual), the block residual (``False``: none;
    identity when shapes match, else a strided 1x1 :class:`UnitTCN`), ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *, stride: int = 1,
                 residual: bool = True, kernel_size: int = 5, dilations: Sequence[int] = (1, 2),
                 tcn_dropout: float = 0.0) -> None:
        super().__init__()
        self.gcn1 = UnitCTRGCN(in_channels, out_channels, A)
        self.tcn1 = MultiScaleTCN(out_channels, out_channels, kernel_size=kernel_size, stride=stride,
                                  dilations=dilations, residual=False, dropout=tcn_dropout)
        self.residual_kind = ("none" if not residual else
                              "identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_kind == "conv":
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual_kind == "identity":
            y = y + x
        elif self.residual_kind == "conv":
            y = y + self.residual(x)
        return F.relu(y)


class CTRGCN(nn.Module):
    """The CTR-GCN backbone (PYSKL's ``CTRGCN``).

    Args:
        graph: a :class:`~humact.skeleton.graph.Graph` (or anything with ``.A``) or a
            ``(K, V, V)`` adjacency (PYSKL: the ``spatial`` partition); kept as the ``A`` buffer.
        in_channels: C of the input joints.
        base_channels: width of the first stages; doubled at each ``inflate_stages`` stage.
        num_stages: number of blocks (10, the first always maps ``in_channels`` to ``base_channels``).
        inflate_stages, down_stages: 1-based stages that double width / halve T.
        num_person: M, for the ``M * V * C`` data BN.
        kernel_size, dilations: the temporal branches' conv (5x1 at dilations 1, 2).
        tcn_dropout: dropout at the end of each temporal module but the first block's.

    Shape: ``(N, M, T, V, C)`` -> ``(N, M, C_out, T / 4, V)``.
    """

    def __init__(self, graph, *, in_channels: int = 3, base_channels: int = 64, num_stages: int = 10,
                 inflate_stages: Sequence[int] = (5, 8), down_stages: Sequence[int] = (5, 8), num_person: int = 2,
                 kernel_size: int = 5, dilations: Sequence[int] = (1, 2), tcn_dropout: float = 0.0) -> None:
        super().__init__()
        A_np = graph.A if hasattr(graph, "A") else np.asarray(graph)
        A = torch.tensor(np.asarray(A_np), dtype=torch.float32)
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"CTRGCN: graph adjacency must be (K, V, V), got {tuple(A.shape)}")
        self.register_buffer("A", A)
        self.num_node = A.shape[1]
        self.num_person, self.base_channels = num_person, base_channels
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * self.num_node)
        kw = dict(kernel_size=kernel_size, dilations=dilations)
        blocks = [CTRGCNBlock(in_channels, base_channels, A, residual=False, **kw)]
        width = base_channels
        for i in range(2, num_stages + 1):
            out = width * (1 + (i in inflate_stages))
            blocks.append(CTRGCNBlock(width, out, A, stride=1 + (i in down_stages), tcn_dropout=tcn_dropout, **kw))
            width = out
        self.net = nn.ModuleList(blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if V != self.num_node:
            raise ValueError(f"CTRGCN: input has {V} joints, the graph has {self.num_node}")
        x = x.permute(0, 1, 3, 4, 2).contiguous()
        x = self.data_bn(x.view(N, M * V * C, T))
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)
        for block in self.net:
            x = block(x)
        return x.reshape((N, M) + x.shape[1:])


#: Named variants: graph mode, backbone keyword arguments and the parameter count with 60
#: classes on COCO-17 (PYSKL's ``configs/ctrgcn/*``).
VARIANTS: dict[str, dict] = {
    "ctrgcn": dict(mode="spatial", backbone=dict(kernel_size=5, dilations=(1, 2)), num_params=1_436_496),
}


def ctrgcn(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "spatial", in_channels: int = 3,
           num_person: int = 2, base_channels: int = 64, dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """CTR-GCN as in PYSKL's configs: ``spatial`` graph, 5x1 temporal kernels at dilations 1, 2.

    ``backbone_kw`` overrides any :class:`CTRGCN` argument (e.g. ``tcn_dropout``); ``dropout``
    is the head's.
    """
    spec = VARIANTS["ctrgcn"]
    kw = dict(spec["backbone"], in_channels=in_channels, num_person=num_person, base_channels=base_channels)
    kw.update(backbone_kw)
    backbone = CTRGCN(Graph(layout, mode), **kw)
    return RecognizerGCN(backbone, GCNHead(num_classes, backbone.out_channels, dropout=dropout))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PYSKL CTR-GCN checkpoint onto this file's keys (the same names).

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd, _ = read_foreign(state_dict)
    return dict(mmaction_filter(sd))


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping) -> nn.Module:
    """Load a PYSKL CTR-GCN checkpoint into ``model``, strictly (``ckpt``: a path or a loaded dict).

    Raises :class:`~humact.errors.CheckpointError` naming the file and the missing /
    unexpected / mis-shaped keys.
    """
    return load_foreign(model, ckpt, checkpoint_filter_fn)
