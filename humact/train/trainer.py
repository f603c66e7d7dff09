"""The shared trainer: SGD (Nesterov), warm-up + cosine/multistep schedule, checkpoints, resume.

Used by the skeleton models (`humact train`) and meant for the video models too: it only needs a
model mapping a batch `x` to logits, and a dataset of `(x, label)` items. What it guarantees:

- Determinism: with the same seed, data and thread count, two runs give the same weights. The
  shuffling order of epoch e comes from a generator seeded with (seed, e); a dataset with a
  `set_epoch(e)` method is told the epoch so its augmentation can be seeded the same way.
- Resume: `last.safetensors` holds the model, the SGD momentum buffers and the torch RNG state;
  `last.json` the epoch, iteration and history. A resumed run continues bit for bit where the
  interrupted one stopped (a test checks it).
- Checkpoints we write are safetensors + JSON (config, class names); nothing is pickled.
- Learning rate is set per iteration: linear warm-up from `lr * warmup_ratio` over
  `warmup_iters` iterations, then cosine annealing to `min_lr` or multistep decay by epochs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from humact.io.checkpoints import load_checkpoint, save_checkpoint

__all__ = ["lr_at", "make_optimizer", "Schedule", "Trainer"]


@dataclass
class Schedule:
    """The learning-rate schedule, in PYSKL/MMCV's vocabulary.

    Attributes:
        lr: base learning rate.
        total_iters: iterations of the whole run (epochs x iterations per epoch).
        iters_per_epoch: used by the multistep milestones (given in epochs).
        policy: "cosine" (CosineAnnealing to `min_lr`) or "multistep".
        milestones: epochs after which the multistep rate is multiplied by `gamma`.
        warmup_iters: linear warm-up length in iterations (0 = none).
        warmup_ratio: the warm-up starts at `lr * warmup_ratio`.
    """

    lr: float
    total_iters: int
    iters_per_epoch: int
    policy: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup_iters: int = 0
    warmup_ratio: float = 0.1


def lr_at(it: int, s: Schedule) -> float:
    """Learning rate of iteration `it` (0-based) under schedule `s`."""
    if s.policy == "cosine":
        progress = min(it / max(s.total_iters, 1), 1.0)
        lr = s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))
    elif s.policy == "multistep":
        epoch = it // max(s.iters_per_epoch, 1)
        lr = s.lr * s.gamma ** sum(epoch >= m for m in s.milestones)
    else:
        raise ValueError(f"schedule policy: expected 'cosine' or 'multistep', got {s.policy!r}")
    if it < s.warmup_iters:
        # MMCV's linear warm-up: scale the regular rate, starting at warmup_ratio.
        k = (1 - it / s.warmup_iters) * (1 - s.warmup_ratio)
        lr = lr * (1 - k)
    return lr


def make_optimizer(model: nn.Module, *, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                   nesterov: bool = True) -> torch.optim.SGD:
    """SGD with Nesterov momentum and weight decay on every parameter (PYSKL's GCN recipe)."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)


@dataclass
class Trainer:
    """Trains `model` on `dataset` with cross-entropy; see the module docstring.

    Args:
        model: maps a batch (N, ...) to logits (N, classes).
        dataset: indexable, items `(x, label)`; `x` of shape (1, ...) (one clip) is squeezed.
        out_dir: where `last.*`, `epoch_*.json` history and the final checkpoint go.
        meta: JSON-able dict saved with every checkpoint (config, class names).
        epochs, batch_size, lr, momentum, nesterov, weight_decay, schedule (the rest of
        `Schedule`), clip_grad (max L2 norm, 0 = off), label_smoothing, seed, num_workers.
        precision: "fp32"; "bf16" (autocast to bfloat16, on CPU or GPU: no loss scaling
            needed); or "fp16" (autocast to float16 with a gradient scaler, CUDA only).
            Weights and optimizer state stay float32 in every mode.
        validate: optional callable(model) -> dict of metrics, run after each epoch.
    """

    model: nn.Module
    dataset: Any
    out_dir: str | os.PathLike
    meta: dict[str, Any] = field(default_factory=dict)
    epochs: int = 16
    batch_size: int = 16
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    policy: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup_iters: int = 0
    warmup_ratio: float = 0.1
    clip_grad: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    num_workers: int = 0
    precision: str = "fp32"
    validate: Callable[[nn.Module], dict] | None = None
    progress: bool = True

    @classmethod
    def from_config(cls, model: nn.Module, dataset: Any, cfg: Any, *, out_dir: str | os.PathLike | None = None,
                    meta: dict[str, Any] | None = None, validate: Callable[[nn.Module], dict] | None = None,
                    progress: bool = True) -> "Trainer":
        """A trainer with the optimisation and run fields of a `TrainConfig` (`cfg`); out_dir
        defaults to `cfg.out`. The one place those fields are mapped onto the trainer."""
        return cls(model, dataset, cfg.out if out_dir is None else out_dir, meta=dict(meta or {}),
                   epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                   nesterov=cfg.nesterov, weight_decay=cfg.weight_decay, policy=cfg.schedule,
                   milestones=tuple(cfg.milestones), gamma=cfg.gamma, min_lr=cfg.min_lr,
                   warmup_iters=cfg.warmup_iters, warmup_ratio=cfg.warmup_ratio, clip_grad=cfg.clip_grad,
                   label_smoothing=cfg.label_smoothing, seed=cfg.seed, num_workers=cfg.num_workers,
                   precision=cfg.precision, validate=validate, progress=progress)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.iters_per_epoch = max(1, len(self.dataset) // self.batch_size)  # drop_last, as PYSKL
        self.schedule = Schedule(
            lr=self.lr, total_iters=self.epochs * self.iters_per_epoch, iters_per_epoch=self.iters_per_epoch,
            policy=self.policy, milestones=tuple(self.milestones), gamma=self.gamma, min_lr=self.min_lr,
            warmup_iters=self.warmup_iters, warmup_ratio=self.warmup_ratio)
        self.optimizer = make_optimizer(self.model, lr=self.lr, momentum=self.momentum,
                                        weight_decay=self.weight_decay, nesterov=self.nesterov)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        self.device = next(self.model.parameters()).device
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision: expected 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ValueError(f"precision: 'fp16' mixed precision needs a CUDA device (the model is on "
                             f"{self.device.type}); use 'bf16' on a CPU")
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.epoch = 0  # epochs completed
        self.iteration = 0
        self.history: list[dict] = []

    # -------------------------------------------------------------------- state

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        t = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        params = list(self.model.parameters())
        for i, p in enumerate(params):
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                t[f"optim.momentum.{i}"] = buf
        t["rng.torch"] = torch.get_rng_state()
        return t

    def save_last(self) -> None:
        meta = dict(self.meta, epoch=self.epoch, iteration=self.iteration, history=self.history)
        save_checkpoint(self.out_dir / "last.safetensors", self._state_tensors(), meta)

    def resume(self) -> bool:
        """Load `last.safetensors` from `out_dir` if present; True if it did."""
        path = self.out_dir / "last.safetensors"
        if not path.is_file():
            return False
        tensors, meta = load_checkpoint(path)
        model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_sd, strict=True)
        params = list(self.model.parameters())
        for i, p in enumerate(params):
            key = f"optim.momentum.{i}"
            if key in tensors:
                self.optimizer.state[p]["momentum_buffer"] = tensors[key].clone()
        torch.set_rng_state(tensors["rng.torch"])
        self.epoch, self.iteration = int(meta["epoch"]), int(meta["iteration"])
        self.history = list(meta.get("history", []))
        return True

    # -------------------------------------------------------------------- loop

    def _loader(self, epoch: int):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        order = torch.randperm(len(self.dataset), generator=g)
        batches = order[: self.iters_per_epoch * self.batch_size].view(self.iters_per_epoch, self.batch_size)
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=batches.tolist(), num_workers=self.num_workers, collate_fn=_collate)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_epoch(self) -> dict:
        """One epoch; returns {"epoch", "loss", "accuracy", "samples_per_s", "lr"}."""
        from tqdm import tqdm

        self.model.train()
        epoch = self.epoch
        total_loss, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(self._loader(epoch), total=self.iters_per_epoch, desc=f"epoch {epoch + 1}/{self.epochs}",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        for x, y in bar:
            lr = lr_at(self.iteration, self.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.model(x)
            loss = self.loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}, iteration {self.iteration}: loss is {loss.item()}; "
                                         "lower lr or set clip_grad")
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)  # clip the true gradients
            else:
                loss.backward()
            if self.clip_grad > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.iteration += 1
            n = len(y)
            total_loss += loss.item() * n
            correct += int((logits.argmax(1) == y).sum())
            seen += n
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", lr=f"{lr:.4f}", samples_s=f"{rate:.1f}")
        self.epoch += 1
        return {"epoch": self.epoch, "loss": total_loss / max(seen, 1), "accuracy": correct / max(seen, 1),
                "samples_per_s": seen / (time.perf_counter() - t0), "lr": lr_at(self.iteration - 1, self.schedule),
                "seconds": time.perf_counter() - t0}

    def fit(self, resume: bool = True, log: Callable[[str], None] | None = print,
            until: int | None = None) -> list[dict]:
        """Train to `epochs` (or stop once `until` epochs are done), saving `last.*` after every epoch.

        Returns the per-epoch history.
        """
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.resume() and log:
            log(f"resumed from {self.out_dir / 'last.safetensors'} at epoch {self.epoch}")
        while self.epoch < min(self.epochs, until or self.epochs):
            rec = self.train_epoch()
            if self.validate is not None:
                rec.update({f"val_{k}": v for k, v in self.validate(self.model).items()})
                self.model.train()
            self.history.append(rec)
            self.save_last()
            if log:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        return self.history

    def save_model(self, path: str | os.PathLike, extra_meta: dict | None = None) -> None:
        """The final model alone (no optimizer state), safetensors + JSON meta."""
        meta = dict(self.meta, epochs_trained=self.epoch, history=self.history, **(extra_meta or {}))
        save_checkpoint(path, self.model.state_dict(), meta)


def _collate(items):
    xs = torch.stack([x[0] if x.ndim and x.shape[0] == 1 else x for x, _ in items])
    ys = torch.tensor([y for _, y in items], dtype=torch.long)
    return xs, ys
