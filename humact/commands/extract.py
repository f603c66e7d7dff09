"""`humact extract VIDEO_OR_FOLDER --out DIR`: people, poses, tracks and part boxes per video.

Per video it writes, atomically, into DIR (keeping a folder input's sub-folders):
  NAME.json   the versioned result (humact.io.results)
  NAME.pkl    the PYSKL skeleton annotation (trainable by PYSKL and `humact train`)
  NAME.mp4    the annotated video, with --video
A video whose outputs already exist is skipped (re-runs resume a batch); one that
fails is reported and skipped, and the rest go on. A summary ends the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from humact.perception.backend import BACKENDS, DEFAULT_BACKEND


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="detect, pose, track and part-box the people in a video or a folder of videos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="VIDEO_OR_FOLDER", help="a video file, or a folder searched recursively")
    p.add_argument("--out", default="humact_out", help="output folder (default: %(default)s)")
    p.add_argument("--video", action="store_true", help="also write the annotated video NAME.mp4")
    p.add_argument("--force", action="store_true", help="redo videos whose outputs already exist")
    p.add_argument("--detect-every", type=int, default=5, metavar="N",
                   help="run the person detector every N frames (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads for decoding and the models (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="pose backend (default: %(default)s; yolox needs `humact setup --detector yolox`)")
    p.add_argument("--detector-model", metavar="PATH", default=None,
                   help="YOLOX ONNX file for --backend yolox (default: the one `humact setup --detector yolox` fetched)")
    p.add_argument("--smooth", action="store_true", help="One-Euro filter the tracked keypoints over time")
    p.add_argument("--label-from-folder", action="store_true",
                   help="label each video by its parent folder's name (classes sorted by name; "
                        "written to the .pkl and to DIR/labels.json) to build a training set")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _outputs(out_dir: Path, rel: Path, video: bool) -> dict[str, Path]:
    base = out_dir / rel.with_suffix("")
    outs = {"json": base.with_suffix(".json"), "pkl": base.with_suffix(".pkl")}
    if video:
        outs["video"] = base.with_suffix(".mp4")
    return outs


def _check_out_dir(out_dir: Path) -> None:
    from humact.cli import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: output path exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out_dir}: cannot create the output directory ({e.strerror})") from e
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"{out_dir}: output directory is not writable")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from humact.cli import UserError
    from humact.io.atomic import atomic_write
    from humact.io.results import write_pyskl_pickle, write_result_json
    from humact.perception.pipeline import ExtractConfig, extract_video, make_backend, write_annotated_video
    from humact.video import VideoError, list_videos, probe

    src = Path(args.input)
    if not src.exists():
        raise UserError(f"{src}: no such file or directory")
    if src.is_dir():
        videos = list_videos(src)
        if not videos:
            raise UserError(f"{src}: no video files found (looked for {', '.join(sorted(_suffixes()))})")
        rels = [v.relative_to(src) for v in videos]
    else:
        videos, rels = [src], [Path(src.name)]
    out_dir = Path(args.out)
    _check_out_dir(out_dir)

    classes: list[str] = []
    if args.label_from_folder:
        classes = sorted({r.parent.name for r in rels if r.parent.name})
        if not classes:
            raise UserError(f"{src}: --label-from-folder needs videos inside class sub-folders")
        with atomic_write(out_dir / "labels.json", "w", encoding="utf-8") as f:
            json.dump(classes, f, indent=1)

    config = ExtractConfig(detect_every=args.detect_every, threads=args.threads, backend=args.backend,
                           detector_model=args.detector_model, smoothing="one-euro" if args.smooth else None)
    todo = []
    skipped = 0
    for video, rel in zip(videos, rels):
        outs = _outputs(out_dir, rel, args.video)
        if not args.force and all(p.exists() for p in outs.values()):
            skipped += 1
            continue
        todo.append((video, rel, outs))

    done: list[tuple[Path, int, float]] = []
    failed: list[tuple[Path, str]] = []
    backend = make_backend(config) if todo else None  # fails once, clearly, if models are missing
    quiet = args.no_progress
    for i, (video, rel, outs) in enumerate(todo):
        t0 = time.perf_counter()
        try:
            meta = probe(video)
            desc = f"[{i + 1}/{len(todo)}] {rel}"
            with tqdm(total=meta.num_frames, desc=desc, unit="frame", disable=quiet, leave=False) as bar:
                result = extract_video(video, config=config, backend=backend, meta=meta,
                                       on_frame=lambda _t: bar.update())
            label = classes.index(rel.parent.name) if classes else -1
            write_pyskl_pickle(result, outs["pkl"], label=label)
            if "video" in outs:
                with tqdm(total=meta.num_frames, desc=f"{desc} video", unit="frame", disable=quiet,
                          leave=False) as bar:
                    write_annotated_video(result, outs["video"], on_frame=lambda _t: bar.update())
            # The JSON is written last: its presence marks the video as done.
            write_result_json(result, outs["json"])
        except (VideoError, FileNotFoundError, OSError, ValueError) as e:
            failed.append((video, str(e)))
            print(f"humact extract: skipped {video}: {e}", file=sys.stderr)
            continue
        except Exception as e:  # a batch goes on past one bad video, whatever broke
            e = f"{type(e).__name__}: {e}"
            failed.append((video, e))
            print(f"humact extract: skipped {video}: {e}", file=sys.stderr)
            continue
        dt = time.perf_counter() - t0
        done.append((video, result.tracks.num_persons, dt))
        fps = meta.num_frames / dt if dt > 0 else 0.0
        print(f"{rel}: {meta.num_frames} frames, {result.tracks.num_persons} track(s), "
              f"{fps:.1f} frames/s -> {outs['json']}")

    print(f"summary: {len(done)} processed, {skipped} already done (skipped), {len(failed)} failed"
          f" — outputs in {out_dir}")
    for video, why in failed:
        print(f"  failed: {video}: {why}")
    return 1 if failed else 0


def _suffixes():
    from humact.video import VIDEO_SUFFIXES

    return VIDEO_SUFFIXES
