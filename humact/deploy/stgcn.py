"""The ST-GCN / ST-GCN++ inference twin, :class:`FusedRecognizerGCN`.

Eval-only copy of a :class:`~humact.skeleton.stgcn.RecognizerGCN` whose backbone is an
:class:`~humact.skeleton.stgcn.STGCN`: same ``forward`` / ``forward_features`` /
``forward_head`` / ``predict`` and shapes, outputs within ~1e-6 of the source, ~0.5x
MMAction2's time at batch 1 (``benchmarks/skeleton.py``). Every BatchNorm is folded into a
neighbouring product; activations are channel-major, ``(C, samples x persons, T, V)``, so
each 1x1 convolution is one matrix product; the graph convolution aggregates over the
sparse graph partitions first (:func:`_sparse_plan`); the first pass for an input shape
records its ops on shared scratch buffers and later passes replay them (:class:`_Workspace`).

``humact.deploy.fuse(model)`` returns this twin for such a model (registered below).
"""

from __future__ import annotations

import math
import threading
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from humact.deploy.common import bn_affine, fold_bn, register_twin, require_type
from humact.predict import predict_clips
from humact.skeleton.stgcn import MSTCN, STGCN, GCNHead, RecognizerGCN, STGCNBlock, UnitGCN, UnitTCN

__all__ = ["FusedRecognizerGCN", "WORKSPACE_BYTES"]


def _conv1x1(conv: nn.Conv2d, bn: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 conv (optionally followed by an eval BN) as a matrix ``(O, C)`` and a bias ``(O,)``."""
    w = conv.weight.reshape(conv.out_channels, -1)
    b = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    if bn is not None:
        w, b = fold_bn(w, b, bn)
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
        s, t = bn_affine(unit.bn)
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
            w, b = fold_bn(w, b, unit.bn)
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
        s_tr, t_tr = bn_affine(unit.transform[0])
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

    Built by ``humact.deploy.fuse`` from a trained model in eval mode: every BatchNorm
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

    @torch.no_grad()
    def __init__(self, model: RecognizerGCN) -> None:
        super().__init__()
        bb = model.backbone
        require_type(model, RecognizerGCN, "the model")
        require_type(bb, STGCN, "the backbone")
        require_type(model.cls_head, GCNHead, "the head")
        for i, block in enumerate(bb.gcn):
            require_type(block, STGCNBlock, f"backbone.gcn.{i}")
            require_type(block.gcn, UnitGCN, f"backbone.gcn.{i}.gcn")
            require_type(block.tcn, (UnitTCN, MSTCN), f"backbone.gcn.{i}.tcn")
        self.data_bn_type = bb.data_bn_type
        if isinstance(bb.data_bn, nn.BatchNorm1d):
            s, t = bn_affine(bb.data_bn)
            self.register_buffer("in_scale", s.contiguous())
            self.register_buffer("in_shift", t.contiguous())
        else:
            self.in_scale = self.in_shift = None
        self.blocks = nn.ModuleList([_FusedBlock(b, i) for i, b in enumerate(bb.gcn)])
        self.register_buffer("fc_w", model.cls_head.fc_cls.weight.detach().clone())
        self.register_buffer("fc_b", model.cls_head.fc_cls.bias.detach().clone())
        self.eval()   # an inference twin is never in training mode

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

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, clips, M, T, V, C)`` -> class probabilities ``(N, num_classes)``, as the source's."""
        return predict_clips(self, x, layout="(N, clips, M, T, V, C)")


register_twin(RecognizerGCN, FusedRecognizerGCN, backbone=STGCN)
