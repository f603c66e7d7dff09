"""`humact train --data D` alone: every default read from the data, on tiny synthetic PYSKL pickles."""

from __future__ import annotations

import json
import pickle

import numpy as np

from humact.cli import main
from humact.config import config_from_dict, load_config
from humact.skeleton.datasets import SkeletonDataset, SkeletonSample, load_dataset
from humact.train.defaults import clip_len_for, epochs_for, from_data, joint_order_notes

FAST = ["--epochs", "1", "--base-channels", "8", "--num-threads", "1", "--test-clips", "1", "--quiet"]


def _pickle(path, *, n=16, persons=1, v=17, c=2, t=20, score=True, img=True, classes=None, test_labels=None,
            extra=None):
    rng = np.random.default_rng(0)
    annos, split = [], {"train": [], "test": []}
    for i in range(n):
        kp = (rng.normal(size=(persons, t, v, c)) * 20 + 100).astype(np.float32)
        a = {"frame_dir": f"v{i}", "label": i % 2, "total_frames": t, "keypoint": kp}
        if score:
            a["keypoint_score"] = np.full(kp.shape[:3], 0.9, np.float32)
        if img:
            a["img_shape"] = (480, 640)
        annos.append(a)
        split["train"].append(a["frame_dir"])
    for j, lab in enumerate(test_labels or [0, 1]):
        kp = (rng.normal(size=(persons, t, v, c)) * 20 + 100).astype(np.float32)
        a = {"frame_dir": f"t{j}", "label": lab, "total_frames": t, "keypoint": kp, "img_shape": (480, 640)}
        if score:
            a["keypoint_score"] = np.full(kp.shape[:3], 0.9, np.float32)
        annos.append(a)
        split["test"].append(a["frame_dir"])
    doc = {"split": split, "annotations": annos, **(extra or {})}
    if classes is not None:
        doc["classes"] = classes
    with open(path, "wb") as f:
        pickle.dump(doc, f)
    return path


def _train(data, out, *flags):
    return main(["train", "--data", str(data), "--out", str(out), *FAST, *flags])


def _saved(out):
    return json.loads((out / "model.json").read_text())


def test_a_two_person_dataset_keeps_both_people_by_default(tmp_path):
    data = _pickle(tmp_path / "pairs.pkl", persons=2)
    assert _train(data, tmp_path / "o") == 0
    cfg = _saved(tmp_path / "o")["config"]
    assert cfg["input"]["max_persons"] == 2 and cfg["data"]["dataset"] == "pyskl"


def test_the_layout_follows_the_joint_count_and_an_unknown_one_asks_for_layout(tmp_path, capsys):
    data = _pickle(tmp_path / "ntu.pkl", v=25, c=3, score=False, img=False)
    assert _train(data, tmp_path / "o") == 0
    meta = _saved(tmp_path / "o")
    assert meta["layout"] == "nturgb+d" and meta["in_channels"] == 3
    odd = _pickle(tmp_path / "odd.pkl", v=15, c=3, score=False, img=False)
    assert _train(odd, tmp_path / "o2") == 2
    err = capsys.readouterr().err
    assert "odd.pkl: keypoint: 15 joints in 3D match no built-in layout" in err and "--layout" in err
    assert err.count("\n") == 1


def test_a_layout_that_does_not_fit_the_joints_is_a_message_not_a_traceback(tmp_path, capsys):
    data = _pickle(tmp_path / "k.pkl", v=20, c=2)
    assert _train(data, tmp_path / "o", "--layout", "coco") == 2
    err = capsys.readouterr().err
    assert "the samples have [20] joints, layout 'coco' has 17" in err and "--layout" in err


def test_2d_pixel_data_gets_pre2d_and_the_2d_recipe_3d_gets_the_3d_recipe(tmp_path):
    cfg2d, chosen2d, _ = from_data(config_from_dict({"data": "x"}), load_dataset("pyskl", _pickle(tmp_path / "a.pkl"),
                                                                                 "train"))
    assert cfg2d.input.normalize == "pre2d" and cfg2d.input.flip == 0.5 and cfg2d.input.view_rotate == 0
    data3d = load_dataset("pyskl", _pickle(tmp_path / "b.pkl", v=25, c=3, score=False, img=False), "train")
    cfg3d, chosen3d, _ = from_data(config_from_dict({"data": "x"}), data3d)
    assert (cfg3d.input.normalize, cfg3d.input.view_rotate, cfg3d.input.minmax, cfg3d.input.flip) == \
        ("ucla", 1.047, True, 0.0)
    assert cfg3d.optim.weight_decay == 1e-4 and "normalize" in chosen3d


def test_given_values_win_over_the_data_defaults(tmp_path):
    data = load_dataset("pyskl", _pickle(tmp_path / "a.pkl", persons=3), "train")
    cfg, chosen, _ = from_data(config_from_dict({"max_persons": 1, "normalize": "body", "epochs": 3}), data)
    assert (cfg.input.max_persons, cfg.input.normalize, cfg.optim.epochs) == (1, "body", 3)
    assert not {"max_persons", "normalize", "epochs"} & set(chosen)


def test_the_shipped_recipes_are_left_as_they_are(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "configs" / "jhmdb14_stgcnpp.toml")
    rng = np.random.default_rng(0)
    samples = [SkeletonSample(rng.normal(size=(1, 30, 15, 2)), i % 14, f"s{i}") for i in range(40)]
    _, chosen, _ = from_data(cfg, SkeletonDataset(samples, tuple(map(str, range(14))), "jhmdb15"))
    assert chosen == {}


def test_clip_length_and_epochs_follow_the_data():
    samples = [SkeletonSample(np.ones((1, t, 17, 2)), 0, f"s{t}") for t in (10, 20, 30, 41)]
    assert clip_len_for(SkeletonDataset(samples, ("a",), "coco")) == 36  # 75th percentile 33.75 -> 36
    assert epochs_for(1000, 16) == 59 and epochs_for(100_000, 16) == 16 and epochs_for(50, 16) == 150


def test_class_names_come_from_the_pickle_and_a_test_split_may_lack_the_top_class(tmp_path):
    data = _pickle(tmp_path / "c.pkl", classes=["sit", "stand"], test_labels=[0, 0])
    assert _train(data, tmp_path / "o") == 0
    assert _saved(tmp_path / "o")["classes"] == ["sit", "stand"]
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["classes"] == ["sit", "stand"] and metrics["num_samples"] == 2


def test_without_names_the_class_count_spans_every_split(tmp_path):
    data = _pickle(tmp_path / "c.pkl", test_labels=[0, 2])  # class 2 only in the test split
    assert load_dataset("pyskl", data, "train").classes == ("0", "1", "2")


def test_inferred_values_are_written_into_the_saved_config(tmp_path):
    data = _pickle(tmp_path / "a.pkl", persons=2, t=30)
    assert _train(data, tmp_path / "o") == 0
    meta = _saved(tmp_path / "o")
    assert meta["from_data"]["max_persons"] == 2 and meta["from_data"]["clip_len"] == 32
    again = json.loads((tmp_path / "o" / "config.json").read_text())
    assert again["input"]["max_persons"] == 2 and again["input"]["clip_len"] == 32


def test_a_custom_3d_layout_file_is_3d_and_travels_inside_the_checkpoint(tmp_path):
    layout = tmp_path / "sbu15.toml"
    layout.write_text('name = "sbu15"\nnum_joints = 15\ncenter = 2\ndims = 3\n'
                      'edges = [[0,1],[1,2],[2,3],[3,4],[4,5],[2,6],[6,7],[7,8],[2,9],[9,10],[10,11],[2,12],'
                      '[12,13],[13,14]]\nleft = [3,4,5,9,10,11]\nright = [6,7,8,12,13,14]\n')
    data = _pickle(tmp_path / "sbu.pkl", persons=2, v=15, c=3, score=False, img=False)
    assert _train(data, tmp_path / "o", "--layout", str(layout)) == 0
    meta = _saved(tmp_path / "o")
    assert meta["layout"] == "sbu15" and meta["layout_def"]["dims"] == 3 and meta["in_channels"] == 3
    assert main(["test", str(tmp_path / "o" / "model.safetensors"), "--threads", "1", "--out", str(tmp_path / "t")]) == 0


def test_3d_is_decided_by_the_data_so_min_max_scales_z_too(tmp_path):
    import torch

    from humact.skeleton.datasets import Recipe, SkeletonClips
    from humact.skeleton.graph import custom_layout

    lay = custom_layout(4, [(0, 1), (1, 2), (2, 3)], name="chain")
    kp = np.random.default_rng(0).normal(size=(1, 8, 4, 3)).astype(np.float32) * [1, 1, 5]
    data = SkeletonDataset([SkeletonSample(kp, 0, "a")], ("a",), lay)
    x = SkeletonClips(data, Recipe(clip_len=8, minmax=True, stream="b"), train=False)[0][0]
    assert isinstance(x, torch.Tensor)
    joints = SkeletonClips(data, Recipe(clip_len=8, minmax=True), train=False)[0][0].numpy().reshape(-1, 3)
    np.testing.assert_allclose(joints.min(0), -1, atol=1e-6)  # z too: it is a coordinate, not a score
    np.testing.assert_allclose(joints.max(0), 1, atol=1e-6)


def test_ucla_normalisation_keeps_the_offset_between_two_people():
    from humact.skeleton.pipelines import normalize_skeleton

    kp = np.zeros((2, 3, 20, 3), np.float32)
    kp[1] += 2.0  # the second person stands 2 m away
    out = normalize_skeleton(kp, "kinect20", "ucla")
    np.testing.assert_allclose(out[1] - out[0], 2.0)


def test_a_wrong_joint_order_is_reported():
    rng = np.random.default_rng(0)
    # A plausible Kinect-20 body: left and right limbs of equal lengths, rigid over time.
    from humact.skeleton.graph import get_layout

    lay = get_layout("kinect20")
    base = rng.normal(size=(20, 3)).astype(np.float32)
    mirror = lay.flip_index
    for a, b in zip(lay.left, lay.right):
        base[b] = base[a] * [-1, 1, 1]
    frames = np.stack([base + rng.normal(scale=0.002, size=base.shape) for _ in range(40)])[None]
    good = SkeletonDataset([SkeletonSample(frames, 0, "a")], ("a",), "kinect20")
    assert joint_order_notes(good) == [] and mirror
    shuffled = SkeletonDataset([SkeletonSample(frames[:, :, rng.permutation(20)], 0, "a")], ("a",), "kinect20")
    assert joint_order_notes(shuffled)


def test_the_data_kind_is_told_from_the_path(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _train(tmp_path / "empty", tmp_path / "o") == 2
    assert "cannot tell what data this is" in capsys.readouterr().err
