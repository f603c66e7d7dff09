"""PYSKL-style skeleton pipeline: each transform's behaviour, and parity with PYSKL's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file
from humact.skeleton.graph import get_layout
from humact.skeleton.pipelines import (
    POSEC3D_COCO_LIMBS, PoseSample, flip, format_gcn_input, format_heatmap_input, gcn_pipeline,
    gen_ske_feat, generate_pose_target, pose_compact, pose_decode, posec3d_pipeline,
    pre_normalize_2d, pre_normalize_3d, random_joint_drop, random_resized_crop, resize,
    to_motion, uniform_sample_indices,
)


# ---------------------------------------------------------------- a plain loop reference

def _naive_heatmaps(kps, scores, shape, sigma, limbs=None):
    """PYSKL's definition, one window at a time, written as simply as possible."""
    h, w = shape
    M, T, V, _ = kps.shape
    K = V if limbs is None else len(limbs)
    out = np.zeros((T, K, h, w), np.float32)
    r = 3 * sigma
    for m in range(M):
        for t in range(T):
            for k in range(K):
                if limbs is None:
                    a = b = kps[m, t, k]
                    v = scores[m, t, k]
                else:
                    a, b = kps[m, t, limbs[k][0]], kps[m, t, limbs[k][1]]
                    v = min(scores[m, t, limbs[k][0]], scores[m, t, limbs[k][1]])
                if v < 1e-3:
                    continue
                if limbs is not None and ((a - b) ** 2).sum() < 1:
                    b, v = a, scores[m, t, limbs[k][0]]
                x0, x1 = max(int(min(a[0], b[0]) - r), 0), min(int(max(a[0], b[0]) + r) + 1, w)
                y0, y1 = max(int(min(a[1], b[1]) - r), 0), min(int(max(a[1], b[1]) + r) + 1, h)
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        p = np.array([x, y], np.float64)
                        ab = (b - a).astype(np.float64)
                        u = 0.0 if not ab.any() else np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
                        d2 = ((p - a - u * ab) ** 2).sum()
                        out[t, k, y, x] = max(out[t, k, y, x], np.exp(-d2 / 2 / sigma ** 2) * v)
    return out


@pytest.fixture
def two_people():
    rng = np.random.RandomState(3)
    kps = rng.uniform(-3, 27, (2, 3, 17, 2)).astype(np.float32)  # some joints off the image
    scores = rng.uniform(0, 1, (2, 3, 17)).astype(np.float32)
    scores[0, 0, :3] = 0.0005  # below PYSKL's EPS: not drawn
    kps[1, 1, 2] = kps[1, 1, 0] + 0.3  # a limb shorter than one pixel
    return kps, scores


def test_keypoint_heatmaps_equal_the_loop_definition_with_two_people(two_people):
    kps, scores = two_people
    ours = generate_pose_target(kps, scores, (24, 26), sigma=0.6)
    np.testing.assert_allclose(ours, _naive_heatmaps(kps, scores, (24, 26), 0.6), atol=1e-6)


def test_limb_heatmaps_equal_the_loop_definition_with_two_people(two_people):
    kps, scores = two_people
    ours = generate_pose_target(kps, scores, (24, 26), sigma=1.0, with_kp=False, with_limb=True,
                                skeletons=POSEC3D_COCO_LIMBS)
    ref = _naive_heatmaps(kps, scores, (24, 26), 1.0, limbs=POSEC3D_COCO_LIMBS)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_double_appends_the_mirrored_heatmaps_with_left_and_right_swapped(two_people):
    kps, scores = two_people
    single = generate_pose_target(kps, scores, (24, 26))
    double = generate_pose_target(kps, scores, (24, 26), double=True)
    order = list(get_layout("coco").flip_index)
    np.testing.assert_array_equal(double[:3], single)
    np.testing.assert_array_equal(double[3:], single[:, order, :, ::-1])


def test_without_scores_every_gaussian_peaks_at_one():
    kps = np.array([[[[10.0, 12.0]]]], np.float32)
    hm = generate_pose_target(kps, np.full((1, 1, 1), 0.2, np.float32), (20, 20), use_score=False)
    assert hm[0, 0, 12, 10] == pytest.approx(1.0)


def test_pyskl_reference_heatmaps_reproduced():
    ref = np.load(shared_file("reference", "pyskl", "gen_pose_target.npz"))
    kp, score = ref["keypoint"], ref["keypoint_score"]
    np.testing.assert_allclose(generate_pose_target(kp, score, (56, 56), sigma=0.6), ref["heatmap_kp"], atol=1e-6)
    limb = generate_pose_target(kp, score, (56, 56), sigma=0.6, with_kp=False, with_limb=True,
                                skeletons=POSEC3D_COCO_LIMBS)
    np.testing.assert_allclose(limb, ref["heatmap_limb"], atol=1e-6)
    double = generate_pose_target(kp, score, (56, 56), sigma=0.6, double=True)
    np.testing.assert_allclose(double, ref["heatmap_kp_double"], atol=1e-6)


# ---------------------------------------------------------------- sampling

def test_test_mode_sampling_reproduces_pyskl_indices():
    inds = uniform_sample_indices(150, 100, num_clips=10, test_mode=True)
    assert inds.shape == (1000,)
    # PYSKL's UniformSampleFrames(100, num_clips=10), seed 255, 150 frames (shared/reference/pyskl).
    np.testing.assert_array_equal(inds[:12], [0, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15])
    np.testing.assert_array_equal(inds[100:106], [1, 2, 4, 6, 8, 10])


def test_test_mode_sampling_leaves_numpy_global_random_state_alone():
    np.random.seed(1)
    expected = np.random.rand()
    np.random.seed(1)
    uniform_sample_indices(300, 48, num_clips=3, test_mode=True)
    assert np.random.rand() == expected


def test_long_videos_get_one_frame_per_segment():
    inds = uniform_sample_indices(480, 48, rng=np.random.RandomState(0))
    np.testing.assert_array_equal(inds // 10, np.arange(48))


def test_short_videos_are_looped():
    inds = uniform_sample_indices(20, 48, rng=np.random.RandomState(0))
    assert inds.shape == (48,) and inds.max() < 20
    assert np.all(np.diff(inds) % 20 == 1)


def test_pose_decode_gathers_frames_as_float32():
    kp = np.arange(2 * 5 * 3 * 2, dtype=np.float64).reshape(2, 5, 3, 2)
    out, score = pose_decode(kp, None, np.array([4, 0]))
    assert out.dtype == np.float32 and score is None
    np.testing.assert_array_equal(out, kp[:, [4, 0]])


# ---------------------------------------------------------------- normalisation and features

def test_pre_normalize_2d_maps_the_frame_to_minus_one_one_and_zeroes_unseen_joints():
    kp = np.array([[[[0, 0], [1920, 1080], [960, 540]]]], np.float32)
    score = np.array([[[1.0, 1.0, 0.0]]], np.float32)
    out = pre_normalize_2d(kp, (1080, 1920), score)
    np.testing.assert_allclose(out[0, 0], [[-1, -1, 1], [1, 1, 1], [0, 0, 0]])


def test_pre_normalize_3d_centres_on_the_first_spine_joint_and_rotates_rigidly():
    rng = np.random.RandomState(0)
    kp = rng.randn(1, 4, 25, 3)
    kp[0, 1] = 0  # an empty frame is dropped
    out = pre_normalize_3d(kp)
    assert out.shape == (1, 3, 25, 3)
    np.testing.assert_allclose(out[0, 0, 1], 0, atol=1e-12)
    dist = lambda x: np.linalg.norm(x[:, :, :, None] - x[:, :, None], axis=-1)
    np.testing.assert_allclose(dist(out), dist(kp[:, [0, 2, 3]]), atol=1e-9)


def test_bones_follow_the_layout_pairs_and_average_the_scores():
    j = np.random.RandomState(0).rand(1, 2, 17, 3).astype(np.float32)
    b = gen_ske_feat(j, None, "coco", ("b",))
    np.testing.assert_array_equal(b[..., 0, :2], 0)  # the nose pairs with itself
    np.testing.assert_allclose(b[..., 9, :2], j[..., 9, :2] - j[..., 7, :2])  # wrist - elbow
    np.testing.assert_allclose(b[..., 9, 2], (j[..., 9, 2] + j[..., 7, 2]) / 2)


def test_motion_is_the_next_frame_difference_and_zero_at_the_end():
    x = np.random.RandomState(0).rand(1, 4, 3, 3).astype(np.float32)
    m = to_motion(x)
    np.testing.assert_allclose(m[:, :3], x[:, 1:] - x[:, :3])
    np.testing.assert_array_equal(m[:, 3], 0)


def test_gen_ske_feat_concatenates_streams_in_order():
    j = np.random.RandomState(0).rand(2, 5, 20, 3).astype(np.float32)
    out = gen_ske_feat(j, None, "kinect20", ("j", "b", "jm", "bm"))
    assert out.shape == (2, 5, 20, 12)
    np.testing.assert_array_equal(out[..., :3], j)


# ---------------------------------------------------------------- spatial transforms

def test_pose_compact_crops_to_a_padded_square_around_the_people():
    kp = np.array([[[[100, 200], [300, 600], [0, 0]]]], np.float32)
    out, (h, w), quad = pose_compact(kp, (1080, 1920), hw_ratio=1.0)
    assert h == w == 500  # 400 px high * 1.25
    np.testing.assert_array_equal(out[0, 0, 2], 0)  # a missing joint stays missing
    assert quad[2] == pytest.approx(500 / 1920) and quad[3] == pytest.approx(500 / 1080)


def test_resize_keeps_the_ratio_to_a_short_edge():
    kp = np.array([[[[100, 50]]]], np.float32)
    out, shape = resize(kp, (200, 400), (-1, 64))
    assert shape == (64, 128)
    np.testing.assert_allclose(out[0, 0, 0], [32, 16])


def test_random_resized_crop_stays_inside_the_frame_and_shifts_keypoints():
    rng = np.random.RandomState(0)
    kp = np.full((1, 1, 1, 2), 50, np.float32)
    out, (h, w), (x0, y0, x1, y1) = random_resized_crop(kp, (100, 120), area_range=(0.5, 1.0), rng=rng)
    assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 100 and (h, w) == (y1 - y0, x1 - x0)
    np.testing.assert_allclose(out[0, 0, 0], [50 - x0, 50 - y0])


def test_flip_mirrors_x_and_swaps_left_and_right_joints():
    kp = np.zeros((1, 1, 17, 2), np.float32)
    kp[0, 0, 5] = [10, 3]  # left shoulder
    score = np.zeros((1, 1, 17), np.float32)
    score[0, 0, 5] = 0.9
    out, s = flip(kp, score, 64, get_layout("coco").flip_index)
    np.testing.assert_array_equal(out[0, 0, 6], [54, 3])  # now the right shoulder
    assert s[0, 0, 6] == pytest.approx(0.9)
    np.testing.assert_array_equal(out[0, 0, 5], 0)


def test_random_joint_drop_zeroes_coordinates_and_scores_together():
    kp = np.ones((2, 50, 17, 2), np.float32)
    score = np.ones((2, 50, 17), np.float32)
    out, s = random_joint_drop(kp, score, p=0.3, rng=np.random.RandomState(0))
    dropped = s == 0
    assert 0.2 < dropped.mean() < 0.4
    np.testing.assert_array_equal(out[dropped], 0)
    np.testing.assert_array_equal(out[~dropped], 1)


# ---------------------------------------------------------------- formatting and pipelines

def test_format_gcn_input_pads_missing_people_and_splits_clips():
    kp = np.random.RandomState(0).rand(1, 6, 17, 3).astype(np.float32)
    out = format_gcn_input(kp, num_person=2, num_clips=3)
    assert out.shape == (3, 2, 2, 17, 3)
    np.testing.assert_array_equal(out[:, 1], 0)
    np.testing.assert_array_equal(out[1, 0], kp[0, 2:4])
    looped = format_gcn_input(kp, num_person=2, mode="loop")
    np.testing.assert_array_equal(looped[0, 1], kp[0])


def test_format_heatmap_input_orders_clips_then_flips():
    imgs = np.arange(2 * 2 * 3, dtype=np.float32).reshape(12, 1, 1, 1)  # (flip, clip, t)
    out = format_heatmap_input(imgs, num_clips=2, clip_len=3)
    assert out.shape == (4, 1, 3, 1, 1)
    np.testing.assert_array_equal(out[:, 0, :, 0, 0], np.arange(12).reshape(4, 3))


def test_pose_sample_rejects_mismatched_scores():
    with pytest.raises(ValueError, match="keypoint_score"):
        PoseSample(keypoint=np.zeros((1, 5, 17, 2)), keypoint_score=np.zeros((1, 4, 17)))


def test_pyskl_gcn_and_posec3d_test_pipelines_reproduced():
    ref = np.load(shared_file("reference", "pyskl", "pipelines.npz"))
    sample = PoseSample(keypoint=ref["anno_keypoint"], keypoint_score=ref["anno_keypoint_score"],
                        img_shape=(1080, 1920), test_mode=True)
    gcn = gcn_pipeline(layout="coco", clip_len=100, num_clips=10)(sample).keypoint
    np.testing.assert_allclose(gcn, ref["gcn_test"], atol=1e-6)
    c3d = posec3d_pipeline(clip_len=48, num_clips=2, test_size=64)(sample).imgs
    np.testing.assert_allclose(c3d, ref["c3d_test"], atol=1e-6)


def test_posec3d_train_pipeline_gives_one_56px_clip():
    rng = np.random.RandomState(0)
    kp = rng.uniform(200, 800, (1, 60, 17, 2)).astype(np.float32)
    sample = PoseSample(keypoint=kp, keypoint_score=np.ones((1, 60, 17), np.float32), img_shape=(1080, 1920))
    out = posec3d_pipeline(train=True, clip_len=16, rng=rng)(sample).imgs
    assert out.shape == (1, 17, 16, 56, 56) and out.max() > 0.5
