"""The tiny AVA-format dataset of the AVA training tests, built from the shared real videos.

`make_tiny_ava(root)` writes 3 videos, keyframes at seconds 1-4 (timestamp_start 0), hand-placed
person boxes (looked at on the frames) and 3 action ids of AVA's label map (11 sit, 12 stand,
17 carry/hold); the arm-wrestling and archery clips as video files, the pool clip as an AVA frame
folder (img_%05d.jpg, 30 fps); a proposals pickle with jittered copies of the boxes (extra positives)
and a box on nobody (a negative). `train_args` gives `humact train`'s flags for a narrow model on it.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np

from conftest import shared_file

LABELS = {11: "sit", 12: "stand", 17: "carry/hold (an object)"}
# video id -> (source, per second 1..4 the persons' normalised boxes, their action ids)
TINY = {
    "armwrestling": ("armwrestling_340x256.mp4", [[(0.0, 0.0, 0.55, 1.0), (0.45, 0.0, 1.0, 1.0)]] * 4, [[11], [11]]),
    "archery": ("archery_320x240.avi", [[(0.12, 0.27, 0.63, 1.0)]] * 3 + [[(0.15, 0.15, 0.65, 1.0)]], [[12, 17]]),
    "pool": ("pool_cleaning_340x256.mp4", [[(0.84, 0.0, 1.0, 0.5)], [(0.78, 0.0, 1.0, 0.38)],
                                          [(0.69, 0.0, 0.92, 0.48)], [(0.54, 0.0, 0.74, 0.48)]], [[12, 17]]),
}


def make_tiny_ava(root: Path) -> dict[str, Path]:
    """Write the tiny dataset under `root`; returns its paths."""
    from PIL import Image

    from humact.video import read_frames

    videos = root / "videos"
    videos.mkdir(parents=True)
    for vid, (name, _, _) in TINY.items():
        src = shared_file("data", "media", name)
        if vid == "pool":       # an AVA frame folder: the first 5 s at 30 fps
            (videos / vid).mkdir()
            for i, frame in read_frames(src, indices=range(150)):
                Image.fromarray(frame).save(videos / vid / f"img_{i + 1:05d}.jpg", quality=90)
        else:
            (videos / f"{vid}{Path(name).suffix}").symlink_to(src)
    gt = root / "gt.csv"
    proposals = {}
    rng = np.random.default_rng(0)
    with gt.open("w", newline="") as f:
        w = csv.writer(f)
        for vid, (_, per_second, actions) in TINY.items():
            for ts, boxes in enumerate(per_second, start=1):
                props = []
                for pid, (box, acts) in enumerate(zip(boxes, actions)):
                    for a in acts:
                        w.writerow([vid, f"{ts:04d}", *(f"{v:.3f}" for v in box), a, pid])
                    jitter = np.clip(np.asarray(box) + rng.uniform(-0.01, 0.01, 4), 0, 1)
                    props.append([*jitter, 0.98])
                props.append([0.0, 0.0, 0.08, 0.08, 0.95])     # nobody there: a negative
                props.append([0.3, 0.3, 0.5, 0.5, 0.2])        # below the 0.9 score threshold
                proposals[f"{vid},{ts:04d}"] = np.array(props)
    pkl = root / "proposals.pkl"
    pkl.write_bytes(pickle.dumps(proposals))
    label_map = root / "labels.pbtxt"
    label_map.write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in LABELS.items()))
    return {"videos": videos, "gt": gt, "proposals": pkl, "label_map": label_map}


def train_args(data: dict, out: Path, **extra) -> list[str]:
    flags = {"model": "slowonly_r50_4x16_ava", "data": data["gt"], "ava-videos": data["videos"],
             "ava-proposals": data["proposals"], "ava-label-map": data["label_map"], "ava-val": data["gt"],
             "ava-timestamp-start": 0, "ava-crop": 64, "ava-test-scale": 64, "base-channels": 8,
             "epochs": 3, "batch-size": 2, "lr": 0.5, "warmup-epochs": 0, "seed": 0, "out": out}
    flags.update(extra)
    argv = ["train", "--quiet", "--ava-scale", "64", "80"]
    for k, v in flags.items():
        argv += [f"--{k}", str(v)]
    return argv
