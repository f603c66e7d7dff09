"""AAGCN: the attention-enhanced adaptive graph convolution network (Shi et al., TIP 2020).

One file, one family (STYLE.md): the graph convolution :class:`UnitAAGCN`, the block
:class:`AAGCNBlock`, the backbone :class:`AAGCN`, the named variants (:data:`VARIANTS`,
:func:`aagcn`), :func:`checkpoint_filter_fn` and :func:`load_pyskl_checkpoint`. The head and
recognizer are ST-GCN's (:class:`~humact.skeleton.stgcn.GCNHead`,
:class:`~humact.skeleton.stgcn.RecognizerGCN`), so state-dict keys are PYSKL's
(``backbone.*``, ``cls_head.fc_cls.*``) and PYSKL checkpoints load strictly.

Same architecture and parameter names as PYSKL's ``pyskl/models/gcns/aagcn.py`` and
``utils/gcn.py`` (``unit_aagcn``) at commit 3f6795f, which MMAction2 1.2 ports unchanged.
Per subset ``k`` of the ``spatial`` graph, the unit learns a sample-dependent graph
``A_k + alpha * tanh(theta_k(x)^T phi_k(x) / (C' T))`` (an embedded-Gaussian similarity of
the joints, ``C' = out / coff_embedding`` channels), aggregates the joints with it and mixes
channels with ``conv_d[k]``; BN, the residual ``down`` and ReLU follow; then three attention
gates, each ``y <- y * (1 + gate)``: spatial (a conv over the time-averaged joints), temporal
(a 9-tap conv over the joint-averaged frames) and channel (a two-layer MLP).

Differences from PYSKL: no registry; explicit keyword arguments instead of ``gcn_`` /
``tcn_`` prefixed ``**kwargs`` (per-stage tuples are not supported). The operations run in
PYSKL's order, so features agree to float32 rounding (a reordered sum, e.g. the subsets'
``conv_d`` as one convolution, drifts by ~5e-5 over ten blocks; so does float64).

Shapes (N batch, M persons, T frames, V joints, C channels): input ``(N, M, T, V, C)``;
``forward_features`` -> ``(N, M, 4 base_channels, T / 4, V)``; logits ``(N, num_classes)``.

Parameters with 60 classes on COCO-17 (``aagcn``): 3,760,228, PYSKL's count.
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
from humact.skeleton.stgcn import MSTCN_DEFAULT_CFG, MSTCN, GCNHead, RecognizerGCN, UnitTCN

__all__ = [
    "UnitAAGCN",
    "AAGCNBlock",
    "AAGCN",
    "VARIANTS",
    "aagcn",
    "checkpoint_filter_fn",
    "load_pyskl_checkpoint",
]


class UnitAAGCN(nn.Module):
    """Adaptive, attention-gated graph convolution (PYSKL's ``unit_aagcn``).

    Args:
        in_channels, out_channels: channel counts.
        A: ``(K, V, V)`` graph; ``A[k, v, w]`` weights joint ``v`` into joint ``w``. With
            ``adaptive`` it is a learnable parameter initialised from the graph.
        coff_embedding: ``out_channels // coff_embedding`` channels embed the joints for the
            learned similarity graph.
        adaptive: learn ``A`` and add the sample-dependent similarity graph (``alpha``-gated).
        attention: apply the spatial, temporal and channel attention gates.

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *,
                 coff_embedding: int = 4, adaptive: bool = True, attention: bool = True) -> None:
        super().__init__()
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"unit_aagcn: A must be (K, V, V), got {tuple(A.shape)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.inter_c = out_channels // coff_embedding
        self.num_subset = A.shape[0]
        self.adaptive, self.attention = adaptive, attention
        num_joints = A.shape[-1]

        self.conv_d = nn.ModuleList([nn.Conv2d(in_channels, out_channels, 1) for _ in range(self.num_subset)])
        if adaptive:
            self.A = nn.Parameter(A.clone())
            self.alpha = nn.Parameter(torch.zeros(1))
            self.conv_a = nn.ModuleList([nn.Conv2d(in_channels, self.inter_c, 1) for _ in range(self.num_subset)])
            self.conv_b = nn.ModuleList([nn.Conv2d(in_channels, self.inter_c, 1) for _ in range(self.num_subset)])
        else:
            self.register_buffer("A", A.clone())
        if attention:
            self.conv_ta = nn.Conv1d(out_channels, 1, 9, padding=4)
            # An odd kernel over the joints, as wide as the skeleton allows, 'same' padding.
            ker_joint = num_joints if num_joints % 2 else num_joints - 1
            self.conv_sa = nn.Conv1d(out_channels, 1, ker_joint, padding=(ker_joint - 1) // 2)
            self.fc1c = nn.Linear(out_channels, out_channels // 2)
            self.fc2c = nn.Linear(out_channels // 2, out_channels)
        # `down` has weights (and checkpoint keys) only when the channels change.
        self.down = None
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.bn = nn.BatchNorm2d(out_channels)

    def graph(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Subset ``i``'s adjacency for input ``x``: ``(N, V, V)`` (adaptive) or ``(V, V)``."""
        if not self.adaptive:
            return self.A[i]
        n, c, t, v = x.shape
        a = self.conv_a[i](x).permute(0, 3, 1, 2).reshape(n, v, self.inter_c * t)
        b = self.conv_b[i](x).view(n, self.inter_c * t, v)
        # Embedded-Gaussian similarity of the joints, over embedding channels and frames.
        sim = torch.tanh(torch.matmul(a, b) / a.size(-1))
        return self.A[i] + sim * self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        # PYSKL's order of operations, subset by subset: the reference features are matched to
        # ~1e-6, which a reordered sum (one convolution over the concatenated subsets) misses.
        y = None
        flat = x.view(n, c * t, v)
        for i in range(self.num_subset):
            z = self.conv_d[i](torch.matmul(flat, self.graph(x, i)).view(n, c, t, v))
            y = z if y is None else z + y
        y = F.relu(self.bn(y) + (self.down(x) if self.down is not None else x))
        if not self.attention:
            return y
        # Spatial gate over the time-averaged joints, then temporal over the joint-averaged
        # frames, then channel; each scales y by (1 + gate).
        gate = torch.sigmoid(self.conv_sa(y.mean(-2)))               # (N, 1, V)
        y = y * gate.unsqueeze(-2) + y
        gate = torch.sigmoid(self.conv_ta(y.mean(-1)))               # (N, 1, T)
        y = y * gate.unsqueeze(-1) + y
        gate = torch.sigmoid(self.fc2c(F.relu(self.fc1c(y.mean(-1).mean(-1)))))   # (N, C)
        return y * gate[..., None, None] + y


class AAGCNBlock(nn.Module):
    """One AAGCN stage: :class:`UnitAAGCN`, temporal conv, residual, ReLU (PYSKL's ``AAGCNBlock``).

    ``tcn_type``: ``'unit_tcn'`` (9x1 conv + BN, PYSKL's default) or ``'mstcn'`` (ST-GCN++'s
    multi-branch :class:`~humact.skeleton.stgcn.MSTCN`). ``residual``: ``False`` (first
    block), identity when shapes match, else a strided 1x1 :class:`UnitTCN`.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *, stride: int = 1,
                 residual: bool = True, gcn_coff_embedding: int = 4, gcn_adaptive: bool = True,
                 gcn_attention: bool = True, tcn_type: str = "unit_tcn", tcn_dropout: float = 0.0,
                 tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG, tcn_mid_channels: float | None = None) -> None:
        super().__init__()
        self.gcn = UnitAAGCN(in_channels, out_channels, A, coff_embedding=gcn_coff_embedding,
                             adaptive=gcn_adaptive, attention=gcn_attention)
        if tcn_type == "unit_tcn":
            self.tcn = UnitTCN(out_channels, out_channels, 9, stride=stride, dropout=tcn_dropout)
        elif tcn_type == "mstcn":
            self.tcn = MSTCN(out_channels, out_channels, stride=stride, dropout=tcn_dropout,
                             ms_cfg=tcn_ms_cfg, mid_channels=tcn_mid_channels)
        else:
            raise ValueError(f"AAGCN block: tcn_type must be 'unit_tcn' or 'mstcn', got {tcn_type!r}")
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
        return F.relu(y)


def _data_bn(kind: str | None, num_person: int, channels: int, num_node: int) -> nn.Module:
    if kind == "MVC":
        return nn.BatchNorm1d(num_person * channels * num_node)
    if kind == "VC":
        return nn.BatchNorm1d(channels * num_node)
    if kind is None:
        return nn.Identity()
    raise ValueError(f"data_bn_type must be 'MVC', 'VC' or None, got {kind!r}")


def _apply_data_bn(data_bn: nn.Module, kind: str | None, x: torch.Tensor) -> torch.Tensor:
    """``(N, M, T, V, C)`` -> normalised ``(N * M, C, T, V)`` (PYSKL's ``data_bn`` step)."""
    N, M, T, V, C = x.shape
    x = x.permute(0, 1, 3, 4, 2).contiguous()                     # N, M, V, C, T
    x = data_bn(x.view(N, M * V * C, T) if kind == "MVC" else x.view(N * M, V * C, T))
    return x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)


class AAGCN(nn.Module):
    """The AAGCN backbone (PYSKL's ``AAGCN``).

    Args:
        graph: a :class:`~humact.skeleton.graph.Graph` (or anything with ``.A``), or a
            ``(K, V, V)`` adjacency array (PYSKL: layout's ``spatial`` partition). Kept as the
            ``A`` buffer (a checkpoint key) and copied into every block.
        in_channels: C of the input joints.
        base_channels: width of the first stages; doubled at each ``inflate_stages`` stage.
        data_bn_type: ``'MVC'`` (BatchNorm1d over M*V*C, PYSKL's default), ``'VC'`` or ``None``.
        num_person: M, used by ``'MVC'``.
        num_stages: number of blocks (10); the first maps ``in_channels`` to ``base_channels``
            (it is skipped when they are equal, as in PYSKL).
        inflate_stages, down_stages: 1-based stages that double width / halve T.
        gcn_*, tcn_*: forwarded to every :class:`AAGCNBlock` (the first gets no temporal dropout).

    Shape: ``(N, M, T, V, C)`` -> ``(N, M, C_out, T / 4, V)``.
    """

    def __init__(self, graph, *, in_channels: int = 3, base_channels: int = 64, data_bn_type: str | None = "MVC",
                 num_person: int = 2, num_stages: int = 10, inflate_stages: Sequence[int] = (5, 8),
                 down_stages: Sequence[int] = (5, 8), gcn_coff_embedding: int = 4, gcn_adaptive: bool = True,
                 gcn_attention: bool = True, tcn_type: str = "unit_tcn", tcn_dropout: float = 0.0,
                 tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG, tcn_mid_channels: float | None = None) -> None:
        super().__init__()
        A_np = graph.A if hasattr(graph, "A") else np.asarray(graph)
        A = torch.tensor(np.asarray(A_np), dtype=torch.float32)
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"AAGCN: graph adjacency must be (K, V, V), got {tuple(A.shape)}")
        self.register_buffer("A", A)
        self.num_node = A.shape[1]
        self.in_channels, self.base_channels = in_channels, base_channels
        self.data_bn_type = data_bn_type
        self.data_bn = _data_bn(data_bn_type, num_person, in_channels, self.num_node)
        kw = dict(gcn_coff_embedding=gcn_coff_embedding, gcn_adaptive=gcn_adaptive, gcn_attention=gcn_attention,
                  tcn_type=tcn_type, tcn_dropout=tcn_dropout, tcn_ms_cfg=tcn_ms_cfg,
                  tcn_mid_channels=tcn_mid_channels)
        blocks = []
        if in_channels != base_channels:
            blocks.append(AAGCNBlock(in_channels, base_channels, A, stride=1, residual=False,
                                     **dict(kw, tcn_dropout=0.0)))
        width = base_channels
        for i in range(2, num_stages + 1):
            out = width * (1 + (i in inflate_stages))
            blocks.append(AAGCNBlock(width, out, A, stride=1 + (i in down_stages), **kw))
            width = out
        self.gcn = nn.ModuleList(blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if V != self.num_node:
            raise ValueError(f"AAGCN: input has {V} joints, the graph has {self.num_node}")
        x = _apply_data_bn(self.data_bn, self.data_bn_type, x)
        for block in self.gcn:
            x = block(x)
        return x.reshape((N, M) + x.shape[1:])


#: Named variants: graph mode, backbone keyword arguments and the parameter count with 60
#: classes on COCO-17 (PYSKL's ``configs/aagcn/*``).
VARIANTS: dict[str, dict] = {
    "aagcn": dict(mode="spatial", backbone=dict(), num_params=3_760_228),
}


def aagcn(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "spatial", in_channels: int = 3,
          num_person: int = 2, base_channels: int = 64, dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """AAGCN as in PYSKL's configs: ``spatial`` graph, adaptive graphs with attention, 9x1 TCN.

    ``backbone_kw`` overrides any :class:`AAGCN` argument (e.g. ``tcn_dropout``,
    ``gcn_attention=False``); ``dropout`` is the head's.
    """
    spec = VARIANTS["aagcn"]
    kw = dict(spec["backbone"], in_channels=in_channels, num_person=num_person, base_channels=base_channels)
    kw.update(backbone_kw)
    backbone = AAGCN(Graph(layout, mode), **kw)
    return RecognizerGCN(backbone, GCNHead(num_classes, backbone.out_channels, dropout=dropout))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PYSKL / MMAction2 AAGCN checkpoint onto this file's keys (the same names).

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2 1.x's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd, _ = read_foreign(state_dict)
    return dict(mmaction_filter(sd))


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping) -> nn.Module:
    """Load a PYSKL (or MMAction2) AAGCN checkpoint into ``model``, strictly.

    ``ckpt`` is a path (read with ``torch.load(weights_only=True)``) or a loaded dict. Raises
    :class:`~humact.errors.CheckpointError` naming the file and the missing / unexpected /
    mis-shaped keys.
    """
    return load_foreign(model, ckpt, checkpoint_filter_fn)
