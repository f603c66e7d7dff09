"""`humact train --model rgbposeconv3d` / `humact test` / `humact classify` on `humact extract` outputs.

The test builds a tiny labelled folder from the shared videos: 6 cuts of 8 frames from archery and
6 from pool cleaning (class = sub-folder), runs `humact extract --label-from-folder` on them once,
keeps 4 + 4 for training and 2 + 2 for testing. The training pickles are copied 8 times (the same
poses and video, drawn with other random clips, crops and flips) so that an epoch of batch 8 has 8
optimisation steps: BatchNorm on 2 steps of 4 videos is too noisy to show the loss falling. A
narrow RGBPoseConv3D (base width 8, 8 pose / 2 RGB frames, heatmaps 16 px, RGB 64 px) trains on CPU
in seconds. Needs the shared videos and the pose model files; skips with the reason otherwise.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import shared_file
from humact.cli import main

pytestmark = pytest.mark.slow

SOURCES = {"archery": "archery_320x240.avi", "cleaning": "pool_cleaning_340x256.mp4"}
TINY = ["--model", "rgbposeconv3d", "--batch-size", "8", "--base-channels", "8", "--clip-len", "8",
        "--heatmap-size", "16", "--heatmap-test-size", "16", "--test-clips", "2", "--val-fraction", "0",
        "--num-threads", "1", "--lr", "0.01", "--dropout", "0", "--quiet"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.pipeline import ExtractConfig, make_backend
    from humact.video import VideoWriter, probe, read_frames

    try:
        make_backend(ExtractConfig())
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")
    root = tmp_path_factory.mktemp("rgbpose")
    for cls, name in SOURCES.items():
        src = shared_file("data", "media", name)
        fps = probe(src).fps
        for k in range(6):
            out = root / "videos" / cls / f"{cls[:3]}{k}.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            frames = [f for _, f in read_frames(src, start=20 * k, stop=20 * k + 8)]
            with VideoWriter(out, width=frames[0].shape[1], height=frames[0].shape[0], fps=fps) as w:
                for i, f in enumerate(frames):
                    w.write(f, i / fps)
    torch.set_num_threads(1)
    assert main(["extract", str(root / "videos"), "--out", str(root / "extract"), "--label-from-folder",
                 "--no-video", "--threads", "1", "--no-progress"]) == 0
    train, test = root / "train", root / "test"
    for cls in SOURCES:
        for d in (train, test):
            (d / cls).mkdir(parents=True)
        for k in range(6):
            stem = root / "extract" / cls / f"{cls[:3]}{k}.mp4"
            if k < 4:
                for c in range(8):
                    shutil.copy(stem.with_name(stem.name + ".pkl"), train / cls / f"{cls[:3]}{k}_{c}.pkl")
            else:
                for suffix in (".pkl", ".json"):
                    shutil.move(stem.with_name(stem.name + suffix), test / cls / (stem.name + suffix))
    return root


@pytest.fixture(scope="module")
def trained(folders):
    out = folders / "run"
    assert main(["train", "--data", str(folders / "train"), "--out", str(out), "--epochs", "2", *TINY]) == 0
    return out


def test_extract_records_the_video_each_pickle_was_made_from(folders):
    from humact.io.results import read_pyskl_pickle

    anno = read_pyskl_pickle(folders / "test" / "archery" / "arc4.mp4.pkl")
    assert anno["filename"] == str(folders / "videos" / "archery" / "arc4.mp4")


def test_two_epochs_lower_the_two_pathway_loss(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["config"]["model"]["name"] == "rgbposeconv3d" and meta["in_channels"] == 17
    assert meta["config"]["optim"]["nesterov"] is False and meta["config"]["optim"]["schedule"] == "multistep"
    losses = [h["loss"] for h in meta["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert 1.0 < losses[0] < 2.0  # two cross-entropies of two classes start near 2 ln 2 = 1.39


def test_humact_test_scores_each_head_and_their_fusion_on_held_out_videos(trained, folders, tmp_path):
    assert main(["test", str(trained / "model.safetensors"), "--data", str(folders / "test"), "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_samples"] == 4 and metrics["model"] == "rgbposeconv3d" and metrics["num_clips"] == 2
    assert {"rgb_top1", "pose_top1", "top1"} <= set(metrics)
    scores = np.load(tmp_path / "scores.npy")
    assert scores.shape == (4, 2)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)


def test_classify_with_the_extract_pose_fuses_the_heads_one_to_one(trained, folders, tmp_path, capsys):
    video = folders / "videos" / "cleaning" / "cle5.mp4"
    pose = folders / "test" / "cleaning" / "cle5.mp4.pkl"
    out = tmp_path / "c.json"
    assert main(["classify", str(video), "--model", "rgbposeconv3d", "--checkpoint",
                 str(trained / "model.safetensors"), "--pose", str(pose), "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 clips x 1 views, 3 of 8 frames decoded" in printed  # 2 clips of 2 RGB frames, one shared
    assert "rgb head:" in printed and "pose head:" in printed
    doc = json.loads(out.read_text())
    assert doc["labels"] == ["archery", "cleaning"]
    fused = (np.array(doc["streams"]["rgb"]) + np.array(doc["streams"]["pose"])) / 2
    np.testing.assert_allclose(doc["scores"], fused, atol=1e-6)
    # The JSON result of extract gives the same poses, hence the same scores.
    out2 = tmp_path / "c2.json"
    assert main(["classify", str(video), "--model", "rgbposeconv3d", "--checkpoint",
                 str(trained / "model.safetensors"), "--pose", str(pose.with_suffix(".json")), "--threads", "1",
                 "--json", str(out2)]) == 0
    np.testing.assert_allclose(json.loads(out2.read_text())["scores"], doc["scores"], atol=1e-5)


def test_classify_reads_a_pyskl_checkpoint_of_any_width(trained, folders, tmp_path, capsys):
    from humact.io.checkpoints import load_checkpoint

    tensors, _ = load_checkpoint(trained / "model.safetensors")
    pth = tmp_path / "rgbpose_pyskl.pth"
    torch.save({"meta": {"epoch": 2}, "state_dict": {f"module.{k}": v for k, v in tensors.items()}}, pth)
    video = folders / "videos" / "archery" / "arc4.mp4"
    pose = folders / "test" / "archery" / "arc4.mp4.pkl"
    assert main(["classify", str(video), "--model", "rgbposeconv3d", "--checkpoint", str(pth), "--pose", str(pose),
                 "--threads", "1", "--clips", "3", "--json", str(tmp_path / "p.json")]) == 0
    assert "3 clips x 1 views" in capsys.readouterr().out
    theirs = json.loads((tmp_path / "p.json").read_text())
    assert theirs["labels"] == ["class 0", "class 1"]  # a .pth carries no class names (give --labels)
    # A foreign checkpoint is tested with PYSKL's recipe (32 pose frames, heatmaps 64 px): ours with that recipe
    # gives the same scores.
    from humact.config import default_config
    from humact.recognize.rgbpose import RGBPoseVideoRecognizer

    ours = RGBPoseVideoRecognizer.from_checkpoint(trained / "model.safetensors")
    ours.recipe = default_config("rgbposeconv3d").input
    np.testing.assert_allclose(theirs["scores"], ours.classify(video, pose, num_clips=3).scores, atol=1e-5)


def test_classify_refuses_a_pose_file_of_another_video(trained, folders, tmp_path, capsys):
    short = tmp_path / "short.mp4"
    from humact.video import VideoWriter, read_frames

    frames = [f for _, f in read_frames(folders / "videos" / "archery" / "arc4.mp4", stop=4)]
    with VideoWriter(short, width=frames[0].shape[1], height=frames[0].shape[0], fps=25) as w:
        for i, f in enumerate(frames):
            w.write(f, i / 25)
    assert main(["classify", str(short), "--model", "rgbposeconv3d", "--checkpoint",
                 str(trained / "model.safetensors"), "--pose", str(folders / "test" / "archery" / "arc4.mp4.pkl"),
                 "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4 frames" in err[0] and "8" in err[0]
