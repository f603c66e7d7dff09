"""Distributed data-parallel training: one process per CPU socket or GPU, launched by torchrun.

`humact train` runs unchanged under `torchrun --nproc-per-node N` (or `--nnodes`/`--rdzv-*` across
machines): `train_model` calls `init()`, which joins the process group torchrun describes in the
environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`/`PORT`), with gloo for CPU processes
and nccl for CUDA ones. `launch(nproc, argv)` is `humact train --nproc N`: torchrun's own
launcher (`torch.distributed.run`, standalone rendezvous on this machine), with a failed or killed
rank reported as one line (`JobFailed`).

What a distributed run keeps from a single process (`humact.train.trainer.Trainer` relies on it):

- `optim.batch_size` is the global batch. Each of the W processes takes `batch_size / (W x
  optim.accumulate)` samples per micro-batch, and `torch.utils.data.DistributedSampler` with the
  trainer's seed hands rank r the positions r, r + W, ... of the same per-epoch permutation one
  process uses, so iteration i of any world size trains on the same samples and, without
  BatchNorm statistics or dropout in the model, gives the same weights to float tolerance. The
  permutation is never padded into training: an epoch uses `len // batch_size` full batches.
- Evaluation is sharded by whole batches (`gather_batches`): batch k of the single-process
  order runs on rank k mod W and every rank gets all results back in order, so multi-clip test
  scores are identical to one process's (the same batches through the same kernels), with no
  sampler padding to drop.
- Only rank 0 writes (checkpoints, logs, metrics, progress); `is_main()` says which one that is.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

__all__ = ["World", "world", "is_main", "init", "session", "close", "barrier", "gather_batches", "all_reduce_sum",
           "average_buffers", "launch", "JobFailed", "PeerLost", "peer_errors"]


class JobFailed(RuntimeError):
    """A distributed job stopped because one of its processes failed or was killed (the message says
    which rank, how, and that the others were stopped)."""


class PeerLost(JobFailed):
    """This process lost contact with the others in a collective (one died or hung past the timeout)."""


@contextlib.contextmanager
def peer_errors() -> Iterator[None]:
    """Turn a failed collective (gloo / nccl: a peer that died or timed out) into one `PeerLost` line
    naming this rank, instead of a traceback from deep inside torch.distributed."""
    try:
        yield
    except RuntimeError as e:  # torch.distributed.DistError and gloo's transport errors are RuntimeErrors
        w = world()
        text = str(e)
        comm = isinstance(e, getattr(torch.distributed, "DistError", ())) or any(
            s in text for s in ("gloo", "NCCL", "Connection reset", "Connection closed", "timed out"))
        if w.size <= 1 or not comm:
            raise
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
        first = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first)  # gloo's source location
        first = first.split(". ")[0]
        raise PeerLost(f"rank {w.rank}: lost contact with the other processes ({first[:300]})") from None


@dataclass(frozen=True)
class World:
    """This process's place in a distributed run (a single process is rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world() -> World:
    """The current process group's rank and size (rank 0 of 1 when there is none)."""
    if not _initialized():
        return World()
    return World(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                 int(os.environ.get("LOCAL_RANK", 0)))


def is_main() -> bool:
    """True on the process that writes (rank 0, or the only one)."""
    return world().main


def _env_world() -> World:
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as e:
        from humact.errors import ConfigError

        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK: not integers in the environment ({e})") from None


def init(device: str = "cpu", timeout_s: float = 1800.0) -> World:
    """Join the process group the environment describes (torchrun's variables), once; a single
    process (no `WORLD_SIZE`, or 1) joins nothing. gloo for `device` "cpu", nccl for "cuda".

    `timeout_s` bounds how long a process waits for the others in a collective before the job
    fails (a peer that vanished without closing its socket)."""
    if _initialized():
        return world()
    env = _env_world()
    if env.size <= 1:
        return env
    backend = "nccl" if device == "cuda" else "gloo"
    kwargs: dict[str, Any] = {}
    if device == "cuda":
        torch.cuda.set_device(env.local_rank)
        kwargs["device_id"] = torch.device("cuda", env.local_rank)
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return world()


@contextlib.contextmanager
def session(device: str = "cpu", timeout_s: float = 1800.0) -> Iterator[World]:
    """`init()` for the duration of a `with` block, leaving the process group afterwards only if this
    block joined it (a caller's own process group stays); a failed collective inside is `PeerLost`."""
    joined = not _initialized()
    w = init(device, timeout_s)
    try:
        with peer_errors():
            yield w
    finally:
        if joined:
            close()


def close() -> None:
    """Leave the process group (if any)."""
    if _initialized():
        torch.distributed.destroy_process_group()


def barrier() -> None:
    """Wait for every process (nothing to wait for in a single process)."""
    if _initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()


def gather_batches(run: Callable[[int], Any], n: int) -> list[Any]:
    """`[run(0), ..., run(n - 1)]` with batch k computed on rank k mod W and the results sent to every
    rank (pickled: numpy arrays, small objects). One process just runs them all."""
    w = world()
    if w.size <= 1:
        return [run(k) for k in range(n)]
    mine = {k: run(k) for k in range(w.rank, n, w.size)}
    parts: list[Any] = [None] * w.size
    torch.distributed.all_gather_object(parts, mine)
    out: dict[int, Any] = {}
    for part in parts:
        out.update(part)
    return [out[k] for k in range(n)]


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """The sum over ranks of each value (float64), for epoch totals such as loss and sample counts."""
    w = world()
    if w.size <= 1:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def average_buffers(tensors: Sequence[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its mean over ranks (BatchNorm statistics after precise BN)."""
    w = world()
    if w.size <= 1:
        return
    for t in tensors:
        if t.is_floating_point():
            torch.distributed.all_reduce(t)
            t.div_(w.size)


def _describe_failure(rank: int, failure) -> str:
    if failure.exitcode < 0:
        how = f"was killed by {failure.signal_name()}"
    else:
        how = f"exited with code {failure.exitcode}"
    return f"rank {rank} (pid {failure.pid}) {how}"


def launch(nproc: int, argv: Sequence[str], *, module: str = "humact.cli", monitor_interval: float = 0.5) -> None:
    """Run `python -m module argv...` as `nproc` processes of one job on this machine, through
    torchrun's launcher (standalone rendezvous on a free local port, no restarts). Returns when all
    finished; if one fails or is killed, the others are stopped and `JobFailed` says which rank and
    how (its own error, if it printed one, is above in the output)."""
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0",
                                f"--monitor-interval={monitor_interval}", "-m", module, *argv])
    # torchrun's agent logs a banner and a multi-line failure box at WARNING/ERROR; one line says it.
    quiet = [logging.getLogger(n) for n in ("torch.distributed.elastic", "torch.distributed.run")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        torchrun.run(args)
    except ChildFailedError as e:
        first, failure = e.get_first_failure()
        others = [_describe_failure(r, f) for r, f in sorted(e.failures.items()) if r != first]
        raise JobFailed(f"{_describe_failure(first, failure)}; the job was stopped"
                        + (f" ({'; '.join(others)})" if others else "")) from None
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)

