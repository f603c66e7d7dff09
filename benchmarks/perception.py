"""Perception speed: frames per second end to end and milliseconds per frame per stage.

Stages: decode (PyAV, to RGB), detect (BlazePose detector, only on re-detection
frames), landmarks (crop + landmark model, per person), track (box refinement +
Hungarian tracking + part boxes), write (JSON + PYSKL pickle).

    .venv/bin/python benchmarks/perception.py [--videos DIR] [--threads 1 2] [--detect-every 5]

There is no reference implementation to run beside it here (MediaPipe's own
graph needs numpy<2 and its own dependency set), so it prints absolute figures.
Needs the shared media (../shared/data/media) and `humact setup`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

VIDEOS = ("ntu_hug_1080p.avi", "pool_cleaning_340x256.mp4", "archery_320x240.avi")


def bench(video: Path, threads: int, detect_every: int) -> dict:
    import torch

    from humact.io.results import write_pyskl_pickle, write_result_json
    from humact.perception.blazepose import BlazePoseBackend
    from humact.perception.pipeline import ExtractConfig, StageTimes, extract_video
    from humact.video import probe

    torch.set_num_threads(threads)
    config = ExtractConfig(detect_every=detect_every, threads=threads)
    backend = BlazePoseBackend(detect_every=detect_every, num_threads=threads)
    inner = backend.times  # seconds in "detect" and "landmarks", kept by the backend
    meta = probe(video)
    times = StageTimes()
    t0 = time.perf_counter()
    result = extract_video(video, config=config, backend=backend, meta=meta, times=times)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_result_json(result, Path(d) / "r.json")
        write_pyskl_pickle(result, Path(d) / "r.pkl")
    t2 = time.perf_counter()
    n = meta.num_frames
    pose = times.seconds["pose"]
    other_pose = pose - inner.get("detect", 0.0) - inner.get("landmarks", 0.0)
    return {
        "video": video.name, "size": f"{meta.width}x{meta.height}", "frames": n, "threads": threads,
        "persons": result.tracks.num_persons, "fps": n / (t2 - t0),
        "ms": {
            "decode": 1e3 * times.seconds["decode"] / n,
            "detect": 1e3 * inner.get("detect", 0.0) / n,
            "landmarks": 1e3 * (inner.get("landmarks", 0.0) + other_pose) / n,
            "track": 1e3 * times.seconds["track"] / n,
            "write": 1e3 * (t2 - t1) / n,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--videos", default=Path(os.environ.get("HUMACT_SHARED", here.parent / "shared")) / "data" / "media",
                    help="folder holding the benchmark videos (default: %(default)s)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--detect-every", type=int, default=5)
    args = ap.parse_args()
    folder = Path(args.videos)
    print(f"{'video':28s} {'size':>10s} {'thr':>3s} {'pers':>4s} {'fps':>6s} | ms/frame: "
          f"{'decode':>7s} {'detect':>7s} {'landmk':>7s} {'track':>7s} {'write':>7s}")
    for name in VIDEOS:
        path = folder / name
        if not path.exists():
            print(f"{name}: missing ({path})")
            continue
        for threads in args.threads:
            r = bench(path, threads, args.detect_every)
            ms = r["ms"]
            print(f"{r['video']:28s} {r['size']:>10s} {threads:3d} {r['persons']:4d} {r['fps']:6.1f} | "
                  f"{'':9s} {ms['decode']:7.2f} {ms['detect']:7.2f} {ms['landmarks']:7.2f} "
                  f"{ms['track']:7.2f} {ms['write']:7.2f}")


if __name__ == "__main__":
    main()
