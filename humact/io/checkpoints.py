"""Checkpoint I/O, for everything that reads or writes weights.

Two kinds of file:

- **Ours**: `NAME.safetensors` (tensors only, no code) plus `NAME.json` (the config, class names,
  layout, history). `save_checkpoint` writes both atomically; `load_checkpoint` reads them back.
- **Foreign**: PYSKL / MMAction2 / PySlowFast `.pth` files, read by `read_foreign` with
  `torch.load(weights_only=True)` (no pickled code runs): a `{'state_dict': ...}` wrapper is
  unwrapped and a DataParallel `module.` prefix stripped. Each model file keeps its own
  `checkpoint_filter_fn` (their keys -> ours, timm-style); `mmaction_filter` is the common part
  (MMAction2's head renames and its stored normalisation). `load_strict` then loads with one error
  that lists every missing, unexpected and mis-shaped key.

Every failure is a `CheckpointError` (a `humact.errors.InputError`) naming the file.

`reference_weights` / `read_key_shapes` rebuild the deterministic weights the reference outputs
in `../shared/reference/` were computed with (tests and benchmarks use them).
"""

from __future__ import annotations

import json
import os
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from humact.errors import CheckpointError, one_line
from humact.io.atomic import atomic_path, atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "read_meta", "read_foreign", "strip_prefix", "mmaction_filter",
           "load_strict", "load_foreign", "reference_weights", "read_key_shapes", "CheckpointError"]


# ------------------------------------------------------------------------------------------ ours


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_checkpoint(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write `path` (.safetensors) and its sidecar (same name, .json), both atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp))
    with atomic_write(path.with_suffix(".json")) as f:
        json.dump(meta, f, indent=2, default=_json_default)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint written by `save_checkpoint` (`path` may name either file)."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: the checkpoint's JSON (config and class names) is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({one_line(e)})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by `save_checkpoint`: (tensors, meta from the .json sidecar)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: expected a .safetensors checkpoint written by humact")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    meta = read_meta(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(e)})") from None
    return tensors, meta


# ------------------------------------------------------------------------------------------ foreign


def strip_prefix(state_dict: Mapping, prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Remove `prefix` from the keys that have it; other keys are kept as they are."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def read_foreign(checkpoint: str | os.PathLike | Mapping) -> tuple["OrderedDict[str, torch.Tensor]", str]:
    """A PYSKL / MMAction2 checkpoint (path, or an already loaded dict) -> (state dict, name for messages).

    Paths are read with `torch.load(weights_only=True)`; `{'state_dict': ...}` is unwrapped and a
    `module.` prefix stripped. Raises CheckpointError naming the file.
    """
    name = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "<state dict>"
    if isinstance(checkpoint, (str, os.PathLike)):
        if not Path(checkpoint).is_file():
            raise CheckpointError(f"{name}: no such checkpoint file")
        try:
            checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for foreign, corrupt or code-carrying files
            raise CheckpointError(f"{name}: not a PyTorch checkpoint loadable with weights_only=True "
                                  f"({one_line(e)[:300]})") from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{name}: expected a dict of tensors, got {type(checkpoint).__name__}")
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        checkpoint = checkpoint["state_dict"]
    bad = [k for k, v in checkpoint.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{name}: expected a dict of tensors; {bad[0]!r} is not a tensor")
    return strip_prefix(checkpoint, "module."), name


def mmaction_filter(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """The key changes every MMAction2 / PYSKL recognizer needs: `cls_head.fc.` (older heads) ->
    `cls_head.fc_cls.`, and `data_preprocessor.*` dropped (MMAction2 1.x stores its mean / std
    there; `humact.video_models.recognizer` reads them before filtering)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith("data_preprocessor."):
            continue
        if k.startswith("cls_head.fc."):
            k = "cls_head.fc_cls." + k[len("cls_head.fc."):]
        out[k] = v
    return out


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str = "<state dict>") -> nn.Module:
    """`model.load_state_dict(state_dict, strict=True)` with one error listing every problem.

    Raises CheckpointError: "<name>: checkpoint does not match <Model>: missing keys [...];
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
        raise CheckpointError(f"{name}: checkpoint does not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model


def load_foreign(model: nn.Module, checkpoint: str | os.PathLike | Mapping, filter_fn=mmaction_filter) -> nn.Module:
    """`read_foreign`, the model file's `filter_fn`, then `load_strict`: the one way foreign weights load."""
    state_dict, name = read_foreign(checkpoint)
    return load_strict(model, filter_fn(state_dict), name)


# ------------------------------------------------------------------------------------------ references


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
                raise CheckpointError(f"{path}:{n}: expected '<key>\\t[shape]', got {line!r}") from e
    return out
