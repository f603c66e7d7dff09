"""End to end on a tiny Kinetics-TPS dataset built here from the shared real videos.

Ground truth: humans and part boxes are humact's own perception of each video (so a prediction from
the same perception matches them with IoU 1), part states are written by the test (`tests/tps_toy.py`'s `toy_state`), every
5th frame annotated, as the official evaluation samples. Training runs (the baseline, System 1's 7
recognisers through `humact train`'s path, System 2 (with language priors when all-MiniLM-L6-v2 is
set up), the part detector); `humact parse` writes the
official files; `humact eval tps` scores them, and the score equals the one computed here by hand.
The baseline and System 1's predictions are recomputed by hand from their definitions.

Accuracy on Kinetics-TPS itself needs its videos and annotations, which this machine cannot download.
"""

import json

import numpy as np
import pytest
import torch

from tests.conftest import shared_file
from tests.tps_toy import EVERY, VIDEOS, build_toy_tps

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tps(tmp_path_factory):
    """(root of the TPS folder, run folder with the perception cache, {video: VideoResult})."""
    torch.set_num_threads(1)
    media = shared_file("data", "media", "archery_320x240.avi").parent
    root = tmp_path_factory.mktemp("tps")
    results = build_toy_tps(media, root)
    return root, root / "run", results


@pytest.fixture(scope="module")
def trained(tps):
    from humact.parsing.predict import ParseModels, TrainOptions, train_parsing
    from humact.perception.model_files import MINILM_FILES, ModelFilesMissing, find_models

    try:   # System 2's language priors when all-MiniLM-L6-v2 is set up (`humact setup --language`)
        find_models(files=MINILM_FILES, verify=False)
        language = True
    except ModelFilesMissing:
        language = False
    root, run, _ = tps
    opts = TrainOptions(systems=("1", "2"), detector=True, language=language, epochs=2, batch_size=8,
                        recognizer_overrides={"model": "stgcnpp", "epochs": 2, "batch_size": 3, "clip_len": 24,
                                              "base_channels": 8, "test_clips": 1})
    train_parsing(root, run, opts, log=None)
    return ParseModels.load(run)


def _hand_score(gt_vid, gt_part, pred_vid, pred_state):
    """The task score by hand, for predictions whose humans and part boxes are the ground truth's:
    PSC = mean over annotated frames with parts of (parts whose state is right / parts), then
    Score = sum over t = 1..9999 of (videos with a right action and PSC >= t / 10000) / (N * 10000)."""
    psc = {}
    for v, frames in gt_part.items():
        scores = []
        for key, f in frames.items():
            total = sum(len(h["parts"]) for h in f["humans"])
            if not total:
                continue
            right = sum(pred_state(v, key, i, p) == part["verb"] for i, h in enumerate(f["humans"])
                        for p, part in h["parts"].items())
            scores.append(right / total)
        psc[v] = sum(scores) / len(scores) if scores else 1.0
    n = len(gt_vid)
    score = 0.0
    for t in range(1, 10000):
        score += 1.0 / 10000 * sum(1 for v in gt_vid if pred_vid[v] == gt_vid[v] and psc[v] >= t / 10000) / n
    return score, psc


def test_reader_and_labels_on_the_built_dataset(tps):
    from humact.parsing.dataset import read_tps
    from humact.parsing.labels import video_labels

    root, _, results = tps
    ds = read_tps(root)
    assert [v.name for v in ds.videos] == list(VIDEOS)
    assert ds.videos[0].video.name == "archery_320x240.avi"
    lab = video_labels("archery", ds.videos[0].frames)
    # archery: one person; head "none" on the annotated frames t < 30, "nod" after: counted from the frames
    heads = [p["verb"] for f in ds.videos[0].frames.values() for h in f["humans"] for n, p in h["parts"].items()
             if n == "head"]
    expect_head = "nod" if heads.count("nod") > heads.count("none") else "none"
    assert len(heads) > 20 and heads.count("none") <= 6
    assert lab["head"] == f"archery_Head_{expect_head}"


def test_training_writes_every_model(trained, tps):
    _, run, _ = tps
    manifest = json.loads((run / "parse.json").read_text())
    assert {"system1", "system2", "detector", "baseline"} <= set(manifest)
    for head in ("head", "hand", "arm", "hip", "leg", "foot", "action"):
        assert (run / "system1" / head / "j" / "model.safetensors").is_file()
    assert trained.system1 is not None and trained.system2 is not None and trained.detector is not None


def test_parse_cli_scores_as_computed_by_hand(trained, tps, tmp_path, capsys):
    """`humact parse` (System 1 states, geometric boxes) then `humact eval tps`: the score is the hand one."""
    from humact.cli import main
    from humact.parsing.labels import part_group

    root, run, results = tps
    out = tmp_path / "pred"
    assert main(["parse", str(root / "videos"), "--model", str(run), "--out", str(out), "--states", "system1",
                 "--boxes", "geometric", "--no-progress", "--threads", "1"]) == 0
    pred_vid = json.loads((out / "pred_vid_result.json").read_text())
    pred_part = json.loads((out / "pred_part_result.json").read_text())
    gt_vid = json.loads((root / "gt_vid_result.json").read_text())
    gt_part = json.loads((root / "gt_part_result.json").read_text())
    assert set(pred_vid) == set(gt_vid) == set(pred_part)
    # System 1 by hand: each head's recogniser on the video's tracks, top label -> the group's state,
    # the same on every frame's part of that group.
    expected = {}
    for v, result in results.items():
        s1 = {}
        for head, entries in trained.system1.heads.items():
            rec = entries[0][0]
            seen = result.tracks.valid.any(0)
            p = rec.predict_keypoints(result.tracks.keypoints[:, seen], result.tracks.keypoint_scores[:, seen],
                                      (result.meta.height, result.meta.width))
            s1[head] = rec.classes[int(np.argmax(p))]
        expected[v] = s1
        assert pred_vid[v] == s1["action"]
        for key, frame in pred_part[v].items():
            assert len(frame["humans"]) == len(gt_part[v][key]["humans"])
            for h in frame["humans"]:
                for name, part in h["parts"].items():
                    group = part_group(name)
                    assert part["verb"] == [s1[group].split(f"_{group.capitalize()}_", 1)[1]]
                    assert len(part["box"]) == 1

    def state(v, key, i, part):
        g = part_group(part)
        return expected[v][g].split(f"_{g.capitalize()}_", 1)[1]

    hand, _ = _hand_score(gt_vid, gt_part, pred_vid, state)
    assert main(["eval", "tps", "--gt-dir", str(root), "--pred-dir", str(out), "--no-grid"]) == 0
    ev = json.loads((out / "tps_eval.json").read_text())
    print(f"system 1: score {ev['score']:.6f} (by hand {hand:.6f}); actions {pred_vid}; labels {expected}")
    assert abs(ev["score"] - hand) < 1e-9
    # and a correct action with some wrong states scores between 0 and the action accuracy
    assert 0.0 <= hand <= sum(pred_vid[v] == gt_vid[v] for v in gt_vid) / len(gt_vid)
    # a re-run resumes: every input skipped, the official files rebuilt from the per-input parses, unchanged
    before = (out / "pred_part_result.json").read_text()
    capsys.readouterr()
    assert main(["parse", str(root / "videos"), "--model", str(run), "--out", str(out), "--states", "system1",
                 "--boxes", "geometric", "--no-progress"]) == 0
    assert "0 processed, 3 already done" in capsys.readouterr().out
    assert json.loads((out / "pred_part_result.json").read_text()) == json.loads(before)


def test_parse_one_video_with_the_detector_writes_the_annotated_video(trained, tps, tmp_path):
    from humact.cli import main
    from humact.video import probe

    root, run, results = tps
    out = tmp_path / "one"
    assert main(["parse", str(root / "videos" / "archery_320x240.avi"), "--model", str(run), "--out", str(out),
                 "--no-progress", "--threads", "1"]) == 0           # System 2 states, detector boxes
    doc = json.loads((out / "archery_320x240.avi.json").read_text())
    assert doc["states_from"] == "system2" and doc["boxes_from"] == "detector" and doc["video"] == "archery_320x240"
    assert len(doc["frames"]) == -(-results["archery_320x240"].tracks.num_frames // EVERY)
    meta = probe(out / "archery_320x240.avi.annotated.mp4")
    assert meta.num_frames == results["archery_320x240"].tracks.num_frames and meta.width == 320
    assert json.loads((out / "pred_vid_result.json").read_text()) == {"archery_320x240": doc["action"]}


def test_baseline_and_system2_and_detector(trained, tps, tmp_path):
    """The baseline reproduces its definition exactly; System 2 and the detector boxes go through the same
    writer and score as `evaluate_tps` says they should (the detector's boxes, being learned on 2 epochs,
    may miss: the hand score then counts only parts whose predicted box overlaps enough)."""
    from collections import Counter

    from humact.eval.tps import evaluate_tps, write_tps_dir
    from humact.parsing.dataset import read_tps
    from humact.parsing.predict import parse_result

    root, _, results = tps
    ds = read_tps(root)
    gt_vid, gt_part = ds.gt_files()
    # the baseline by hand: per action and part, the most frequent training state (ties: alphabetical)
    counts = {}
    for v in ds.videos:
        for f in v.frames.values():
            for h in f["humans"]:
                for p, part in h["parts"].items():
                    counts.setdefault((v.action, p), Counter())[part["verb"]] += 1
    most = {k: min(s for s, n in c.items() if n == max(c.values())) for k, c in counts.items()}
    pred_vid, pred_part = {}, {}
    for v, result in results.items():
        parse = parse_result(result, trained, states="baseline", action="system1", boxes="geometric", every=EVERY)
        pred_vid[v], pred_part[v] = parse["action"], parse["frames"]
        for frame in parse["frames"].values():
            for h in frame["humans"]:
                for p, part in h["parts"].items():
                    assert part["verb"] == [most.get((parse["action"], p), "none")]
    r = evaluate_tps(gt_vid, gt_part, pred_vid, pred_part)
    hand, psc = _hand_score(gt_vid, gt_part, pred_vid, lambda v, k, i, p: most.get((pred_vid[v], p), "none"))
    print(f"baseline: score {r.score:.6f} (by hand {hand:.6f}), PSC {psc}")
    assert abs(r.score - hand) < 1e-9
    # System 2 with the detector's boxes: files in the official layout that the evaluator accepts
    out = tmp_path / "s2"
    vid2, part2 = {}, {}
    for v, result in results.items():
        parse = parse_result(result, trained, states="system2", boxes="detector", every=EVERY)
        vid2[v], part2[v] = parse["action"], parse["frames"]
        assert parse["action"] in ds.actions
    write_tps_dir(out, "pred", vid2, part2)
    r2 = evaluate_tps(gt_vid, gt_part, *[json.loads((out / n).read_text())
                                         for n in ("pred_vid_result.json", "pred_part_result.json")])
    print(f"system 2 + detector: score {r2.score:.6f}, actions {vid2}, videos {r2.videos}")
    assert 0.0 <= r2.score <= 1.0 and set(r2.videos) == set(gt_vid)
