"""DG-STGCN: dynamic spatial-temporal modelling for skeleton actions (Duan et al., 2022).

One file, one family (STYLE.md): the blocks (:class:`DGGCN`, :class:`DGMSTCN`,
:class:`DGBlock`), the backbone :class:`DGSTGCN`, the named variants (:data:`VARIANTS`,
:func:`dgstgcn`), :func:`checkpoint_filter_fn` and :func:`load_pyskl_checkpoint`. Head and
recognizer are ST-GCN's (:class:`~humact.skeleton.stgcn.GCNHead`,
:class:`~humact.skeleton.stgcn.RecognizerGCN`), so state-dict keys are PYSKL's
(``backbone.*``, ``cls_head.fc_cls.*``).

Same architecture and parameter names as PYSKL's ``pyskl/models/gcns/dgstgcn.py`` and
``utils/gcn.py`` (``dggcn``), ``utils/tcn.py`` (``dgmstcn``) at commit 3f6795f:

- :class:`DGGCN`, the dynamic group GCN: ``K`` (8) groups of ``ratio * out`` channels each
  get their own graph, ``A_k`` (learnable, initialised as noise: graph mode ``random``) plus
  a channel-wise refinement ``alpha * tanh(x1_v - x2_w)`` (``ctr='T'``) plus a sample-wise
  one ``beta * softmax_v(x1 . x2)`` (``ada='T'``), with ``x1``, ``x2`` 1x1 convs of the
  time-averaged input; a 1x1 conv + BN + ReLU (``pre``) feeds the aggregation and a 1x1 conv
  (``post``) mixes the groups; BN, residual ``down``, ReLU.
- :class:`DGMSTCN`, the dynamic multi-scale TCN: ST-GCN++'s six temporal branches run on the
  joints plus one extra "global" joint (their mean); the global joint's output, scaled per
  joint by a learnable ``add_coeff``, is added back to every joint before the transform.

Differences from PYSKL: no registry; explicit keyword arguments (per-stage tuples are not
supported); ``add_coeff`` is sized ``max(25, V)`` (PYSKL: always 25, so skeletons of more than
25 joints fail there; checkpoints of up to 25 joints keep PYSKL's shape); the random initial
graph comes from a generator seeded from torch's (PYSKL: numpy's global one), so
``torch.manual_seed`` makes a model reproducible.

Shapes: input ``(N, M, T, V, C)``; ``forward_features`` -> ``(N, M, 4 base_channels, T / 4, V)``;
logits ``(N, num_classes)``.

Parameters with 60 classes on COCO-17 (``dgstgcn``): 1,674,244, PYSKL's count.
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
from humact.skeleton.stgcn import MSTCN, MSTCN_DEFAULT_CFG, GCNHead, RecognizerGCN, UnitTCN

__all__ = [
    "DGGCN",
    "DGMSTCN",
    "DGBlock",
    "DGSTGCN",
    "VARIANTS",
    "dgstgcn",
    "checkpoint_filter_fn",
    "load_pyskl_checkpoint",
]

EPS = 1e-4

_ACTS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
         "softmax": lambda x: torch.softmax(x, dim=-2)}


class DGGCN(nn.Module):
    """Dynamic group graph convolution (PYSKL's ``dggcn``).

    Args:
        in_channels, out_channels: channel counts.
        A: ``(K, V, V)`` initial graphs (a learnable parameter), one per channel group.
        ratio: each group has ``int(ratio * out_channels)`` channels (``None``: ``1 / K``).
        ctr: channel-wise topology refinement: ``None``, ``'T'`` (from the time-averaged
            input, one graph per channel) or ``'NA'`` (per frame; also turns ``ada`` per frame).
        ada: sample-wise graph (embedded similarity of the joints): ``None``, ``'T'`` or ``'NA'``.
        subset_wise: one ``alpha`` / ``beta`` per group instead of the first for all.
        ada_act, ctr_act: ``'tanh'``, ``'relu'``, ``'sigmoid'`` or ``'softmax'`` (over joints).

    Shape: ``(N, in_channels, T, V)`` -> ``(N, out_channels, T, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *, ratio: float | None = 0.25,
                 ctr: str | None = "T", ada: str | None = "T", subset_wise: bool = False,
                 ada_act: str = "softmax", ctr_act: str = "tanh") -> None:
        super().__init__()
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"dggcn: A must be (K, V, V), got {tuple(A.shape)}")
        for name, val, allowed in (("ctr", ctr, (None, "NA", "T")), ("ada", ada, (None, "NA", "T")),
                                   ("ctr_act", ctr_act, tuple(_ACTS)), ("ada_act", ada_act, tuple(_ACTS))):
            if val not in allowed:
                raise ValueError(f"dggcn: {name} must be one of {allowed}, got {val!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_subsets = k = A.shape[0]
        self.ctr, self.ada, self.ctr_act, self.ada_act = ctr, ada, ctr_act, ada_act
        self.subset_wise = subset_wise
        self.ratio = 1 / k if ratio is None else ratio
        self.mid_channels = mid = int(self.ratio * out_channels)

        self.A = nn.Parameter(A.clone())
        self.pre = nn.Sequential(nn.Conv2d(in_channels, mid * k, 1), nn.BatchNorm2d(mid * k), nn.ReLU())
        self.post = nn.Conv2d(mid * k, out_channels, 1)
        self.alpha = nn.Parameter(torch.zeros(k))
        self.beta = nn.Parameter(torch.zeros(k))
        if ada or ctr:
            self.conv1 = nn.Conv2d(in_channels, mid * k, 1)
            self.conv2 = nn.Conv2d(in_channels, mid * k, 1)
        self.down = None
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.bn = nn.BatchNorm2d(out_channels)

    def _scale(self, graph: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        """``graph`` (N, K, C, T, V, V) times the group's coefficient (``subset_wise``) or the first."""
        return graph * (coeff.view(1, -1, 1, 1, 1, 1) if self.subset_wise else coeff[0])

    def graphs(self, x: torch.Tensor) -> torch.Tensor:
        """The graphs for input ``x``: broadcastable to ``(N, K, C_mid, T, V, V)``; dims 2 and 3
        are 1 where the graph is shared by the group's channels / the frames."""
        n, c, t, v = x.shape
        k, mid = self.num_subsets, self.mid_channels
        A = self.A[None, :, None, None]                                    # (1, K, 1, 1, V, V)
        if self.ctr is None and self.ada is None:
            return A
        # Per-frame refinements with 'NA', else from the time-averaged input.
        tmp = x if "NA" in (self.ctr, self.ada) else x.mean(dim=-2, keepdim=True)
        x1 = self.conv1(tmp).reshape(n, k, mid, -1, v)                     # (N, K, mid, T or 1, V)
        x2 = self.conv2(tmp).reshape(n, k, mid, -1, v)
        if self.ctr is not None:
            diff = x1.unsqueeze(-1) - x2.unsqueeze(-2)                     # (N, K, mid, T|1, V, V)
            A = self._scale(_ACTS[self.ctr_act](diff), self.alpha) + A
        if self.ada is not None:
            sim = torch.einsum("nkctv,nkctw->nktvw", x1, x2)[:, :, None]    # (N, K, 1, T|1, V, V)
            A = self._scale(_ACTS[self.ada_act](sim), self.beta) + A
        return A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        res = self.down(x) if self.down is not None else x
        pre_x = self.pre(x).reshape(n, self.num_subsets, self.mid_channels, t, v)
        A = self.graphs(x)
        if A.shape[3] == 1:
            # One graph per (sample, group, channel) for all frames: a batched product.
            y = torch.matmul(pre_x, A.squeeze(3))
        else:
            # Per-frame graphs: each frame's row vector times its own matrix.
            y = torch.matmul(pre_x.unsqueeze(-2), A).squeeze(-2)
        y = self.post(y.reshape(n, -1, t, v))
        return F.relu(self.bn(y) + res)


class DGMSTCN(MSTCN):
    """Dynamic multi-scale temporal convolution (PYSKL's ``dgmstcn``).

    ST-GCN++'s branches and transform (:class:`~humact.skeleton.stgcn.MSTCN`, same keys) run
    on ``V + 1`` joints, the last the mean of the others; that global joint's output, times
    the learnable per-joint ``add_coeff`` (``(num_joints,)``, initialised 0, the first ``V``
    used), is added to every joint before the transform.

    Shape: ``(N, C_in, T, V)`` -> ``(N, C_out, T / stride, V)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, mid_channels: float | None = None,
                 num_joints: int = 25, dropout: float = 0.0, ms_cfg: Sequence = MSTCN_DEFAULT_CFG,
                 stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, mid_channels=mid_channels, dropout=dropout, ms_cfg=ms_cfg,
                         stride=stride)
        self.num_joints = num_joints
        self.add_coeff = nn.Parameter(torch.zeros(num_joints))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.shape[-1]
        if v > self.num_joints:
            raise ValueError(f"dgmstcn: {v} joints but add_coeff has {self.num_joints}")
        x = torch.cat([x, x.mean(-1, keepdim=True)], -1)
        out = torch.cat([branch(x) for branch in self.branches], dim=1)
        local, glob = out[..., :v], out[..., v]
        feat = local + glob.unsqueeze(-1) * self.add_coeff[:v]
        return self.drop(self.bn(self.transform(feat)))


class DGBlock(nn.Module):
    """One DG-STGCN stage (PYSKL's ``DGBlock``): :class:`DGGCN`, :class:`DGMSTCN`, the block
    residual (``False``: none; identity when shapes match, else a strided 1x1
    :class:`UnitTCN`), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, *, stride: int = 1,
                 residual: bool = True, gcn_ratio: float | None = 0.25, gcn_ctr: str | None = "T",
                 gcn_ada: str | None = "T", gcn_subset_wise: bool = False, gcn_ada_act: str = "softmax",
                 gcn_ctr_act: str = "tanh", tcn_mid_channels: float | None = None, tcn_num_joints: int = 25,
                 tcn_dropout: float = 0.0, tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG) -> None:
        super().__init__()
        self.gcn = DGGCN(in_channels, out_channels, A, ratio=gcn_ratio, ctr=gcn_ctr, ada=gcn_ada,
                         subset_wise=gcn_subset_wise, ada_act=gcn_ada_act, ctr_act=gcn_ctr_act)
        self.tcn = DGMSTCN(out_channels, out_channels, mid_channels=tcn_mid_channels, num_joints=tcn_num_joints,
                           dropout=tcn_dropout, ms_cfg=tcn_ms_cfg, stride=stride)
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


class DGSTGCN(nn.Module):
    """The DG-STGCN backbone (PYSKL's ``DGSTGCN``).

    Args:
        graph: a :class:`~humact.skeleton.graph.Graph` (PYSKL: mode ``random``, 8 filters), or
            a ``(K, V, V)`` array: the blocks' initial graphs (not kept as a buffer).
        in_channels: C of the input joints.
        base_channels: width of the first stages; ``ch_ratio`` times wider at each
            ``inflate_stages`` stage.
        num_stages: number of blocks (10; the first maps ``in_channels`` to ``base_channels``
            and is skipped when they are equal, as in PYSKL).
        inflate_stages, down_stages: 1-based stages that widen / halve T.
        data_bn_type: ``'VC'`` (PYSKL's default), ``'MVC'`` or ``None``.
        num_person: M, used by ``'MVC'``.
        gcn_*, tcn_*: forwarded to every :class:`DGBlock` (the first gets no temporal dropout);
            ``tcn_num_joints`` defaults to ``max(25, V)``.

    Shape: ``(N, M, T, V, C)`` -> ``(N, M, C_out, T / 4, V)``.
    """

    def __init__(self, graph, *, in_channels: int = 3, base_channels: int = 64, ch_ratio: float = 2,
                 num_stages: int = 10, inflate_stages: Sequence[int] = (5, 8), down_stages: Sequence[int] = (5, 8),
                 data_bn_type: str | None = "VC", num_person: int = 2, gcn_ratio: float | None = 0.25,
                 gcn_ctr: str | None = "T", gcn_ada: str | None = "T", gcn_subset_wise: bool = False,
                 gcn_ada_act: str = "softmax", gcn_ctr_act: str = "tanh", tcn_mid_channels: float | None = None,
                 tcn_num_joints: int | None = None, tcn_dropout: float = 0.0,
                 tcn_ms_cfg: Sequence = MSTCN_DEFAULT_CFG) -> None:
        super().__init__()
        A_np = graph.A if hasattr(graph, "A") else np.asarray(graph)
        A = torch.tensor(np.asarray(A_np), dtype=torch.float32)
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"DGSTGCN: graph adjacency must be (K, V, V), got {tuple(A.shape)}")
        self.num_node = V = A.shape[1]
        self.in_channels, self.base_channels, self.ch_ratio = in_channels, base_channels, ch_ratio
        self.data_bn_type = data_bn_type
        if data_bn_type == "MVC":
            self.data_bn = nn.BatchNorm1d(num_person * in_channels * V)
        elif data_bn_type == "VC":
            self.data_bn = nn.BatchNorm1d(in_channels * V)
        elif data_bn_type is None:
            self.data_bn = nn.Identity()
        else:
            raise ValueError(f"DGSTGCN: data_bn_type must be 'VC', 'MVC' or None, got {data_bn_type!r}")
        kw = dict(gcn_ratio=gcn_ratio, gcn_ctr=gcn_ctr, gcn_ada=gcn_ada, gcn_subset_wise=gcn_subset_wise,
                  gcn_ada_act=gcn_ada_act, gcn_ctr_act=gcn_ctr_act, tcn_mid_channels=tcn_mid_channels,
                  tcn_num_joints=max(25, V) if tcn_num_joints is None else tcn_num_joints,
                  tcn_dropout=tcn_dropout, tcn_ms_cfg=tcn_ms_cfg)
        blocks = []
        if in_channels != base_channels:
            blocks.append(DGBlock(in_channels, base_channels, A, stride=1, residual=False,
                                  **dict(kw, tcn_dropout=0.0)))
        inflate_times, width = 0, base_channels
        for i in range(2, num_stages + 1):
            inflate_times += i in inflate_stages
            out = int(base_channels * ch_ratio ** inflate_times + EPS)
            blocks.append(DGBlock(width, out, A, stride=1 + (i in down_stages), **kw))
            width = out
        self.gcn = nn.ModuleList(blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if V != self.num_node:
            raise ValueError(f"DGSTGCN: input has {V} joints, the graph has {self.num_node}")
        x = x.permute(0, 1, 3, 4, 2).contiguous()
        if self.data_bn_type == "MVC":
            x = self.data_bn(x.view(N, M * V * C, T))
        else:
            x = self.data_bn(x.view(N * M, V * C, T))
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)
        for block in self.gcn:
            x = block(x)
        return x.reshape((N, M) + x.shape[1:])


#: Named variants: graph (mode ``random`` and its parameters), backbone keyword arguments and
#: the parameter count with 60 classes on COCO-17 (PYSKL's ``configs/dgstgcn/*``).
VARIANTS: dict[str, dict] = {
    "dgstgcn": dict(mode="random", graph=dict(num_filter=8, init_off=0.04, init_std=0.02),
                    backbone=dict(gcn_ratio=0.125, gcn_ctr="T", gcn_ada="T", tcn_ms_cfg=MSTCN_DEFAULT_CFG),
                    num_params=1_674_244),
}


def dgstgcn(*, num_classes: int, layout: str | Layout | dict = "coco", mode: str = "random", in_channels: int = 3,
            num_person: int = 2, base_channels: int = 64, dropout: float = 0.0, graph_kw: dict | None = None,
            **backbone_kw) -> RecognizerGCN:
    """DG-STGCN as in PYSKL's configs: 8 random initial graphs (N(0.04, 0.02^2)), group ratio
    1/8, channel-wise and sample-wise refinements, ST-GCN++'s six temporal branches.

    ``graph_kw`` overrides the graph's ``num_filter`` / ``init_off`` / ``init_std`` / ``seed``
    (default: a seed drawn from torch's generator); ``backbone_kw`` any :class:`DGSTGCN`
    argument; ``dropout`` is the head's.
    """
    spec = VARIANTS["dgstgcn"]
    gkw = dict(spec["graph"]) if mode == "random" else {}
    gkw.update(graph_kw or {})
    if mode == "random" and gkw.get("seed") is None:
        gkw["seed"] = int(torch.randint(0, 2 ** 31 - 1, ()))
    kw = dict(spec["backbone"], in_channels=in_channels, num_person=num_person, base_channels=base_channels)
    kw.update(backbone_kw)
    backbone = DGSTGCN(Graph(layout, mode, **gkw), **kw)
    return RecognizerGCN(backbone, GCNHead(num_classes, backbone.out_channels, dropout=dropout))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PYSKL DG-STGCN checkpoint onto this file's keys (the same names).

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd, _ = read_foreign(state_dict)
    return dict(mmaction_filter(sd))


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping) -> nn.Module:
    """Load a PYSKL DG-STGCN checkpoint into ``model``, strictly (``ckpt``: a path or a loaded dict).

    Raises :class:`~humact.errors.CheckpointError` naming the file and the missing /
    unexpected / mis-shaped keys.
    """
    return load_foreign(model, ckpt, checkpoint_filter_fn)
