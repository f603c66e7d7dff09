"""One-Euro smoothing of tracked keypoints: less jitter on still joints, little lag on fast ones."""

from __future__ import annotations

import numpy as np
import pytest

from humact.perception.smoothing import one_euro, smooth_tracks
from humact.types import PoseTracks

FPS = 30.0


def test_a_still_noisy_joint_loses_most_of_its_jitter():
    rng = np.random.default_rng(0)
    x = 100 + rng.normal(0, 2.0, (120, 1, 2))
    f = one_euro(x, np.ones((120, 1), bool), fps=FPS, min_cutoff=1.0, beta=5.0, scale=np.full(120, 200.0))
    assert np.abs(f[30:] - 100).mean() < 0.5 * np.abs(x[30:] - 100).mean()


def test_a_fast_joint_lags_by_less_than_half_a_frame():
    """400 px/s (two body heights a second for a 200 px person), the issue's 'fast motion'."""
    t = np.arange(90)
    x = np.zeros((90, 1, 2))
    x[:, 0, 0] = 400 * t / FPS
    f = one_euro(x, np.ones((90, 1), bool), fps=FPS, min_cutoff=1.0, beta=5.0, scale=np.full(90, 200.0))
    lag_frames = (x[30:, 0, 0] - f[30:, 0, 0]).mean() / (400 / FPS)
    assert 0 <= lag_frames < 0.5


def test_the_filter_restarts_after_a_gap_instead_of_dragging_across_it():
    x = np.zeros((10, 1, 2))
    x[5:] = 500.0
    valid = np.ones((10, 1), bool)
    valid[4] = False
    f = one_euro(x, valid, fps=FPS)
    assert f[5, 0] == pytest.approx([500, 500]) and f[4, 0] == pytest.approx([0, 0])


def test_smooth_tracks_filters_only_seen_keypoints_and_keeps_the_rest():
    rng = np.random.default_rng(1)
    m, t = 1, 40
    kp = (100 + rng.normal(0, 3, (m, t, 17, 2))).astype(np.float32)
    scores = np.full((m, t, 17), 0.9, np.float32)
    scores[0, :, 0] = 0.1   # the nose is never seen
    boxes = np.tile(np.array([50, 0, 150, 200], np.float32), (m, t, 1))
    tracks = PoseTracks(track_ids=np.zeros(m, np.int64), keypoints=kp, keypoint_scores=scores, boxes=boxes,
                        box_scores=np.ones((m, t), np.float32), valid=np.ones((m, t), bool))
    out = smooth_tracks(tracks, fps=FPS)
    assert np.array_equal(out.keypoints[0, :, 0], kp[0, :, 0])
    assert np.abs(np.diff(out.keypoints[0, :, 5], axis=0)).mean() < np.abs(np.diff(kp[0, :, 5], axis=0)).mean()
    assert np.array_equal(out.boxes, boxes) and np.array_equal(out.keypoint_scores, scores)


def test_an_unknown_method_is_refused():
    tracks = PoseTracks.empty(3)
    with pytest.raises(ValueError, match="one-euro"):
        smooth_tracks(tracks, method="kalman", fps=FPS)
