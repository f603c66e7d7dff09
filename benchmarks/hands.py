"""Hand pipeline speed at 640 x 480, ours against MediaPipe's own Python solution, same frames, same run.

    python benchmarks/hands.py [--frames 120] [--threads 2] [--mediapipe-python PATH]

Frames: the arm-wrestling clip of `../shared/data/media/` (real hands) resized to 640 x 480,
decoded once before timing. Ours: `HandBackend` (MediaPipe's palm detector and full landmark model on
ai-edge-litert, `--threads` TFLite threads) + `HandTracker`, and again with the gesture model
(`GesturePipeline`: + PYSKL's HaGRID ST-GCN++ every 2 frames). MediaPipe:
`mediapipe.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1)`
(the same two .tflite files and graph), run by a separate interpreter: mediapipe 0.10.21 pins
numpy < 2 and pulls jax, so it lives in its own venv, by default
`~/.cache/humact-bench/mp-venv` (`python3.11 -m venv ...; pip install mediapipe==0.10.21`).
MediaPipe's solution API has no thread setting (its XNNPACK delegate picks its own).

Besides speed it prints how well ours agrees with MediaPipe: hands found on the same frames, and the
median / 95th-percentile distance of the 21 landmarks of matched hands, in pixels.

Run under `flock /tmp/humact-heavy.lock` on a shared machine.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HUMACT_SHARED", REPO.parent / "shared"))
MP_PYTHON = Path.home() / ".cache" / "humact-bench" / "mp-venv" / "bin" / "python"

_MP_SCRIPT = r"""
import json, sys, time
import numpy as np
import mediapipe as mp
frames = np.load(sys.argv[1])
out = []
with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1,
                              min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
    hands.process(frames[0])          # graph start-up outside the timing
    hands.reset() if hasattr(hands, "reset") else None
with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1,
                              min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
    t0 = time.perf_counter()
    for f in frames:
        r = hands.process(f)
        h, w = f.shape[:2]
        out.append([[[lm.x * w, lm.y * h] for lm in hl.landmark] for hl in (r.multi_hand_landmarks or [])])
    dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "landmarks": out, "version": mp.__version__}))
"""


def load_frames(n: int) -> np.ndarray:
    import cv2

    from humact.video import read_frames

    src = SHARED / "data" / "media" / "armwrestling_340x256.mp4"
    if not src.is_file():
        sys.exit(f"{src} not found: the benchmark needs the shared data")
    return np.stack([cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_LINEAR)
                     for _, rgb in read_frames(src, stop=n)])


def run_ours(frames: np.ndarray, threads: int) -> tuple[float, list[np.ndarray]]:
    from humact.perception.hands import HandBackend, HandTracker

    backend = HandBackend(num_threads=threads)
    backend.hands(frames[0])
    backend.reset()
    tracker = HandTracker()
    found = []
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        det = tracker.update(backend(f, i), i)
        found.append(det.keypoints[:, :, :2])
    return time.perf_counter() - t0, found


def run_gestures(frames: np.ndarray, threads: int) -> float | None:
    from humact.gestures import GestureOptions, GesturePipeline, gesture_frames
    from humact.skeleton.gesture import find_gesture_checkpoint

    model = SHARED / "models" / "pyskl_hagrid_stgcnpp.pth"
    try:
        path = model if model.is_file() else find_gesture_checkpoint()
    except Exception:  # noqa: BLE001 - no checkpoint anywhere: skip this line
        return None
    pipe = GesturePipeline(GestureOptions(model=path, threads=threads, person_search="off"))
    t0 = time.perf_counter()
    for _ in gesture_frames(((i, i / 30, f) for i, f in enumerate(frames)), pipe):
        pass
    return time.perf_counter() - t0


def run_mediapipe(frames: np.ndarray, python: Path) -> dict | None:
    if not python.is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "frames.npy", frames)
        proc = subprocess.run([str(python), "-c", _MP_SCRIPT, str(Path(tmp) / "frames.npy")], capture_output=True,
                              text=True, env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        print(f"MediaPipe run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def agreement(ours: list[np.ndarray], theirs: list[list]) -> dict:
    """Hands found by both / one only, and landmark distances (px) of the nearest-wrist pairs."""
    both = only_ours = only_mp = 0
    dists = []
    for a, b in zip(ours, theirs):
        b = np.array(b, np.float64).reshape(-1, 21, 2)
        used = set()
        for h in a:
            if len(b) == 0:
                only_ours += 1
                continue
            d = np.linalg.norm(b[:, 0] - h[0], axis=1)
            j = int(np.argmin(d))
            if j in used or d[j] > 40:
                only_ours += 1
                continue
            used.add(j)
            both += 1
            dists.extend(np.linalg.norm(b[j] - h, axis=1).tolist())
        only_mp += len(b) - len(used)
    d = np.array(dists) if dists else np.zeros(1)
    return {"both": both, "ours_only": only_ours, "mediapipe_only": only_mp,
            "median_px": float(np.median(d)), "p95_px": float(np.percentile(d, 95))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mediapipe-python", type=Path, default=MP_PYTHON)
    args = ap.parse_args()
    frames = load_frames(args.frames)
    n = len(frames)
    print(f"{n} frames, 640 x 480 (arm-wrestling clip resized), {args.threads} threads, {os.cpu_count()} CPUs")
    t_ours, ours = run_ours(frames, args.threads)
    print(f"ours  hands + tracking      {n / t_ours:7.1f} frames/s  ({1000 * t_ours / n:.1f} ms/frame)")
    t_g = run_gestures(frames, args.threads)
    if t_g is not None:
        print(f"ours  hands + gestures      {n / t_g:7.1f} frames/s  ({1000 * t_g / n:.1f} ms/frame)")
    mp = run_mediapipe(frames, args.mediapipe_python)
    if mp is None:
        print(f"MediaPipe: not run ({args.mediapipe_python} missing or failed; see the module docstring)")
        return
    t_mp = mp["seconds"]
    print(f"MediaPipe {mp['version']} Hands       {n / t_mp:7.1f} frames/s  ({1000 * t_mp / n:.1f} ms/frame)")
    print(f"ratio (ours hands / MediaPipe time): {t_ours / t_mp:.2f}x")
    a = agreement(ours, mp["landmarks"])
    print(f"agreement: {a['both']} hands found by both, {a['ours_only']} by ours only, {a['mediapipe_only']} by "
          f"MediaPipe only; landmark distance median {a['median_px']:.2f} px, p95 {a['p95_px']:.2f} px")


if __name__ == "__main__":
    main()
