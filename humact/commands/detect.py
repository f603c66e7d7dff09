"""`humact detect VIDEO_OR_FOLDER --out DIR`: every person's actions at every keyframe (AVA-style).

Keyframes come at --rate per second (AVA: 1), or from --boxes (an AVA CSV of ground-truth boxes or
an AVA proposals pickle, whose keyframes and boxes are then used: the AVA protocol evaluates with
given boxes). Person boxes otherwise come from humact's perception (any --backend).

Models: by default `skeleton`, offline: each track's poses in +-1 s around the keyframe through the
shipped skeleton recognizer (JHMDB-14 classes; --skeleton-model for another `humact train` model).
Or MMAction2's AVA detectors (--model slowonly_r50_4x16_ava / slowfast_r50_4x16_ava /
slowfast_r50_8x8_ava, `_context` variants with the global pooling feature) with --checkpoint PATH
or URL (loaded strictly); several --model/--checkpoint pairs are fused (--fusion), --tta adds
multi-crop x flip testing. One --boxes per --model gives each detector its own boxes: they are
matched across models (IoU >= 0.5, greedy by box score) and a box no other model has keeps its own
model's scores.

Extra streams on one AVA detector (humact.detect.streams, docs/ava_parts.md): --lfb (long-term
feature bank, REL.lfb/; --checkpoint is then an MMAction2 LFB detector's), --arm-rois (arm boxes
from the tracks' keypoints, an arm head merged into the person's scores), --flow (flow images in
REL.flow/, `humact flow`'s format, extracted once; a flow SlowOnly detector, scores averaged),
--audio (1-s log-mel at each keyframe, a VGG-style CNN for the audible classes; no audio track:
off). `--checkpoint random` runs the detector with seeded untrained weights (for trying the
pipeline: the output says so); the arm head, flow detector and audio CNN are untrained unless
--arm-checkpoint / --flow-checkpoint / --audio-checkpoint are given. Detectors `humact train`
wrote with a stream: --model lfb_nl_slowonly_r50_4x16_ava (lfb_avg_/lfb_max_/lfb_nl_slowfast_)
--checkpoint RUN/model.safetensors --lfb (pass 1 by the bank detector it was trained with), and
--model rgbflow_concat_slowonly_r50_4x16_ava (rgbflow_add_/rgbflow_score_) --checkpoint ... --flow
(the flow extracted with the checkpoint's settings, read by the detector itself).

For each input REL it writes, atomically, into DIR:
  REL.ava.csv         video_id,timestamp,x1,y1,x2,y2,action_id,score (boxes normalised), for `humact eval ava`
  REL.timeline.png    per-person action timeline
  REL.annotated.mp4   each person's current labels (default for a single input; --video / --no-video)
  REL.json            the humact.result JSON with per-track, per-keyframe actions, written last
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int

HELP = "spatio-temporal action detection: each person's actions at every keyframe (AVA CSV, JSON, video)"


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return v


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def add_parser(subparsers) -> None:
    from humact.commands.extract import add_perception_flags

    p = subparsers.add_parser("detect", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO_OR_FOLDER", help="a video or a folder of videos")
    add_perception_flags(p)
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="'skeleton' (default, offline) or an AVA detector; repeat with --checkpoint to fuse")
    p.add_argument("--checkpoint", action="append", default=[], metavar="PATH_OR_URL",
                   help="MMAction2 AVA checkpoint of each --model (a path, or a URL fetched once; 'random': untrained, with the extra streams)")
    p.add_argument("--skeleton-model", metavar="PATH", help="model.safetensors for the skeleton default")
    p.add_argument("--label-map", metavar="PBTXT", help="AVA label map naming the detector's classes")
    p.add_argument("--rate", type=_positive, default=1.0, help="keyframes per second (default: %(default)s)")
    p.add_argument("--start", type=float, default=0.0, help="first keyframe, seconds (default: %(default)s)")
    p.add_argument("--boxes", metavar="CSV_OR_PKL", action="append", default=None,
                   help="person boxes and keyframes from an AVA CSV or proposals pickle; once per --model to give "
                        "each detector its own (boxes are then matched across models by IoU >= 0.5 before fusing)")
    p.add_argument("--timestamp-start", type=int, default=0,
                   help="the video's first second in --boxes timestamps (AVA's cut videos: 900; default 0)")
    p.add_argument("--box-threshold", type=_fraction, default=0.9,
                   help="proposals scoring below are ignored (default: %(default)s)")
    p.add_argument("--threshold", type=_fraction, default=None,
                   help="scores below are left out of the CSV/JSON (default: 0.002 AVA detectors, 0.05 skeleton)")
    p.add_argument("--label-threshold", type=_fraction, default=None,
                   help="labels drawn on the video (default: 0.5 AVA detectors, 0.25 skeleton)")
    p.add_argument("--window", type=_positive, default=1.0, help="skeleton: pose window +- seconds (default 1)")
    p.add_argument("--min-frames", type=positive_int, default=8,
                   help="skeleton: frames a person needs in the window (default: %(default)s)")
    p.add_argument("--sampling", choices=("test", "demo"), default="test",
                   help="AVA clip window: MMAction2's test pipeline or its demo's (default: %(default)s)")
    p.add_argument("--tta", action="store_true", help="multi-crop x flip testing (short sides 224/256/320 x flip)")
    p.add_argument("--fusion", choices=("mean", "mean_logit", "topk_logit"), default="mean",
                   help="fusing several detectors: mean after / before the sigmoid, top-k (k=n//2) before it")
    p.add_argument("--no-timeline", dest="timeline", action="store_false", help="no timeline PNG")
    g = p.add_argument_group("extra streams (one AVA detector)")
    g.add_argument("--lfb", action="store_true", help="long-term feature bank (slowonly_r50_4x16_ava or "
                   "slowfast_r50_4x16_ava with an MMAction2 LFB checkpoint, or an lfb_* detector `humact train` wrote)")
    g.add_argument("--lfb-fbo", choices=("non_local", "avg", "max"), default="non_local",
                   help="feature bank operator (default: %(default)s)")
    g.add_argument("--lfb-window", type=positive_int, default=None,
                   help="bank window, seconds (default: a trained lfb_* checkpoint's, else 100)")
    g.add_argument("--arm-rois", action="store_true", help="arm boxes from the keypoints, merged into the person scores")
    g.add_argument("--arm-config", metavar="TOML", help="arm classes (default: humact/assets/ava_arm_rois.toml)")
    g.add_argument("--arm-checkpoint", metavar="PATH", help="trained arm head (humact safetensors)")
    g.add_argument("--flow", action="store_true", help="optical-flow stream (flow images extracted once into REL.flow/; "
                   "an rgbflow_* detector `humact train` wrote takes them itself)")
    g.add_argument("--flow-method", choices=("dis", "farneback", "tvl1"), default="dis",
                   help="flow method when extracting (default: %(default)s)")
    g.add_argument("--flow-checkpoint", metavar="PATH_OR_URL", help="flow AVA detector (MMAction2 layout, 2 channels)")
    g.add_argument("--audio", action="store_true", help="audio stream for the audible classes")
    g.add_argument("--audio-checkpoint", metavar="PATH", help="trained audio CNN (humact safetensors)")
    g.add_argument("--audio-weight", type=_fraction, default=0.5, help="audio's share of the audible classes' scores")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from humact.commands.extract import options_from_args
    from humact.detect.pipeline import SKELETON, DetectOptions, detect
    from humact.detect.streams import StreamOptions
    from humact.errors import UsageError

    models = args.model or [SKELETON]
    if models != [SKELETON] and len(models) != len(args.checkpoint):
        raise UsageError(f"--model / --checkpoint: {len(models)} detector(s) but {len(args.checkpoint)} "
                         f"checkpoint(s); give one --checkpoint per --model")
    if SKELETON in models and models != [SKELETON]:
        raise UsageError("--model skeleton cannot be fused with AVA detectors")
    boxes = args.boxes or []
    if len(boxes) > 1 and (models == [SKELETON] or len(boxes) != len(models)):
        raise UsageError(f"--boxes: {len(boxes)} box files for {len(models)} model(s); give one for all, or one "
                         f"per AVA detector --model")
    torch.set_num_threads(args.threads)
    det = DetectOptions(model=models, checkpoints=args.checkpoint, skeleton_model=args.skeleton_model,
                        label_map=args.label_map, rate=args.rate, start=args.start,
                        boxes=boxes[0] if len(boxes) == 1 else None, model_boxes=boxes if len(boxes) > 1 else [],
                        timestamp_start=args.timestamp_start, box_threshold=args.box_threshold,
                        threshold=args.threshold, label_threshold=args.label_threshold, window_s=args.window,
                        min_frames=args.min_frames, sampling=args.sampling, tta=args.tta, fusion=args.fusion,
                        timeline=args.timeline,
                        streams=StreamOptions(lfb=args.lfb, lfb_fbo=args.lfb_fbo, lfb_window=args.lfb_window,
                                              arm_rois=args.arm_rois, arm_config=args.arm_config,
                                              arm_checkpoint=args.arm_checkpoint, flow=args.flow,
                                              flow_method=args.flow_method, flow_checkpoint=args.flow_checkpoint,
                                              audio=args.audio, audio_checkpoint=args.audio_checkpoint,
                                              audio_weight=args.audio_weight))
    summary = detect(args.input, args.out, options_from_args(args), det)
    if len(summary.done) + len(summary.failed) != 1 or summary.skipped:
        print(summary.line(args.out))
    return 1 if summary.failed else 0
