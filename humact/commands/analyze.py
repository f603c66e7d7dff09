"""`humact analyze VIDEO`: perception, then skeleton action recognition for every tracked person.

Writes to `--out` (atomically): `NAME.json`, the `humact.result` JSON of `humact extract` with each
track's top-5 actions and scores and the model's class list, and `NAME.mp4`, the video with
skeletons, track ids and each person's top action drawn. The default model is the ST-GCN++
shipped in `humact/assets/models/` (JHMDB-14 classes, joints derived from our COCO-17 poses);
`--model` takes any `model.safetensors` written by `humact train` on 2D (COCO or JHMDB) joints.
Give a `NAME.json` written by `humact extract` instead of a video to skip perception.
"""

from __future__ import annotations

import argparse

from humact.perception.backend import BACKENDS, DEFAULT_BACKEND

HELP = "recognise the actions of each person in a video (perception + skeleton model)"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("analyze", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO", help="a video, or the NAME.json of `humact extract`")
    p.add_argument("--out", default="humact_out", help="output folder (default: %(default)s)")
    p.add_argument("--model", help="a model.safetensors from `humact train` (default: the shipped model)")
    p.add_argument("--no-video", dest="video", action="store_false", help="do not write the annotated video")
    p.add_argument("--min-frames", type=int, default=8,
                   help="tracks seen on fewer frames get no action (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="pose backend (default: %(default)s; yolox needs `humact setup --detector yolox`)")
    p.add_argument("--detector-model", metavar="PATH", default=None,
                   help="YOLOX ONNX file for --backend yolox (default: the one `humact setup --detector yolox` fetched)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from humact.cli import UserError
    from humact.io.results import ResultFormatError, read_result_json, write_result_json
    from humact.perception.pipeline import ExtractConfig, extract_video, write_annotated_video
    from humact.skeleton.recognize import DEFAULT_MODEL, Recognizer
    from humact.video import VideoError

    torch.set_num_threads(args.threads)
    src = Path(args.input)
    if not src.exists():
        raise UserError(f"{src}: no such file")
    model_path = Path(args.model) if args.model else DEFAULT_MODEL
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found (give a model.safetensors from `humact train`)")
    try:
        recognizer = Recognizer.from_checkpoint(model_path)
    except (ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"{model_path}: cannot load the model ({e})") from e

    if src.suffix == ".json":
        try:
            result = read_result_json(src)
        except ResultFormatError as e:
            raise UserError(str(e)) from e
    else:
        try:
            result = extract_video(src, config=ExtractConfig(threads=args.threads, backend=args.backend,
                                                             detector_model=args.detector_model))
        except VideoError as e:
            raise UserError(str(e)) from e
    try:
        result.actions = recognizer.recognize_tracks(result.tracks, min_frames=args.min_frames)
    except ValueError as e:
        raise UserError(str(e)) from e

    out = Path(args.out)
    name = result.meta.name
    write_result_json(result, out / f"{name}.json")
    top = result.actions.topk(5)
    labels = {}
    print(f"{name}: {result.tracks.num_persons} tracked people, model {recognizer.name}")
    for m, tid in enumerate(result.tracks.track_ids):
        seen = int(result.tracks.valid[m].sum())
        if result.actions.scores[m].sum() == 0:
            print(f"  track {tid}: {seen} frames, too short to recognise")
            continue
        labels[int(tid)] = f"{top[m][0][0]} {top[m][0][1]:.2f}"
        print(f"  track {tid}: {seen} frames: " + ", ".join(f"{lab} {s:.3f}" for lab, s in top[m]))
    print(f"wrote {out / (name + '.json')}")
    if args.video:
        if not Path(result.meta.path).is_file():
            raise UserError(f"{result.meta.path}: the video of {src} is needed to draw the annotated video "
                            "(or pass --no-video)")
        write_annotated_video(result, out / f"{name}.mp4", labels=labels)
        print(f"wrote {out / (name + '.mp4')}")
    return 0
