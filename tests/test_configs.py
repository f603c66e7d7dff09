"""The shipped training configs (configs/*.toml) stay loadable as TrainConfig changes."""

from pathlib import Path

import pytest

from humact.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def test_there_are_shipped_configs():
    assert {p.name for p in CONFIGS} >= {"nw_ucla_stgcnpp.toml", "jhmdb14_stgcnpp.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_and_names_its_data_and_output(path):
    cfg = load_config(path)
    assert cfg.data.path.startswith("../shared/data/") and cfg.run.out.startswith("runs/")
    # Flags still override a file, as the commands in the configs' comments rely on.
    assert load_config(path, {"stream": "bm", "epochs": 3}).input.stream == "bm"


def test_nw_ucla_config_tests_on_the_held_out_view_only():
    cfg = load_config(next(p for p in CONFIGS if p.name == "nw_ucla_stgcnpp.toml"))
    assert (cfg.data.train_split, cfg.data.test_split, cfg.data.val_fraction) == ("train", "test", 0.0)
    assert (cfg.input.view_rotate, cfg.input.minmax, cfg.input.normalize) == (1.047, True, "ucla")
