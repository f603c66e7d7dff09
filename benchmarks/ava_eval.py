"""AVA frame-mAP speed and memory: humact vs the official evaluator, measured in the same run.

Generates a realistically sized input (default 64 videos x 900 keyframes x 3 persons,
every one of the 60 classes scored per person: ~10.4 M detection rows, ~530 MB CSV,
scores written with 4 decimals so ties are common) under --workdir, then times, each in
a fresh subprocess (so peak RSS is the evaluator's own; wall and CPU seconds):

  1. humact.eval.ava.evaluate_ava_files on the full input (end to end, CSV parsing included);
  2. the reference on the first --ref-videos videos, and humact on the same subset (the
     ratio is taken there: the official code needs 5-10 minutes for the full input).

References (--ref):
  official  (default) the official evaluation library -- the TensorFlow object_detection
            code of ActivityNet's get_ava_performance.py (PascalDetectionEvaluator,
            per_image_evaluation, metrics, np_box_ops), as bundled by PyPI's `pyslowfast`,
            pip-installed with --no-deps into a separate venv under --workdir, driven like
            get_ava_performance.run_evaluation (top-50 heap reader from tests/ava_oracle.py).
            That copy uses the aliases np.float / np.NAN, removed from numpy 2; the runner
            restores them (float, nan) before importing it. Per-class APs are compared.
  oracle    tests/ava_oracle.py alone (the plain re-statement used by the tests).

    python benchmarks/ava_eval.py [--videos 64] [--ref-videos 4] [--ref official|oracle|none]
    python benchmarks/ava_eval.py --ref-videos 64     # the reference on the full input too
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
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "cpu_seconds": ru.ru_utime + ru.ru_stime, "mAP": r.mAP,
                  "peak_rss_mb": ru.ru_maxrss / 1024, "stats": r.stats,
                  "per_class": {r.names[c]: ap for c, ap in r.ap.items()}}))
"""

_RUN_ORACLE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
t = time.perf_counter()
import ava_oracle
ap, m = ava_oracle.evaluate(sys.argv[1], sys.argv[2], sys.argv[3])
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
_, names = ava_oracle.read_labelmap(sys.argv[3])
print(json.dumps({"seconds": dt, "cpu_seconds": ru.ru_utime + ru.ru_stime, "mAP": m,
                  "peak_rss_mb": ru.ru_maxrss / 1024, "per_class": {names[c]: v for c, v in ap.items()}}))
"""

_RUN_OFFICIAL = """
import importlib.util, json, resource, sys, time
import numpy as np
np.float = float      # aliases the bundled (numpy 1.x era) code uses
np.NAN = np.nan
t = time.perf_counter()
pkg = sys.argv[5]
spec = importlib.util.spec_from_file_location("ava_evaluation", pkg + "/__init__.py", submodule_search_locations=[pkg])
mod = importlib.util.module_from_spec(spec)
sys.modules["ava_evaluation"] = mod
spec.loader.exec_module(mod)
from ava_evaluation import object_detection_evaluation, standard_fields
sys.path.insert(0, sys.argv[4])
import ava_oracle
ids, names = ava_oracle.read_labelmap(sys.argv[3])
ev = object_detection_evaluation.PascalDetectionEvaluator([{"id": i, "name": names[i]} for i in ids])
F, D = standard_fields.InputDataFields, standard_fields.DetectionResultFields
gt = ava_oracle.read_csv(sys.argv[1], set(ids), 0, "activitynet-2019")
for key, rows in gt.items():
    ev.add_single_ground_truth_image_info(key, {
        F.groundtruth_boxes: np.array([r[2:] for r in rows], dtype=float),
        F.groundtruth_classes: np.array([r[1] for r in rows], dtype=int),
        F.groundtruth_difficult: np.zeros(len(rows), dtype=bool)})
det = ava_oracle.read_csv(sys.argv[2], set(ids), 50, "activitynet-2019")
for key, rows in det.items():
    ev.add_single_detected_image_info(key, {
        D.detection_boxes: np.array([r[2:] for r in rows], dtype=float),
        D.detection_classes: np.array([r[1] for r in rows], dtype=int),
        D.detection_scores: np.array([r[0] for r in rows], dtype=float)})
m = ev.evaluate()
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
per_class = {k.split("IOU/", 1)[1]: float(v) for k, v in m.items() if "PerformanceByCategory" in k and v == v}
print(json.dumps({"seconds": dt, "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "mAP": float(m["PascalBoxes_Precision/mAP@0.5IOU"]),
                  "peak_rss_mb": ru.ru_maxrss / 1024, "per_class": per_class}))
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
    ap.add_argument("--ref-videos", type=int, default=4, help="videos in the subset timed with the reference")
    ap.add_argument("--ref", choices=("official", "oracle", "none"), default="official")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/humact_ava_bench"))
    args = ap.parse_args()
    if not LABEL_MAP.exists():
        print(f"label map not found at {LABEL_MAP} (set HUMACT_SHARED)")
        return 2
    t = time.perf_counter()
    gt, det = generate(args.workdir, args.videos, args.keyframes, args.persons)
    rows = args.videos * args.keyframes * args.persons * 60
    print(f"input: {det} ({det.stat().st_size / 1e6:.0f} MB, {rows / 1e6:.2f} M detection rows), "
          f"ready in {time.perf_counter() - t:.0f} s")
    print(f"machine: {os.cpu_count()} cores, shared; load average before: {load()}")
    ours = run(sys.executable, _RUN_OURS, gt, det, LABEL_MAP)
    print(f"humact, full input: {ours['seconds']:.2f} s wall, {ours['cpu_seconds']:.2f} s CPU, "
          f"peak RSS {ours['peak_rss_mb']:.0f} MB, mAP {ours['mAP']:.6f}  (load after: {load()})")
    print(f"  {ours['stats']}")
    if args.ref == "none":
        return 0
    if args.ref_videos >= args.videos:   # the reference on the full input (5-10 minutes)
        args.ref_videos = args.videos
        sg, sd, ours_s = gt, det, ours
    else:
        sg = subset(gt, args.ref_videos, args.workdir / f"gt_sub{args.ref_videos}.csv")
        sd = subset(det, args.ref_videos, args.workdir / f"det_sub{args.ref_videos}.csv")
        ours_s = run(sys.executable, _RUN_OURS, sg, sd, LABEL_MAP)
    if args.ref == "official":
        py, pkg = setup_reference(args.workdir)
        ref = run(py, _RUN_OFFICIAL, sg, sd, LABEL_MAP, REPO / "tests", pkg)
        name = "official evaluation library (pyslowfast's copy)"
    else:
        ref = run(sys.executable, _RUN_ORACLE, sg, sd, LABEL_MAP, REPO / "tests")
        name = "tests/ava_oracle.py"
    same = ours_s["per_class"] == ref["per_class"] and ours_s["mAP"] == ref["mAP"]
    print(f"{'full input' if sg is gt else 'subset'}: {args.ref_videos} videos ({args.ref_videos * args.keyframes * args.persons * 60 / 1e6:.2f} M rows):")
    print(f"  humact    {ours_s['seconds']:8.2f} s wall {ours_s['cpu_seconds']:8.2f} s CPU  "
          f"peak RSS {ours_s['peak_rss_mb']:6.0f} MB  mAP {ours_s['mAP']!r}")
    print(f"  reference {ref['seconds']:8.2f} s wall {ref['cpu_seconds']:8.2f} s CPU  "
          f"peak RSS {ref['peak_rss_mb']:6.0f} MB  mAP {ref['mAP']!r}  [{name}]")
    print(f"  speed-up {ref['seconds'] / ours_s['seconds']:.1f}x wall, {ref['cpu_seconds'] / ours_s['cpu_seconds']:.1f}x CPU; "
          f"per-class APs and mAP {'IDENTICAL' if same else 'DIFFER'} over {len(ref['per_class'])} classes "
          f"(load after: {load()})")
    return 0 if same else 1


def setup_reference(workdir: Path) -> tuple[str, str]:
    """A venv under `workdir` with numpy and PyPI's pyslowfast (--no-deps): returns (python,
    folder of its bundled copy of the official AVA evaluation library)."""
    venv = workdir / "reference_venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", "pyslowfast==1.0", "--no-deps"], check=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    pkg = Path(site) / "slowfast" / "utils" / "ava_evaluation"
    if not (pkg / "object_detection_evaluation.py").exists():
        raise RuntimeError(f"{pkg}: pyslowfast's ava_evaluation package not found")
    return str(py), str(pkg)


if __name__ == "__main__":
    sys.exit(main())
