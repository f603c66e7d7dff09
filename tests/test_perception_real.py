"""The whole perception pipeline on a real video (issue 2's acceptance figures).

`ntu_hug_1080p.avi`: two people walk up to each other and hug, 72 frames at 1080p.
Needs the shared real data and the BlazePose model files (`humact setup`).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file


@pytest.fixture(scope="module")
def hug_result():
    from humact.perception.model_files import ModelFilesMissing, find_models
    from humact.perception.pipeline import extract_video

    video = shared_file("data", "media", "ntu_hug_1080p.avi")
    try:
        find_models()
    except ModelFilesMissing as e:
        pytest.skip(f"BlazePose model files missing: {e}")
    return extract_video(video)


def test_someone_is_found_on_at_least_70_of_72_frames(hug_result):
    assert hug_result.meta.num_frames == 72
    assert hug_result.tracks.valid.any(axis=0).sum() >= 70


def test_both_people_are_found_on_at_least_55_frames(hug_result):
    assert (hug_result.tracks.valid.sum(axis=0) >= 2).sum() >= 55


def test_at_most_3_track_ids_in_total(hug_result):
    assert 2 <= hug_result.tracks.num_persons <= 3


def test_every_keypoint_lies_inside_the_frame(hug_result):
    kp = hug_result.tracks.keypoints[hug_result.tracks.valid]
    assert (kp[..., 0] >= 0).all() and (kp[..., 0] <= 1920).all()
    assert (kp[..., 1] >= 0).all() and (kp[..., 1] <= 1080).all()


def test_part_boxes_lie_inside_their_person_box(hug_result):
    parts, tracks = hug_result.parts, hug_result.tracks
    person = np.broadcast_to(tracks.boxes[:, :, None, :], parts.boxes.shape)
    sel = parts.valid
    assert sel.any()
    pb, bb = parts.boxes[sel], person[sel]
    eps = 1e-3
    assert (pb[:, 0] >= bb[:, 0] - eps).all() and (pb[:, 1] >= bb[:, 1] - eps).all()
    assert (pb[:, 2] <= bb[:, 2] + eps).all() and (pb[:, 3] <= bb[:, 3] + eps).all()


def test_the_two_people_keep_apart_tracks_while_they_hug(hug_result):
    """Where both are seen, the two main tracks never collapse onto one person."""
    tracks = hug_result.tracks
    main = np.argsort(-tracks.valid.sum(axis=1))[:2]
    both = tracks.valid[main[0]] & tracks.valid[main[1]]
    c0 = tracks.boxes[main[0], both].reshape(-1, 2, 2).mean(1)
    c1 = tracks.boxes[main[1], both].reshape(-1, 2, 2).mean(1)
    assert both.sum() >= 55
    assert (np.linalg.norm(c0 - c1, axis=1) > 50).all()
