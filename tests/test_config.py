"""TrainConfig: nested sections, one loader for files (nested or flat), flags and saved checkpoints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from humact.config import (SECTIONS, TrainConfig, add_config_flags, config_from_dict, leaf_fields, load_config,
                           overrides_from_args, read_saved_config)
from humact.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_config_file_values_are_read_and_flags_override_them(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('dataset = "jhmdb"\nepochs = 7\nlr = 0.05\nmilestones = [3, 5]\n')
    cfg = load_config(path, {"epochs": 9})
    assert (cfg.data.dataset, cfg.optim.epochs, cfg.optim.lr, cfg.optim.milestones) == ("jhmdb", 9, 0.05, [3, 5])
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"stream": "bm", "nesterov": False}))
    cfg = load_config(js)
    assert cfg.input.stream == "bm" and cfg.optim.nesterov is False
    assert cfg.optim.batch_size == TrainConfig().optim.batch_size


def test_nested_and_flat_files_give_the_same_config(tmp_path):
    flat = tmp_path / "flat.toml"
    flat.write_text('data = "x/y"\nmodel = "stgcn"\nclip_len = 30\nepochs = 4\nseed = 3\n')
    nested = tmp_path / "nested.toml"
    nested.write_text('[data]\npath = "x/y"\n[model]\nname = "stgcn"\n[input]\nclip_len = 30\n'
                      '[optim]\nepochs = 4\n[run]\nseed = 3\n')
    assert load_config(flat) == load_config(nested)
    assert load_config(nested).data.path == "x/y" and load_config(nested).model.name == "stgcn"


def test_saved_config_round_trips_through_json(tmp_path):
    cfg = config_from_dict({"model": "posec3d", "epochs": 2, "classes": ["a", "b"]})
    cfg.save(tmp_path / "config.json")
    again = read_saved_config({"config": json.loads((tmp_path / "config.json").read_text())}, "config.json")
    assert again == cfg and isinstance(again, TrainConfig)


def test_the_shipped_models_flat_config_still_loads():
    meta = json.loads((REPO / "humact/assets/models/stgcnpp_jhmdb15_j.json").read_text())
    cfg = read_saved_config(meta, "stgcnpp_jhmdb15_j.json")
    assert (cfg.data.dataset, cfg.input.normalize, cfg.input.clip_len) == ("jhmdb", "body", 32)
    assert cfg.model.name == "stgcnpp" and cfg.input.test_clips == 10


def test_posec3d_gets_pyskls_recipe_as_defaults_under_the_files_and_the_flags(tmp_path):
    cfg = config_from_dict({"model": "posec3d"}, "command line")
    assert (cfg.input.clip_len, cfg.input.flip, cfg.model.dropout, cfg.optim.nesterov, cfg.optim.weight_decay,
            cfg.optim.clip_grad, cfg.model.base_channels) == (48, 0.5, 0.5, False, 3e-4, 40.0, 32)
    assert cfg.optim.lr == pytest.approx(0.4 * 16 / 256)
    # A value given explicitly wins over the model's default; other models keep the GCN defaults.
    assert config_from_dict({"model": "posec3d", "flip": 0.0}).input.flip == 0.0
    assert config_from_dict({"model": "stgcnpp"}).input.clip_len == TrainConfig().input.clip_len
    # The model may come from the flags while the file sets other fields.
    path = tmp_path / "c.toml"
    path.write_text('dataset = "jhmdb"\ndropout = 0.2\n')
    cfg = load_config(path, {"model": "posec3d"})
    assert (cfg.model.name, cfg.model.dropout, cfg.input.clip_len) == ("posec3d", 0.2, 48)


def test_config_unknown_field_error_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(ConfigError, match=r"c\.json: unknown field 'epoch'"):
        load_config(path)
    path.write_text(json.dumps({"optim": {"epoch": 3}}))
    with pytest.raises(ConfigError, match=r"c\.json: unknown field optim\.epoch"):
        load_config(path)


@pytest.mark.parametrize("field, value, message", [
    ("epochs", "many", "optim.epochs: expected an integer in"),
    ("schedule", "linear", "optim.schedule: expected one of cosine, multistep"),
    ("dropout", 5, r"model.dropout: expected a number in \[0, 1\)"),
    ("seed", -1, "run.seed: expected an integer in"),
    ("num_threads", 0, "run.num_threads: expected an integer in"),
    ("precision", "bf61", "run.precision: expected one of fp32, bf16, fp16"),
    ("max_persons", 0, "input.max_persons: expected an integer in"),
    ("test_clips", 10_000_000, "input.test_clips: expected an integer in"),
    ("clip_len", 100_000_000, "input.clip_len: expected an integer in"),
    ("lr", 0, r"optim.lr: expected a number in \(0, 100\]"),
    ("lr", float("nan"), "optim.lr: expected a number"),
    ("model", "resnet", "model.name: expected one of"),
    ("stream", "x", "input.stream: expected one of j, b, jm, bm"),
    ("nesterov", "yes", "optim.nesterov: expected true or false"),
    ("milestones", ["3"], "optim.milestones: expected a list of int"),
])
def test_an_impossible_value_is_refused_naming_the_file_and_the_field(field, value, message):
    with pytest.raises(ConfigError, match=rf"x\.toml: {message}"):
        config_from_dict({field: value}, "x.toml")


def test_a_config_that_is_not_valid_toml_or_utf8_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    bad.write_bytes(b"epochs = 3\n\xff\xfe")
    with pytest.raises(ConfigError, match="bad.toml: not UTF-8"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must end in .json or .toml"):
        load_config(tmp_path / "c.yaml")


def test_every_field_has_help_text_and_a_flag_that_sets_it():
    p = argparse.ArgumentParser()
    add_config_flags(p)
    for name, (section, f, _) in leaf_fields().items():
        assert f.metadata["help"], f"{section}.{f.name} has no help text"
    args = p.parse_args(["--lr", "0.2", "--no-nesterov", "--milestones", "3", "4", "--data", "d", "--model", "stgcn"])
    over = overrides_from_args(args)
    assert over == {"lr": 0.2, "nesterov": False, "milestones": [3, 4], "data": "d", "model": "stgcn"}
    cfg = config_from_dict(over)
    assert (cfg.optim.lr, cfg.data.path, cfg.model.name) == (0.2, "d", "stgcn")


def test_help_lists_each_options_allowed_values():
    p = argparse.ArgumentParser()
    add_config_flags(p)
    text = p.format_help()
    for fragment in ("one of cosine, multistep", "one of fp32, bf16, fp16", "one of stgcnpp, stgcn, aagcn, msg3d, ctrgcn, dgstgcn, posec3d",
                     "an integer in [1, 32]", "one of none, pre2d, ucla, body"):
        assert fragment in " ".join(text.split()), fragment
    assert list(SECTIONS) == ["data", "input", "model", "optim", "run"]
