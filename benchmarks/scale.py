"""Throughput beyond one process: `extract --ray` with 1 and 2 workers against the local batch, and
DDP training with 1 and 2 processes, each in the same run.

    flock /tmp/humact-heavy.lock .venv/bin/python benchmarks/scale.py [--frames 30] [--epochs 1]
        [--skip-ray] [--skip-ddp]

Extraction: 8 videos (the first `--frames` frames of the shared 340x256 arm-wrestling and
pool-cleaning clips, 4 copies each), default MoveNet backend, 1 thread per process. The local
batch is `humact.tasks.extract` here; the Ray runs use a local 2-CPU cluster started once (its
start is not timed) and are timed from the call to the summary, so the workers' start and model
loading are inside. Outputs are checked byte for byte against the local batch.

Training: ST-GCN++ (base 16 channels, clip 32) for `--epochs` epoch(s) on JHMDB-14 split 1 ground
truth (433 training samples, batch 16), `humact train --nproc 1` and `--nproc 2`, 1 thread per
process, timed from the trainer's epoch seconds (samples/s of the whole job) and wall clock (with
the processes' start and the test). Also 1 process with 2 threads: the same 2 cores used by
intra-op threads instead of ranks.

The machine has 2 cores shared with other jobs: 2 workers can at best double the rate, and only
when nothing else runs (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HUMACT_SHARED", REPO.parent / "shared"))
CLIPS = ("armwrestling_340x256.mp4", "pool_cleaning_340x256.mp4")


def make_videos(root: Path, frames: int) -> Path:
    from humact.video import VideoWriter, probe, read_frames

    folder = root / "videos"
    for clip in CLIPS:
        src = SHARED / "data" / "media" / clip
        meta = probe(src)
        first = folder / "c0" / clip
        first.parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(first, width=meta.width, height=meta.height, fps=meta.fps) as w:
            for i, rgb in read_frames(src, stop=frames):
                w.write(rgb, time_s=meta.frame_times[i])
        for k in range(1, 4):
            (folder / f"c{k}").mkdir(exist_ok=True)
            (folder / f"c{k}" / clip).write_bytes(first.read_bytes())
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bench_extract(root: Path, frames: int) -> None:
    import ray

    from humact.perception.pipeline import ExtractConfig
    from humact.tasks import ExtractOptions, extract

    folder = make_videos(root, frames)
    n = len(list(folder.rglob("*.mp4")))

    def run(out: Path, **kw) -> float:
        t0 = time.perf_counter()
        summary = extract(folder, out, ExtractOptions(progress=False, config=ExtractConfig(threads=1), **kw))
        dt = time.perf_counter() - t0
        assert len(summary.done) == n and not summary.failed, summary.line(out)
        return dt

    print(f"extract: {n} videos x {frames} frames, 340x256, movenet, 1 thread per process")
    local = run(root / "local")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        rows = [("local batch (1 process)", local, True)]
        for workers in (1, 2):
            out = root / f"ray{workers}"
            dt = run(out, ray="", ray_workers=workers)
            rows.append((f"--ray, {workers} worker{'s' if workers > 1 else ''}", dt, files(out) == files(root / "local")))
    finally:
        ray.shutdown()
    for name, dt, same in rows:
        print(f"  {name:26s} {dt:7.1f} s  {n / dt:6.2f} videos/s  {n * frames / dt:6.1f} frames/s  "
              f"x{local / dt:.2f} of local  {'outputs identical' if same else 'OUTPUTS DIFFER'}")


def bench_ddp(root: Path, epochs: int) -> None:
    data = SHARED / "data" / "skeleton" / "jhmdb14"
    base = ["--dataset", "jhmdb", "--data", str(data), "--model", "stgcnpp", "--base-channels", "16",
            "--clip-len", "32", "--batch-size", "16", "--epochs", str(epochs), "--val-fraction", "0",
            "--test-clips", "1", "--quiet", "--no-resume"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    print(f"train: stgcnpp base 16, clip 32, batch 16 (global), {epochs} epoch(s) of JHMDB-14 split 1")
    rows = []
    for label, extra in (("1 process x 1 thread", ["--nproc", "1", "--num-threads", "1"]),
                         ("2 processes x 1 thread", ["--nproc", "2", "--num-threads", "1"]),
                         ("1 process x 2 threads", ["--num-threads", "2"])):
        out = root / label.replace(" ", "_")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "humact.cli", "train", *base, *extra, "--out", str(out)],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stderr[-2000:])
            raise SystemExit(f"{label}: humact train failed")
        meta = json.loads((out / "model.json").read_text())
        seconds = sum(h["seconds"] for h in meta["history"])
        samples = meta["num_train"] // 16 * 16 * epochs
        top1 = json.loads((out / "metrics.json").read_text())["top1"]
        rows.append((label, seconds, wall, samples, top1))
    first = rows[0][1]
    for label, seconds, wall, samples, top1 in rows:
        print(f"  {label:24s} train {seconds:6.1f} s  {samples / seconds:6.1f} samples/s  x{first / seconds:.2f}  "
              f"(wall with start and test {wall:5.1f} s; test top-1 {top1:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30, help="frames per video (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs (default: %(default)s)")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-ddp", action="store_true")
    args = ap.parse_args()
    if not (SHARED / "README.md").is_file():
        raise SystemExit(f"the shared data is not at {SHARED} (set HUMACT_SHARED)")
    os.system("uptime")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_ray:
            bench_extract(Path(tmp) / "extract", args.frames)
        if not args.skip_ddp:
            bench_ddp(Path(tmp) / "train", args.epochs)


if __name__ == "__main__":
    main()
