"""`humact extract VIDEO_OR_FOLDER --out DIR`: people, poses, tracks and part boxes per video or image.

For each input REL (its path under the input folder, extension kept) it writes, atomically, into DIR:
  REL.pkl             the PYSKL skeleton annotation (trainable by PYSKL and `humact train`)
  REL.annotated.mp4   the annotated video (default for a single input; --video / --no-video)
  REL.json            the versioned result (humact.io.results), written last
An input whose outputs already exist is skipped (re-runs resume a batch); one that fails is
reported and skipped, and the rest go on. A summary ends the run. Outputs are never inputs:
hidden files, humact's temp files, annotated videos and the output folder itself are not searched.
An input list (.txt / .csv / .lst: one path or http(s) URL a line) names the inputs instead of a
folder. `--ray [ADDRESS]` runs one task per input on a Ray cluster (worker actors keep the pose
backend loaded; a worker that dies mid-input is restarted and the input retried), with the same
outputs, resume and failure rules, and results byte-identical to a local run.
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int, seconds


def add_perception_flags(p: argparse.ArgumentParser) -> None:
    """The flags `extract` and `analyze` share."""
    from humact.perception.backend import BACKENDS, DEFAULT_BACKEND

    p.add_argument("--out", default="humact_out", help="output folder (default: %(default)s)")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=None,
                   help="write the annotated video REL.annotated.mp4 (default: yes for a single input, "
                        "no for a folder)")
    p.add_argument("--force", action="store_true", help="redo inputs whose outputs already exist")
    p.add_argument("--detect-every", type=positive_int, default=5, metavar="N",
                   help="run the person detector every N frames (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=2,
                   help="threads for decoding and the models (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or progress lines")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="pose backend (default: %(default)s; yolox needs `humact setup --detector yolox`)")
    p.add_argument("--detector-model", metavar="PATH", default=None,
                   help="YOLOX ONNX file for --backend yolox (default: the one `humact setup --detector yolox` fetched)")
    p.add_argument("--smooth", action="store_true", help="One-Euro filter the tracked keypoints over time")
    p.add_argument("--stitch-seconds", type=seconds, default=2.0, metavar="S",
                   help="files: join a track that ends and one that starts within S seconds at the same place, "
                        "size and torso colour into one id (0 = off; default: %(default)s)")
    p.add_argument("--fill-gaps", type=seconds, default=1.0, metavar="S",
                   help="files: interpolate a track's rows over gaps of up to S seconds between two sightings, "
                        "marked \"filled\" in the JSON with keypoint scores 0 (0 = off; default: %(default)s)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run one task per input on a Ray cluster: alone, the cluster RAY_ADDRESS names or "
                        "`ray start` made here, else a new local one; or a cluster's ADDRESS (inputs and "
                        "--out on storage every node sees)")
    p.add_argument("--ray-workers", type=positive_int, default=None, metavar="N",
                   help="with --ray: N worker actors, each keeping a pose backend loaded (default: one per "
                        "CPU of the cluster)")


def options_from_args(args: argparse.Namespace):
    from humact.perception.pipeline import ExtractConfig
    from humact.tasks import ExtractOptions

    if args.ray_workers is not None and args.ray is None:
        from humact.errors import UsageError

        raise UsageError("--ray-workers: only with --ray")
    return ExtractOptions(video=args.video, force=args.force, progress=not args.no_progress, ray=args.ray,
                          ray_workers=args.ray_workers,
                          config=ExtractConfig(detect_every=args.detect_every, threads=args.threads,
                                               backend=args.backend, detector_model=args.detector_model,
                                               smoothing="one-euro" if args.smooth else None,
                                               stitch_seconds=args.stitch_seconds, fill_seconds=args.fill_gaps))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="detect, pose, track and part-box the people in a video, an image or a folder of them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="VIDEO_OR_FOLDER",
                   help="a video or image file, a folder searched recursively, an input list (.txt / .csv / .lst: "
                        "a path or http(s) URL a line), or a live source: a stream URL (rtsp://, http(s)://, "
                        "udp://, ...), a webcam /dev/videoN or its number N")
    add_perception_flags(p)
    p.add_argument("--max-frames", type=positive_int, metavar="N",
                   help="live sources: stop after N frames (default: until the stream ends or Ctrl-C)")
    p.add_argument("--no-drop", dest="drop", action="store_false",
                   help="live sources: wait for processing instead of dropping frames (a recorded stream)")
    p.add_argument("--label-from-folder", action="store_true",
                   help="label each input by its top sub-folder's name (classes sorted by name; written to "
                        "the .pkl and to DIR/labels.json) to build a training set")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from humact.tasks import extract, extract_live_source, is_live_source

    if is_live_source(args.input):
        if args.ray is not None:
            from humact.errors import UsageError

            raise UsageError("--ray: a live source is one stream; --ray takes files, folders or input lists")
        extract_live_source(args.input, args.out, options_from_args(args), max_frames=args.max_frames,
                            drop=args.drop)
        return 0
    summary = extract(args.input, args.out, options_from_args(args), label_from_folder=args.label_from_folder)
    print(summary.line(args.out))
    for job, why in summary.failed:
        print(f"  failed: {job.input}: {why}" if not why.startswith(str(job.input)) else f"  failed: {why}")
    return 1 if summary.failed else 0
