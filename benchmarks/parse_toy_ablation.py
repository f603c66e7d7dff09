"""The part detector's keypoint-dot ablation on the toy TPS set (an accuracy check, not a speed benchmark).

Builds `tests/tps_toy.py`'s set from `../shared/data/media` (ground-truth part boxes = humact's
geometric boxes from perception), trains the pose-guided part detector with and without the keypoint
dots on the annotated humans of two videos and measures, on the third (held out), the top-1 box of
each annotated part: mean IoU with the ground truth and the fraction with IoU >= 0.5. Every video
takes its turn as the held-out one.

On Kinetics-TPS the system reports +20.7 part AP from the dots; that needs the dataset. Here the
target boxes are a function of the keypoints, so the dots carry most of the answer: the figure shows
the switch works, not what it is worth on real annotations.

    flock /tmp/humact-heavy.lock python benchmarks/parse_toy_ablation.py [--epochs 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from humact.parsing.dataset import read_tps
    from humact.parsing.detector import DetectorConfig, PartDetector, decode, detector_items, train_detector
    from humact.perception.boxes import box_iou
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tps_toy import VIDEOS, build_toy_tps

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "media"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        results = build_toy_tps(Path(args.media), Path(tmp))
        ds = read_tps(tmp)
        rows = []
        for held in VIDEOS:
            train, test = ds.subset([v for v in VIDEOS if v != held]), ds.subset([held])
            for dots in (True, False):
                cfg = DetectorConfig(dots=dots)
                model, hist = train_detector(detector_items(train, results, cfg), cfg, epochs=args.epochs, seed=0)
                items = detector_items(test, results, cfg)
                x = torch.from_numpy(np.stack([i[0] for i in items]))
                with torch.no_grad():
                    boxes, _ = decode(*model(x), PartDetector.stride)
                ious = [box_iou(boxes[k, p].numpy()[None], it[1][p][None])[0, 0]
                        for k, it in enumerate(items) for p in np.flatnonzero(it[2])]
                rows.append((held, dots, len(items), len(ious), float(np.mean(ious)),
                             float(np.mean(np.array(ious) >= 0.5)), hist[-1]))
                print(f"held out {held}: dots {'on ' if dots else 'off'} {len(items)} humans, {len(ious)} parts: "
                      f"mean IoU {rows[-1][4]:.3f}, IoU>=0.5 {rows[-1][5]:.3f} (final train loss {hist[-1]:.3f})",
                      flush=True)
    for dots in (True, False):
        sel = [r for r in rows if r[1] == dots]
        n = sum(r[3] for r in sel)
        print(f"dots {'on ' if dots else 'off'}: mean IoU {sum(r[4] * r[3] for r in sel) / n:.3f}, "
              f"IoU>=0.5 {sum(r[5] * r[3] for r in sel) / n:.3f} over {n} held-out parts")


if __name__ == "__main__":
    main()
