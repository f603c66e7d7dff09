"""`humact parse` and `humact parse-train`: part-level action parsing (Kinetics-TPS).

    humact parse-train --data TPS_ROOT --out RUN    train on split "train" of a Kinetics-TPS folder (the
                                                    release layout or a gt_*_result.json folder): the
                                                    most-frequent baseline, System 1 (7 skeleton recognisers
                                                    by `humact train`'s own path), System 2 and the part
                                                    detector, into RUN (RUN/parse.json lists them)
    humact parse VIDEO_OR_FOLDER --model RUN --out DIR
                                                    per input REL: REL.json (its parse) and
                                                    REL.annotated.mp4 (part boxes and states); then
                                                    DIR/pred_vid_result.json + DIR/pred_part_result.json in
                                                    the official layout (score them with `humact eval tps`)

Parse states come from System 2 by default (--states system1|system2|baseline), the action from the
same system (the baseline takes System 1's), part boxes from the detector when trained (--boxes).
Frames are parsed every 5 frames (img_00001, img_00006, ...: the frames the official score reads).
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    from humact.commands.extract import add_perception_flags

    p = sub.add_parser("parse", help="part boxes, part states and the action of every person (Kinetics-TPS)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO_OR_FOLDER", help="a video file or a folder searched recursively")
    p.add_argument("--model", required=True, metavar="RUN", help="the folder `humact parse-train` wrote")
    p.add_argument("--states", choices=("system1", "system2", "baseline"), default=None,
                   help="where part states come from (default: system2 if trained, else system1, else baseline)")
    p.add_argument("--action", choices=("system1", "system2"), default=None,
                   help="where the video's action comes from (default: the states' system)")
    p.add_argument("--boxes", choices=("detector", "geometric"), default=None,
                   help="part boxes: the trained pose-guided detector (default when trained) or geometric from pose")
    p.add_argument("--every", type=positive_int, default=5, metavar="N",
                   help="parse every N-th frame (default: %(default)s, the official evaluation's sampling)")
    add_perception_flags(p)
    p.set_defaults(func=run)

    t = sub.add_parser("parse-train", help="train the Kinetics-TPS parsers (baseline, System 1, System 2, "
                                           "part detector)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", required=True, metavar="TPS_ROOT", help="a Kinetics-TPS folder")
    t.add_argument("--out", required=True, metavar="RUN", help="output folder")
    t.add_argument("--split", default="train", help="training split (default: %(default)s)")
    t.add_argument("--system", action="append", choices=("1", "2"), default=None,
                   help="train System 1 and/or 2 (repeat; default: both)")
    t.add_argument("--no-detector", dest="detector", action="store_false", help="do not train the part detector")
    t.add_argument("--no-dots", dest="dots", action="store_false",
                   help="ablation: the part detector sees the crop without keypoint dots")
    t.add_argument("--geometric-input", action="store_true",
                   help="give the part detector the geometric part boxes as 10 extra input channels")
    t.add_argument("--no-language", dest="language", action="store_false",
                   help="System 2 without language priors (no MiniLM needed)")
    t.add_argument("--recognizer", default="stgcnpp", metavar="MODEL",
                   help="System 1's recogniser: a skeleton or heatmap model of `humact train` (default: %(default)s), "
                        "or an RGB model of `humact classify` (e.g. ircsn_r50: the system's CSN, frozen BN)")
    t.add_argument("--recognizer-checkpoint", metavar="PATH", default=None,
                   help="RGB recognisers: a pretrained checkpoint of the same model whose backbone they start from")
    t.add_argument("--clip-len", type=positive_int, default=None, metavar="T",
                   help="RGB recognisers: frames per clip (default: the model's MMAction2 sampling)")
    t.add_argument("--crop-size", type=positive_int, default=None, metavar="S",
                   help="RGB recognisers: crop side in pixels (short side resized to it; default: the model's)")
    t.add_argument("--recognizer-config", metavar="FILE", default=None,
                   help="a `humact train` config file (.toml/.json) for System 1's recognisers")
    t.add_argument("--recognizer-epochs", type=positive_int, default=None, metavar="N",
                   help="epochs of each System 1 recogniser (default: from the data, as `humact train`)")
    t.add_argument("--stream", action="append", choices=("j", "b", "jm", "bm"), default=None,
                   help="System 1 input streams, fused per head (repeat; default: j)")
    t.add_argument("--epochs", type=positive_int, default=30, help="epochs of System 2 and the part detector")
    t.add_argument("--batch-size", type=positive_int, default=16)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=1, help="torch threads (default: %(default)s)")
    t.set_defaults(func=run_train)


def run(args: argparse.Namespace) -> int:
    from humact.commands.extract import options_from_args
    from humact.parsing.predict import ParseModels, parse_videos

    models = ParseModels.load(args.model)
    o = options_from_args(args)
    summary = parse_videos(args.input, args.out, models, states=args.states, action=args.action, boxes=args.boxes,
                           every=args.every, video=args.video, force=args.force, config=o.config,
                           progress=o.progress)
    print(summary.line(args.out))
    for job, why in summary.failed:
        print(f"  failed: {job.input}: {why}" if not why.startswith(str(job.input)) else f"  failed: {why}")
    return 1 if summary.failed else 0


def run_train(args: argparse.Namespace) -> int:
    import torch

    from humact.parsing.predict import TrainOptions, train_parsing

    from humact import zoo
    from humact.errors import UsageError

    torch.set_num_threads(args.threads)
    if args.recognizer not in zoo.MODELS:
        raise UsageError(f"--recognizer: unknown model {args.recognizer!r}; known: {', '.join(sorted(zoo.MODELS))}")
    rgb = zoo.MODELS[args.recognizer].input == "rgb"
    overrides = {} if rgb else {"model": args.recognizer}
    video_options = {}
    if args.recognizer_epochs:
        overrides["epochs"] = args.recognizer_epochs
        video_options["epochs"] = args.recognizer_epochs
    if rgb:
        video_options.update({k: v for k, v in dict(
            clip_len=args.clip_len, short_side=args.crop_size, crop_size=args.crop_size,
            pretrained=args.recognizer_checkpoint, batch_size=args.batch_size).items() if v is not None})
    train_parsing(args.data, args.out, TrainOptions(
        split=args.split, systems=tuple(args.system or ("1", "2")), detector=args.detector, dots=args.dots,
        geometric_input=args.geometric_input, language=args.language, recognizer_overrides=overrides,
        recognizer_config=args.recognizer_config, streams=tuple(args.stream or ("j",)), epochs=args.epochs,
        video_recognizer=args.recognizer if rgb else None, video_options=video_options,
        batch_size=args.batch_size, seed=args.seed))
    return 0
