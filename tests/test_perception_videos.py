"""The default perception pipeline on two real videos of people in contact.

- `armwrestling_340x256.mp4` (MMAction2's demo video): two people arm-wrestling at a table
  for all 280 frames, others in the background, close-ups cut off by the frame edge, and
  about 40 frames of the file itself corrupted (smeared blocks) near the end.
- `ntu_hug_1080p.avi` (NTU RGB+D sample): two people walk up to each other and hug, 72 frames.

Needs the shared videos and the model files (`humact setup`); skips with the reason otherwise.
The issue's arm-wrestling targets that the default does not reach yet are strict xfails
with the measured figure in the reason: they fail loudly (XPASS) once reached. The figures
are in docs/tracking.md and docs/movenet.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file


def _extract(name: str):
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.pipeline import ExtractConfig, extract_video, make_backend

    video = shared_file("data", "media", name)
    config = ExtractConfig()
    try:
        backend = make_backend(config)
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")
    return extract_video(video, config=config, backend=backend)


@pytest.fixture(scope="module")
def hug():
    return _extract("ntu_hug_1080p.avi")


@pytest.fixture(scope="module")
def arm():
    return _extract("armwrestling_340x256.mp4")


def _people_per_frame(result) -> np.ndarray:
    return result.tracks.valid.sum(axis=0)


def test_hug_both_people_are_found_on_all_72_frames(hug):
    assert hug.meta.num_frames == 72
    assert (_people_per_frame(hug) >= 2).sum() == 72


def test_hug_the_two_people_keep_two_track_ids(hug):
    assert hug.tracks.num_persons == 2
    assert hug.tracks.valid.sum(axis=1).tolist() == [72, 72]


def test_hug_the_two_tracks_stay_on_different_bodies_while_they_hug(hug):
    c = hug.tracks.boxes.reshape(2, 72, 2, 2).mean(2)   # box centres
    assert (np.linalg.norm(c[0] - c[1], axis=1) > 50).all()


def test_armwrestling_someone_is_found_on_at_least_270_of_280_frames(arm):  # 274 measured
    assert arm.meta.num_frames == 280
    assert (_people_per_frame(arm) >= 1).sum() >= 270


def test_armwrestling_the_left_wrestler_keeps_one_id_for_most_of_the_video(arm):
    """The wrestler in white (left half, nearly the frame's height) is in every frame; one
    track follows him for at least 140 of them (147 measured, before and after the gates)."""
    t = arm.tracks
    longest = int(np.argmax(t.valid.sum(axis=1)))
    boxes = t.boxes[longest, t.valid[longest]]
    assert len(boxes) >= 140
    assert np.median((boxes[:, 0] + boxes[:, 2]) / 2) < 170 and np.median(boxes[:, 3] - boxes[:, 1]) > 180


def test_armwrestling_no_track_jumps_to_another_body_from_one_frame_to_the_next(arm):
    """The tracker's gates (`ExtractConfig.max_shift` 0.5 predicted-box diagonals,
    `max_area_ratio` 3): before them, tracks moved up to 0.98 diagonals and grew 14-fold in one
    frame (a background person's track taking a wrestler's pose); measured now 0.40 and 2.98."""
    t = arm.tracks
    for p in range(t.num_persons):
        f = np.flatnonzero(t.valid[p])
        step = f[1:] - f[:-1] == 1
        a, b = t.boxes[p, f[:-1][step]].astype(float), t.boxes[p, f[1:][step]].astype(float)
        diag = np.hypot(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1])
        shift = np.linalg.norm((a[:, :2] + a[:, 2:]) / 2 - (b[:, :2] + b[:, 2:]) / 2, axis=1) / diag
        area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])   # noqa: E731
        ratio = area(b) / np.maximum(area(a), 1.0)
        assert (shift <= 0.6).all() and (ratio <= 3.0).all() and (ratio >= 1 / 3.0).all()


def test_armwrestling_ids_after_stitching_and_those_lasting_a_second(arm):
    """11 ids measured (13 before the gates and stitching), 6 of them seen for >= 1 s: the two
    wrestlers, two background people, one track on the corrupted frames, one holding the left
    wrestler, poses spanning both on the blurred frames, then the right wrestler (143-279)."""
    from humact.perception.pipeline import lasting_ids

    assert arm.tracks.num_persons <= 12
    assert lasting_ids(arm, seconds=1.0) <= 6


@pytest.mark.xfail(strict=True, reason="issue target not reached by the default: two people on 167 of 280 "
                                       "frames (the backend finds two rows on only ~190; the right wrestler is "
                                       "mostly out of the frame, only his forearm is seen)")
def test_armwrestling_both_people_are_found_on_at_least_220_frames(arm):
    assert (_people_per_frame(arm) >= 2).sum() >= 220


@pytest.mark.xfail(strict=True, reason="issue target not reached by the default: 11 ids, 6 seen >= 1 s, of "
                                       "which 2 are background people MoveNet finds correctly")
def test_armwrestling_at_most_3_track_ids(arm):
    assert arm.tracks.num_persons <= 3
