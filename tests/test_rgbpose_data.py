"""RGBPoseConv3D's two-modality input (humact.skeleton.rgbpose) and its two-pathway loss; no shared data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humact.errors import ConfigError, InputError
from humact.skeleton import pipelines as P
from humact.skeleton.rgbpose import RGBPoseClips, crop_frame, rgbpose_views, sample_modalities

H, W = 96, 128
T = 40
WRIST = 9  # COCO left wrist; 10 is the right wrist


def _person(t: int = T) -> np.ndarray:
    """(1, T, 17, 2) pixels: a still body spread over x 20..70, y 10..90, its left wrist at (30, 50)."""
    rng = np.random.default_rng(0)
    kp = np.stack([rng.uniform(20, 70, 17), rng.uniform(10, 90, 17)], -1).astype(np.float32)
    kp[0] = (20, 10)
    kp[16] = (70, 90)
    kp[WRIST] = (30, 50)
    return np.repeat(kp[None, None], t, 1)


def _frames(kp: np.ndarray) -> dict[int, np.ndarray]:
    """Frames with a white 6 x 6 square on the left wrist, grey elsewhere."""
    out = {}
    for t in range(kp.shape[1]):
        f = np.full((H, W, 3), 60, np.uint8)
        x, y = kp[0, t, WRIST].astype(int)
        f[y - 3:y + 3, x - 3:x + 3] = 255
        out[t] = f
    return out


def _views(flip_ratio: float, seed: int = 3, train: bool = True, **kw):
    kp = _person()
    return rgbpose_views(kp, np.ones(kp.shape[:3], np.float32), (H, W), "unused.mp4", train=train, clip_len=8,
                         heatmap_size=16, heatmap_test_size=16, flip_ratio=flip_ratio,
                         rng=np.random.RandomState(seed) if train else None, frames=_frames(kp), **kw)


@pytest.mark.parametrize("test_mode", [False, True])
def test_rgb_frame_k_and_pose_frames_4k_to_4k_plus_3_come_from_the_same_eighth_of_the_video(test_mode):
    for total in (64, 100, 257):
        rng = None if test_mode else np.random.RandomState(total)
        rgb, pose = sample_modalities(total, 32, num_clips=1, test_mode=test_mode, rng=rng)
        assert rgb.shape == (8,) and pose.shape == (32,)
        bounds = [k * total // 8 for k in range(9)]
        for k in range(8):
            lo, hi = bounds[k], bounds[k + 1]
            assert lo <= rgb[k] < hi + 1, (total, k, rgb[k])  # PYSKL's segments are floor-divided
            assert all(lo - 1 <= p < hi + 1 for p in pose[4 * k:4 * k + 4]), (total, k, pose[4 * k:4 * k + 4])


def test_sampling_is_pyskl_mmuniformsampleframes_rgb_first_then_pose_from_one_generator():
    rgb, pose = sample_modalities(90, 32, rng=np.random.RandomState(7))
    r = np.random.RandomState(7)
    assert np.array_equal(rgb, P.uniform_sample_indices(90, 8, rng=r))
    assert np.array_equal(pose, P.uniform_sample_indices(90, 32, rng=r))
    rgb, pose = sample_modalities(90, 32, num_clips=3, test_mode=True)  # both with PYSKL's fixed test seed
    assert np.array_equal(rgb, P.uniform_sample_indices(90, 8, num_clips=3, test_mode=True))
    assert np.array_equal(pose, P.uniform_sample_indices(90, 32, num_clips=3, test_mode=True))
    with pytest.raises(ConfigError, match="multiple of 4"):
        sample_modalities(90, 30)


def test_shapes_train_one_clip_test_several_and_rgb_four_times_the_heatmaps():
    v = _views(0.5)
    assert v.imgs.shape == (1, 3, 2, 64, 64) and v.heatmaps.shape == (1, 17, 8, 16, 16)
    v = _views(0.0, train=False, num_clips=3)
    assert v.imgs.shape == (3, 3, 2, 64, 64) and v.heatmaps.shape == (3, 17, 8, 16, 16)
    assert v.imgs.dtype == torch.float32 and not v.flipped


def _square_centre(imgs: torch.Tensor) -> np.ndarray:
    """(x, y) centre of the white square in the first RGB frame, in RGB pixels."""
    bright = imgs[0, 0, 0].numpy() > 1.5  # normalised white is ~2.2, grey ~-1.1
    ys, xs = np.nonzero(bright)
    return np.array([xs.mean(), ys.mean()])


def _peak(heat: torch.Tensor, channel: int) -> np.ndarray:
    h = heat[0, channel, 0].numpy()
    y, x = np.unravel_index(np.argmax(h), h.shape)
    return np.array([x, y], float)


@pytest.mark.parametrize("train", [True, False])
def test_the_wrist_heatmap_peaks_where_the_frames_show_the_wrist(train):
    """Frames and keypoints go through the same compact box, resize and crop: the white square on the
    wrist in the RGB input sits 4x the wrist heatmap's peak."""
    v = _views(0.0, train=train)
    np.testing.assert_allclose(_square_centre(v.imgs) / 4, _peak(v.heatmaps, WRIST), atol=1.0)


def test_a_flip_mirrors_the_frames_and_the_poses_together_and_swaps_left_and_right():
    plain, flipped = _views(0.0), _views(1.0)  # same generator: same frames, box and crop, then the flip
    assert flipped.flipped and not plain.flipped
    assert np.array_equal(plain.rgb_inds, flipped.rgb_inds) and plain.box == flipped.box
    torch.testing.assert_close(flipped.imgs, plain.imgs.flip(-1))
    # The left wrist's square is now on the other side, and the heatmaps call it the right wrist.
    np.testing.assert_allclose(_square_centre(flipped.imgs) / 4, _peak(flipped.heatmaps, WRIST + 1), atol=1.0)
    hw = plain.heatmaps.shape[-1]
    for k, swap in ((WRIST, WRIST + 1), (5, 6), (0, 0)):
        x0, y0 = _peak(plain.heatmaps, k)
        x1, y1 = _peak(flipped.heatmaps, swap)
        assert abs((hw - x0) - x1) <= 1 and y0 == y1


def test_crop_frame_pads_with_zeros_outside_the_frame():
    f = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) + 1
    out = crop_frame(f, (-2, 1, 4, 6))
    assert out.shape == (5, 6, 3)
    assert np.array_equal(out[:3, 2:6], f[1:4, 0:4]) and not out[:, :2].any() and not out[3:].any()


def test_keypoints_follow_the_decoded_frames_when_the_video_is_another_size():
    """MMDecode: poses of a 96 x 128 video read against frames decoded at 192 x 256 are rescaled."""
    kp = _person()
    big = {t: np.repeat(np.repeat(f, 2, 0), 2, 1) for t, f in _frames(kp).items()}
    v = rgbpose_views(kp, None, (H, W), "unused.mp4", train=False, clip_len=8, heatmap_size=16,
                      heatmap_test_size=16, frames=big)
    assert v.box[2] > W  # the box is in the decoded frames' pixels
    np.testing.assert_allclose(_square_centre(v.imgs) / 4, _peak(v.heatmaps, WRIST), atol=1.0)


def test_a_sample_without_its_video_is_refused_naming_the_field():
    from humact.config import default_config
    from humact.skeleton.datasets import SkeletonDataset, SkeletonSample

    data = SkeletonDataset([SkeletonSample(_person(), 0, "v0", None, (H, W))], ("a",), "coco", "folder")
    with pytest.raises(InputError, match="v0.*filename"):
        RGBPoseClips(data, default_config("rgbposeconv3d").input, train=True)


def test_the_loss_is_pyskls_weighted_sum_of_one_cross_entropy_per_head():
    from humact.video_models.rgbposeconv3d import rgbposeconv3d

    torch.manual_seed(0)
    model = rgbposeconv3d(num_classes=3, base_channels=4, dropout=0.0)
    out = {"rgb": torch.randn(4, 3), "pose": torch.randn(4, 3)}
    y = torch.tensor([0, 1, 2, 1])
    ce = torch.nn.CrossEntropyLoss()
    loss, fused = model.loss(out, y, ce)
    torch.testing.assert_close(loss, ce(out["rgb"], y) + ce(out["pose"], y))
    torch.testing.assert_close(fused, out["rgb"].softmax(1) + out["pose"].softmax(1))
    model.loss_weights = {"rgb": 1.0, "pose": 0.5}
    loss, _ = model.loss(out, y, ce)
    torch.testing.assert_close(loss, ce(out["rgb"], y) + 0.5 * ce(out["pose"], y))
    assert set(model.last_losses) == {"rgb", "pose"}


def test_narrow_variant_keeps_the_pathways_ratio_and_runs_forward_and_backward():
    from humact.video_models.rgbposeconv3d import rgbposeconv3d

    model = rgbposeconv3d(num_classes=2, base_channels=8)
    sd = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sd["backbone.rgb_path.conv1.conv.weight"][0] == 8 and sd["backbone.pose_path.conv1.conv.weight"][0] == 4
    assert sd["cls_head.fc_rgb.weight"] == (2, 8 * 32) and sd["cls_head.fc_pose.weight"] == (2, 4 * 16)
    out = model(torch.randn(2, 3, 2, 32, 32), torch.rand(2, 17, 8, 8, 8))
    loss, _ = model.loss(out, torch.tensor([0, 1]), torch.nn.CrossEntropyLoss())
    loss.backward()
    assert model.backbone.pose_path.layer1_lateral.conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="even"):
        rgbposeconv3d(base_channels=7)
