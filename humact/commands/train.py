"""`humact train`: train a skeleton action model (ST-GCN / ST-GCN++ on skeleton sequences, PoseConv3D
on heatmap volumes drawn from 2D keypoints) from a config file and/or flags.

Writes to `--out`: `last.safetensors/.json` after every epoch (resume by re-running the same
command), `model.safetensors` + `model.json` (weights; config, class names, layout), and, when
the data has a test split, the test results of `humact test` (metrics.json, confusion.png,
scores.npy).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

HELP = "train a skeleton action recognition model (ST-GCN, ST-GCN++, PoseConv3D)"


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per `TrainConfig` field (`--epochs`, `--lr`, `--no-nesterov`, ...), default: unset."""
    from humact.train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if hint is bool:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        elif typing.get_origin(hint) is list:
            item = typing.get_args(hint)[0]
            p.add_argument(flag, dest=f.name, nargs="*", type=item, default=None, metavar=f.name.upper())
        else:
            p.add_argument(flag, dest=f.name, type=hint, default=None, metavar=f.name.upper())


def config_from_args(args: argparse.Namespace):
    from humact.cli import UserError
    from humact.train.config import TrainConfig, config_from, load_config

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    try:
        if args.config:
            return load_config(args.config, overrides)
        return config_from(overrides, "command line")
    except ValueError as e:
        raise UserError(str(e)) from e


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help=HELP, description=HELP + ". Flags override the config file.")
    p.add_argument("--config", help="a .json or .toml file of TrainConfig fields")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start from scratch even if --out holds last.safetensors")
    p.add_argument("--no-test", dest="test", action="store_false", help="skip testing on the test split")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func=run)


def load_splits(cfg):
    """(train, validation or None, test or None) datasets of a config."""
    from pathlib import Path

    from humact.cli import UserError
    from humact.skeleton.datasets import load_dataset

    if not cfg.data:
        raise UserError("data: no data path given (--data or 'data' in the config file)")
    if not Path(cfg.data).exists():
        raise UserError(f"{cfg.data}: data path not found (field 'data')")
    classes = tuple(cfg.classes) or None
    try:
        train = load_dataset(cfg.dataset, cfg.data, cfg.train_split, fold=cfg.fold, classes=classes)
        test = None
        if cfg.dataset != "extract" and cfg.test_split:
            test = load_dataset(cfg.dataset, cfg.data, cfg.test_split, fold=cfg.fold, classes=classes)
    except ValueError as e:
        raise UserError(str(e)) from e
    if cfg.layout:
        train.layout = cfg.layout
        if test is not None:
            test.layout = cfg.layout
    val = None
    if cfg.val_fraction > 0:
        train, val = train.split_validation(cfg.val_fraction, seed=cfg.seed)
    if len(train) < cfg.batch_size:
        raise UserError(f"{cfg.data}: {len(train)} training samples, fewer than batch_size {cfg.batch_size}")
    return train, val, test


def make_validator(cfg, recipe, val):
    """None without a validation slice, else model -> {"top1": ...} on one test clip per sample."""
    if val is None:
        return None
    from humact.eval.recognition import topk_accuracy
    from humact.skeleton.recognize import input_clips, predict_dataset

    val_clips = input_clips(cfg.model, val, recipe, train=False, num_clips=1)

    def validate(model):
        return {"top1": topk_accuracy(predict_dataset(model, val_clips), val.labels, 1)}

    return validate


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from humact.cli import UserError
    from humact.skeleton.recognize import build_skeleton_model, input_clips, recipe_from
    from humact.train.trainer import Trainer

    cfg = config_from_args(args)
    torch.set_num_threads(cfg.num_threads)
    train, val, test = load_splits(cfg)
    recipe = recipe_from(cfg)
    try:
        clips = input_clips(cfg.model, train, recipe, train=True, seed=cfg.seed)
    except ValueError as e:
        raise UserError(f"--model {cfg.model}: {e}") from e
    x0 = clips[0][0]
    # GCN input (clips, M, T, V, C): C channels; heatmaps (views, K, T, H, W): K channels.
    in_channels = int(x0.shape[1] if cfg.model == "posec3d" else x0.shape[-1])
    torch.manual_seed(cfg.seed)
    model = build_skeleton_model(model=cfg.model, num_classes=len(train.classes), layout=train.layout,
                                 in_channels=in_channels, max_persons=cfg.max_persons,
                                 base_channels=cfg.base_channels, dropout=cfg.dropout)
    meta = {"config": cfg.to_dict(), "classes": list(train.classes), "layout": train.layout,
            "in_channels": in_channels, "train_source": train.source, "num_train": len(train)}
    out = Path(cfg.out)
    trainer = Trainer.from_config(model, clips, cfg, meta=meta, validate=make_validator(cfg, recipe, val),
                                  progress=not args.quiet)
    print(f"train: {len(train)} samples, {len(train.classes)} classes, layout {train.layout}, "
          f"{cfg.model} input {tuple(x0.shape[1:])} -> {out}")
    history = trainer.fit(resume=args.resume)
    cfg.save(out / "config.json")
    trainer.save_model(out / "model.safetensors",
                       {"train_seconds": sum(h["seconds"] for h in history)})
    print(f"saved {out / 'model.safetensors'} ({sum(h['seconds'] for h in history):.0f} s of training)")
    if args.test and test is not None:
        from humact.commands.test import test_checkpoint

        test_checkpoint(out / "model.safetensors", test, out, num_clips=cfg.test_clips)
    return 0
