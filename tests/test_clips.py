"""Clip sampling, test views and score fusion for the RGB recognizers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humact.video_models.clips import (ClipSpec, center_crop, clip_views, flip_horizontal, fuse_scores, normalize,
                                       resize_short_side, sample_frames, three_crop)
from humact.video_models.heads import average_clips


def test_test_clips_are_centred_in_equal_segments():
    # MMAction2 SampleFrames(clip_len=8, frame_interval=8, num_clips=10, test_mode=True) on 300 frames:
    # span 64, avg_interval (300 - 64 + 1) / 10 = 23.7, starts int(k * 23.7 + 11.85)
    idx = sample_frames(300, clip_len=8, frame_interval=8, num_clips=10)
    assert idx.shape == (10, 8)
    assert idx[:, 0].tolist() == [int(k * 23.7 + 11.85) for k in range(10)]
    assert (np.diff(idx, axis=1) == 8).all()


def test_short_video_clips_wrap_around():
    idx = sample_frames(20, clip_len=8, frame_interval=4, num_clips=2)
    assert idx[0].tolist() == [0, 4, 8, 12, 16, 0, 4, 8]
    assert (idx < 20).all()


def test_training_clips_are_random_within_their_segments():
    rng = np.random.default_rng(0)
    idx = sample_frames(1000, clip_len=4, frame_interval=16, num_clips=3, test_mode=False, rng=rng)
    seg = (1000 - 64 + 1) // 3
    assert all(k * seg <= s < (k + 1) * seg for k, s in enumerate(idx[:, 0]))
    other = sample_frames(1000, clip_len=4, frame_interval=16, num_clips=3, test_mode=False,
                          rng=np.random.default_rng(1))
    assert not np.array_equal(idx, other)


def test_resize_keeps_aspect_with_short_side_256():
    frames = np.zeros((2, 240, 320, 3), np.uint8)
    assert resize_short_side(frames, 256).shape == (2, 256, 341, 3)
    assert resize_short_side(np.zeros((1, 400, 300, 3), np.uint8), 256).shape == (1, 341, 256, 3)


def test_three_crop_covers_start_centre_and_end_of_the_long_side():
    frames = np.arange(10)[None, None, :, None].repeat(4, 1).repeat(3, 3).astype(np.uint8)  # (1, 4, 10, 3), x value
    crops = three_crop(frames, 4)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 3, 6]
    assert int(center_crop(frames, 4)[0, 0, 0, 0]) == 3


def test_flip_mirrors_columns():
    frames = np.arange(6, dtype=np.uint8).reshape(1, 1, 2, 3)
    assert flip_horizontal(frames)[0, 0, 0].tolist() == [3, 4, 5]


def test_normalize_uses_channel_statistics_and_moves_channels_first():
    frames = np.full((2, 3, 4, 3), 100, np.uint8)
    x = normalize(frames, mean=(100.0, 50.0, 0.0), std=(1.0, 2.0, 4.0))
    assert x.shape == (3, 2, 3, 4)
    assert x[:, 0, 0, 0].tolist() == [0.0, 25.0, 25.0]


def test_clip_views_are_clips_times_crops_times_flips():
    frames = {i: np.full((240, 320, 3), i, np.uint8) for i in range(40)}
    clips = sample_frames(40, clip_len=4, frame_interval=2, num_clips=2)
    views = clip_views(frames, clips, ClipSpec(4, 2, 2, crop="three", crop_size=224, flip=True))
    assert views.shape == (2 * 3 * 2, 3, 4, 224, 224)


def test_clip_scores_average_probabilities_or_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    assert torch.allclose(average_clips(logits, 2, "score"), torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(average_clips(logits, 2, "prob"), logits.softmax(-1).mean(0, keepdim=True))


def test_ensemble_weights_models_and_heads():
    a = torch.tensor([[1.0, 0.0]])
    rgbpose = {"rgb": torch.tensor([[0.0, 1.0]]), "pose": torch.tensor([[1.0, 1.0]])}
    fused = fuse_scores({"csn_ip": a, "csn_ir": a, "rgbpose": rgbpose},
                        {"csn_ip": 0.5, "csn_ir": 2.0, "rgbpose": {"rgb": 1.0, "pose": 0.5}})
    assert fused.tolist() == [[0.5 + 2.0 + 0.5, 1.0 + 0.5]]


def test_ensemble_rejects_head_weights_for_a_single_output_model():
    with pytest.raises(ValueError, match="weights for 'csn' are per head"):
        fuse_scores({"csn": torch.zeros(1, 2)}, {"csn": {"rgb": 1.0}})


def test_video_list_resolves_paths_and_names_the_bad_line(tmp_path):
    from humact.video_models.clips import read_video_list

    lst = tmp_path / "train.txt"
    lst.write_text("a/b.mp4 3\n# comment\n\n/abs/c.avi 0\n")
    assert read_video_list(lst) == [(tmp_path / "a/b.mp4", 3), (tmp_path.__class__("/abs/c.avi"), 0)]
    lst.write_text("a.mp4 3\nb.mp4 cat\n")
    with pytest.raises(ValueError, match=r"train\.txt:2: expected '<video path> <label index>'"):
        read_video_list(lst)


def test_clip_dataset_items_are_normalised_clips_reproducible_per_epoch():
    from conftest import shared_file
    from humact.video_models.clips import VideoClipDataset

    video = shared_file("data", "media", "archery_320x240.avi")
    data = VideoClipDataset([(video, 2)], ClipSpec(4, 8), clips_per_video=2, short_side=64, crop_size=56, cache=False)
    x, y = data[1]
    assert x.shape == (3, 4, 56, 56) and x.dtype == torch.float32 and y == 2
    assert torch.equal(data[1][0], x)
    data.set_epoch(1)
    assert not torch.equal(data[1][0], x)
