"""AVA frame-mAP speed and memory: humact vs the official algorithm, measured in the same run.

Generates a realistically sized input (default 64 videos x 900 keyframes x 3 persons,
every one of the 60 classes scored per person: ~10.4 M detection rows, ~500 MB CSV,
scores written with 4 decimals so ties are common) under --workdir, then times, each in
a fresh subprocess (so peak RSS is the evaluator's own):

  1. humact.eval.ava.evaluate_ava_files on the full input (end to end, CSV parsing included);
  2. the reference on a subset of --ref-videos videos, and humact on the same subset
     (the ratio is taken there; the official code needs 5-10 minutes for the full input).

The reference is the official algorithm: MMAction2's copy of the ActivityNet
object_detection code when `--ref mmaction2` and it can be pip-installed (with --no-deps)
into a separate venv under --workdir, otherwise the plain re-statement in
tests/ava_oracle.py (`--ref oracle`, the default). Both also check that the mAPs agree.

    python benchmarks/ava_eval.py [--videos 64] [--ref-videos 4] [--workdir /tmp/humact_ava_bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HUMACT_SHARED", REPO.parent / "shared"))
LABEL_MAP = SHARED / "reference/ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt"


def class_ids(path: Path) -> list[int]:
    return [int(line.split(":")[1]) for line in open(path) if line.strip().startswith("id:")]


def generate(workdir: Path, videos: int, keyframes: int, persons: int, seed: int = 0) -> tuple[Path, Path]:
    """Write gt.csv and det.csv: per person 1-3 true actions, detections for all classes,
    boxes jittered around the truth, scores with 4 decimals (true classes score higher)."""
    workdir.mkdir(parents=True, exist_ok=True)
    gt_path, det_path = workdir / f"gt_{videos}.csv", workdir / f"det_{videos}.csv"
    if gt_path.exists() and det_path.exists():
        return gt_path, det_path
    rng = np.random.default_rng(seed)
    ids = np.array(class_ids(LABEL_MAP))
    c = len(ids)
    with open(str(gt_path) + ".tmp", "w") as fg, \
            open(str(det_path) + ".tmp", "w") as fd:
        for v in range(videos):
            vid = f"v{v:03d}_{rng.integers(1 << 30):09d}"[:11]
            n = keyframes * persons
            ts = np.repeat(np.arange(902, 902 + keyframes), persons)
            x1 = rng.uniform(0, 0.6, n)
            y1 = rng.uniform(0, 0.5, n)
            box = np.stack([x1, y1, x1 + rng.uniform(0.1, 0.4, n), y1 + rng.uniform(0.2, 0.5, n)], 1)
            pid = np.tile(np.arange(persons), keyframes)
            gt_lines = []
            truth = np.zeros((n, c), bool)
            for i in range(n):
                acts = rng.choice(c, size=rng.integers(1, 4), replace=False)
                truth[i, acts] = True
                b = box[i]
                for a in acts:
                    gt_lines.append(f"{vid},{ts[i]:04d},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{ids[a]},{pid[i]}\n")
            fg.write("".join(gt_lines))
            dbox = np.clip(box + rng.normal(0, 0.03, box.shape), 0, 1)
            score = np.round(np.clip(rng.beta(1, 6, (n, c)) + truth * rng.uniform(0, 0.6, (n, c)), 0, 1), 4)
            rows = []
            for i in range(n):
                head = f"{vid},{ts[i]:04d},{dbox[i, 0]:.3f},{dbox[i, 1]:.3f},{dbox[i, 2]:.3f},{dbox[i, 3]:.3f},"
                rows.extend(f"{head}{ids[a]},{score[i, a]:.4f}\n" for a in range(c))
            fd.write("".join(rows))
    os.replace(str(gt_path) + ".tmp", gt_path)
    os.replace(str(det_path) + ".tmp", det_path)
    return gt_path, det_path


def subset(path: Path, videos: int, out: Path) -> Path:
    """The rows of the first `videos` videos of a generated file."""
    if out.exists():
        return out
    keep = set()
    with open(path) as f, open(str(out) + ".tmp", "w") as g:
        for line in f:
            v = line[: line.index(",")]
            if v not in keep:
                if len(keep) == videos:
                    break
                keep.add(v)
            g.write(line)
    os.replace(str(out) + ".tmp", out)
    return out


_RUN_OURS = """
import json, resource, sys, time
t = time.perf_counter()
from humact.eval.ava import evaluate_ava_files
r = evaluate_ava_files(sys.argv[1], sys.argv[2], sys.argv[3])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "mAP": r.mAP, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stats": r.stats}))
"""

_RUN_ORACLE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
t = time.perf_counter()
import ava_oracle
_, m = ava_oracle.evaluate(sys.argv[1], sys.argv[2], sys.argv[3])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "mAP": m, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_RUN_MMACTION = """
import json, resource, sys, time
t = time.perf_counter()
from mmaction.evaluation.functional.ava_utils import ava_eval
m = ava_eval(sys.argv[2], "mAP", sys.argv[3], sys.argv[1], None, verbose=False, custom_classes=None)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "mAP": float(m["mAP@0.5IOU"]), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(python: str, code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--keyframes", type=int, default=900)
    ap.add_argument("--persons", type=int, default=3)
    ap.add_argument("--ref-videos", type=int, default=2, help="videos in the subset timed with the reference")
    ap.add_argument("--ref", choices=("oracle", "mmaction2", "none"), default="oracle")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/humact_ava_bench"))
    args = ap.parse_args()
    if not LABEL_MAP.exists():
        print(f"label map not found at {LABEL_MAP} (set HUMACT_SHARED)")
        return 2
    t = time.perf_counter()
    gt, det = generate(args.workdir, args.videos, args.keyframes, args.persons)
    size = det.stat().st_size / 1e6
    rows = sum(1 for _ in open(det, "rb")) if size < 50 else int(det.stat().st_size / 47.5)
    print(f"input: {det} ({size:.0f} MB, ~{rows / 1e6:.1f} M rows), generated/found in {time.perf_counter() - t:.0f} s")
    print(f"load average before: {load()} (machine shared; {os.cpu_count()} cores)")
    ours = run(sys.executable, _RUN_OURS, gt, det, LABEL_MAP)
    print(f"humact full input: {ours['seconds']:.2f} s, peak RSS {ours['peak_rss_mb']:.0f} MB, mAP {ours['mAP']:.6f}, "
          f"{ours['stats']}   (load now {load()})")
    if args.ref == "none":
        return 0
    sg = subset(gt, args.ref_videos, args.workdir / f"gt_sub{args.ref_videos}.csv")
    sd = subset(det, args.ref_videos, args.workdir / f"det_sub{args.ref_videos}.csv")
    ours_s = run(sys.executable, _RUN_OURS, sg, sd, LABEL_MAP)
    if args.ref == "mmaction2":
        py = setup_mmaction2(args.workdir)
        ref = run(py, _RUN_MMACTION, sg, sd, LABEL_MAP)
        name = "MMAction2 ava_eval (same run)"
    else:
        ref = run(sys.executable, _RUN_ORACLE, sg, sd, LABEL_MAP, REPO / "tests")
        name = "official algorithm, tests/ava_oracle.py (same run)"
    print(f"subset of {args.ref_videos} videos: humact {ours_s['seconds']:.2f} s, {name} {ref['seconds']:.2f} s, "
          f"ratio {ref['seconds'] / ours_s['seconds']:.1f}x; mAP humact {ours_s['mAP']!r} reference {ref['mAP']!r} "
          f"({'equal' if ours_s['mAP'] == ref['mAP'] else 'DIFFERENT'}); peak RSS {ours_s['peak_rss_mb']:.0f} vs "
          f"{ref['peak_rss_mb']:.0f} MB   (load now {load()})")
    return 0


def setup_mmaction2(workdir: Path) -> str:
    """A venv under `workdir` with mmaction2 (--no-deps) and numpy: only its ava_utils are imported."""
    venv = workdir / "mmaction2_venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", "mmengine", "--no-deps"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "mmaction2", "--no-deps"], check=True)
    return str(py)


if __name__ == "__main__":
    sys.exit(main())
