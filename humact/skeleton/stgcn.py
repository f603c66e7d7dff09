"""ST-GCN and ST-GCN++: spatial-temporal graph convolution networks for skeleton actions.

One file, one family (STYLE.md): the blocks (:class:`UnitGCN`, :class:`UnitTCN`,
:class:`MSTCN`, :class:`STGCNBlock`), the backbone :class:`STGCN`, PYSKL's
:class:`GCNHead`, the recognizer :class:`RecognizerGCN` (``forward_features`` /
``forward_head``), keyword builders per named variant (:func:`stgcn`, :func:`stgcnpp`,
:data:`VARIANTS`) and :func:`load_pyskl_checkpoint`.

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
import torch.nn.functional as F

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
    "convert_pyskl_state_dict",
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


def convert_pyskl_state_dict(ckpt: Mapping) -> dict[str, torch.Tensor]:
    """Map a PYSKL / MMAction2 checkpoint onto :class:`RecognizerGCN`'s keys.

    Accepts ``{"state_dict": {...}}`` or a bare state dict; strips a ``module.`` prefix
    (DataParallel); renames MMAction2 1.x's ``cls_head.fc.*`` to ``cls_head.fc_cls.*``.
    """
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else ckpt
    if not isinstance(sd, Mapping):
        raise ValueError("checkpoint: expected a state dict or a dict with 'state_dict'")
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if key.startswith("cls_head.fc."):
            key = "cls_head.fc_cls." + key[len("cls_head.fc."):]
        out[key] = value
    return out


def load_pyskl_checkpoint(model: nn.Module, ckpt: str | Path | Mapping, *,
                          strict: bool = True) -> nn.Module:
    """Load a PYSKL (or MMAction2) GCN checkpoint into ``model``, strictly by default.

    ``ckpt`` is a path (read with ``torch.load(weights_only=True)``) or an already loaded
    dict. Raises ``ValueError`` naming the file and the missing / unexpected / mis-shaped keys.
    """
    source = str(ckpt) if isinstance(ckpt, (str, Path)) else "<state dict>"
    if isinstance(ckpt, (str, Path)):
        ckpt = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd = convert_pyskl_state_dict(ckpt)
    own = model.state_dict()
    bad_shape = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                 for k, v in sd.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if bad_shape or (strict and (missing or unexpected)):
        lines = [f"{source}: checkpoint does not match {type(model).__name__}"]
        if bad_shape:
            lines.append("  wrong shape: " + "; ".join(bad_shape[:10]))
        if missing:
            lines.append(f"  missing ({len(missing)}): " + ", ".join(missing[:10]))
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): " + ", ".join(unexpected[:10]))
        raise ValueError("\n".join(lines))
    model.load_state_dict(sd, strict=strict)
    return model


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


def _linear(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """1x1 conv as one matrix product in the channel-major layout.

    ``x``: ``(C, S, T, V)`` (S = samples x persons) -> ``(O, S, T / stride, V)``.
    """
    if stride > 1:
        x = x[:, :, ::stride]
    c, n, t, v = x.shape
    return torch.addmm(b[:, None], w, x.reshape(c, n * t * v)).view(-1, n, t, v)


def _max3(x: torch.Tensor, stride: int) -> torch.Tensor:
    """3x1 temporal max-pool, padding 1 (``MaxPool2d((3, 1), (stride, 1), (1, 0))``), on dim 2."""
    y = x.clone()
    torch.maximum(y[:, :, 1:], x[:, :, :-1], out=y[:, :, 1:])
    torch.maximum(y[:, :, :-1], x[:, :, 1:], out=y[:, :, :-1])
    return y[:, :, ::stride] if stride > 1 else y


class _FusedGCN(nn.Module):
    """:class:`UnitGCN` in eval mode with the graph, the conv and BN folded into matrix products.

    ``out = relu(sum_k W_k x A_k + bias + res)`` (channels mixed by ``W_k``, joints by
    ``A_k``; the two commute). When the unit widens (``C < O``) the ``C`` input channels are
    aggregated over the graph first (one product per partition, written partition-major so
    that no transposed copy is needed) and then mixed in one ``K*C -> O`` product; otherwise
    the ``K*O`` mixed channels are aggregated by ``K`` products accumulated in place. The
    output starts as the (BN-folded) bias and every product, the residual's included,
    accumulates into it: no separate bias or residual pass. Same multiply-adds as PYSKL's
    conv-then-einsum either way. Layout ``(C, S, T, V)`` -> ``(O, S, T, V)``.
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
        self.k, self.o = k, o
        self.aggregate_first = c < o
        self.register_buffer("A", A.clone(memory_format=torch.contiguous_format))
        if self.aggregate_first:
            # w2[o, k*C + c] = W[k, o, c]: columns in the partition-major order of z.
            self.register_buffer("w2", w.permute(1, 0, 2).reshape(o, k * c).contiguous())
        else:
            self.register_buffer("w_all", w.reshape(k * o, c).contiguous())
        self.res = "none" if not unit.with_res else ("conv" if unit.down is not None else "identity")
        if self.res == "conv":
            wd, bd = _conv1x1(unit.down[0], unit.down[1])
            self.register_buffer("wd", wd.contiguous())
            bias = bias + bd[:, None]                            # the residual's bias joins the bias
        self.register_buffer("bias", bias.reshape(o, 1, v).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, n, t, v = x.shape
        k, o = self.k, self.o
        y = torch.empty(o, n * t, v, dtype=x.dtype)
        y.copy_(self.bias)
        y_mat = y.view(o, n * t * v)
        if self.aggregate_first:
            # z[k] = X (c*n*t, v) @ A_k, stored as (K*C, n*t*v): rows in w2's column order.
            z = torch.empty(k, c * n * t, v, dtype=x.dtype)
            x_rows = x.reshape(c * n * t, v)
            for i in range(k):
                torch.mm(x_rows, self.A[i], out=z[i])
            y_mat.addmm_(self.w2, z.view(k * c, n * t * v))
        else:
            # (k*o, c) @ (c, n*t*v), then y += Y_k @ A_k on (o*n*t, v) views.
            mixed = torch.mm(self.w_all, x.reshape(c, n * t * v)).view(k, -1, v)
            y_rows = y.view(o * n * t, v)
            for i in range(k):
                y_rows.addmm_(mixed[i], self.A[i])
        if self.res == "conv":
            y_mat.addmm_(self.wd, x.reshape(c, n * t * v))
        elif self.res == "identity":
            y_mat += x.reshape(c, n * t * v)
        return y.view(o, n, t, v).relu_()


class _FusedTCN(nn.Module):
    """:class:`UnitTCN` (k x 1 conv + BN, eval) with the BN folded into the conv.

    Layout ``(C, S, T, V)`` -> ``(O, S, T', V)`` (a transposed view for k > 3).
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

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``out``: an optional contiguous ``(O, S, T', V)`` destination (3x1 kernels)."""
        if self.k == 1:
            return _linear(self.w_cols, self.b, x, self.stride)
        if self.k > 3:
            # Wide kernels (ST-GCN's 9x1): oneDNN's convolution is the faster one.
            y = F.conv2d(x.transpose(0, 1), self.w, self.b, (self.stride, 1), (self.pad, 0), (self.dilation, 1))
            return y.transpose(0, 1)
        # Thin 3x1 (dilated) kernels of ST-GCN++: temporal im2col + one product is faster
        # than oneDNN's convolution here (measured 1.1-1.6x), with the same sums.
        c, n, t, v = x.shape
        s, d = self.stride, self.dilation
        t_out = (t + 2 * self.pad - d * (self.k - 1) - 1) // s + 1
        # cols[j, :, :, u] = x[:, :, u*s + j*d - pad] (zero outside the clip): the taps'
        # shifted copies written straight into one buffer, no padded copy of x first.
        cols = torch.empty(self.k, c, n, t_out, v, dtype=x.dtype)
        for j in range(self.k):
            off = j * d - self.pad
            lo = min(max(0, -(off // s)), t_out)
            hi = max(min(t_out, (t - 1 - off) // s + 1), lo) if t - 1 - off >= 0 else lo
            cols[j, :, :, :lo] = 0
            cols[j, :, :, hi:] = 0
            if hi > lo:
                cols[j, :, :, lo:hi] = x[:, :, lo * s + off: (hi - 1) * s + off + 1: s]
        if out is not None:
            torch.addmm(self.b[:, None], self.w_cols, cols.view(self.k * c, -1), out=out.view(out.shape[0], -1))
            return out
        return torch.addmm(self.b[:, None], self.w_cols, cols.view(self.k * c, -1)).view(-1, n, t_out, v)


class _FusedMSTCN(nn.Module):
    """:class:`MSTCN` in eval mode: the branches' 1x1 convs (+ BN) as one matrix product,
    the max-pool as two element-wise maxima, the transform's conv with the final BN folded.

    The transform's leading BN (an affine map before its ReLU) is folded into whatever
    is linear before it: the dilated convs' weights and the plain 1x1 branch's rows of the
    input product; only the max-pool branch (a ReLU and a max before it) applies it
    itself, on its own rows. Layout ``(C, S, T, V)``."""

    def __init__(self, unit: MSTCN) -> None:
        super().__init__()
        ws, bs, self.kinds, widths = [], [], [], []
        temporal = []
        stride = 1
        for cfg, branch in zip(unit.ms_cfg, unit.branches):
            if cfg == "1x1":
                w, b = _conv1x1(branch)
                stride = branch.stride[0]
                self.kinds.append("1x1")
                temporal.append(None)
            else:
                w, b = _conv1x1(branch[0], branch[1])
                if cfg[0] == "max":
                    self.kinds.append("max")
                    temporal.append(None)
                    stride = branch[3].stride[0]
                else:
                    self.kinds.append("conv")
                    temporal.append(_FusedTCN(branch[3]))
                    stride = branch[3].stride
            ws.append(w)
            bs.append(b)
            widths.append(w.shape[0])
        self.stride = stride
        self.widths = widths
        s, t = _bn_affine(unit.transform[0])
        start = 0
        self.max_affine = []
        for i, (kind, width) in enumerate(zip(self.kinds, widths)):
            rows = slice(start, start + width)
            start += width
            if kind == "1x1":
                ws[i], bs[i] = ws[i] * s[rows, None], bs[i] * s[rows] + t[rows]
            elif kind == "conv":
                temporal[i].fold_output_affine(s[rows], t[rows])
            else:
                self.max_affine.append((s[rows][:, None, None, None].contiguous(),
                                        t[rows][:, None, None, None].contiguous()))
        self.register_buffer("w_in", torch.cat(ws).contiguous())
        self.register_buffer("b_in", torch.cat(bs).contiguous())
        self.temporal = nn.ModuleList([m if m is not None else nn.Identity() for m in temporal])
        w, b = _conv1x1(unit.transform[2], unit.bn)
        self.register_buffer("w_out", w.contiguous())
        self.register_buffer("b_out", b.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _linear(self.w_in, self.b_in, x)
        c, n, t, v = y.shape
        t_out = (t - 1) // self.stride + 1
        # Branch outputs are written straight into their rows of one buffer (no concat).
        feat = torch.empty(c, n, t_out, v, dtype=y.dtype)
        start = 0
        max_affine = iter(self.max_affine)
        for kind, width, temporal in zip(self.kinds, self.widths, self.temporal):
            part, dest = y[start:start + width], feat[start:start + width]
            start += width
            if kind == "1x1":
                dest.copy_(part[:, :, ::self.stride])
            elif kind == "max":
                scale, shift = next(max_affine)
                torch.addcmul(shift, _max3(part.relu_(), self.stride), scale, out=dest)
            else:
                temporal(part.relu_(), out=dest)
        return _linear(self.w_out, self.b_out, feat.relu_())


class _FusedBlock(nn.Module):
    def __init__(self, block: STGCNBlock) -> None:
        super().__init__()
        self.gcn = _FusedGCN(block.gcn)
        self.tcn = _FusedMSTCN(block.tcn) if isinstance(block.tcn, MSTCN) else _FusedTCN(block.tcn)
        self.residual_kind = block.residual_kind
        if self.residual_kind == "conv":
            self.residual = _FusedTCN(block.residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))   # a fresh buffer: the residual is added in place
        if self.residual_kind == "identity":
            y += x
        elif self.residual_kind == "conv":
            y += self.residual(x)
        return y.relu_()


class FusedRecognizerGCN(nn.Module):
    """Inference-only twin of a :class:`RecognizerGCN` (same outputs to ~1e-6, faster).

    Built by :func:`fuse_for_inference` from a trained model in eval mode: every BatchNorm
    is folded into the neighbouring conv, the graph convolution is two matrix products
    (see :class:`_FusedGCN`), ST-GCN++'s six branch convs are one product. Holds copies of
    the weights (buffers), so later changes to the source model do not reach it.
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
        self.blocks = nn.ModuleList([_FusedBlock(b) for b in bb.gcn])
        self.register_buffer("fc_w", model.cls_head.fc_cls.weight.detach().clone())
        self.register_buffer("fc_b", model.cls_head.fc_cls.bias.detach().clone())

    @torch.no_grad()
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if self.in_scale is not None:
            # data_bn normalises each (joint, channel) (and person for 'MVC') over time.
            shape = (1, M, 1, V, C) if self.data_bn_type == "MVC" else (1, 1, 1, V, C)
            x = x * self.in_scale.view(shape) + self.in_shift.view(shape)
        # Channel-major (C, N*M, T, V): every 1x1 conv is then one plain matrix product
        # over all samples and persons, which runs up to 2x faster than a batched one.
        x = x.permute(4, 0, 1, 2, 3).reshape(C, N * M, T, V)
        for block in self.blocks:
            x = block(x)
        c, _, t, v = x.shape
        return x.view(c, N, M, t, v).permute(1, 2, 0, 3, 4)

    @torch.no_grad()
    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        return F.linear(feat.mean(dim=(3, 4)).mean(dim=1), self.fc_w, self.fc_b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

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
