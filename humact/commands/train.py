"""`humact train`: train a skeleton action model (ST-GCN / ST-GCN++ on skeleton sequences, PoseConv3D
on heatmap volumes drawn from 2D keypoints, RGBPoseConv3D on the videos' frames plus those heatmaps:
`--model rgbposeconv3d --data` a folder of `humact extract` outputs, whose pickles name their videos)
from a config file and/or flags.

Writes to the output folder: `last.safetensors/.json` (resume by re-running the same command),
`model.safetensors` + `model.json` (weights; config, class names, layout), `config.json`, and,
when the data has a test split, the test results of `humact test` (metrics.json, confusion.png,
scores.npy). Every option below is a field of `humact.config.TrainConfig`; a config file (TOML or
JSON, nested sections or flat fields) sets any of them and flags override the file.

Distributed data-parallel: `torchrun --nproc-per-node N -m humact.cli train ...` (any torchrun
setup, several machines included), or `--nproc N` here, which runs torchrun's launcher on this
machine. gloo on CPUs, nccl with `--device cuda`; `--batch-size` is the global batch; rank 0 alone
writes; a checkpoint resumes with any number of processes.
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int

HELP = "train a skeleton action recognition model (ST-GCN, ST-GCN++, PoseConv3D, RGBPoseConv3D)"


def add_parser(subparsers) -> None:
    from humact.config import add_config_flags

    p = subparsers.add_parser("train", help=HELP, description=__doc__,
                              usage="%(prog)s [--config FILE] [--data PATH] [options]",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="a .toml or .json file of config fields")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start from scratch even if the output folder holds last.safetensors")
    p.add_argument("--no-test", dest="test", action="store_false", help="skip testing on the test split")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=positive_int, default=None, metavar="N",
                   help="train with N data-parallel processes on this machine (torch.distributed.run, the "
                        "engine behind torchrun); under torchrun itself leave it out")
    add_config_flags(p)
    p.set_defaults(func=run)


def _flags(overrides: dict) -> list[str]:
    """Command-line flags that give back `overrides` (the config flags given), for the launched processes."""
    out = []
    for name, value in overrides.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{name.replace('_', '-')}")
        elif isinstance(value, (list, tuple)):
            out += [flag, *map(repr if value and isinstance(value[0], float) else str, value)]
        else:
            out += [flag, repr(value) if isinstance(value, float) else str(value)]
    return out


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from humact.config import load_config, overrides_from_args
    from humact.errors import UsageError
    from humact.train.run import train_model

    overrides = overrides_from_args(args)
    cfg = load_config(args.config, overrides)  # checked once, here, before any process starts
    if args.nproc is not None:
        if "WORLD_SIZE" in os.environ:
            raise UsageError("--nproc: this process already runs under torchrun; leave --nproc out")
        from humact.scale.ddp import JobFailed, launch

        argv = ["train", *(["--config", args.config] if args.config else []), *_flags(overrides),
                *([] if args.resume else ["--no-resume"]), *([] if args.test else ["--no-test"]),
                *(["--quiet"] if args.quiet else [])]
        try:
            launch(args.nproc, argv)
        except JobFailed as e:
            print(f"humact train: {e}", file=sys.stderr)
            return 1
        return 0
    from humact.scale.ddp import JobFailed

    try:
        train_model(cfg, resume=args.resume, test=args.test, progress=not args.quiet)
    except JobFailed as e:  # under torchrun: another process died; say so in one line
        print(f"humact train: {e}", file=sys.stderr)
        return 1
    return 0
