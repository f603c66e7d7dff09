"""`humact test`: multi-clip testing of a trained skeleton model, or late fusion of saved scores.

GCNs average the softmax of `--clips` clips; PoseConv3D that of `--clips` clips and their mirror
images (2 x clips views, PYSKL's flip test); RGBPoseConv3D each head's over `--clips` clips, fused
1:1 (PYSKL's RGBPose_1:1), with each head's top-1 in metrics.json too. Writes to `--out`: `metrics.json` (top-1, top-5, mean
class accuracy, clips, sample count), `confusion.png` and `scores.npy` ((N, classes) probabilities).

`--fuse J/scores.npy B/scores.npy JM/scores.npy BM/scores.npy` combines saved scores of `humact test`
runs without re-running the models; each file's stream is read from its model's config, in any
order, and several models of one stream share its weight (CTR-GCN's 0.6 j, 0.6 b, 0.4 jm, 0.4 bm).
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int

HELP = "test a trained skeleton model (multi-clip), or fuse saved stream scores"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("test", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="model.safetensors written by `humact train`")
    p.add_argument("--dataset", help="data kind (default: the checkpoint's training config)")
    p.add_argument("--data", help="data path (default: the checkpoint's training config)")
    p.add_argument("--split", help="split to test (default: the config's test_split)")
    p.add_argument("--clips", type=positive_int, help="test clips per sample (default: the config's test_clips)")
    p.add_argument("--fuse", nargs="+", metavar="SCORES", help="scores.npy files of streams to fuse instead")
    p.add_argument("--weights", nargs="+", type=float,
                   help="fusion weights, one per --fuse file (default for GCN streams: CTR-GCN's 0.6 j, 0.6 b, "
                        "0.4 jm, 0.4 bm, shared by the models of a stream; else equal)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from humact.errors import UsageError
    from humact.train.evaluate import fuse_saved, test_saved

    torch.set_num_threads(args.threads)
    if args.fuse and args.checkpoint:
        raise UsageError("give either a checkpoint or --fuse score files, not both")
    if args.fuse:
        fuse_saved(args.fuse, args.out, weights=args.weights, dataset=args.dataset, data=args.data, split=args.split)
    elif args.checkpoint:
        test_saved(args.checkpoint, args.out, dataset=args.dataset, data=args.data, split=args.split,
                   clips=args.clips)
    else:
        raise UsageError("give a checkpoint (model.safetensors) or --fuse score files")
    return 0
