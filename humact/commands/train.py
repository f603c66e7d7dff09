"""`humact train`: train a skeleton action model (ST-GCN / ST-GCN++ on skeleton sequences, PoseConv3D
on heatmap volumes drawn from 2D keypoints, RGBPoseConv3D on the videos' frames plus those heatmaps:
`--model rgbposeconv3d --data` a folder of `humact extract` outputs, whose pickles name their videos)
from a config file and/or flags.

Writes to the output folder: `last.safetensors/.json` (resume by re-running the same command),
`model.safetensors` + `model.json` (weights; config, class names, layout), `config.json`, and,
when the data has a test split, the test results of `humact test` (metrics.json, confusion.png,
scores.npy). Every option below is a field of `humact.config.TrainConfig`; a config file (TOML or
JSON, nested sections or flat fields) sets any of them and flags override the file.
"""

from __future__ import annotations

import argparse

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
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from humact.config import load_config, overrides_from_args
    from humact.train.run import train_model

    cfg = load_config(args.config, overrides_from_args(args))
    train_model(cfg, resume=args.resume, test=args.test, progress=not args.quiet)
    return 0
