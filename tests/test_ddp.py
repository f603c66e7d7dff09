"""Distributed data-parallel training: 2 CPU processes (gloo on localhost) against one process.

Each launch starts torchrun's launcher and two Python processes (about 10-25 s here), so there
are three: the trainer, a killed rank, and `humact train --nproc 2` end to end.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ddp_worker
from humact.cli import main
from humact.errors import ConfigError
from humact.io.checkpoints import load_checkpoint

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("WORLD_SIZE", None)
    return env


def _launch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TESTS / "ddp_worker.py"), "launch", *args], env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _weights(path) -> dict:
    tensors, _ = load_checkpoint(path)
    return tensors


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one_with_the_same_global_batch_and_resume_in_one(tmp_path):
    two = tmp_path / "two"
    proc = _launch("2", "train", str(two), "4", "1")  # epochs 1-2 of 4, 2 ranks x 4 samples
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = ddp_worker.train(tmp_path / "one", 4, 1, until=2)  # the same 2 epochs, one process x 8 samples
    w2 = _weights(two / "model.safetensors")
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(w2[k], v, rtol=1e-5, atol=1e-6)
    meta = json.loads((two / "last.json").read_text())
    assert (meta["epoch"], meta["iteration"]) == (2, 16)  # 64 // 8 iterations per epoch at any world size
    # The 2-process checkpoint resumes in one process and ends where 4 epochs in one process end.
    resumed = ddp_worker.trainer(two, 4, 1)
    resumed.fit(log=None)
    straight = ddp_worker.trainer(tmp_path / "straight", 4, 1)
    straight.fit(log=None)
    for (k, a), b in zip(resumed.model.state_dict().items(), straight.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    assert resumed.iteration == straight.iteration == 32


def test_gradient_accumulation_gives_the_update_of_the_whole_batch(tmp_path):
    whole = ddp_worker.trainer(tmp_path / "a", 2, 1)
    whole.fit(log=None)
    parts = ddp_worker.trainer(tmp_path / "b", 2, 4)  # 4 micro-batches of 2
    assert parts.micro_batch == 2
    parts.fit(log=None)
    for a, b in zip(whole.model.parameters(), parts.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    changed = ddp_worker.model()
    assert not all(torch.equal(a, b) for a, b in zip(changed.parameters(), parts.model.parameters()))


def test_a_batch_that_does_not_split_into_the_micro_batches_is_a_config_error_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="optim.batch_size: 8 does not split into 1 process.* x 3"):
        ddp_worker.trainer(tmp_path, 1, 3)


@pytest.mark.slow
def test_a_killed_rank_stops_the_job_with_one_clear_line_not_a_hang(tmp_path):
    proc = _launch("2", "train", str(tmp_path / "die"), "4", "1", "die", timeout=180)
    assert proc.returncode == 1
    line = [x for x in proc.stderr.splitlines() if x.startswith("job failed:")]
    assert line and "rank 1" in line[0] and "SIGKILL" in line[0] and "the job was stopped" in line[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "die" / "model.safetensors").exists()


# ------------------------------------------------------------------------------------ humact train --nproc


def _pyskl_pickle(path: Path) -> Path:
    """A PYSKL annotation pickle: two classes of synthetic COCO-17 people, 16 train / 35 test (three test
    batches of predict_dataset's 16: two for rank 0, one for rank 1)."""
    rng = np.random.default_rng(0)
    annos, split = [], {"train": [], "test": []}
    for i in range(51):
        label = i % 2
        t = 20
        kp = rng.normal(0, 1, (1, t, 17, 2)).astype(np.float32) * 5 + 200
        kp[0, :, 10, 1] -= 40 * label * (1 + np.sin(np.linspace(0, 6, t)))
        name = f"s{i:02d}"
        annos.append({"frame_dir": name, "label": label, "img_shape": (480, 640), "original_shape": (480, 640),
                      "total_frames": t, "keypoint": kp, "keypoint_score": np.full((1, t, 17), 0.9, np.float32)})
        split["train" if i < 16 else "test"].append(name)
    with open(path, "wb") as f:
        pickle.dump({"split": split, "annotations": annos}, f)
    return path


@pytest.mark.slow
def test_train_nproc_2_writes_once_and_tests_exactly_as_one_process(tmp_path, capfd):
    data = _pyskl_pickle(tmp_path / "anno.pkl")
    out = tmp_path / "run"
    flags = ["--dataset", "pyskl", "--data", str(data), "--classes", "rest", "wave", "--epochs", "2",
             "--batch-size", "4", "--clip-len", "8", "--base-channels", "8", "--test-clips", "3",
             "--val-fraction", "0", "--normalize", "body", "--out", str(out), "--quiet"]
    env = _env()
    proc = subprocess.run([sys.executable, "-m", "humact.cli", "train", "--nproc", "2", *flags], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Rank 0 alone logs: each line once.
    assert proc.stdout.count("saved ") == 1 and "2 processes" in proc.stdout, proc.stdout
    assert proc.stdout.count("top1 ") == 1
    assert json.loads((out / "model.json").read_text())["world_size"] == 2
    gathered = np.load(out / "scores.npy")
    assert gathered.shape == (35, 2)
    # The same checkpoint tested by one process: identical scores, bit for bit.
    assert main(["test", str(out / "model.safetensors"), "--threads", "1", "--out", str(tmp_path / "single")]) == 0
    assert np.array_equal(np.load(tmp_path / "single" / "scores.npy"), gathered)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (out, tmp_path / "single"))
    assert (m1["top1"], m1["num_samples"]) == (m2["top1"], m2["num_samples"])
    # Resumed with another world size: one process carries on from the 2-process checkpoint.
    assert main(["train", *flags, "--epochs", "3", "--no-test"]) == 0
    assert "resumed from" in capfd.readouterr().out
    assert json.loads((out / "last.json").read_text())["epoch"] == 3


def test_nproc_under_torchrun_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = _pyskl_pickle(tmp_path / "anno.pkl")
    rc = main(["train", "--nproc", "2", "--dataset", "pyskl", "--data", str(data), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "--nproc: this process already runs under torchrun" in capsys.readouterr().err
