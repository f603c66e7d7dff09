"""`humact train --model posec3d` and `humact test` of a PoseConv3D checkpoint, on tiny synthetic data.

The toy data is a PYSKL annotation pickle of COCO-17 pixel keypoints: "raise" (both wrists go up
above the head and back) against "squat" (the body goes down and up), so a tiny PoseConv3D
(8 base channels, 8 frames, 32 x 32 heatmaps) learns it in a few epochs.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from humact.cli import main

TINY = ["--model", "posec3d", "--batch-size", "4", "--clip-len", "8", "--base-channels", "8",
        "--heatmap-size", "32", "--heatmap-test-size", "32", "--num-threads", "1", "--test-clips", "2",
        "--lr", "0.05", "--flip", "0.5", "--quiet",
        # A 4-epoch toy run: no dropout or clipping, Nesterov (PYSKL's recipe is for 24 x 10 epochs), and
        # precise BN: 32 iterations at this learning rate leave BatchNorm's running averages behind the
        # weights, and eval-mode predictions then collapse to one class.
        "--dropout", "0", "--clip-grad", "0", "--nesterov", "--weight-decay", "5e-4", "--precise-bn", "8",
        "--val-fraction", "0"]

BASE = np.array([[50, 10], [48, 8], [52, 8], [46, 9], [54, 9], [42, 25], [58, 25], [38, 40], [62, 40],
                 [36, 55], [64, 55], [45, 60], [55, 60], [45, 80], [55, 80], [45, 100], [55, 100]], np.float32)


def _person(kind: str, rng, t=16):
    """COCO-17 pixel keypoints (1, T, 17, 2) of a person raising both arms or squatting."""
    kp = np.repeat(BASE[None], t, 0)
    phase = 0.5 * (1 - np.cos(np.linspace(0, 2 * np.pi, t) + rng.uniform(-0.5, 0.5)))  # 0 -> 1 -> 0
    if kind == "raise":
        kp[:, 7:11, 1] -= 60 * phase[:, None]  # elbows and wrists above the head
    else:
        kp[:, :13, 1] += 30 * phase[:, None]  # upper body goes down and up
    return ((kp + rng.normal(0, 0.5, kp.shape)) * 2 + rng.uniform(50, 200, 2)).astype(np.float32)[None]


@pytest.fixture(scope="module")
def pickle_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    annos, split = [], {"train": [], "test": []}
    for i in range(40):
        label = i % 2
        kp = _person(("raise", "squat")[label], rng)
        name = f"v{i:02d}"
        annos.append({"frame_dir": name, "label": label, "img_shape": (480, 640), "total_frames": kp.shape[1],
                      "keypoint": kp, "keypoint_score": np.full(kp.shape[:3], 0.9, np.float32)})
        split["train" if i < 32 else "test"].append(name)
    path = tmp_path_factory.mktemp("pyskl") / "toy.pkl"
    with open(path, "wb") as f:
        pickle.dump({"split": split, "annotations": annos}, f)
    return path


def _train(pickle_path, out, epochs, *extra):
    return main(["train", "--dataset", "pyskl", "--data", str(pickle_path), "--out", str(out),
                 "--epochs", str(epochs), *TINY, *extra])


@pytest.fixture(scope="module")
def trained(pickle_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert _train(pickle_path, out, 4) == 0
    return out


def test_posec3d_training_lowers_the_loss_and_beats_chance_on_the_test_split(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["config"]["model"]["name"] == "posec3d" and meta["in_channels"] == 17  # one heatmap per COCO joint
    losses = [h["loss"] for h in meta["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["num_samples"] == 8 and metrics["model"] == "posec3d"
    assert metrics["top1"] >= 0.75  # two classes, chance is 0.5


def test_humact_test_reproduces_the_training_runs_metrics_from_the_checkpoint(trained, tmp_path):
    assert main(["test", str(trained / "model.safetensors"), "--threads", "1", "--out", str(tmp_path)]) == 0
    before = json.loads((trained / "metrics.json").read_text())
    after = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("top1", "top5", "mean_class_accuracy", "num_samples", "num_clips"):
        assert after[key] == before[key]
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), np.load(trained / "scores.npy"), atol=1e-6)
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_testing_averages_clips_times_two_flipped_views_per_sample(trained, tmp_path, monkeypatch):
    from humact.deploy.resnet3d import FusedRecognizer3D

    rows = []
    forward = FusedRecognizer3D.forward

    def counting(self, x):
        rows.append(x.shape[0])
        return forward(self, x)

    monkeypatch.setattr(FusedRecognizer3D, "forward", counting)
    assert main(["test", str(trained / "model.safetensors"), "--clips", "3", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    assert rows == [3 * 2] * 8  # one pass per test sample, 3 clips and their mirror images
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_clips"] == 3 and metrics["num_views"] == 6


def test_fuse_accepts_posec3d_scores(trained, tmp_path):
    assert main(["test", "--fuse", str(trained / "scores.npy"), str(trained / "scores.npy"),
                 "--out", str(tmp_path)]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), np.load(trained / "scores.npy"), atol=1e-6)


def test_the_checkpoint_loads_strictly_and_its_fast_twin_predicts_the_same(trained, pickle_path):
    from humact.skeleton.datasets import load_pyskl
    from humact.video_models.recognizer import Recognizer3D
    from humact.recognize.skeleton import Recognizer

    rec = Recognizer.from_checkpoint(trained / "model.safetensors")
    assert isinstance(rec.model, Recognizer3D) and rec.kind == "posec3d"
    x = torch.stack([rec.inputs(load_pyskl(pickle_path, "test"))[i][0] for i in range(2)])
    assert x.shape == (2, 4, 17, 8, 32, 32)  # (samples, 2 clips x flip, joints, T, H, W)
    with torch.no_grad():
        assert torch.allclose(rec.model.predict(x), rec.inference_model.predict(x), atol=1e-5)


class _Crash(Exception):
    pass


def test_resuming_an_interrupted_run_gives_the_same_weights(pickle_path, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from humact.train.trainer import Trainer

    save_last = Trainer.save_last

    def crash_after_saving(self):
        save_last(self)
        raise _Crash  # the process dies after epoch 1 was checkpointed

    monkeypatch.setattr(Trainer, "save_last", crash_after_saving)
    with pytest.raises(_Crash):
        _train(pickle_path, tmp_path / "a", 2, "--no-test")
    monkeypatch.setattr(Trainer, "save_last", save_last)
    assert _train(pickle_path, tmp_path / "a", 2, "--no-test") == 0  # picks up at epoch 1
    assert _train(pickle_path, tmp_path / "b", 2, "--no-test") == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert json.loads((tmp_path / "a" / "model.json").read_text())["epochs_trained"] == 2
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _centroid_x(plane):
    return float((plane.sum(0) * np.arange(plane.shape[1])).sum() / plane.sum())


def test_training_flip_mirrors_the_heatmaps_and_swaps_left_and_right_joints():
    from humact.skeleton.datasets import HeatmapClips, Recipe, SkeletonDataset, SkeletonSample
    from humact.skeleton.graph import get_layout

    kp = _person("raise", np.random.default_rng(1))
    data = SkeletonDataset([SkeletonSample(kp, 0, "a", np.ones(kp.shape[:3]), (480, 640))], ("a",), "coco")
    plain = HeatmapClips(data, Recipe(clip_len=8, flip=0.0, heatmap_size=48), train=True)[0][0][0].numpy()
    flipped = HeatmapClips(data, Recipe(clip_len=8, flip=1.0, heatmap_size=48), train=True)[0][0][0].numpy()
    mirror = get_layout("coco").flip_index  # the same random crop; only the flip differs
    # Joints drawn whole in both (a Gaussian of sigma 0.6 and score 1 sums to 2.3): PYSKL's flip
    # maps x to W - x, so mirror images agree to a pixel.
    whole = [k for k in range(17) if flipped[k, 0].sum() > 2 and plain[mirror[k], 0].sum() > 2]
    assert len(whole) >= 10
    for k in whole:
        assert _centroid_x(flipped[k, 0]) == pytest.approx(48 - _centroid_x(plain[mirror[k], 0]), abs=1.01)
    assert not np.allclose(flipped, plain[list(mirror)])  # mirrored in x as well as swapped


def test_test_views_are_the_clips_then_their_mirror_images_with_left_and_right_swapped():
    from humact.skeleton.datasets import HeatmapClips, Recipe, SkeletonDataset, SkeletonSample
    from humact.skeleton.graph import get_layout

    kp = _person("raise", np.random.default_rng(2))[:, :, :15] / 100  # 15 joints, not pixels
    data = SkeletonDataset([SkeletonSample(kp, 0, "a")], ("a",), "jhmdb15")
    x = HeatmapClips(data, Recipe(clip_len=8, heatmap_test_size=32), train=False, num_clips=3)[0][0].numpy()
    assert x.shape == (6, 15, 8, 32, 32)
    mirror = list(get_layout("jhmdb15").flip_index)
    np.testing.assert_array_equal(x[3:], x[:3][:, mirror, :, :, ::-1])
    assert x[:3].max() > 0.9  # the joints were drawn (normalised coordinates go to a pixel canvas)


def test_posec3d_on_3d_skeletons_exits_2_naming_the_keypoint_field(tmp_path, capsys):
    sqe = tmp_path / "ucla" / "all_sqe"
    sqe.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, action in enumerate(("a01", "a02", "a01", "a02")):
        (sqe / f"{action}_s0{i + 1}_e00_v01.json").write_text(
            json.dumps({"skeletons": rng.normal(size=(10, 20, 3)).round(3).tolist()}))
    rc = main(["train", "--dataset", "nw-ucla", "--data", str(tmp_path / "ucla"), "--out", str(tmp_path / "o"),
               "--epochs", "1", *TINY])
    assert rc == 2
    err = capsys.readouterr().err
    assert "keypoint" in err and "2D" in err and "posec3d" in err


def test_per_track_recognition_draws_each_tracks_heatmaps(trained):
    from humact.recognize.skeleton import Recognizer
    from humact.types import PoseTracks

    rec = Recognizer.from_checkpoint(trained / "model.safetensors")
    rng = np.random.default_rng(3)
    kp = np.concatenate([_person("raise", rng), _person("squat", rng)])
    t = kp.shape[1]
    valid = np.ones((2, t), bool)
    tracks = PoseTracks(track_ids=np.array([4, 9]), keypoints=kp, keypoint_scores=np.full((2, t, 17), 0.9),
                        boxes=np.zeros((2, t, 4)), box_scores=np.ones((2, t)), valid=valid)
    scores = rec.recognize_tracks(tracks).scores
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-5)
    alone = rec.recognize_tracks(PoseTracks(track_ids=np.array([9]), keypoints=kp[1:], keypoint_scores=np.full(
        (1, t, 17), 0.9), boxes=np.zeros((1, t, 4)), box_scores=np.ones((1, t)), valid=valid[1:])).scores
    np.testing.assert_allclose(scores[1], alone[0], atol=1e-6)  # one track's heatmaps hold no other person


def test_limb_heatmaps_have_a_channel_per_limb_and_mirror_left_and_right_limbs():
    from humact.skeleton.datasets import HeatmapClips, Recipe, SkeletonDataset, SkeletonSample, layout_limbs

    kp = _person("raise", np.random.default_rng(2))[:, :, :15] / 100
    data = SkeletonDataset([SkeletonSample(kp, 0, "a")], ("a",), "jhmdb15")
    clips = HeatmapClips(data, Recipe(clip_len=8, heatmap="limb", heatmap_test_size=32), train=False, num_clips=2)
    x = clips[0][0].numpy()
    limbs, left, right = layout_limbs("jhmdb15")
    assert x.shape == (4, len(limbs), 8, 32, 32) and clips.num_channels == len(limbs) == 14
    assert len(left) == 6  # shoulder-neck, hip-belly, upper arm, thigh, forearm, shin on each side
    mirror = list(range(len(limbs)))
    for a, b in zip(left, right):
        mirror[a], mirror[b] = b, a
    np.testing.assert_allclose(x[2:], x[:2][:, mirror, :, :, ::-1], atol=1e-6)
