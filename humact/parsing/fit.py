"""A seeded training loop for the multi-task parsing models (the part detector, System 2).

`humact.train.trainer.Trainer` trains `(x, label)` classifiers with cross-entropy; the part
detector (score + box regression) and System 2 (relevance + multi-label states + action) have
several targets per item and their own losses, so they use this loop instead, built from the
trainer's own pieces: `make_optimizer` (SGD, Nesterov, weight decay) and `lr_at` with a
`Schedule` (linear warm-up, cosine). Batches are drawn from a generator seeded by
(seed, epoch), so a run is reproducible; gradient norms are clipped.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from humact.train.trainer import Schedule, lr_at, make_optimizer

__all__ = ["fit"]


def fit(model: nn.Module, items: list, collate: Callable, loss_fn: Callable, *, epochs: int, batch_size: int,
        lr: float, seed: int = 0, weight_decay: float = 1e-4, clip_grad: float = 10.0,
        log: Callable[[str], None] | None = None, name: str = "train") -> list[float]:
    """Train `model` on `items` for `epochs`; returns the mean loss of each epoch.

    Args:
        collate: list of items -> batch (anything `loss_fn` takes).
        loss_fn: (model, batch) -> scalar loss tensor.
    """
    if not items:
        raise ValueError(f"{name}: no training items")
    torch.manual_seed(seed)
    bs = max(1, min(batch_size, len(items)))
    per_epoch = max(1, len(items) // bs)
    sched = Schedule(lr=lr, total_iters=epochs * per_epoch, iters_per_epoch=per_epoch,
                     warmup_iters=min(50, per_epoch * epochs // 10))
    opt = make_optimizer(model, lr=lr, weight_decay=weight_decay)
    history, it = [], 0
    for epoch in range(epochs):
        model.train()
        g = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(len(items), generator=g)[: per_epoch * bs].view(per_epoch, bs)
        total = 0.0
        for rows in order.tolist():
            for group in opt.param_groups:
                group["lr"] = lr_at(it, sched)
            loss = loss_fn(model, collate([items[i] for i in rows]))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: epoch {epoch + 1}: loss is {loss.item()}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            opt.step()
            total += loss.item()
            it += 1
        history.append(total / per_epoch)
        if log:
            log(f"{name}: epoch {epoch + 1}/{epochs} loss {history[-1]:.4f}")
    model.eval()
    return history
