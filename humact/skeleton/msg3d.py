"""MS-G3D: disentangled multi-scale graph convolution with unified spatial-temporal windows
(Liu et al., CVPR 2020).

One file, one family (STYLE.md): the blocks (:class:`MLP`, :class:`MSGCN`,
:class:`MultiScaleTCN`, :class:`UnfoldTemporalWindows`, :class:`STMSGCN`,
:class:`MSG3DBlock`, :class:`MultiWindowMSG3D`), the backbone :class:`MSG3D`, the named
variants (:data:`VARIANTS`, :func:`msg3d`), :func:`checkpoint_filter_fn` and
:func:`load_pyskl_checkpoint`. Head and recognizer are ST-GCN's
(:class:`~humact.skeleton.stgcn.GCNHead`, :class:`~humact.skeleton.stgcn.RecognizerGCN`), so
state-dict keys are PYSKL's (``backbone.*``, ``cls_head.fc_cls.*``).

Same architecture and parameter names as PYSKL's ``pyskl/models/gcns/msg3d.py`` and
``utils/msg3d_utils.py`` at commit 3f6795f. Three stages; each adds two pathways and applies
a ReLU to the sum, then a multi-scale TCN:

- ``sgcn``: :class:`MSGCN` (aggregation over the 0 .. 12-hop neighbourhoods of the binary
  skeleton graph, each with self loops and column-normalised, plus a learnable offset ``PA``;
  then a 1x1 conv + BN + ReLU over the concatenated scales) and two :class:`MultiScaleTCN`
  (the second without its final ReLU);
- ``gcn3d``: :class:`MultiWindowMSG3D`, windows of 3 and 5 frames (:class:`MSG3DBlock`): the
  frames of a window become one graph of ``w * V`` nodes (:func:`spatial_temporal_adjacency`)
  convolved at 6 scales (:class:`STMSGCN`), then a ``(1, w, 1)`` conv collapses the window.

The stages are ``base_channels`` (96), 2x and 4x wide; stages 2 and 3 halve T.

Differences from PYSKL: no registry; ``in_channels`` is honoured by the first stage (PYSKL
hard-codes 3 there, so only 3-channel input runs); the temporal windows are cut with
``Tensor.unfold`` (a view) instead of ``nn.Unfold`` (a copy), which gives the same values; the
scale aggregation is one matrix product.

Shapes: input ``(N, M, T, V, C)``; ``forward_features`` -> ``(N, M, 4 base_channels, T / 4, V)``;
logits ``(N, num_classes)``.

Parameters with 60 classes on COCO-17 (``msg3d``): 2,975,763, PYSKL's count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from humact.io.checkpoints import load_foreign, mmaction_filter, read_foreign
from humact.skeleton.graph import Graph, Layout, multiscale_adjacency, spatial_temporal_adjacency
from humact.skeleton.stgcn import GCNHead, RecognizerGCN, UnitTCN

__all__ = [
    "MLP",
    "MSGCN",
    "MultiScaleTCN",
    "UnfoldTemporalWindows",
    "STMSGCN",
    "MSG3DBlock",
    "MultiWindowMSG3D",
    "MSG3D",
    "VARIANTS",
    "msg3d",
    "checkpoint_filter_fn",
    "load_pyskl_checkpoint",
]


class MLP(nn.Module):
    """1x1 conv + BN (+ ReLU) per layer, optional dropout before each (PYSKL's msg3d ``MLP``).

    ``out_channels`` lists the layer widths. Keys: ``layers.{i}`` in order dropout (only when
    ``dropout > 1e-3``), conv, BN, ReLU (when ``activation``).
    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels[-1], T, V)``.
    """

    def __init__(self, in_channels: int, out_channels: Sequence[int], *, activation: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        channels = [in_channels, *out_channels]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            if dropout > 1e-3:
                layers.append(nn.Dropout(p=dropout))
            layers += [nn.Conv2d(c_in, c_out, kernel_size=1), nn.BatchNorm2d(c_out)]
            if activation:
                layers.append(nn.ReLU())
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def _aggregate(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, V)`` aggregated by each of the ``(K, V, U)`` graphs -> ``(N, K * C, T, U)``,
    scale-major (PYSKL's ``einsum('kvu,nctv->nkctu')`` reshaped), as one matrix product."""
    n, c, t, v = x.shape
    k, _, u = A.shape
    y = torch.matmul(x.reshape(n * c * t, v), A.permute(1, 0, 2).reshape(v, k * u))
    return y.view(n, c, t, k, u).permute(0, 3, 1, 2, 4).reshape(n, k * c, t, u)


class MSGCN(nn.Module):
    """Disentangled multi-scale graph convolution (PYSKL's ``MSGCN``).

    ``A`` (buffer, ``(num_scales, V, V)``): :func:`multiscale_adjacency` of the binary graph;
    ``PA``: a learnable offset (initialised ~U(-1e-6, 1e-6)); the scales' aggregates are
    concatenated and mixed by an :class:`MLP` (1x1 conv, BN, ReLU).

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T, V)``.
    """

    def __init__(self, num_scales: int, in_channels: int, out_channels: int, A: np.ndarray, *,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_scales = num_scales
        self.register_buffer("A", torch.tensor(multiscale_adjacency(A, num_scales), dtype=torch.float32))
        self.PA = nn.Parameter(torch.empty_like(self.A).uniform_(-1e-6, 1e-6))
        self.mlp = MLP(in_channels * num_scales, [out_channels], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(_aggregate(x, self.A + self.PA))


class MultiScaleTCN(nn.Module):
    """MS-G3D's multi-scale temporal convolution (PYSKL's ``MSTCN`` in ``msg3d_utils``; not
    ST-GCN++'s ``mstcn``, :class:`humact.skeleton.stgcn.MSTCN`). CTR-GCN uses it too.

    Branches, concatenated on channels: per dilation ``d`` a 1x1 conv -> BN -> ReLU ->
    ``kernel_size x 1`` conv with dilation ``d`` + BN; a 1x1 conv -> BN -> ReLU -> 3x1 max-pool
    -> BN; a strided 1x1 conv -> BN (it takes the remainder channels). Then the residual
    (``False``: none, identity when shapes match, else a strided 1x1 :class:`UnitTCN`) is
    added, and ReLU (``activation``) and dropout follow.

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T / stride, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int | Sequence[int] = 3,
                 stride: int = 1, dilations: Sequence[int] = (1, 2, 3, 4), residual: bool = True,
                 activation: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        nb = len(dilations) + 2
        bc = out_channels // nb
        rem = out_channels - bc * (nb - 1)
        kernels = list(kernel_size) if isinstance(kernel_size, (list, tuple)) else [kernel_size] * len(dilations)
        if len(kernels) != len(dilations):
            raise ValueError(f"MSTCN: {len(kernels)} kernel sizes for {len(dilations)} dilations")
        branches = [nn.Sequential(nn.Conv2d(in_channels, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(),
                                  UnitTCN(bc, bc, ks, stride=stride, dilation=d))
                    for ks, d in zip(kernels, dilations)]
        branches.append(nn.Sequential(nn.Conv2d(in_channels, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(),
                                      nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
                                      nn.BatchNorm2d(bc)))
        branches.append(nn.Sequential(nn.Conv2d(in_channels, rem, 1, stride=(stride, 1)), nn.BatchNorm2d(rem)))
        self.branches = nn.ModuleList(branches)
        self.residual_kind = ("none" if not residual else
                              "identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_kind == "conv":
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)
        self.act = nn.ReLU() if activation else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([branch(x) for branch in self.branches], dim=1)
        if self.residual_kind == "identity":
            out = out + x
        elif self.residual_kind == "conv":
            out = out + self.residual(x)
        return self.drop(self.act(out))


class UnfoldTemporalWindows(nn.Module):
    """Every ``window_size``-frame window (stride, dilation, zero-padded to keep ``T / stride``
    windows) as one graph: ``(N, C, T, V)`` -> ``(N, C, T', window_size * V)``, node ``f * V + v``
    being joint ``v`` of window frame ``f`` (PYSKL's ``UnfoldTemporalWindows``)."""

    def __init__(self, window_size: int, window_stride: int, window_dilation: int = 1) -> None:
        super().__init__()
        self.window_size, self.window_stride, self.window_dilation = window_size, window_stride, window_dilation
        self.padding = (window_size + (window_size - 1) * (window_dilation - 1) - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        span = (self.window_size - 1) * self.window_dilation + 1
        x = F.pad(x, (0, 0, self.padding, self.padding))
        w = x.unfold(2, span, self.window_stride)[..., ::self.window_dilation]   # (N, C, T', V, w)
        return w.transpose(-1, -2).reshape(n, c, w.shape[2], self.window_size * v)


class STMSGCN(nn.Module):
    """Multi-scale graph convolution on a window's spatial-temporal graph (PYSKL's ``ST_MSGCN``).

    ``A`` (buffer): :func:`multiscale_adjacency` of :func:`spatial_temporal_adjacency` (``w V``
    nodes); ``PA`` a learnable offset; an :class:`MLP` mixes the scales; ReLU after the
    optional residual (PYSKL's default: none).

    Shape: ``(N, in_channels, T', w V)`` -> ``(N, out_channels, T', w V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: np.ndarray, num_scales: int, window_size: int, *,
                 residual: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_scales, self.window_size = num_scales, window_size
        A_st = spatial_temporal_adjacency(A, window_size)
        self.register_buffer("A", torch.tensor(multiscale_adjacency(A_st, num_scales), dtype=torch.float32))
        self.V = len(A_st)
        self.PA = nn.Parameter(torch.empty_like(self.A).uniform_(-1e-6, 1e-6))
        self.mlp = MLP(in_channels * num_scales, [out_channels], dropout=dropout)
        self.residual_kind = ("none" if not residual else "identity" if in_channels == out_channels else "mlp")
        if self.residual_kind == "mlp":
            self.residual = MLP(in_channels, [out_channels], activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(_aggregate(x, self.A + self.PA))
        if self.residual_kind == "identity":
            out = out + x
        elif self.residual_kind == "mlp":
            out = out + self.residual(x)
        return F.relu(out)


class MSG3DBlock(nn.Module):
    """One window size of the G3D pathway (PYSKL's ``MSG3DBlock``): windows -> :class:`STMSGCN`
    -> a ``(1, w, 1)`` conv collapsing the window -> BN (no activation).

    With ``embed_factor`` 1 (PYSKL's use) the graph convolution keeps ``in_channels`` and the
    collapse changes the width, except in the ``first`` stage, whose graph convolution maps
    the raw joints straight to ``out_channels`` (PYSKL: "when ``in_channels == 3``").

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T / window_stride, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: np.ndarray, num_scales: int, window_size: int,
                 window_stride: int, window_dilation: int = 1, *, embed_factor: int = 1, first: bool = False) -> None:
        super().__init__()
        self.window_size, self.out_channels = window_size, out_channels
        if embed_factor == 1:
            self.in1x1 = nn.Identity()
            self.embed_channels_in = in_channels
            self.embed_channels_out = out_channels if first else in_channels
        else:
            self.embed_channels_in = self.embed_channels_out = out_channels // embed_factor
            self.in1x1 = MLP(in_channels, [self.embed_channels_in])
        self.gcn3d = nn.Sequential(
            UnfoldTemporalWindows(window_size, window_stride, window_dilation),
            STMSGCN(self.embed_channels_in, self.embed_channels_out, A, num_scales, window_size))
        self.out_conv = nn.Conv3d(self.embed_channels_out, out_channels, kernel_size=(1, window_size, 1))
        self.out_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        x = self.gcn3d(self.in1x1(x))                                    # (N, C, T', w V)
        x = x.reshape(n, self.embed_channels_out, -1, self.window_size, v)
        return self.out_bn(self.out_conv(x).squeeze(3))


class MultiWindowMSG3D(nn.Module):
    """The G3D pathway: the sum of :class:`MSG3DBlock` over window sizes (PYSKL's
    ``MW_MSG3DBlock``; keys ``gcn3d.{i}``)."""

    def __init__(self, in_channels: int, out_channels: int, A: np.ndarray, num_scales: int, *,
                 window_sizes: Sequence[int] = (3, 5), window_stride: int = 1,
                 window_dilations: Sequence[int] = (1, 1), first: bool = False) -> None:
        super().__init__()
        self.gcn3d = nn.ModuleList([
            MSG3DBlock(in_channels, out_channels, A, num_scales, ws, window_stride, wd, first=first)
            for ws, wd in zip(window_sizes, window_dilations)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.gcn3d[0](x)
        for block in self.gcn3d[1:]:
            out = out + block(x)
        return out


class MSG3D(nn.Module):
    """The MS-G3D backbone (PYSKL's ``MSG3D``).

    Args:
        graph: a :class:`~humact.skeleton.graph.Graph` in ``binary_adj`` mode (or anything with
            ``.A``), or a ``(1, V, V)`` / ``(V, V)`` 0/1 adjacency without self loops; kept as
            the ``A`` buffer ``(V, V)``.
        in_channels: C of the input joints.
        base_channels: width of stage 1 (96); stages 2 and 3 are 2x and 4x as wide.
        num_gcn_scales: hops of the spatial pathway's :class:`MSGCN` (13).
        num_g3d_scales: scales of the windows' :class:`STMSGCN` (6).
        num_person: M, for the ``M * V * C`` data BN.
        tcn_dropout: dropout after each stage's closing :class:`MultiScaleTCN`.

    Shape: ``(N, M, T, V, C)`` -> ``(N, M, 4 base_channels, T / 4, V)``.
    """

    def __init__(self, graph, *, in_channels: int = 3, base_channels: int = 96, num_gcn_scales: int = 13,
                 num_g3d_scales: int = 6, num_person: int = 2, tcn_dropout: float = 0.0) -> None:
        super().__init__()
        A_np = np.asarray(graph.A if hasattr(graph, "A") else graph, dtype=np.float64)
        if A_np.ndim == 3:
            A_np = A_np[0]
        if A_np.ndim != 2 or A_np.shape[0] != A_np.shape[1]:
            raise ValueError(f"MSG3D: graph adjacency must be (V, V) or (1, V, V), got {A_np.shape}")
        self.register_buffer("A", torch.tensor(A_np, dtype=torch.float32))
        self.num_node = V = A_np.shape[0]
        self.in_channels, self.base_channels = in_channels, base_channels
        self.data_bn = nn.BatchNorm1d(V * in_channels * num_person)
        c1, c2, c3 = base_channels, base_channels * 2, base_channels * 4
        A = A_np

        self.gcn3d1 = MultiWindowMSG3D(in_channels, c1, A, num_g3d_scales, window_stride=1, first=True)
        self.sgcn1 = nn.Sequential(MSGCN(num_gcn_scales, in_channels, c1, A), MultiScaleTCN(c1, c1),
                                   MultiScaleTCN(c1, c1, activation=False))
        self.tcn1 = MultiScaleTCN(c1, c1, dropout=tcn_dropout)

        self.gcn3d2 = MultiWindowMSG3D(c1, c2, A, num_g3d_scales, window_stride=2)
        self.sgcn2 = nn.Sequential(MSGCN(num_gcn_scales, c1, c1, A), MultiScaleTCN(c1, c2, stride=2),
                                   MultiScaleTCN(c2, c2, activation=False))
        self.tcn2 = MultiScaleTCN(c2, c2, dropout=tcn_dropout)

        self.gcn3d3 = MultiWindowMSG3D(c2, c3, A, num_g3d_scales, window_stride=2)
        self.sgcn3 = nn.Sequential(MSGCN(num_gcn_scales, c2, c2, A), MultiScaleTCN(c2, c3, stride=2),
                                   MultiScaleTCN(c3, c3, activation=False))
        self.tcn3 = MultiScaleTCN(c3, c3, dropout=tcn_dropout)
        self.out_channels = c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if V != self.num_node:
            raise ValueError(f"MSG3D: input has {V} joints, the graph has {self.num_node}")
        x = self.data_bn(x.permute(0, 1, 3, 4, 2).reshape(N, M * V * C, T))
        x = x.reshape(N * M, V, C, T).permute(0, 2, 3, 1).contiguous()
        x = self.tcn1(F.relu(self.sgcn1(x) + self.gcn3d1(x)))
        x = self.tcn2(F.relu(self.sgcn2(x) + self.gcn3d2(x)))
        x = self.tcn3(F.relu(self.sgcn3(x) + self.gcn3d3(x)))
        return x.reshape((N, M) + x.shape[1:])


#: Named variants: graph mode, backbone keyword arguments and the parameter count with 60
#: classes on COCO-17 (PYSKL's ``configs/msg3d/*``).
VARIANTS: dict[str, dict] = {
    "msg3d": dict(mode="binary_adj", backbone=dict(num_gcn_scales=13, num_g3d_scales=6), num_params=2_975_763),
}


def msg3d(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "binary_adj", in_channels: int = 3,
          num_person: int = 2, base_channels: int = 96, dropout: float = 0.0, **backbone_kw) -> RecognizerGCN:
    """MS-G3D as in PYSKL's configs: ``binary_adj`` graph, 13 GCN / 6 G3D scales, 96 base channels.

    ``backbone_kw`` overrides any :class:`MSG3D` argument (e.g. ``tcn_dropout``); ``dropout``
    is the head's.
    """
    spec = VARIANTS["msg3d"]
    kw = dict(spec["backbone"], in_channels=in_channels, num_person=num_person, base_channels=base_channels)
    kw.update(backbone_kw)
    backbone = MSG3D(Graph(layout, mode), **kw)
    return RecognizerGCN(backbone, GCNHead(num_classes, backbone.out_channels, dropout=dropout))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PYSKL MS-G3D checkpoint onto this file's keys (the same names).

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd, _ = read_foreign(state_dict)
    return dict(mmaction_filter(sd))


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping) -> nn.Module:
    """Load a PYSKL MS-G3D checkpoint into ``model``, strictly (``ckpt``: a path or a loaded dict).

    Raises :class:`~humact.errors.CheckpointError` naming the file and the missing /
    unexpected / mis-shaped keys.
    """
    return load_foreign(model, ckpt, checkpoint_filter_fn)
