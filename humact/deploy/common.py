"""What every inference twin shares: BatchNorm folding, and the table ``humact.deploy.fuse`` picks twins from.

- :func:`bn_affine` / :func:`fold_bn`: an eval-mode BatchNorm is the per-channel affine map
  ``x * scale + shift``; folded into the convolution (or linear map) before it, it costs nothing.
- :func:`register_twin`: a model file (or a module of this package) tells ``fuse`` how to
  build the eval-only twin of its model class, optionally only for one backbone class.
- :class:`Unfusable`: what a twin builder raises for a part it does not rewrite (a grouped
  convolution, a non-local block, ...); ``fuse`` then tries the next, less specific entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["Unfusable", "require_type", "bn_affine", "fold_bn", "register_twin", "twin_builders"]

#: ``builder(model) -> twin``: called on a model in eval mode, under ``torch.no_grad()``.
TwinBuilder = Callable[[nn.Module], nn.Module]

# model class -> {backbone class, or None for any backbone: builder}
_TWINS: dict[type, dict[type | None, TwinBuilder]] = {}


class Unfusable(ValueError):
    """A twin builder met a part it does not rewrite (the message names it); not a user error."""


def require_type(module: nn.Module, classes: type | tuple[type, ...], where: str) -> None:
    """Raise :class:`Unfusable` unless ``module`` is exactly of (one of) ``classes``.

    A twin re-implements the code of the classes it was written for; a subclass may have
    changed that code, so it gets a twin only when it registers one of its own.
    """
    classes = classes if isinstance(classes, tuple) else (classes,)
    if type(module) not in classes:
        names = " / ".join(c.__name__ for c in classes)
        raise Unfusable(f"fuse: {where} is a {type(module).__name__}; the twin rewrites a {names} only")


def bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode BatchNorm (``nn.BatchNorm1d/2d/3d``, ``FrozenBatchNorm3d``) as per-channel
    ``(scale, shift)`` with ``bn(x) == x * scale + shift``: ``scale = weight / sqrt(var + eps)``,
    ``shift = bias - mean * scale`` (a missing affine weight / bias counts as 1 / 0).

    Raises :class:`Unfusable` for a module without running statistics.
    """
    mean, var = getattr(bn, "running_mean", None), getattr(bn, "running_var", None)
    if not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor):
        raise Unfusable(f"fuse: cannot fold a {type(bn).__name__} (expected a BatchNorm with running statistics)")
    weight = bn.weight if bn.weight is not None else torch.ones_like(mean)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(mean)
    scale = weight.detach() / torch.sqrt(var + bn.eps)
    return scale, bias.detach() - mean * scale


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None,
            bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution or linear map ``(weight (O, ...), bias (O,) or None)`` followed by the eval
    BatchNorm ``bn``, as one map: ``(weight * scale, bias * scale + shift)`` (new tensors)."""
    scale, shift = bn_affine(bn)
    if bias is None:
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype)
    return weight * scale.view((-1,) + (1,) * (weight.dim() - 1)), bias * scale + shift


def register_twin(model_cls: type, builder: TwinBuilder, *, backbone: type | None = None) -> None:
    """Make ``humact.deploy.fuse`` build twins of ``model_cls`` (and its subclasses) with ``builder``.

    With ``backbone``, only for models whose ``.backbone`` is an instance of that class; a
    more specific entry (the model's own class before its bases, then the backbone's own
    class before its bases, then ``backbone=None``) is tried first. Registering the same pair
    again replaces its builder. A builder may raise :class:`Unfusable` to pass the model on to
    the next entry.
    """
    _TWINS.setdefault(model_cls, {})[backbone] = builder


def twin_builders(model: nn.Module) -> list[TwinBuilder]:
    """The builders ``humact.deploy.fuse`` tries for ``model``, most specific first."""
    bb = getattr(model, "backbone", None)
    bb_classes = type(bb).__mro__ if isinstance(bb, nn.Module) else ()
    out = []
    for model_cls in type(model).__mro__:
        table = _TWINS.get(model_cls, {})
        out += [table[c] for c in (*bb_classes, None) if c in table]
    return out
