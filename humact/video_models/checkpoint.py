"""Checkpoint helpers shared by the video model files: strict loading with clear errors.

Each model file keeps its own `checkpoint_filter_fn` (the foreign -> our key map);
this module only checks the result against the model and reports every problem
with the file name, the key and the shapes.
"""

from __future__ import annotations

import os
import zlib
from collections import OrderedDict
from typing import Iterable, Mapping

import torch
from torch import nn

__all__ = ["read_checkpoint", "load_strict", "strip_prefix", "reference_weights", "read_key_shapes"]


def read_checkpoint(checkpoint: str | os.PathLike | Mapping) -> tuple[Mapping, str]:
    """A path (loaded with `weights_only=True`) or a dict -> (state dict, name for messages).

    Unwraps `{'state_dict': ...}` (MMAction2 / PYSKL training checkpoints) and strips a
    `module.` prefix (DataParallel).
    """
    name = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "<state dict>"
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{name}: expected a dict of tensors, got {type(checkpoint).__name__}")
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        checkpoint = checkpoint["state_dict"]
    return strip_prefix(checkpoint, "module."), name


def strip_prefix(state_dict: Mapping, prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Remove `prefix` from the keys that have it; other keys are kept as they are."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str = "<state dict>") -> nn.Module:
    """`model.load_state_dict(state_dict, strict=True)` with one error listing every problem.

    Raises ValueError: "<name>: checkpoint does not match <Model>: missing keys [...];
    unexpected keys [...]; shape mismatch key: checkpoint (a, b) vs model (c, d)".
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)})")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''} "
                         f"({len(unexpected)})")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:5]))
        raise ValueError(f"{name}: checkpoint does not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model


def reference_weights(key_shapes: Iterable[tuple[str, Iterable[int]]]) -> "OrderedDict[str, torch.Tensor]":
    """Deterministic, well-scaled weights as a pure function of (key, shape).

    The recipe of ../shared/reference/mmaction2 (README there): a generator seeded with
    crc32(key); BN running means ~ N(0, 0.1^2), running variances and 1-D `.weight`s
    ~ U(0.5, 1.5), other 1-D tensors ~ N(0, 0.1^2), conv / linear weights He-scaled
    normals, `num_batches_tracked` zeros. It lets any implementation rebuild the exact
    weights MMAction2's reference outputs were computed with, without shipping them.
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in key_shapes:
        shape = tuple(int(s) for s in shape)
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if key.endswith("num_batches_tracked"):
            t = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_mean"):
            t = torch.randn(shape, generator=g) * 0.1
        elif key.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif len(shape) == 1:
            if key.endswith(".weight"):
                t = torch.rand(shape, generator=g) + 0.5
            else:
                t = torch.randn(shape, generator=g) * 0.1
        else:
            fan_in = shape[1]
            for s in shape[2:]:
                fan_in *= s
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        out[key] = t
    return out


def read_key_shapes(path: str | os.PathLike) -> list[tuple[str, tuple[int, ...]]]:
    """Read a `<key>\\t[d0, d1, ...]` listing (the `*_state_dict_keys.txt` files) -> [(key, shape)]."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                key, shape = line.split("\t")
                out.append((key, tuple(int(s) for s in shape.strip("[] ").split(",") if s.strip())))
            except ValueError as e:
                raise ValueError(f"{path}:{n}: expected '<key>\\t[shape]', got {line!r}") from e
    return out
