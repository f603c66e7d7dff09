"""The shared trainer: SGD (Nesterov), warm-up + cosine/multistep schedule, checkpoints, resume.

Used by the skeleton models and the AVA detectors (`humact train`): it only needs a model mapping a
batch `x` to logits, and a dataset of `(x, label)` items. What it guarantees:

- Determinism: with the same seed, data and thread count, two runs give the same weights. The
  shuffling order of epoch e comes from a generator seeded with (seed, e); a dataset with a
  `set_epoch(e)` method is told the epoch so its augmentation can be seeded the same way.
- Resume: `last.safetensors` holds the model, the SGD momentum buffers and the torch RNG state;
  `last.json` the epoch, iteration and history. A resumed run continues bit for bit where the
  interrupted one stopped (a test checks it).
- Checkpoints we write are safetensors + JSON (config, class names); nothing is pickled.
- Learning rate is set per iteration: linear warm-up from `lr * warmup_ratio` over
  `warmup_iters` iterations, then cosine annealing to `min_lr` or multistep decay by epochs.
- Distributed (`humact.scale.ddp`; started by torchrun): the same loop in every process, the model
  wrapped in `DistributedDataParallel`, `optim.batch_size` the global batch split over the
  processes and `optim.accumulate` micro-batches, each rank's share of the epoch's permutation
  from `DistributedSampler`; rank 0 alone writes checkpoints and logs. A checkpoint holds nothing
  of the world size, so any run resumes with any number of processes. Gradient accumulation
  (`optim.accumulate` > 1) works the same with one process.
- Model-level losses: cross-entropy on integer labels unless the model (or the `loss` argument)
  says otherwise. A model with a `loss(output, target)` method is trained with it (RGBPoseConv3D:
  PYSKL's weighted per-stream cross-entropies on its dict of logits), and its
  `train_hits(logits, target) -> (hits, counted)` gives the epoch's "accuracy"; a dataset with a
  `collate(items)` method batches its own items, and a batch input that is a tuple is passed as
  `model(*inputs)`. That is how the AVA detectors train: `humact.detect.dataset` items are
  (clip, boxes, multi-hot labels), collated into ((clips, rois), labels), scored by
  `humact.video_models.ava.ava_loss` (MMAction2's BBoxHeadAVA loss) through the same DDP wrapper.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from humact.errors import CheckpointError, ConfigError, one_line
from humact.io.checkpoints import load_checkpoint, load_strict, save_checkpoint
from humact.config import OptimConfig, RunConfig
from humact.scale import ddp

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
class TrainResult:
    """What a run produced: the checkpoint, the per-epoch history and the test metrics (if tested)."""

    out: Path
    checkpoint: Path
    history: list[dict]
    metrics: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class Trainer:
    """Trains `model` on `dataset` with cross-entropy under `optim` and `run`; see the module docstring.

    Args:
        model: maps a batch (N, ...) to logits (N, classes).
        dataset: indexable, items `(x, label)`; `x` of shape (1, ...) (one clip) is squeezed.
        optim: the optimisation settings (`humact.config.OptimConfig`: SGD, schedule, clipping,
            label smoothing, precise BN).
        run: seed, data loader workers and precision (`RunConfig`; its `out` is the default `out_dir`).
            precision "fp32"; "bf16" (autocast to bfloat16, on CPU or GPU: no loss scaling needed);
            or "fp16" (autocast to float16 with a gradient scaler, CUDA only). Weights and optimizer
            state stay float32 in every mode.
        out_dir: where `last.*` and the final checkpoint go (default `run.out`).
        meta: JSON-able dict saved with every checkpoint (config, class names).
        validate: optional callable(model) -> dict of metrics, run after each epoch.
        loss: callable(logits, target) -> scalar loss; default the model's `loss` method if it has
            one, else cross-entropy with `optim.label_smoothing`.
        hits: callable(logits, target) -> (hits, counted) for the epoch's "accuracy"; default the
            model's `train_hits` if it has one, else top-1 on integer labels.
    """

    def __init__(self, model: nn.Module, dataset: Any, optim: OptimConfig, run: RunConfig | None = None, *,
                 out_dir: str | os.PathLike | None = None, meta: dict[str, Any] | None = None,
                 validate: Callable[[nn.Module], dict] | None = None, progress: bool = True,
                 loss: Callable | None = None, hits: Callable | None = None) -> None:
        self.model, self.dataset, self.optim = model, dataset, optim
        self.run = run if run is not None else RunConfig()
        self.out_dir = Path(self.run.out if out_dir is None else out_dir)
        self.meta = dict(meta or {})
        self.validate, self.progress = validate, progress
        o = optim
        self.iters_per_epoch = max(1, len(self.dataset) // o.batch_size)  # drop_last, as PYSKL
        warmup = int(round(o.warmup_epochs * self.iters_per_epoch)) if o.warmup_epochs > 0 else o.warmup_iters
        self.schedule = Schedule(
            lr=o.lr, total_iters=o.epochs * self.iters_per_epoch, iters_per_epoch=self.iters_per_epoch,
            policy=o.schedule, milestones=tuple(o.milestones), gamma=o.gamma, min_lr=o.min_lr,
            warmup_iters=warmup, warmup_ratio=o.warmup_ratio)
        self.loss_fn = loss or getattr(model, "loss", None) or nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)
        self.hits_fn = hits or getattr(model, "train_hits", None) or _top1_hits
        self.collate = getattr(dataset, "collate", None) or _collate
        self.device = next(self.model.parameters()).device
        self.world = ddp.world()
        self.accumulate = o.accumulate
        parts = self.world.size * self.accumulate
        if o.batch_size % parts:
            raise ConfigError(f"optim.batch_size: {o.batch_size} does not split into {self.world.size} "
                              f"process(es) x {self.accumulate} accumulation step(s); choose a multiple of {parts}")
        self.micro_batch = o.batch_size // parts
        if self.run.sync_bn and self.world.size > 1:
            if self.device.type != "cuda":
                raise ConfigError(f"run.sync_bn: torch's SyncBatchNorm runs on CUDA only (the model is on "
                                  f"{self.device.type}); drop --sync-bn or set run.device to cuda")
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self._net: nn.Module | None = None  # the DistributedDataParallel wrapper, made when training starts
        self.precision = self.run.precision
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"run.precision: 'fp16' mixed precision needs a CUDA device (the model is on "
                              f"{self.device.type}); use 'bf16' on a CPU")
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.optimizer = make_optimizer(self.model, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                        nesterov=o.nesterov)
        self.epoch = 0  # epochs completed
        self.iteration = 0
        self.history: list[dict] = []
        self.best: dict | None = None  # {"epoch", "val_top1", "val_loss"} of the best validated epoch
        self.stopped = False  # early-stopped (patience)
        self.kept: dict | None = None  # the epoch whose weights the model holds at the end, and why

    @property
    def epochs(self) -> int:
        return self.optim.epochs

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
        """`last.safetensors` + `.json` (rank 0 only; the others have the same state)."""
        if not self.world.main:
            return
        meta = dict(self.meta, epoch=self.epoch, iteration=self.iteration, history=self.history, best=self.best,
                    stopped=self.stopped)
        save_checkpoint(self.out_dir / "last.safetensors", self._state_tensors(), meta)

    def resume(self) -> bool:
        """Load `last.safetensors` from `out_dir` if present; True if it did.

        A checkpoint that does not fit this model or run (another architecture, a corrupt file,
        missing fields) is a CheckpointError naming the file and saying how to start afresh.
        """
        path = self.out_dir / "last.safetensors"
        if not path.is_file():
            return False
        hint = "(delete it or pass --no-resume to start from scratch)"
        try:
            tensors, meta = load_checkpoint(path)
        except CheckpointError as e:
            raise CheckpointError(f"{e} {hint}") from None
        model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            load_strict(self.model, model_sd, str(path))
            epoch, iteration = int(meta["epoch"]), int(meta["iteration"])
            rng = tensors["rng.torch"]
        except CheckpointError as e:
            raise CheckpointError(f"{e} {hint}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: not a resumable checkpoint of this run ({one_line(e)}) {hint}") from None
        params = list(self.model.parameters())
        for i, p in enumerate(params):
            key = f"optim.momentum.{i}"
            if key in tensors:
                if tensors[key].shape != p.shape:
                    raise CheckpointError(f"{path}: {key}: momentum of shape {tuple(tensors[key].shape)} for a "
                                          f"parameter of shape {tuple(p.shape)} {hint}")
                self.optimizer.state[p]["momentum_buffer"] = tensors[key].clone()
        try:
            torch.set_rng_state(rng)
        except (RuntimeError, TypeError) as e:
            raise CheckpointError(f"{path}: rng.torch: not a torch RNG state ({one_line(e)}) {hint}") from None
        self.epoch, self.iteration = epoch, iteration
        self.history = list(meta.get("history", []))
        best = meta.get("best")
        self.best = best if isinstance(best, dict) and (self.out_dir / "best.safetensors").is_file() else None
        self.stopped = bool(meta.get("stopped", False))
        return True

    # -------------------------------------------------------------------- loop

    def _loader(self, epoch: int):
        """This rank's micro-batches of epoch `epoch`: `iters_per_epoch x accumulate` of `micro_batch`
        items. The permutation is `DistributedSampler`'s with seed (seed, epoch), the one a single
        process takes whole; rank r takes its positions r, r + W, ..., so micro-batch j of every
        rank together make up the same global batch at any world size."""
        from torch.utils.data import DistributedSampler

        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        sampler = DistributedSampler(self.dataset, num_replicas=self.world.size, rank=self.world.rank,
                                     shuffle=True, seed=self.run.seed * 100003, drop_last=False)
        sampler.set_epoch(epoch)
        n = self.iters_per_epoch * self.accumulate
        order = torch.tensor(list(sampler), dtype=torch.long)[: n * self.micro_batch]  # no padding used
        batches = order.view(n, self.micro_batch)
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=batches.tolist(), num_workers=self.run.num_workers, collate_fn=self.collate)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def net(self) -> nn.Module:
        """What the training step calls: the model, or its DistributedDataParallel wrapper."""
        if self._net is None:
            if self.world.size > 1:
                from torch.nn.parallel import DistributedDataParallel

                ids = [self.device.index] if self.device.type == "cuda" else None
                # A model whose forward leaves parameters out of a step says so with a true
                # `ddp_unused_parameters` attribute (none of the trainable zoo does).
                unused = bool(getattr(self.model, "ddp_unused_parameters", False))
                self._net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=unused)
            else:
                self._net = self.model
        return self._net

    def _micro_step(self, x: torch.Tensor, y: torch.Tensor, sync: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one micro-batch (gradients summed into .grad, scaled by
        1 / accumulate); `sync=False` skips DDP's gradient all-reduce until the last one."""
        net = self.net
        no_sync = net.no_sync() if not sync and net is not self.model else contextlib.nullcontext()
        with no_sync:
            with self._autocast():
                logits = _each(_call(net, x), torch.Tensor.float)
            loss = self.loss_fn(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {self.epoch + 1}, iteration {self.iteration}: loss is "
                                         f"{loss.item()}; lower lr or set clip_grad")
            scaled = loss / self.accumulate if self.accumulate > 1 else loss
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        return loss.detach(), _each(logits, torch.Tensor.detach)

    def train_epoch(self) -> dict:
        """One epoch; returns {"epoch", "loss", "accuracy", "samples_per_s", "lr"} (over all processes)."""
        from humact.progress import progress

        self.model.train()
        epoch = self.epoch
        if self.world.size > 1:  # each rank its own dropout stream, the same after a resume
            torch.manual_seed((self.run.seed * 1000003 + epoch * 1009 + self.world.rank) % 2**63)
        total_loss, correct, scored, seen, t0 = 0.0, 0, 0, 0, time.perf_counter()
        batches = iter(self._loader(epoch))
        bar = progress(range(self.iters_per_epoch), total=self.iters_per_epoch,
                       desc=f"epoch {epoch + 1}/{self.epochs}", unit="it", enabled=self.progress and self.world.main,
                       plain=False)
        for _ in bar:
            lr = lr_at(self.iteration, self.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            for j in range(self.accumulate):
                x, y = next(batches)
                x, y = _to(x, self.device), y.to(self.device, non_blocking=True)
                loss, logits = self._micro_step(x, y, sync=j == self.accumulate - 1)
                n = len(y)
                total_loss += loss.item() * n
                hit, counted = self.hits_fn(logits, y)
                correct += hit
                scored += counted
                seen += n
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients
            if self.optim.clip_grad > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.optim.clip_grad)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.iteration += 1
            rate = seen * self.world.size / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", lr=f"{lr:.4f}", samples_s=f"{rate:.1f}")
        bar.close()
        total_loss, correct, scored, seen = ddp.all_reduce_sum([total_loss, correct, scored, seen])
        self.epoch += 1
        return {"epoch": self.epoch, "loss": total_loss / max(seen, 1), "accuracy": correct / max(scored, 1),
                "samples_per_s": seen / (time.perf_counter() - t0), "lr": lr_at(self.iteration - 1, self.schedule),
                "seconds": time.perf_counter() - t0}

    @torch.no_grad()
    def recompute_bn_stats(self, num_batches: int) -> int:
        """Precise BN (PySlowFast's `BN.USE_PRECISE_STATS`): reset every BatchNorm's running statistics
        and recompute them as the plain average over `num_batches` training batches with the final
        weights. Running averages taken while the weights still moved lag behind them, which a short run
        or a high learning rate makes visible as eval-mode predictions collapsing to one class.

        Uses the loader of the epoch after the last (seeded), so it is deterministic; returns the
        number of batches used (0 when the model has no BatchNorm).
        """
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not bns or num_batches <= 0:
            return 0
        saved = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
        self.model.train()
        used = 0
        for x, _ in self._loader(self.epochs):
            with self._autocast():
                _call(self.model, _to(x, self.device))
            used += 1
            if used >= num_batches:
                break
        for bn, m in zip(bns, saved):
            bn.momentum = m
        # Distributed: each rank averaged its own micro-batches; all keep the mean over ranks.
        ddp.average_buffers([t for bn in bns for t in (bn.running_mean, bn.running_var) if t is not None])
        return used

    def _keep_if_best(self, rec: dict, log) -> None:
        """Remember the epoch if its validation (top-1, then lower loss on ties) is the best so far,
        writing its weights to `best.safetensors`."""
        key = (rec.get("val_top1", 0.0), -rec.get("val_loss", 0.0))
        if self.best is not None and key < (self.best["val_top1"], -self.best.get("val_loss", 0.0)):
            return
        self.best = {"epoch": self.epoch, "val_top1": key[0], "val_loss": -key[1]}
        if self.world.main:
            save_checkpoint(self.out_dir / "best.safetensors", self.model.state_dict(), dict(self.meta, best=self.best))

    def _choose_kept(self) -> dict:
        """Which epoch's weights to keep: the best validated one, unless the last epoch's validation
        accuracy is within the noise of the best (its 95 % interval on `n` validation samples,
        1.96 * sqrt(p (1 - p) / n)): on a small validation slice the "best" epoch is mostly chance,
        and the last epoch of a decayed schedule is the better bet."""
        last = next((h for h in reversed(self.history) if "val_top1" in h), None)
        best = self.best
        if last is None:
            return {"epoch": best["epoch"], "why": f"kept epoch {best['epoch']} (the best on validation)"}
        n = max(int(last.get("val_n", 0) or 0), 1)
        p = best["val_top1"]
        band = 1.96 * math.sqrt(max(p * (1 - p), 1.0 / n) / n)
        if best["epoch"] == self.epoch or p - last["val_top1"] <= band:
            return {"epoch": self.epoch, "band": band,
                    "why": f"kept the last epoch {self.epoch} (validation top-1 {last['val_top1']:.4f}; the best, "
                           f"epoch {best['epoch']} at {p:.4f}, is within the noise of {n} validation samples, "
                           f"+-{band:.3f})"}
        return {"epoch": best["epoch"], "band": band,
                "why": f"kept epoch {best['epoch']} (validation top-1 {p:.4f}, better than the last epoch's "
                       f"{last['val_top1']:.4f} by more than the noise of {n} samples, +-{band:.3f})"}

    def fit(self, resume: bool = True, log: Callable[[str], None] | None = print,
            until: int | None = None) -> list[dict]:
        """Train to `optim.epochs` (or stop once `until` epochs are done), saving `last.*` every
        `run.save_every` epochs and after the last one.

        With `validate`, each epoch is scored on the validation data; the best epoch's weights are kept
        (`best.safetensors`, and loaded into the model at the end), and `optim.patience` > 0 stops the
        run once that many epochs passed without a better one. Then precise BN when
        `optim.precise_bn` > 0. The test split is never looked at here. Returns the per-epoch history.
        """
        torch.manual_seed(self.run.seed)
        np.random.seed(self.run.seed % 2**32)
        if not self.world.main:
            log = None
        else:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        ddp.barrier()  # the folder exists before anyone looks into it
        if resume and self.resume() and log:
            log(f"resumed from {self.out_dir / 'last.safetensors'} at epoch {self.epoch}")
        stop = min(self.epochs, until or self.epochs)
        while self.epoch < stop and not self.stopped:
            rec = self.train_epoch()
            if self.validate is not None:
                rec.update({f"val_{k}": v for k, v in self.validate(self.model).items()})
                self.model.train()
                self._keep_if_best(rec, log)
                patience = self.optim.patience
                if patience and self.epoch - self.best["epoch"] >= patience and self.epoch < self.epochs:
                    self.stopped = True
            self.history.append(rec)
            if self.epoch % self.run.save_every == 0 or self.epoch == stop or self.stopped:
                self.save_last()
            if log:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
                if self.stopped:
                    log(f"early stop: no better validation accuracy for {self.optim.patience} epochs")
        finished = self.epoch >= self.epochs or self.stopped
        ddp.barrier()  # rank 0's best.safetensors is complete before anyone reads it
        if finished and self.best is not None:
            self.kept = self._choose_kept()
            if self.kept["epoch"] != self.epoch:
                tensors, _ = load_checkpoint(self.out_dir / "best.safetensors")
                load_strict(self.model, tensors, str(self.out_dir / "best.safetensors"))
            if log:
                log(self.kept["why"])
        if finished and self.optim.precise_bn > 0:
            used = self.recompute_bn_stats(self.optim.precise_bn)
            if log and used:
                log(f"precise BN: statistics recomputed over {used} training batches")
        return self.history

    def fit_and_save(self, cfg, out: Path, *, resume: bool = True, log: Callable[[str], None] | None = print
                     ) -> list[dict]:
        """`fit`, then (rank 0) `out/config.json` and `out/model.safetensors` with the training time; every
        process waits until the model is written (it may be read back for the test). Returns the history."""
        history = self.fit(resume=resume, log=log)
        seconds = sum(h["seconds"] for h in history)
        if self.world.main:
            cfg.save(out / "config.json")
            self.save_model(out / "model.safetensors", {"train_seconds": seconds, "world_size": self.world.size})
        ddp.barrier()
        if log:
            log(f"saved {out / 'model.safetensors'} ({seconds:.0f} s of training"
                + (f", {self.world.size} processes)" if self.world.size > 1 else ")"))
        return history

    def save_model(self, path: str | os.PathLike, extra_meta: dict | None = None) -> None:
        """The final model alone (no optimizer state), safetensors + JSON meta (rank 0 only)."""
        if not self.world.main:
            return
        meta = dict(self.meta, epochs_trained=self.epoch, history=self.history, best=self.best, kept=self.kept,
                    **(extra_meta or {}))
        save_checkpoint(path, self.model.state_dict(), meta)


def _call(net: nn.Module, x):
    """`net(*x)` for a tuple of inputs (e.g. AVA's (clips, rois)), else `net(x)`."""
    return net(*x) if isinstance(x, (tuple, list)) else net(x)


def _to(x, device: torch.device):
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x.to(device, non_blocking=True)


def _top1_hits(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return int((logits.argmax(1) == y).sum()), len(y)


def _collate(items):
    """Stack `(x, label)` items; `x` is a tensor, or a tuple of them for a model of several inputs
    (RGBPoseConv3D's frames and heatmaps), each stacked on its own. A leading clip axis of 1 is dropped."""
    def stack(xs):
        return torch.stack([x[0] if x.ndim and x.shape[0] == 1 else x for x in xs])

    first = items[0][0]
    xs = tuple(stack(parts) for parts in zip(*(x for x, _ in items))) if isinstance(first, tuple) else \
        stack([x for x, _ in items])
    ys = torch.tensor([y for _, y in items], dtype=torch.long)
    return xs, ys


def _each(out, fn):
    """`fn` on the model's output: a tensor, or each tensor of a dict / tuple of them (RGBPoseConv3D's
    per-stream logits)."""
    if isinstance(out, dict):
        return {k: _each(v, fn) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_each(v, fn) for v in out)
    return fn(out)
