"""GeneratePoseTarget speed: humact's vectorised heatmaps vs PYSKL's per-joint loops.

The reference is a faithful, straightforward port of PYSKL's loop algorithm
(``pyskl/datasets/pipelines/heatmap_related.py``: one Python call per person, frame and
joint / limb), timed in the same process on the same input, so the ratio does not depend
on the machine. Timed turn about (a few calls of ours lasting about one reference call, then
the reference, ``--reps`` turns); the speed-up printed is the median of the per-turn ratios. Limbs use
PYSKL's PoseConv3D limb list. Input: the fixed (1, 48, 17, 2) keypoints of
``shared/reference/pyskl/gen_pose_target.npz`` when present (else a synthetic walking
skeleton), 56x56, sigma 0.6, use_score. PYSKL's own timings on this kind of machine
(``results.json``): 14 ms keypoints, ~73 ms limbs.

    .venv/bin/python benchmarks/heatmaps.py [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from humact.skeleton.pipelines import POSEC3D_COCO_LIMBS, generate_pose_target

SHARED = Path(os.environ.get("HUMACT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
EPS = 1e-3


# ---- reference: PYSKL's loop algorithm, ported as is (per person, frame, joint) ----------

def _ref_heatmap(arr, centers, max_values, sigma):
    img_h, img_w = arr.shape
    for center, max_value in zip(centers, max_values):
        if max_value < EPS:
            continue
        mu_x, mu_y = center[0], center[1]
        st_x = max(int(mu_x - 3 * sigma), 0)
        ed_x = min(int(mu_x + 3 * sigma) + 1, img_w)
        st_y = max(int(mu_y - 3 * sigma), 0)
        ed_y = min(int(mu_y + 3 * sigma) + 1, img_h)
        x = np.arange(st_x, ed_x, 1, np.float32)
        y = np.arange(st_y, ed_y, 1, np.float32)
        if not (len(x) and len(y)):
            continue
        y = y[:, None]
        patch = np.exp(-((x - mu_x) ** 2 + (y - mu_y) ** 2) / 2 / sigma ** 2) * max_value
        arr[st_y:ed_y, st_x:ed_x] = np.maximum(arr[st_y:ed_y, st_x:ed_x], patch)


def _ref_limb(arr, starts, ends, start_values, end_values, sigma):
    img_h, img_w = arr.shape
    for start, end, start_value, end_value in zip(starts, ends, start_values, end_values):
        value_coeff = min(start_value, end_value)
        if value_coeff < EPS:
            continue
        min_x, max_x = min(start[0], end[0]), max(start[0], end[0])
        min_y, max_y = min(start[1], end[1]), max(start[1], end[1])
        min_x = max(int(min_x - 3 * sigma), 0)
        max_x = min(int(max_x + 3 * sigma) + 1, img_w)
        min_y = max(int(min_y - 3 * sigma), 0)
        max_y = min(int(max_y + 3 * sigma) + 1, img_h)
        x = np.arange(min_x, max_x, 1, np.float32)
        y = np.arange(min_y, max_y, 1, np.float32)
        if not (len(x) and len(y)):
            continue
        y = y[:, None]
        x_0 = np.zeros_like(x)
        y_0 = np.zeros_like(y)
        d2_start = (x - start[0]) ** 2 + (y - start[1]) ** 2
        d2_end = (x - end[0]) ** 2 + (y - end[1]) ** 2
        d2_ab = (start[0] - end[0]) ** 2 + (start[1] - end[1]) ** 2
        if d2_ab < 1:
            _ref_heatmap(arr, start[None], start_value[None], sigma)
            continue
        coeff = (d2_start - d2_end + d2_ab) / 2. / d2_ab
        a_dominate = coeff <= 0
        b_dominate = coeff >= 1
        seg_dominate = 1 - a_dominate - b_dominate
        position = np.stack([x + y_0, y + x_0], axis=-1)
        projection = start + np.stack([coeff, coeff], axis=-1) * (end - start)
        d2_line = position - projection
        d2_line = d2_line[:, :, 0] ** 2 + d2_line[:, :, 1] ** 2
        d2_seg = a_dominate * d2_start + b_dominate * d2_end + seg_dominate * d2_line
        patch = np.exp(-d2_seg / 2. / sigma ** 2) * value_coeff
        arr[min_y:max_y, min_x:max_x] = np.maximum(arr[min_y:max_y, min_x:max_x], patch)


def reference_generate(kps, scores, img_shape, sigma=0.6, with_limb=False, skeletons=POSEC3D_COCO_LIMBS):
    img_h, img_w = img_shape
    T = kps.shape[1]
    C = len(skeletons) if with_limb else kps.shape[2]
    ret = np.zeros([T, C, img_h, img_w], dtype=np.float32)
    for i in range(T):
        k, s = kps[:, i], scores[:, i]
        if not with_limb:
            for j in range(k.shape[1]):
                _ref_heatmap(ret[i, j], k[:, j], s[:, j], sigma)
        else:
            for j, (a, b) in enumerate(skeletons):
                _ref_limb(ret[i, j], k[:, a], k[:, b], s[:, a], s[:, b], sigma)
    return ret


# ---- timing ----------------------------------------------------------------------------

def load_input():
    path = SHARED / "reference" / "pyskl" / "gen_pose_target.npz"
    if path.is_file():
        d = np.load(path)
        return d["keypoint"], d["keypoint_score"], str(path)
    rng = np.random.RandomState(0)
    base = np.array([[28, 10], [27, 9], [29, 9], [26, 10], [30, 10], [24, 16], [32, 16],
                     [22, 23], [34, 23], [21, 30], [35, 30], [25, 31], [31, 31], [24, 40],
                     [32, 40], [24, 50], [32, 50]], np.float32)
    kp = base[None, None] + rng.randn(1, 48, 17, 2).astype(np.float32)
    return kp, rng.uniform(0.3, 1, (1, 48, 17)).astype(np.float32), "synthetic"


def alternate(ours, ref, reps):
    """Per-call seconds of both, timed turn about so that load changes hit both alike.

    Each turn times ``n`` calls of ours in a row (``n`` chosen so that a turn of ours lasts
    about as long as one reference call): on a shared, loaded machine a 4 ms call is either
    untouched or pre-empted once (doubling it) while a 70 ms one is always pre-empted a
    few times, so single calls would compare unlike things. Returns both lists of per-call
    times, turn by turn.
    """
    t = time.perf_counter()
    ref()
    t_ref_once = time.perf_counter() - t
    t = time.perf_counter()
    ours()
    n = max(1, int(round(t_ref_once / max(time.perf_counter() - t, 1e-6))))
    t_ours, t_ref = [], []
    for i in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            ours()
        t_ours.append((time.perf_counter() - t) / n)
        t = time.perf_counter()
        ref()
        t_ref.append(time.perf_counter() - t)
    return np.array(t_ours), np.array(t_ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    kp, score, source = load_input()
    print(f"input: {source}, keypoint {kp.shape}, 56x56, sigma 0.6")
    rows = {}
    for name, limb in (("keypoints", False), ("limbs", True)):
        ours = lambda: generate_pose_target(kp, score, (56, 56), sigma=0.6, with_kp=not limb,
                                            with_limb=limb, skeletons=POSEC3D_COCO_LIMBS)
        ref = lambda: reference_generate(kp, score, (56, 56), with_limb=limb)
        err = float(np.abs(ours() - ref()).max())
        t_ours, t_ref = alternate(ours, ref, args.reps)
        our_med, our_min, ref_med, ref_min = (float(f(t)) for t in (t_ours, t_ref) for f in (np.median, np.min))
        speedup = float(np.median(t_ref / t_ours))  # the median of the per-turn ratios
        rows[name] = dict(ours_ms=our_med * 1e3, reference_ms=ref_med * 1e3, speedup=speedup,
                          speedup_min=ref_min / our_min, max_abs_diff=err)
        print(f"{name:9s}: ours {our_med * 1e3:7.2f} ms (min {our_min * 1e3:.2f}) | "
              f"PYSKL loop port {ref_med * 1e3:7.2f} ms (min {ref_min * 1e3:.2f}) | "
              f"speed-up x{speedup:.1f} (median of {args.reps} turn ratios; min/min x{ref_min / our_min:.1f})"
              f" | max |diff| {err:.1e}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
