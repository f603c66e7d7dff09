"""`humact classify VIDEO --model NAME --checkpoint PATH_OR_URL`: video-level action recognition with an
RGB 3D CNN (SlowOnly, SlowFast, I3D, CSN) or with RGBPoseConv3D (the video's frames and its poses).

Samples the model's test clips (e.g. 10 clips of 8 x 8 frames for SlowOnly), decodes only the frames
those clips use, builds the test views (short side 256, three crops or a centre crop), averages the
clip probabilities and prints the top-5 actions.

The checkpoint is an MMAction2 / PYSKL `.pth` (`backbone.*`, `cls_head.*`; loaded with
`weights_only=True`), given as a path or a URL (downloaded once into ~/.cache/humact/downloads), or a
`.safetensors` written by humact's trainer; it must match the named architecture exactly. These
models have no built-in weights: MMAction2 publishes Kinetics-400 checkpoints for each in its model
zoo (https://mmaction2.readthedocs.io/en/latest/model_zoo/recognition.html). Class names come from
`--labels` (one per line, in class order), else from the safetensors' JSON (`classes`), else numbered.

`--model rgbposeconv3d` also needs the video's poses: `--pose` names the .pkl or .json `humact extract`
wrote for it; without `--pose` the default perception runs on the video first. Its checkpoint is a
`humact train --model rgbposeconv3d` model.safetensors or a PYSKL / MMAction2 RGBPoseConv3D .pth;
PYSKL's test recipe (10 clips of 8 RGB + 32 pose frames) and its 1:1 fusion of the two heads give
the scores, and each head's top action is printed too.
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int

HELP = "classify the action in a video with a 3D CNN (SlowOnly, SlowFast, I3D, CSN, RGBPoseConv3D)"


def add_parser(subparsers) -> None:
    from humact import zoo

    names = sorted(zoo.of_input("rgb") + zoo.of_input("rgbpose"))
    p = subparsers.add_parser("classify", help=HELP, description=__doc__,
                              usage="%(prog)s VIDEO --model NAME --checkpoint PATH_OR_URL [options]",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="the video file")
    p.add_argument("--model", required=True, choices=names, metavar="NAME", help="architecture: " + ", ".join(names))
    p.add_argument("--checkpoint", metavar="PATH_OR_URL",
                   help="(required) MMAction2 .pth (path or http(s)/file URL) or humact .safetensors weights for "
                        "that architecture; MMAction2's model zoo has Kinetics-400 weights for each")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line")
    p.add_argument("--pose", metavar="FILE",
                   help="rgbposeconv3d: the video's poses, the .pkl or .json `humact extract` wrote for it (default: "
                        "run perception on the video)")
    p.add_argument("--clips", type=positive_int, help="number of test clips (default: the model's, usually 10)")
    p.add_argument("--top", type=positive_int, default=5, help="how many actions to print (default: %(default)s)")
    p.add_argument("--json", metavar="OUT", help="also write the scores to this JSON file")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from humact import zoo

    from humact.errors import UsageError
    from humact.io.atomic import atomic_write
    from humact.recognize.video import MMACTION2_CHECKPOINTS, VideoRecognizer

    if not args.checkpoint:
        raise UsageError(f"--checkpoint is required: {args.model} has no built-in weights (random weights would "
                         f"only pretend to classify); get them from {MMACTION2_CHECKPOINTS}")
    torch.set_num_threads(args.threads)
    if zoo.get(args.model).input == "rgbpose":
        from humact.recognize.rgbpose import RGBPoseVideoRecognizer

        result = RGBPoseVideoRecognizer.from_checkpoint(args.checkpoint, labels=args.labels).classify(
            args.video, pose=args.pose, num_clips=args.clips)
    else:
        if args.pose:
            raise UsageError(f"--pose: {args.model} reads only the frames; --pose is for rgbposeconv3d")
        recognizer = VideoRecognizer.from_checkpoint(args.model, args.checkpoint, labels=args.labels)
        result = recognizer.classify(args.video, args.clips)
    print(f"{args.video}: {args.model}, {result.num_clips} clips x {result.views_per_clip} views, "
          f"{result.frames_decoded} of {result.num_frames} frames decoded")
    for rank, (label, _, p) in enumerate(result.topk(args.top), 1):
        print(f"{rank}. {label}  {p:.4f}")
    for head, p in (result.streams or {}).items():
        best = int(np.argmax(p))
        print(f"{head} head: {result.labels[best]}  {float(p[best]):.4f}")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result.to_json(str(args.checkpoint), args.top), f, indent=1)
    return 0
