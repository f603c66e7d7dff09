"""`humact analyze VIDEO_OR_FOLDER`: perception, then skeleton action recognition for every tracked person.

For each input REL it writes to `--out` (atomically): `REL.json`, the `humact.result` JSON of
`humact extract` with each track's top-5 actions and the model's class list (a track too short to
recognise gets no actions and the reason), and `REL.annotated.mp4`, the video with skeletons, track
ids and each person's top action drawn (default for a single input; --video / --no-video). The
default model is the ST-GCN++ shipped in `humact/assets/models/` (JHMDB-14 classes, joints derived
from our COCO-17 poses); `--model` takes any `model.safetensors` written by `humact train` on 2D
(COCO or JHMDB) joints. Give a `NAME.json` written by `humact extract` instead of a video to skip
perception.
"""

from __future__ import annotations

import argparse

HELP = "recognise the actions of each person in a video (perception + skeleton model)"


def add_parser(subparsers) -> None:
    from humact.commands import positive_int
    from humact.commands.extract import add_perception_flags

    p = subparsers.add_parser("analyze", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO_OR_FOLDER",
                   help="a video or image, a folder of them, an input list (.txt / .csv / .lst), or the "
                        "NAME.json of `humact extract`")
    add_perception_flags(p)
    p.add_argument("--model", help="a model.safetensors from `humact train` (default: the shipped model)")
    p.add_argument("--min-frames", type=positive_int, default=8,
                   help="tracks seen on fewer frames get no action (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from humact.commands.extract import options_from_args
    from humact.tasks import analyze

    torch.set_num_threads(args.threads)
    summary = analyze(args.input, args.out, options_from_args(args), model=args.model, min_frames=args.min_frames)
    if len(summary.done) + len(summary.failed) != 1 or summary.skipped:
        print(summary.line(args.out))
    return 1 if summary.failed else 0
