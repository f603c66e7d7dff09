"""Keyframes per second of `humact detect`: the skeleton default and SlowFast-R50 against MMAction2's
spatio-temporal demo steps, same video, same boxes, same threads, one run.

    flock /tmp/humact-heavy.lock .venv/bin/python benchmarks/detect.py [--threads 2] [--repeats 2]

Video: ../shared/data/media/armwrestling_340x256.mp4 (MMAction2's demo video), keyframes at
t = 2, 4, 6 s, two fixed person boxes. Weights: the crc32 reference recipe (speed does not depend
on them).

- SlowFast-R50 4x16 (32x2 sampling): humact = `DetectorSet.score_video` (decodes only the clips'
  frames with PyAV, resizes, normalises, the BN-folded detector); MMAction2 = the steps of
  `demo/demo_spatiotemporal_det.py` in the environment `video_backbones.py` sets up: decode the
  whole video with OpenCV (the demo also writes every frame as a JPEG; not timed here),
  `mmcv.imresize` every frame to short side 256, per keyframe `mmcv.imnormalize_` and the model
  (MMAction2's backbone, SingleRoIExtractor3D, BBoxHeadAVA; RoIAlign op: humact's, mmcv-lite has
  no compiled ops). Rounds alternate between the two; medians of `--repeats` after a warm-up.
- skeleton default: `skeleton_keyframe_scores` on the tracks of one perception run (whose time is
  printed separately); MMAction2 has no skeleton-based spatio-temporal detector to compare with.
Prints keyframes/s and the ratio (humact / MMAction2; > 1 = faster). Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import make_detect_references as ref  # noqa: E402
import video_backbones as vb  # noqa: E402

KEYFRAMES = [2, 4, 6]
BOXES = [[0.0, 20.0, 200.0, 256.0], [140.0, 0.0, 340.0, 256.0]]

BENCH = ref.PRELUDE + r'''
import time, mmcv
torch.set_num_threads(job["threads"])
m = job["model"]
backbone = MODELS.build(tup(m["backbone"])).eval()
extractor = SingleRoIExtractor3D(roi_layer_type="RoIAlign", output_size=8, with_temporal_pool=True).eval()
head = BBoxHeadAVA(background_class=True, in_channels=m["in_channels"], num_classes=81, multilabel=True,
                   dropout_ratio=0.5).eval()
sd = torch.load(m["weights"], weights_only=True)
backbone.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")}, strict=True)
head.load_state_dict({k[19:]: v for k, v in sd.items() if k.startswith("roi_head.bbox_head.")}, strict=True)
clip_len, interval = m["clip"]
mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
print("ready", flush=True)
with torch.no_grad():
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(job["video"]); orig = []
        while True:
            ok, f = cap.read()
            if not ok: break
            orig.append(f)
        oh, ow = orig[0].shape[:2]
        new_w, new_h = mmcv.rescale_size((ow, oh), (256, np.inf))
        frames_r = [mmcv.imresize(img, (new_w, new_h)) for img in orig]
        rois = torch.tensor([[0.0] + [b[0] * new_w / ow, b[1] * new_h / oh, b[2] * new_w / ow, b[3] * new_h / oh]
                             for b in job["boxes"]], dtype=torch.float32)
        t_model = 0.0
        for ts in job["keyframes"]:
            timestamp = int(round(ts * fps)) + 1            # the demo's 1-based centre frame
            start = timestamp - (clip_len // 2 - 1) * interval
            inds = [i - 1 for i in start + np.arange(0, clip_len * interval, interval)]
            imgs = [frames_r[i].astype(np.float32) for i in inds]
            for img in imgs:
                mmcv.imnormalize_(img, mean, std, to_rgb=False)
            x = torch.from_numpy(np.stack(imgs).transpose((3, 0, 1, 2))[np.newaxis])
            t1 = time.perf_counter()
            scores = head(extractor(backbone(x), rois)[0]).sigmoid()
            t_model += time.perf_counter() - t1
        print(json.dumps({"seconds": time.perf_counter() - t0, "model": t_model}), flush=True)
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from humact.detect.keyframes import KeyframeBoxes, Keyframes, boxes_from_tracks, keyframes_at_rate
    from humact.detect.rgb import DetectorSet, load_detector
    from humact.video_models.ava import build_detector
    from humact.detect.skeleton import skeleton_keyframe_scores
    from humact.io.checkpoints import reference_weights
    from humact.perception.pipeline import ExtractConfig, extract_video
    from humact.recognize.skeleton import DEFAULT_MODEL, Recognizer
    from humact.video import probe

    video = ref.VIDEO
    meta = probe(video)
    vb.setup_env()
    print(f"torch {torch.__version__}, {args.threads} threads, {video.name}, median of {args.repeats} "
          f"interleaved rounds after a warm-up")
    print(f"{'path':34s} {'humact kf/s':>12s} {'mmaction2 kf/s':>15s} {'ratio':>6s}")

    # --- SlowFast-R50 vs MMAction2's demo steps
    name = "slowfast_r50_4x16_ava"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, _ = build_detector(name)
        sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
        torch.save(sd, tmp / "w.pth")
        det = DetectorSet([load_detector(name, tmp / "w.pth")], tuple(f"a{i}" for i in range(80)),
                          np.arange(1, 81))
        m = dict(ref.MODELS[name], weights=str(tmp / "w.pth"))
        job = {"repo": str(ref.ROOT), "video": str(video), "threads": args.threads, "model": m,
               "keyframes": KEYFRAMES, "boxes": BOXES}
        (tmp / "job.json").write_text(json.dumps(job))
        worker = subprocess.Popen([str(vb.PY), "-c", BENCH, str(tmp / "job.json")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while True:
            line = worker.stdout.readline()
            if not line:
                raise SystemExit(f"MMAction2 worker failed:\n{worker.stderr.read()[-3000:]}")
            if line.strip() == "ready":
                break
        times = np.array(KEYFRAMES, np.float64)
        kf = Keyframes(times, np.round(times * meta.fps).astype(np.int64), times.astype(np.int64))
        n = len(KEYFRAMES)
        boxes = KeyframeBoxes(np.repeat(np.arange(n), len(BOXES)), np.tile(np.array(BOXES, np.float32), (n, 1)),
                              np.full(n * len(BOXES), -1), np.ones(n * len(BOXES), np.float32))
        mine, theirs, theirs_model = [], [], []
        for i in range(args.repeats + 1):
            worker.stdin.write("run\n")
            worker.stdin.flush()
            r = json.loads(worker.stdout.readline())
            t = time.perf_counter()
            det.score_video(video, meta, kf, boxes, chunk=8)
            if i:
                mine.append(time.perf_counter() - t)
                theirs.append(r["seconds"])
                theirs_model.append(r["model"])
        worker.stdin.close()
        worker.wait()
    ours, mm = n / statistics.median(mine), n / statistics.median(theirs)
    print(f"{'SlowFast-R50 4x16, 2 boxes':34s} {ours:12.3f} {mm:15.3f} {ours / mm:6.2f}"
          f"   (MMAction2 model alone: {n / statistics.median(theirs_model):.3f} kf/s)", flush=True)

    # --- skeleton default
    t = time.perf_counter()
    result = extract_video(video, config=ExtractConfig(threads=args.threads))
    t_perc = time.perf_counter() - t
    rec = Recognizer.from_checkpoint(DEFAULT_MODEL)
    kf = keyframes_at_rate(meta)
    boxes = boxes_from_tracks(result.tracks, kf, meta)
    row_of = {int(t): i for i, t in enumerate(result.tracks.track_ids.tolist())}
    rows = np.array([row_of[int(t)] for t in boxes.track_ids], np.int64)
    runs = []
    for i in range(args.repeats + 1):
        t = time.perf_counter()
        skeleton_keyframe_scores(rec, result.tracks, meta, kf, boxes, rows)
        if i:
            runs.append(time.perf_counter() - t)
    s = statistics.median(runs)
    print(f"{'skeleton default (scoring)':34s} {len(kf) / s:12.3f} {'-':>15s} {'-':>6s}"
          f"   ({len(boxes)} person boxes on {len(kf)} keyframes; no MMAction2 counterpart)")
    print(f"{'skeleton default (+ perception)':34s} {len(kf) / (s + t_perc):12.3f} {'-':>15s} {'-':>6s}"
          f"   (perception {meta.num_frames / t_perc:.1f} frames/s)")


if __name__ == "__main__":
    main()
