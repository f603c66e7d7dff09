"""Skeleton datasets: loaders, COCO -> JHMDB joints, normalisation, sampling, features, clips."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from humact.io.safe_pickle import UnsafePickleError
from humact.skeleton.datasets import (
    JHMDB14_CLASSES, Recipe, SkeletonClips, SkeletonDataset, SkeletonSample, coco17_to_jhmdb15,
    load_extract_folder, load_jhmdb, load_nw_ucla, load_pyskl,
)
from humact.skeleton.pipelines import body_normalize, gen_ske_feat, stretch_indices


def stream_features(x, stream, layout, score=False):
    return gen_ske_feat(x, None, layout, (stream,), score_channel=score)
from conftest import shared_file


def _anno(name, label, m=1, t=10, v=17):
    rng = np.random.default_rng(abs(label))
    return {"frame_dir": name, "label": label, "img_shape": (480, 640), "original_shape": (480, 640),
            "total_frames": t, "keypoint": rng.random((m, t, v, 2), dtype=np.float32) * 100,
            "keypoint_score": np.ones((m, t, v), np.float32)}


def _write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_pyskl_pickle_split_selects_only_the_listed_videos(tmp_path):
    path = tmp_path / "ann.pkl"
    _write(path, {"split": {"train": ["a", "c"], "test": ["b"]},
                  "annotations": [_anno("a", 0), _anno("b", 1), _anno("c", 2)]})
    data = load_pyskl(path, "train", classes=("x", "y", "z"))
    assert [s.name for s in data.samples] == ["a", "c"]
    assert data.labels.tolist() == [0, 2]
    assert data.samples[0].keypoint.shape == (1, 10, 17, 2)
    assert data.samples[0].keypoint_score.shape == (1, 10, 17)


def test_pyskl_pickle_unknown_split_error_names_file_and_split(tmp_path):
    path = tmp_path / "ann.pkl"
    _write(path, {"split": {"xsub_train": ["a"]}, "annotations": [_anno("a", 0)]})
    with pytest.raises(ValueError, match=r"ann\.pkl.*'xview_train'.*xsub_train"):
        load_pyskl(path, "xview_train")


def test_pyskl_pickle_naming_a_function_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    _write(path, {"split": {"train": ["a"]}, "annotations": [os.getcwd]})
    with pytest.raises(UnsafePickleError, match="evil.pkl"):
        load_pyskl(path, "train")


def test_extract_folder_takes_the_class_from_the_subfolder(tmp_path):
    for cls, n in (("wave", 2), ("clap", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            _write(tmp_path / cls / f"v{i}.pkl", _anno(f"{cls}{i}", -1))
    data = load_extract_folder(tmp_path)
    assert data.classes == ("clap", "wave")
    assert sorted(data.labels.tolist()) == [0, 1, 1]
    assert data.layout == "coco"


def test_extract_folder_flat_uses_the_label_field(tmp_path):
    a, b = _anno("a", 0), _anno("b", 0)
    a["label"], b["label"] = "run", "sit"
    _write(tmp_path / "a.pkl", a)
    _write(tmp_path / "b.pkl", b)
    data = load_extract_folder(tmp_path)
    assert data.classes == ("run", "sit")
    assert data.labels.tolist() == [0, 1]


def test_extract_folder_without_any_class_says_which_file(tmp_path):
    _write(tmp_path / "lost.pkl", _anno("lost", -1))
    with pytest.raises(ValueError, match="lost.pkl.*class"):
        load_extract_folder(tmp_path)


def test_coco17_to_jhmdb15_derives_neck_belly_and_face():
    kp = np.zeros((17, 2), np.float32)
    kp[0] = (50, 10)  # nose
    kp[5], kp[6] = (60, 30), (40, 30)  # left / right shoulder
    kp[11], kp[12] = (58, 70), (42, 70)  # left / right hip
    kp[10] = (30, 60)  # right wrist
    score = np.ones(17, np.float32)
    score[12] = 0.2
    j, s = coco17_to_jhmdb15(kp, score)
    assert j.shape == (15, 2) and s.shape == (15,)
    np.testing.assert_allclose(j[0], (50, 30))  # neck: mid-shoulders
    np.testing.assert_allclose(j[1], (50, 50))  # belly: midway neck -> mid-hips
    np.testing.assert_allclose(j[2], (50, 10))  # face: nose
    np.testing.assert_allclose(j[3], kp[6])  # right shoulder
    np.testing.assert_allclose(j[5], kp[12])  # right hip
    np.testing.assert_allclose(j[11], kp[10])  # right wrist
    assert s[1] == pytest.approx(0.2)  # belly is only as sure as its least sure hip


def test_body_normalize_ignores_translation_and_scale():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(1, 20, 15, 2)).astype(np.float32)
    a = body_normalize(kp, center=1, top=0)
    b = body_normalize(kp * 7.5 + np.float32([300, -40]), center=1, top=0)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a[0, :, 1].mean(0), 0, atol=1e-6)
    assert np.median(np.linalg.norm(a[0, :, 0] - a[0, :, 1], axis=-1)) == pytest.approx(1.0, abs=1e-5)


def test_body_normalize_leaves_absent_frames_zero():
    kp = np.ones((1, 4, 15, 2), np.float32)
    kp[0, :, 0, 1] = 0
    valid = np.array([[True, False, True, True]])
    out = body_normalize(kp, center=1, top=0, valid=valid)
    assert not out[0, 1].any()


def test_uniform_indices_stretches_short_videos_in_order_instead_of_looping():
    idx = stretch_indices(5, 12, None)
    assert len(idx) == 12
    assert (np.diff(idx) >= 0).all()
    assert set(idx.tolist()) == set(range(5))


def test_uniform_indices_take_one_frame_per_segment():
    rng = np.random.default_rng(0)
    idx = stretch_indices(100, 10, rng)
    assert ((idx // 10) == np.arange(10)).all()
    np.testing.assert_array_equal(stretch_indices(100, 10, None), np.arange(10) * 10 + 5)


def test_bone_stream_subtracts_the_parent_joint():
    x = np.random.default_rng(0).normal(size=(1, 2, 15, 2)).astype(np.float32)
    b = stream_features(x, "b", "jhmdb15")
    np.testing.assert_allclose(b[0, :, 11], x[0, :, 11] - x[0, :, 7])  # right wrist - right elbow
    np.testing.assert_array_equal(b[0, :, 0], 0)  # the centre (neck) is a zero bone


def test_motion_stream_is_the_next_frame_minus_this_one_and_zero_at_the_end():
    x = np.cumsum(np.ones((1, 4, 20, 3), np.float32), axis=1)
    m = stream_features(x, "jm", "kinect20")
    np.testing.assert_array_equal(m[0, :3], 1)
    np.testing.assert_array_equal(m[0, 3], 0)


def _toy(layout="jhmdb15", v=15, c=2, n=4, t=30):
    rng = np.random.default_rng(1)
    samples = [SkeletonSample(rng.normal(size=(1, t, v, c)), i % 2, f"s{i}") for i in range(n)]
    return SkeletonDataset(samples, ("a", "b"), layout)


def test_flip_swaps_left_and_right_joints_and_negates_x():
    data = _toy()
    clips = SkeletonClips(data, Recipe(clip_len=30, flip=1.0), train=True)
    plain = SkeletonClips(data, Recipe(clip_len=30), train=True)
    x, _ = clips[0]
    y, _ = plain[0]
    # JHMDB: 3 right shoulder <-> 4 left shoulder
    np.testing.assert_allclose(x[0, 0, :, 3, 0], -y[0, 0, :, 4, 0])
    np.testing.assert_allclose(x[0, 0, :, 3, 1], y[0, 0, :, 4, 1])


def test_training_clips_repeat_for_the_same_seed_and_epoch_and_change_with_the_epoch():
    data = _toy(t=80)
    recipe = Recipe(clip_len=16, rotate=0.3, scale=0.1, crop=0.5)
    a, b = SkeletonClips(data, recipe, train=True, seed=3), SkeletonClips(data, recipe, train=True, seed=3)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    b.set_epoch(1)
    assert not np.array_equal(a[1][0], b[1][0])


def test_test_clips_are_deterministic_and_shaped_clips_persons_frames_joints_channels():
    data = _toy(layout="kinect20", v=20, c=3, t=80)
    recipe = Recipe(clip_len=16, max_persons=2, normalize="ucla")
    x, y = SkeletonClips(data, recipe, train=False, num_clips=10)[2]
    x2, _ = SkeletonClips(data, recipe, train=False, num_clips=10)[2]
    assert tuple(x.shape) == (10, 2, 16, 20, 3)
    assert not x[:, 1].any()  # the padded second person is zero
    np.testing.assert_array_equal(x, x2)
    assert y == 0


def test_ucla_normalisation_puts_the_first_frames_spine_at_the_origin():
    data = _toy(layout="kinect20", v=20, c=3, t=16)
    x, _ = SkeletonClips(data, Recipe(clip_len=16, normalize="ucla"), train=False)[0]
    np.testing.assert_allclose(x[0, 0, 0, 1], 0, atol=1e-6)


@pytest.mark.shared
def test_nw_ucla_cross_view_has_1020_training_and_464_test_sequences():
    root = shared_file("data", "skeleton", "nw_ucla").parent / "nw_ucla"
    train, test = load_nw_ucla(root, "train"), load_nw_ucla(root, "test")
    assert (len(train), len(test)) == (1020, 464)
    assert all(s.name.endswith("_v03") for s in test.samples)
    from humact.io.safe_pickle import safe_load

    official = {d["file_name"]: d["label"] - 1 for d in safe_load(root / "val_label.pkl")}
    assert {s.name: s.label for s in test.samples} == official


@pytest.mark.shared
def test_jhmdb_split1_has_433_training_and_176_test_videos_of_14_classes():
    root = shared_file("data", "skeleton", "jhmdb14", "GT_train_1.pkl").parent
    train, test = load_jhmdb(root, "train", 1), load_jhmdb(root, "test", 1)
    assert (len(train), len(test)) == (433, 176)
    assert set(train.labels.tolist()) == set(range(len(JHMDB14_CLASSES)))
    assert train.samples[0].keypoint.shape[2:] == (15, 2)


def test_extract_folder_reads_class_names_from_labels_json(tmp_path):
    import json

    a, b = _anno("a", 0), _anno("b", 0)
    a["label"], b["label"] = 1, 0
    _write(tmp_path / "a.pkl", a)
    _write(tmp_path / "b.pkl", b)
    (tmp_path / "labels.json").write_text(json.dumps(["jump", "kick"]))
    data = load_extract_folder(tmp_path)
    assert data.classes == ("jump", "kick")
    assert {s.name: s.label for s in data.samples} == {"a": 1, "b": 0}


def test_2d_samples_with_scores_get_the_score_as_a_third_channel_left_unrotated():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(1, 16, 17, 2))
    score = rng.random((1, 16, 17))
    data = SkeletonDataset([SkeletonSample(kp, 0, "a", score)], ("a",), "coco")
    x, _ = SkeletonClips(data, Recipe(clip_len=16, rotate=0.5, scale=0.2), train=True)[0]
    assert x.shape[-1] == 3
    np.testing.assert_allclose(x[0, 0, :, :, 2], score[0], rtol=1e-6)


def test_bone_score_channel_is_the_mean_of_the_two_joints_scores():
    x = np.zeros((1, 1, 17, 3), np.float32)
    x[..., 2] = np.linspace(0, 1, 17)
    b = stream_features(x, "b", "coco", score=True)
    np.testing.assert_allclose(b[0, 0, 9, 2], (x[0, 0, 9, 2] + x[0, 0, 7, 2]) / 2)  # left wrist, left elbow


def test_body_normalize_accepts_joint_groups_as_body_points():
    kp = np.zeros((1, 2, 17, 2), np.float32)
    kp[..., 11, :], kp[..., 12, :] = (8, 20), (12, 20)  # hips
    kp[..., 5, :], kp[..., 6, :] = (8, 10), (12, 10)  # shoulders
    out = body_normalize(kp, center=(11, 12), top=(5, 6))
    np.testing.assert_allclose(out[0, 0, 5], (-0.2, -1.0))


def test_minmax_scales_each_axis_of_a_clip_to_minus_one_one():
    data = _toy(layout="kinect20", v=20, c=3, t=16)
    x, _ = SkeletonClips(data, Recipe(clip_len=16, minmax=True), train=False)[0]
    flat = x[0, 0].numpy().reshape(-1, 3)
    np.testing.assert_allclose(flat.min(0), -1, atol=1e-6)
    np.testing.assert_allclose(flat.max(0), 1, atol=1e-6)


def test_view_rotation_turns_about_the_vertical_and_horizontal_axes_but_never_rolls():
    kp = np.zeros((1, 8, 20, 3), np.float32)
    kp[..., 0] = np.arange(20)  # every joint on the x axis
    data = SkeletonDataset([SkeletonSample(kp, 0, "a")], ("a",), "kinect20")
    x = SkeletonClips(data, Recipe(clip_len=8, view_rotate=1.0), train=True)[0][0].numpy()
    assert np.abs(x[..., 2]).max() > 0.1  # turned about y: x goes into depth
    np.testing.assert_allclose(x[..., 1], 0, atol=1e-5)  # no roll: x never goes into y


@pytest.mark.shared
def test_nw_ucla_view_splits_partition_the_training_views():
    root = shared_file("data", "skeleton", "nw_ucla").parent / "nw_ucla"
    v1, v2 = load_nw_ucla(root, "v01"), load_nw_ucla(root, "v02")
    assert all(s.name.endswith("_v01") for s in v1.samples)
    assert all(s.name.endswith("_v02") for s in v2.samples)
    both = load_nw_ucla(root, "v01+v02")
    assert sorted(s.name for s in both.samples) == sorted(s.name for s in load_nw_ucla(root, "train").samples)
    assert len(v1) + len(v2) == len(both)
    with pytest.raises(ValueError, match="v04"):
        load_nw_ucla(root, "v04")
