"""A tiny Kinetics-TPS folder built from real videos: humact's perception as the ground-truth humans and
part boxes, part states from a rule. Used by tests/test_parse_e2e.py and benchmarks/parse_toy_ablation.py.

The videos are linked, never copied (they are not ours to redistribute).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: name -> (file under data/media, action)
VIDEOS = {"archery_320x240": ("archery_320x240.avi", "archery"),
          "ntu_drink_1080p": ("ntu_drink_1080p.avi", "drinking"),
          "ntu_hug_1080p": ("ntu_hug_1080p.avi", "hugging")}
EVERY = 5


def toy_state(action: str, part: str, t: int, m: int) -> str:
    """The states the toy set annotates: a function of action, part, frame and person, with variety."""
    if part == "head":
        return "none" if t < 30 else "nod"
    if part.endswith("hand"):
        return {"archery": "hold_bow", "drinking": "hold_cup", "hugging": "touch"}[action] if t % 10 == 0 else "none"
    if part.endswith("arm"):
        return "bend" if (t // 10 + m) % 2 else "unbend"
    return "none"


def build_toy_tps(media: Path, root: Path, videos: dict = VIDEOS, every: int = EVERY, config=None) -> dict:
    """Write root/gt_vid_result.json, root/gt_part_result.json, root/videos/<file> (links) and
    root/run/perception/<name>.json (the perception cache `humact parse-train --out root/run` reads);
    returns {name: VideoResult}."""
    from humact.io.results import write_result_json
    from humact.parsing.dataset import frame_key
    from humact.perception.pipeline import extract_video

    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "run" / "perception").mkdir(parents=True, exist_ok=True)
    gt_vid, gt_part, results = {}, {}, {}
    for name, (file, action) in videos.items():
        link = root / "videos" / file
        if not link.exists():
            os.symlink(Path(media) / file, link)
        result = extract_video(link, config=config)
        results[name] = result
        write_result_json(result, root / "run" / "perception" / f"{name}.json")
        tr, pb = result.tracks, result.parts
        frames = {}
        for t in range(0, tr.num_frames, every):
            humans = []
            for m in np.flatnonzero(tr.valid[:, t]):
                parts = {p: {"box": [float(v) for v in pb.boxes[m, t, k]], "verb": toy_state(action, p, t, int(m))}
                         for k, p in enumerate(pb.names) if pb.valid[m, t, k]}
                humans.append({"box": [float(v) for v in tr.boxes[m, t]], "parts": parts})
            frames[frame_key(t)] = {"humans": humans}
        gt_vid[name], gt_part[name] = action, frames
    (root / "gt_vid_result.json").write_text(json.dumps(gt_vid))
    (root / "gt_part_result.json").write_text(json.dumps(gt_part))
    return results
