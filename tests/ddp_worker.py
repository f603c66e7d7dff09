"""A process of the distributed-training tests (`tests/test_ddp.py`), run by torchrun's launcher.

    python -m ddp_worker train OUT EPOCHS ACCUMULATE [die]   the trainer on two Gaussian blobs; with
                                                            "die", rank 1 kills itself (SIGKILL) at
                                                            its 3rd item of the first epoch
    python ddp_worker.py launch NPROC ARGS...               `humact.scale.ddp.launch` of the above;
                                                            prints a JobFailed's message, exit 1

The model has no dropout and no BatchNorm, so the data order and the gradient averaging alone
decide the weights, which a single process must then reproduce.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
from torch import nn

from humact.config import OptimConfig, RunConfig
from humact.train.trainer import Trainer


class Blobs:
    """Two Gaussian blobs in 4-D, 64 items (x (1, 4), label), with an epoch-seeded jitter."""

    def __init__(self, n: int = 64, die: bool = False):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 4, generator=g) + 3 * self.y[:, None].float()
        self.epoch, self.die, self.calls = 0, die, 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.calls += 1
        if self.die and self.calls == 3 and os.environ.get("RANK") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        return (self.x[i] + 0.1 * torch.randn(4, generator=g))[None], int(self.y[i])


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


def trainer(out, epochs: int, accumulate: int, die: bool = False) -> Trainer:
    optim = OptimConfig(epochs=epochs, batch_size=8, lr=0.05, warmup_iters=4, accumulate=accumulate, clip_grad=5.0)
    return Trainer(model(), Blobs(die=die), optim, RunConfig(seed=3), out_dir=out, meta={"classes": ["a", "b"]},
                   progress=False)


def train(out, epochs: int, accumulate: int, die: bool = False, until: int | None = None) -> Trainer:
    """Train (resuming from `out` if it holds last.safetensors); rank 0 saves `model.safetensors`."""
    t = trainer(out, epochs, accumulate, die)
    t.fit(log=None, until=until)
    t.save_model(os.path.join(out, "model.safetensors"))
    return t


def main(argv: list[str]) -> int:
    from humact.scale import ddp

    if argv[0] == "launch":
        try:
            ddp.launch(int(argv[1]), argv[2:], module="ddp_worker")
        except ddp.JobFailed as e:
            print(f"job failed: {e}", file=sys.stderr)
            return 1
        return 0
    out, epochs, accumulate = argv[1], int(argv[2]), int(argv[3])
    try:
        with ddp.session("cpu", timeout_s=60):
            train(out, epochs, accumulate, die="die" in argv[4:], until=2)
    except ddp.JobFailed as e:
        print(f"rank failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
