"""Training the LFB and RGB + flow AVA detectors on the tiny AVA-format dataset, and `humact detect` on
their checkpoints (issue 17).

LFB: a narrow short-term SlowOnly is trained first; it fills the feature bank (pass 1, frozen), the
LFB detector trains on the bank windows, and `humact detect --lfb` runs pass 1 with that same
detector: its scores equal those of the training run's own evaluation. RGB + flow: the flow is
extracted under --ava-flow (video files and the frame folder), and `humact detect --flow` scores
equal the evaluation's too. Narrow models (base 8), 64-px clips, 3 epochs; nothing about accuracy.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tiny_ava import make_tiny_ava, train_args

pytestmark = pytest.mark.slow

LFB = "lfb_nl_slowonly_r50_4x16_ava"
FLOW = "rgbflow_concat_slowonly_r50_4x16_ava"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, shared):
    return make_tiny_ava(tmp_path_factory.mktemp("tiny_ava"))


@pytest.fixture(scope="module")
def short_term(tiny, tmp_path_factory):
    from humact.cli import main

    out = tmp_path_factory.mktemp("st") / "run"
    assert main(train_args(tiny, out, **{"epochs": 2, "ava-val": ""})) == 0
    return out / "model.safetensors"


@pytest.fixture(scope="module")
def lfb_run(tiny, short_term, tmp_path_factory):
    from humact.cli import main

    root = tmp_path_factory.mktemp("lfb")
    # ground-truth boxes only: the bank holds the boxes `detect --boxes gt.csv` scores, so the two agree
    args = train_args(tiny, root / "run", model=LFB, lr=0.2, **{
        "ava-proposals": "", "ava-bank": root / "bank", "ava-bank-checkpoint": short_term, "ava-lfb-window": 10})
    assert main(args) == 0
    return root


@pytest.fixture(scope="module")
def flow_run(tiny, tmp_path_factory):
    from humact.cli import main

    root = tmp_path_factory.mktemp("flow")
    args = train_args(tiny, root / "run", model=FLOW, lr=0.2, **{"ava-proposals": "", "ava-flow": root / "flow",
                                                                  "ava-flow-short-side": 64})
    assert main(args) == 0
    return root


def _losses(run):
    return [h["loss"] for h in json.loads((run / "model.json").read_text())["history"]]


def _scores(path, video):
    with open(path) as f:
        return {tuple(r[1:7]): float(r[7]) for r in csv.reader(f) if r[0] == video}


def _detect(tiny, out, model, checkpoint, flag):
    from humact.cli import main

    assert main(["detect", str(tiny["videos"] / "archery.avi"), "--out", str(out), "--model", model,
                 "--checkpoint", str(checkpoint), flag, "--boxes", str(tiny["gt"]), "--no-video", "--no-progress",
                 "--no-timeline"]) == 0
    return out / "archery.avi.ava.csv"


# ---------------------------------------------------------------------------------------------- LFB


def test_lfb_training_loss_falls_on_bank_windows(lfb_run, short_term):
    losses = _losses(lfb_run / "run")
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    meta = json.loads((lfb_run / "run" / "model.json").read_text())
    assert meta["bank"]["model"] == "slowonly_r50_4x16_ava" and meta["bank"]["channels"] == 256
    assert meta["bank"]["checkpoint"] == str(short_term.resolve()) and meta["bank"]["window"] == 10
    for vid in ("armwrestling", "archery", "pool"):                  # pass 1 covered every video
        manifest = json.loads((lfb_run / "bank" / vid / "bank.json").read_text())
        assert manifest["complete"] and manifest["shards"]["0"] == [1, 2, 3, 4]
    assert json.loads((lfb_run / "run" / "metrics.json").read_text())["rows"] > 0


def test_lfb_items_carry_their_keyframes_window(tiny, lfb_run, short_term):
    from humact.config import load_config
    from humact.train.ava import fill_bank, load_ava_data
    from humact import zoo

    cfg = load_config(overrides={"model": LFB, "data": str(tiny["gt"]), "ava_videos": str(tiny["videos"]),
                                 "ava_timestamp_start": 0, "ava_crop": 64, "ava_scale": [64, 80],
                                 "ava_bank": str(lfb_run / "bank"), "ava_bank_checkpoint": str(short_term),
                                 "ava_lfb_window": 10})
    ds = load_ava_data(cfg, zoo.get(LFB).spec, train=True)
    lines = []
    bank, _ = fill_bank(cfg, [ds], log=lines.append)
    assert "(0 computed, 12 reused)" in lines[0]                      # the complete bank is reused
    ds.bank = bank
    i = [k.key for k in ds.keyframes].index("armwrestling,0002")
    x, boxes, labels, window = ds[i]
    assert window.shape == (10 * 5, 256)
    # seconds -3..6 around second 2 (MMAction2's window: 5 before): 1..4 hold 2 persons each, the rest zeros
    held = window.reshape(10, 5, 256).abs().sum(-1) > 0
    assert held.sum(1).tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 0, 0]
    assert torch.equal(window.reshape(10, 5, 256)[5, :2], bank.read("armwrestling", 2).float())
    (clips, rois, lt), y = ds.collate([ds[i], ds[0]])
    assert lt.shape == (len(rois), 50, 256) and torch.equal(lt[0], window) and len(y) == len(rois)
    assert torch.equal(lt[len(boxes)], ds[0][3])                     # the second item's RoIs: its own window


def test_detect_loads_the_lfb_checkpoint_and_matches_training_evaluation(lfb_run, tiny, tmp_path):
    csv_path = _detect(tiny, tmp_path / "det", LFB, lfb_run / "run" / "model.safetensors", "--lfb")
    got, want = _scores(csv_path, "archery"), _scores(lfb_run / "run" / "val.ava.csv", "archery")
    assert got and set(got) == set(want)
    assert max(abs(got[k] - want[k]) for k in got) <= 2e-4          # CSV rounding
    bank = json.loads((tmp_path / "det" / "archery.avi.lfb" / "archery" / "bank.json").read_text())
    assert bank["fingerprint"]["model"] == "slowonly_r50_4x16_ava" and bank["dtype"] == "float16"


def test_detect_refuses_an_lfb_model_without_the_bank_and_a_changed_bank_detector(lfb_run, tiny, tmp_path,
                                                                                  short_term):
    from humact.cli import main
    from humact.errors import CheckpointError
    from humact.detect.streams import StreamOptions, load_stream_scorer

    ck = str(lfb_run / "run" / "model.safetensors")
    assert main(["detect", str(tiny["videos"] / "archery.avi"), "--out", str(tmp_path / "x"), "--model", LFB,
                 "--checkpoint", ck, "--boxes", str(tiny["gt"]), "--no-video", "--no-progress"]) == 2
    moved = tmp_path / "bank_detector.safetensors"
    moved.write_bytes(short_term.read_bytes() + b" ")
    meta_path = lfb_run / "run" / "model.json"
    meta = json.loads(meta_path.read_text())
    try:
        meta_path.write_text(json.dumps(meta | {"bank": meta["bank"] | {"checkpoint": str(moved)}}))
        with pytest.raises(CheckpointError, match="sha256"):
            load_stream_scorer(LFB, ck, StreamOptions(lfb=True))
    finally:
        meta_path.write_text(json.dumps(meta))


def test_training_an_lfb_model_needs_the_bank(tiny, tmp_path):
    from humact.cli import main

    assert main(train_args(tiny, tmp_path / "run", model=LFB)) == 2
    assert main(train_args(tiny, tmp_path / "run2", **{"ava-bank": tmp_path / "bank"})) == 2   # plain model


# ---------------------------------------------------------------------------------------------- flow


def test_flow_training_loss_falls_and_extracts_every_videos_flow(flow_run):
    losses = _losses(flow_run / "run")
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    for name, pairs in (("armwrestling.mp4.flow", 279), ("archery.avi.flow", 130), ("pool.flow", 149)):
        made = json.loads((flow_run / "flow" / name / "flow.json").read_text())
        assert made["pairs"] == pairs and made["spec"]["short_side"] == 64
    assert json.loads((flow_run / "run" / "model.json").read_text())["flow"]["short_side"] == 64


def test_flow_items_follow_the_rgb_geometry_and_a_flip_inverts_flow_x(tiny, flow_run):
    from humact import zoo
    from humact.detect.dataset import AVADetectionDataset, flow_folders, open_sources, read_ava_keyframes
    from humact.video_models.flow import FlowSpec

    kfs = read_ava_keyframes(tiny["gt"])
    src = open_sources(tiny["videos"], [k.video_id for k in kfs])
    flow = flow_folders(src, flow_run / "flow", FlowSpec(short_side=64))          # reused, not recomputed
    kw = dict(scale=(64, 80), crop=64, timestamp_start=0, seed=5, flow=flow)
    plain = AVADetectionDataset(kfs, src, zoo.get(FLOW).spec, flip=0.0, **kw)
    flipped = AVADetectionDataset(kfs, src, zoo.get(FLOW).spec, flip=1.0, **kw)
    i = [k.key for k in kfs].index("pool,0003")
    x0, b0, _, f0 = plain[i]
    x1, b1, _, f1 = flipped[i]
    assert f0.shape == (2, 4, 64, 64) and x0.shape == (3, 4, 64, 64)
    assert torch.equal(x1, x0.flip(-1))
    assert torch.allclose(f1[1], f0[1].flip(-1))                                   # flow_y mirrored
    assert torch.allclose(f1[0], -f0[0].flip(-1) - 1 / 128)                        # flow_x mirrored, negated
    assert float(f0.abs().max()) > 0.05                                            # there is motion
    (clips, flows, rois), y = AVADetectionDataset.collate([plain[i], plain[0]])
    assert flows.shape == (2, 2, 4, 64, 64) and clips.shape[0] == 2 and rois.shape[1] == 5


def test_detect_loads_the_flow_checkpoint_and_matches_training_evaluation(flow_run, tiny, tmp_path):
    csv_path = _detect(tiny, tmp_path / "det", FLOW, flow_run / "run" / "model.safetensors", "--flow")
    got, want = _scores(csv_path, "archery"), _scores(flow_run / "run" / "val.ava.csv", "archery")
    assert got and set(got) == set(want)
    assert max(abs(got[k] - want[k]) for k in got) <= 2e-4
    made = json.loads((tmp_path / "det" / "archery.avi.flow" / "flow.json").read_text())
    assert made["spec"]["short_side"] == 64                                       # the checkpoint's setting


def test_a_two_stream_checkpoint_needs_flow(flow_run, tiny, tmp_path):
    from humact.cli import main

    ck = str(flow_run / "run" / "model.safetensors")
    base = ["detect", str(tiny["videos"] / "archery.avi"), "--out", str(tmp_path / "x"), "--model", FLOW,
            "--checkpoint", ck, "--boxes", str(tiny["gt"]), "--no-video", "--no-progress"]
    assert main(base) == 2
    assert main(base + ["--flow", "--arm-rois"]) == 2


def test_two_stream_score_fusion_loss_is_both_streams():
    from humact.video_models.ava import ava_loss, build_detector

    model, _ = build_detector("rgbflow_score_slowonly_r50_4x16_ava", num_classes=4, base_channels=4)
    rgb, flow = torch.randn(1, 3, 4, 32, 32), torch.randn(1, 2, 4, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    out = model(rgb, flow, rois)
    y = torch.tensor([[0, 1.0, 0, 1.0]])
    assert torch.allclose(model.loss(out, y), ava_loss(out["rgb"], y) + ava_loss(out["flow"], y))
    model.loss(out, y).backward()
    assert model.rgb.backbone.conv1.conv.weight.grad is not None
    assert model.flow.backbone.conv1.conv.weight.grad is not None
    model.eval()                                                      # no dropout: predict is the forward's mean
    with torch.no_grad():
        out = model(rgb, flow, rois)
    assert np.isclose(float(model.predict(rgb, flow, rois)[0, 1]),
                      float((out["rgb"].sigmoid() + out["flow"].sigmoid())[0, 1] / 2), atol=1e-6)
