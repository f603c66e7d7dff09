"""AVA detector training end to end on a tiny AVA-format dataset built from the shared real videos.

The dataset (written by `make_tiny_ava`): 3 videos, keyframes at seconds 1-4 (timestamp_start 0),
hand-placed person boxes (looked at on the frames) and 3 action ids of AVA's label map (11 sit,
12 stand, 17 carry/hold); the arm-wrestling and archery clips as video files, the pool clip as an
AVA frame folder (img_%05d.jpg, 30 fps); a proposals pickle with jittered copies of the boxes (extra
positives) and a box on nobody (a negative). Accuracy on AVA needs AVA's videos; none is claimed here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tiny_ava import LABELS, make_tiny_ava, train_args as _args


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, shared):
    return make_tiny_ava(tmp_path_factory.mktemp("tiny_ava"))


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    from humact.cli import main

    out = tmp_path_factory.mktemp("ava_run") / "run"
    assert main(_args(tiny, out)) == 0
    return out


# ---------------------------------------------------------------------------------------------- data


def test_keyframes_merge_rows_into_multi_hot_labels(tiny):
    from humact.detect.dataset import read_ava_keyframes

    kfs = read_ava_keyframes(tiny["gt"], proposals=tiny["proposals"])
    assert len(kfs) == 12
    arch = next(k for k in kfs if k.key == "archery,0001")
    assert arch.boxes.shape == (1, 4) and np.flatnonzero(arch.labels[0]).tolist() == [12, 17]
    arm = next(k for k in kfs if k.key == "armwrestling,0002")
    assert arm.labels.shape == (2, 81) and arm.labels[:, 11].tolist() == [1, 1] and arm.labels[:, 0].sum() == 0
    assert np.allclose(arm.boxes[0], [0.0, 0.0, 0.55, 1.0])      # persons in order of first appearance
    assert len(arm.proposals) == 3                                 # the 0.2-scoring proposal dropped


def test_training_items_follow_mmaction2s_path(tiny):
    from humact import zoo
    from humact.detect.dataset import AVADetectionDataset, open_sources, read_ava_keyframes

    kfs = read_ava_keyframes(tiny["gt"], proposals=tiny["proposals"])
    spec = zoo.get("slowonly_r50_4x16_ava").spec
    src = open_sources(tiny["videos"], [k.video_id for k in kfs])
    assert src["pool"].folder and not src["archery"].folder
    ds = AVADetectionDataset(kfs, src, spec, scale=(64, 80), crop=64, timestamp_start=0, seed=3)
    i = [k.key for k in kfs].index("armwrestling,0002")
    x, boxes, labels = ds[i]
    assert x.shape == (3, 4, 64, 64) and boxes.shape[1] == 4
    # 2 ground-truth boxes + their 2 jittered proposals are positives; the negative is not sampled
    assert len(boxes) == 4 and labels[:, 11].tolist() == [1, 1, 1, 1] and labels[:, 0].sum() == 0
    assert float(boxes.min()) >= 0 and float(boxes.max()) <= 63
    again = ds[i]
    assert torch.equal(again[0], x) and torch.equal(again[1], boxes)        # seeded by (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[i][0], x)
    ds.negatives = True
    _, boxes_n, labels_n = ds[i]
    assert len(boxes_n) == 5 and labels_n[-1, 0] == 1 and labels_n[-1, 1:].sum() == 0   # background row
    (clips, rois), y = AVADetectionDataset.collate([ds[0], ds[1]])
    assert clips.shape[0] == 2 and rois.shape[1] == 5 and set(rois[:, 0].tolist()) == {0.0, 1.0}
    assert len(y) == len(rois)


def test_test_items_use_the_test_window(tiny):
    from humact import zoo
    from humact.detect.dataset import AVADetectionDataset, open_sources, read_ava_keyframes
    from humact.detect.keyframes import ava_clip_indices

    kfs = read_ava_keyframes(tiny["gt"])
    spec = zoo.get("slowonly_r50_4x16_ava").spec
    ds = AVADetectionDataset(kfs, open_sources(tiny["videos"], ["armwrestling", "archery", "pool"]), spec,
                             train=False, test_scale=64, timestamp_start=0)
    i = [k.key for k in kfs].index("pool,0003")
    assert ds.clip_indices(i).tolist() == ava_clip_indices(90, 150, clip_len=4, frame_interval=16).tolist()
    x, boxes, labels = ds[i]
    assert x.shape[2] == 64 and len(boxes) == 1


def test_assignment_is_maxiou_assigner_ava():
    from humact.detect.dataset import assign_labels

    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    cand = np.concatenate([gt, [[0, 0, 10, 10.5], [0, 0, 10, 13], [50, 50, 60, 60]]]).astype(np.float32)
    assert assign_labels(cand, gt, None, 0.9).tolist() == [0, 1, 0, -1, -1]


def test_ava_loss_drops_background_column_and_unlabelled_rows():
    from humact.video_models.ava import ava_loss

    logits = torch.randn(3, 5, requires_grad=True)
    labels = torch.tensor([[0, 1, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float32)
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits[[0, 2], 1:], labels[[0, 2], 1:])
    assert torch.allclose(ava_loss(logits, labels), want)
    ava_loss(logits, labels).backward()
    assert logits.grad[:, 0].abs().sum() == 0 and logits.grad[1].abs().sum() == 0
    assert ava_loss(logits, torch.zeros(3, 5)).item() == 0.0


def test_config_refuses_mismatched_kinds():
    from humact.config import load_config
    from humact.errors import ConfigError

    cfg = load_config(overrides={"model": "slowonly_r50_4x16_ava"})
    assert cfg.data.dataset == "ava" and cfg.model.norm_eval and cfg.optim.warmup_epochs == 5
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config(overrides={"model": "stgcnpp", "dataset": "ava"})
    with pytest.raises(ConfigError, match="model.norm_eval"):
        load_config(overrides={"model": "stgcnpp", "norm_eval": True})
    with pytest.raises(ConfigError, match="data.ava_crop"):
        load_config(overrides={"model": "slowonly_r50_4x16_ava", "ava_crop": 300})


# ---------------------------------------------------------------------------------------------- end to end


def test_training_loss_falls_and_writes_a_checkpoint(trained):
    meta = json.loads((trained / "model.json").read_text())
    losses = [h["loss"] for h in meta["history"]]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    assert meta["kind"] == "ava" and meta["classes"][10] == "sit" and meta["class_ids"][:2] == [1, 2]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert 0.0 <= metrics["mAP"] <= 1.0 and metrics["rows"] > 0
    assert {c["id"] for c in metrics["per_class"]} == set(LABELS)


def test_frozen_bn_statistics_do_not_move(trained):
    from humact.io.checkpoints import load_checkpoint

    tensors, _ = load_checkpoint(trained / "model.safetensors")
    means = [v for k, v in tensors.items() if k.endswith("running_mean")]
    assert means and all(float(m.abs().max()) == 0.0 for m in means)     # norm_eval: never updated


def test_detect_loads_the_checkpoint_and_eval_reads_its_csv(trained, tiny, tmp_path, capsys):
    from humact.cli import main
    from humact.eval.ava import evaluate_ava_files

    out = tmp_path / "det"
    video = tiny["videos"] / "archery.avi"
    assert main(["detect", str(video), "--out", str(out), "--model", "slowonly_r50_4x16_ava", "--checkpoint",
                 str(trained / "model.safetensors"), "--boxes", str(tiny["gt"]), "--no-video", "--no-progress"]) == 0
    csv_path = out / "archery.avi.ava.csv"
    rows = csv_path.read_text().splitlines()
    assert rows and all(r.startswith("archery,000") for r in rows)
    det = json.loads((out / "archery.avi.json").read_text())
    assert "stand" in json.dumps(det)                       # class names come from the checkpoint
    capsys.readouterr()
    assert main(["eval", "ava", "--gt", str(tiny["gt"]), "--pred", str(csv_path), "--label-map",
                 str(tiny["label_map"])]) == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed
    # the trained model's val CSV is what `humact eval ava` reads too, to the same number
    res = evaluate_ava_files(tiny["gt"], trained / "val.ava.csv", str(tiny["label_map"]))
    assert res.mAP == pytest.approx(json.loads((trained / "metrics.json").read_text())["mAP"])


def test_wrong_model_for_checkpoint_is_one_line(trained, tiny, tmp_path):
    from humact.detect.rgb import load_detector
    from humact.errors import CheckpointError

    with pytest.raises(CheckpointError, match="--model slowonly_r50_4x16_ava"):
        load_detector("slowfast_r50_4x16_ava", trained / "model.safetensors")


def test_detect_fuses_detectors_with_their_own_boxes(trained, tiny, tmp_path):
    from humact.cli import main

    out = tmp_path / "fused"
    ck = str(trained / "model.safetensors")
    assert main(["detect", str(tiny["videos"] / "archery.avi"), "--out", str(out), "--no-video", "--no-progress",
                 "--model", "slowonly_r50_4x16_ava", "--checkpoint", ck, "--boxes", str(tiny["gt"]),
                 "--model", "slowonly_r50_4x16_ava", "--checkpoint", ck, "--boxes", str(tiny["proposals"])]) == 0
    rows = [r.split(",") for r in (out / "archery.avi.ava.csv").read_text().splitlines()]
    boxes = {}
    for r in rows:
        boxes.setdefault(r[1], set()).add(tuple(r[2:6]))
    # per keyframe: the person (ground truth box and its jittered proposal, matched) and the proposal
    # on nobody, which only the second detector has and keeps with its own scores
    assert sorted(boxes) == ["0001", "0002", "0003", "0004"] and all(len(b) == 2 for b in boxes.values())
    assert all(("0.000", "0.000", "0.080", "0.080") in b for b in boxes.values())
