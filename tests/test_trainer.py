"""The shared trainer: schedule, determinism, resume, precise BN, checkpoints."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from humact.config import OptimConfig, RunConfig
from humact.errors import CheckpointError
from humact.io.checkpoints import load_checkpoint, save_checkpoint
from humact.train.trainer import Schedule, Trainer, lr_at


class _Blobs:
    """Two Gaussian blobs in 4-D, items (x (1, 4), label), with an epoch-seeded jitter."""

    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 4, generator=g) + 3 * self.y[:, None].float()
        self.epoch = 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        return (self.x[i] + 0.1 * torch.randn(4, generator=g))[None], int(self.y[i])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def _trainer(tmp_path, epochs=3, model=None, **kw):
    """A trainer on the blobs; `kw` are OptimConfig or RunConfig fields."""
    run_fields = set(RunConfig.__dataclass_fields__)
    optim = OptimConfig(epochs=epochs, batch_size=8, lr=0.05, warmup_iters=4,
                        **{k: v for k, v in kw.items() if k not in run_fields})
    run = RunConfig(**{k: v for k, v in kw.items() if k in run_fields})
    return Trainer(model or _model(), _Blobs(), optim, run, out_dir=tmp_path, meta={"classes": ["a", "b"]},
                   progress=False)


def test_warmup_starts_at_the_ratio_and_reaches_the_base_rate():
    s = Schedule(lr=0.1, total_iters=1000, iters_per_epoch=10, policy="multistep", warmup_iters=100,
                 warmup_ratio=0.1)
    assert lr_at(0, s) == pytest.approx(0.01)
    assert lr_at(50, s) == pytest.approx(0.055)
    assert lr_at(100, s) == pytest.approx(0.1)


def test_cosine_schedule_falls_from_the_base_rate_to_min_lr():
    s = Schedule(lr=0.1, total_iters=100, iters_per_epoch=10, policy="cosine", min_lr=0.001)
    assert lr_at(0, s) == pytest.approx(0.1)
    assert lr_at(50, s) == pytest.approx(0.0505)
    assert lr_at(100, s) == pytest.approx(0.001)


def test_multistep_schedule_multiplies_by_gamma_at_each_milestone_epoch():
    s = Schedule(lr=0.1, total_iters=100, iters_per_epoch=10, policy="multistep", milestones=(3, 6), gamma=0.1)
    assert [round(lr_at(e * 10, s), 6) for e in (2, 3, 5, 6, 9)] == [0.1, 0.01, 0.01, 0.001, 0.001]


def test_optimizer_is_sgd_with_nesterov_momentum_and_weight_decay(tmp_path):
    opt = _trainer(tmp_path).optimizer
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] == 5e-4


def test_training_learns_separable_data(tmp_path):
    history = _trainer(tmp_path, epochs=8).fit(log=None)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["accuracy"] > 0.9


def test_same_seed_gives_identical_weights(tmp_path):
    a, b = _trainer(tmp_path / "a"), _trainer(tmp_path / "b")
    a.fit(log=None)
    b.fit(log=None)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_different_seeds_give_different_weights(tmp_path):
    a, b = _trainer(tmp_path / "a", seed=0), _trainer(tmp_path / "b", seed=1)
    a.fit(log=None)
    b.fit(log=None)
    assert not torch.equal(a.model[0].weight, b.model[0].weight)


def test_resumed_run_matches_an_uninterrupted_one_bit_for_bit(tmp_path):
    straight = _trainer(tmp_path / "straight", epochs=3)
    straight.fit(log=None)
    first = _trainer(tmp_path / "resumed", epochs=3)
    first.fit(log=None, until=1)  # interrupted after one epoch
    torch.manual_seed(123)  # whatever happens in between must not matter
    second = _trainer(tmp_path / "resumed", epochs=3)
    second.fit(log=None)
    assert second.epoch == 3 and len(second.history) == 3
    for (k, va), vb in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_gradient_clipping_bounds_the_update(tmp_path):
    t = _trainer(tmp_path, epochs=1, clip_grad=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0)
    before = [p.detach().clone() for p in t.model.parameters()]
    t.schedule.warmup_iters = 0
    t.iters_per_epoch = 1
    t.train_epoch()
    step = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(t.model.parameters(), before)))
    assert step.item() <= 0.05 * 1e-3 * 1.001


def test_checkpoint_is_safetensors_with_a_json_of_config_and_labels(tmp_path):
    t = _trainer(tmp_path, epochs=1)
    t.fit(log=None)
    t.save_model(tmp_path / "model.safetensors")
    head = (tmp_path / "model.safetensors").read_bytes()[:8]
    assert int.from_bytes(head, "little") > 0  # safetensors starts with its header length
    tensors, meta = load_checkpoint(tmp_path / "model.safetensors")
    assert meta["classes"] == ["a", "b"] and meta["epochs_trained"] == 1
    assert set(tensors) == set(t.model.state_dict())


def test_loading_a_checkpoint_without_its_json_names_the_missing_file(tmp_path):
    save_checkpoint(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, {})
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match=r"m\.json"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_bf16_mixed_precision_learns_and_keeps_float32_weights(tmp_path):
    trainer = _trainer(tmp_path, epochs=8, precision="bf16")
    history = trainer.fit(log=None)
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["accuracy"] > 0.9
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_bf16_changes_the_arithmetic(tmp_path):
    a = _trainer(tmp_path / "a", epochs=1)
    b = _trainer(tmp_path / "b", epochs=1, precision="bf16")
    a.fit(log=None)
    b.fit(log=None)
    assert not torch.equal(a.model[0].weight, b.model[0].weight)


def test_fp16_on_a_cpu_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA device.*bf16"):
        _trainer(tmp_path, precision="fp16")


def test_a_run_config_precision_is_checked_by_the_config_not_at_training_time():
    from humact.config import config_from_dict
    from humact.errors import ConfigError

    with pytest.raises(ConfigError, match="run.precision: expected one of fp32, bf16, fp16, got 'fp8'"):
        config_from_dict({"precision": "fp8"})


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.bn, self.fc2 = nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def test_precise_bn_sets_running_statistics_to_the_final_weights_batch_average(tmp_path):
    t = _trainer(tmp_path, epochs=2, model=_BNNet(), precise_bn=4)
    t.fit(log=None)
    # The statistics must equal the plain average over the batches precise BN used (momentum None).
    want_mean = torch.zeros(16)
    t.model.train()
    with torch.no_grad():
        for i, (x, _) in enumerate(t._loader(t.epochs)):
            if i == 4:
                break
            want_mean += t.model.fc1(x).mean(0) / 4
    torch.testing.assert_close(t.model.bn.running_mean, want_mean, rtol=1e-5, atol=1e-6)
    assert t.model.bn.momentum == 0.1  # restored afterwards


def test_resuming_from_a_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    t = _trainer(tmp_path, epochs=1)
    t.fit(log=None)
    other = _trainer(tmp_path, epochs=2, model=_BNNet())  # another architecture, same folder
    with pytest.raises(CheckpointError, match="last.safetensors.*no-resume"):
        other.fit(log=None)
    (tmp_path / "last.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="last.safetensors.*no-resume"):
        _trainer(tmp_path, epochs=2).fit(log=None)


def test_the_last_epoch_is_kept_when_the_best_is_within_the_validation_noise(tmp_path):
    t = _trainer(tmp_path, epochs=3)
    t.epoch = 3
    t.history = [{"val_top1": 0.80, "val_n": 44}, {"val_top1": 0.91, "val_n": 44}, {"val_top1": 0.886, "val_n": 44}]
    t.best = {"epoch": 2, "val_top1": 0.91, "val_loss": 0.3}
    assert t._choose_kept()["epoch"] == 3  # 0.024 apart on 44 samples: chance
    t.history[-1] = {"val_top1": 0.70, "val_n": 44}
    assert t._choose_kept()["epoch"] == 2  # 0.21 apart: a real drop
    t.history = [{"val_top1": 0.90, "val_n": 20000}, {"val_top1": 0.91, "val_n": 20000}, {"val_top1": 0.89, "val_n": 20000}]
    assert t._choose_kept()["epoch"] == 2  # a large slice resolves a 2-point difference
