"""`humact flow VIDEO --out DIR`: dense optical flow written as MMAction2's denseflow does.

For each video (a file, or every video under a folder) a folder `DIR/NAME.flow/` of
`flow_x_00001.jpg`, `flow_y_00001.jpg`, ... (flow k: from frame k - 1 to frame k), each
component clipped to +-bound pixels and mapped to 0..255; `--uv` adds `flow_uv_*.jpg`, the
product of the two components. Resumable: an interrupted video continues after its last
complete pair, a finished one (its `flow.json`) is left alone unless the settings changed.

Methods: `dis` (OpenCV DIS, default, fast), `farneback` (OpenCV), `tvl1` (TV-L1, the field's
usual flow, about 25x slower than DIS; needs opencv-contrib-python-headless installed *instead of*
opencv-python-headless: both provide `cv2`).
"""

from __future__ import annotations

import argparse

from humact.commands import positive_int

HELP = "extract dense optical flow images (x / y JPEGs as MMAction2's denseflow writes them)"


#: `humact.video_models.flow.FLOW_METHODS` (not imported here: `humact --help` stays free of torch)
FLOW_METHODS = ("dis", "farneback", "tvl1")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("flow", help=HELP, description=__doc__, usage="%(prog)s VIDEO --out DIR [options]",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="a video file, or a folder of videos")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one NAME.flow/ folder per video)")
    p.add_argument("--method", choices=FLOW_METHODS, default="dis", help="flow method (default: %(default)s)")
    p.add_argument("--bound", type=float, default=20.0, help="clip flow to +-BOUND pixels (default: %(default)s)")
    p.add_argument("--uv", action="store_true", help="also write the u*v third channel (flow_uv_*.jpg)")
    p.add_argument("--short-side", type=positive_int, metavar="PX", help="resize frames to this short side first")
    p.add_argument("--force", action="store_true", help="recompute finished videos")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from humact.batch import Job, find_inputs, prepare_output_dir, run_jobs
    from humact.errors import HumactError, OutputError
    from humact.video import is_image
    from humact.video_models.flow import FlowSpec, extract_flow

    spec = FlowSpec(method=args.method, bound=args.bound, uv=args.uv, short_side=args.short_side or 0)
    pairs = [(p, rel) for p, rel in find_inputs(args.video, args.out) if not is_image(p)]
    if not pairs:
        raise HumactError(f"{args.video}: no video files found")
    prepare_output_dir(args.out)
    jobs = []
    for p, rel in pairs:
        folder = Path(args.out) / rel.with_name(rel.name + ".flow")
        if folder.resolve() == p.resolve():
            raise OutputError(f"{folder}: would overwrite an input; choose another --out")
        jobs.append(Job(p, rel, {"flow": folder}))

    def work(job: Job, desc: str) -> str:
        folder = job.outputs["flow"]
        if args.force and folder.is_dir():
            shutil.rmtree(folder)
        r = extract_flow(job.input, folder, spec)
        if not r.computed:
            return f"{desc}: {r.pairs} flow pairs already in {folder} (same settings): reused"
        return (f"{desc}: {r.computed} of {r.pairs} flow pairs computed ({spec.method}, "
                f"{1000 * r.seconds_per_pair:.0f} ms per pair) -> {folder}")

    summary = run_jobs(jobs, work, force=True, command="humact flow")
    print(summary.line(args.out))
    return 1 if summary.failed else 0
