"""`humact eval`: the official AVA frame-mAP and Kinetics-TPS score, exactly and fast.

    humact eval ava --gt GT.csv --pred DET.csv --label-map LABELS.pbtxt
                    [--exclusions EXCL.csv] [--semantics activitynet-2019|activitynet-head]
                    [--no-cap] [--json OUT.json] [--plots DIR]
    humact eval tps --gt-dir GT_DIR --pred-dir PRED_DIR [--missing error|zero] [--no-grid]
                    [--json OUT.json]
    humact eval pose --gt COCO_KEYPOINTS.json --pred DIR [--missing error|empty] [--json OUT.json]

Prints a table and writes the numbers as JSON (default: next to the predictions,
`<pred>.eval.json` / `PRED_DIR/tps_eval.json`). With --plots, AVA also writes
`ap_per_class.png` and `pr_curves.png` into DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="evaluate AVA detections or Kinetics-TPS predictions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    a = sub.add_parser("ava", help="AVA frame-mAP (official ActivityNet semantics)")
    a.add_argument("--gt", required=True, metavar="CSV", help="ground-truth CSV")
    a.add_argument("--pred", required=True, metavar="CSV", help="detections CSV (video,ts,x1,y1,x2,y2,action,score)")
    a.add_argument("--label-map", required=True, metavar="PBTXT", help="label map (item/id or label/label_id style)")
    a.add_argument("--exclusions", metavar="CSV", help="excluded keyframes (activitynet-2019 only)")
    a.add_argument("--semantics", default="activitynet-2019", choices=("activitynet-2019", "activitynet-head"),
                   help="which official version to reproduce (default: %(default)s)")
    a.add_argument("--no-cap", action="store_true",
                   help="keep every detection of a keyframe (MMAction2 1.x / PySlowFast), not the 50 best")
    a.add_argument("--json", metavar="OUT", help="write the results here (default: <pred>.eval.json)")
    a.add_argument("--plots", metavar="DIR", help="also write ap_per_class.png and pr_curves.png into DIR")
    t = sub.add_parser("tps", help="Kinetics-TPS task score (official evaluation)")
    t.add_argument("--gt-dir", required=True, metavar="DIR", help="folder with gt_vid_result.json, gt_part_result.json")
    t.add_argument("--pred-dir", required=True, metavar="DIR",
                   help="folder with pred_vid_result.json, pred_part_result.json")
    t.add_argument("--missing", default="error", choices=("error", "zero"),
                   help="a ground-truth video without prediction: stop with an error, or score it 0")
    t.add_argument("--no-grid", action="store_true", help="skip the 5 x 5 grid of IoU thresholds")
    t.add_argument("--json", metavar="OUT", help="write the results here (default: PRED_DIR/tps_eval.json)")
    k = sub.add_parser("pose", help="COCO keypoint AP of `humact extract IMAGE` results (pycocotools)")
    k.add_argument("--gt", required=True, metavar="JSON", help="COCO keypoints ground truth (person_keypoints_*.json)")
    k.add_argument("--pred", required=True, metavar="DIR",
                   help="folder of humact result JSONs, one per image, named after it (IMAGE_STEM.json)")
    k.add_argument("--missing", default="error", choices=("error", "empty"),
                   help="an image without a result: stop with an error, or count nobody predicted there")
    k.add_argument("--json", metavar="OUT", help="write the results here (default: DIR/pose_eval.json)")
    p.set_defaults(func=run, _eval_parser=p)
    return p


def _write_json(path: Path, data: dict) -> None:
    from humact.errors import OutputError
    from humact.io.atomic import atomic_write

    try:
        with atomic_write(path) as f:
            json.dump(data, f, indent=1)
    except OSError as e:
        raise OutputError(f"--json {path}: cannot write ({e.strerror or e})") from None
    print(f"wrote {path}")


def _writable_folder(folder: Path, flag: str, what: Path) -> None:
    """Refuse `folder` (to be created if missing) when it, or its nearest existing ancestor,
    is not a writable folder: checked before the work, so a long evaluation is not lost."""
    from humact.errors import OutputError

    d = folder
    while not d.exists() and d != d.parent:
        d = d.parent
    if not d.is_dir():
        raise OutputError(f"{flag} {what}: {d} is a file, not a folder")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {what}: folder {d} is not writable")


def _check_output_file(path: Path, flag: str, inputs) -> None:
    """`path` can be written as a file, and writing it overwrites none of `inputs`."""
    from humact.errors import OutputError

    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; expected the name of a file to write")
    for i in inputs:
        if i is not None and path.exists() and os.path.samefile(path, i):
            raise OutputError(f"{flag} {path}: is an input ({i}); refusing to overwrite it")
    _writable_folder(path.parent, flag, path)


def _check_output_folder(path: Path, flag: str, names, inputs) -> None:
    """`path` is (or can become) a folder where `names` can be written over none of `inputs`."""
    from humact.errors import OutputError

    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file; expected a folder")
    for name in names:
        _check_output_file(path / name, flag, inputs)
    _writable_folder(path, flag, path)


def _input_file(value, flag: str) -> None:
    from humact.errors import InputError

    if value is None:
        return
    p = Path(value)
    if not p.exists():
        raise FileNotFoundError(f"{flag}: no such file: {value}")
    if not p.is_file():
        raise InputError(f"{flag} {value}: not a file")


def _print_notes(notes) -> None:
    for note in notes:
        print(f"humact eval: warning: {note}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.benchmark is None:
        args._eval_parser.print_help()
        return 2
    # every failure of the inputs is a HumactError naming the file (printed as one line by humact.cli)
    if args.benchmark == "pose":
        return _run_pose(args)
    return _run_ava(args) if args.benchmark == "ava" else _run_tps(args)


def _run_ava(args) -> int:
    import time

    from humact.eval.ava import evaluate_ava_files

    for name in ("gt", "pred", "label_map", "exclusions"):
        _input_file(getattr(args, name), f"--{name.replace('_', '-')}")
    inputs = [args.gt, args.pred, args.label_map, args.exclusions]
    out = Path(args.json) if args.json else Path(str(args.pred) + ".eval.json")
    _check_output_file(out, "--json", inputs)
    if args.plots:
        _check_output_folder(Path(args.plots), "--plots", ("ap_per_class.png", "pr_curves.png"), inputs + [out])
    t0 = time.perf_counter()
    r = evaluate_ava_files(args.gt, args.pred, args.label_map, args.exclusions, semantics=args.semantics,
                           cap=None if args.no_cap else 50)
    dt = time.perf_counter() - t0
    _print_notes(r.notes)
    width = max((len(n) for n in r.names.values()), default=10)
    print(f"{'id':>4}  {'action':<{width}}  {'#gt':>7}  {'AP':>7}")
    for c, ap in r.ap.items():
        print(f"{c:>4}  {r.names[c]:<{width}}  {r.num_gt[c]:>7}  {ap:>7.4f}")
    print(f"frame-mAP@0.5IoU ({args.semantics}, {'no cap' if args.no_cap else 'top-50 per keyframe'}): "
          f"{r.mAP:.4f}   [{len(r.ap)} classes, {dt:.1f} s]")
    _write_json(out, r.to_json())
    if args.plots:
        from humact.eval.plots import plot_per_class_ap, plot_pr_curves
        from humact.errors import OutputError

        d = Path(args.plots)
        try:
            plot_per_class_ap(r.ap, r.names, d / "ap_per_class.png", title=f"AVA AP per class (mAP {r.mAP:.4f})")
            plot_pr_curves(r.curves, r.names, d / "pr_curves.png", ap=r.ap)
        except OSError as e:
            raise OutputError(f"--plots {d}: cannot write ({e.strerror or e})") from None
        print(f"wrote {d / 'ap_per_class.png'}, {d / 'pr_curves.png'}")
    return 0


def _run_tps(args) -> int:
    from humact.eval.tps import GRID_THRESHOLDS, evaluate_tps_dirs

    for name in ("gt_dir", "pred_dir"):
        if not Path(getattr(args, name)).is_dir():
            raise NotADirectoryError(f"--{name.replace('_', '-')}: no such folder: {getattr(args, name)}")
    out = Path(args.json) if args.json else Path(args.pred_dir) / "tps_eval.json"
    inputs = [Path(d) / f"{k}_{w}_result.json" for d, k in ((args.gt_dir, "gt"), (args.pred_dir, "pred"))
              for w in ("vid", "part")]
    _check_output_file(out, "--json", [p for p in inputs if p.exists()])
    r = evaluate_tps_dirs(args.gt_dir, args.pred_dir, grid=not args.no_grid, missing=args.missing)
    n = len(r.videos)
    correct = sum(v["correct"] for v in r.videos.values())
    mean_psc = sum(v["psc"] for v in r.videos.values()) / n
    print(f"videos {n}, action accuracy {correct / n:.4f}, mean part-state correctness {mean_psc:.4f}")
    print("acc(t): " + "  ".join(f"{t / 10:.1f}:{a:.4f}" for t, a in enumerate(r.acc_at)))
    print(f"Kinetics-TPS Score (human IoU 0.5, part IoU 0.3): {r.score:.4f}")
    if r.grid:
        print("grid (rows human IoU, columns part IoU):")
        print("       " + "".join(f"{p:>8}" for p in GRID_THRESHOLDS))
        for h in GRID_THRESHOLDS:
            print(f"{h:>7}" + "".join(f"{r.grid[(h, p)]:>8.4f}" for p in GRID_THRESHOLDS))
    _write_json(out, r.to_json())
    return 0


def _run_pose(args) -> int:
    from humact.eval.pose import evaluate_pose_dir

    if not Path(args.gt).is_file():
        raise FileNotFoundError(f"--gt: no such file: {args.gt}")
    if not Path(args.pred).is_dir():
        raise NotADirectoryError(f"--pred: no such folder: {args.pred}")
    r = evaluate_pose_dir(args.gt, args.pred, missing=args.missing)
    print(f"{'image':<28} {'gt':>4} {'pred':>5} {'found':>6}")
    for name, c in r.per_image.items():
        print(f"{name:<28} {c['gt']:>4} {c['pred']:>5} {c['found']:>6}")
    print("COCO keypoint AP (OKS 0.50:0.95, pycocotools): " + "  ".join(
        f"{k} {r.stats[k]:.3f}" for k in ("AP", "AP50", "AP75", "AR")))
    print(f"people found (OKS >= 0.5): {r.found} of {r.num_gt}; {r.num_pred} predicted")
    out = Path(args.json) if args.json else Path(args.pred) / "pose_eval.json"
    _write_json(out, r.to_json())
    return 0
