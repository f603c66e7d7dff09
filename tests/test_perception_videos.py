"""The perception pipeline on two real videos of people in contact (the default, and `yolox`).

- `armwrestling_340x256.mp4` (MMAction2's demo video): two people arm-wrestling at a table
  for all 280 frames, others in the background, close-ups cut off by the frame edge, and
  about 40 frames of the file itself corrupted (smeared blocks) near the end.
- `ntu_hug_1080p.avi` (NTU RGB+D sample): two people walk up to each other and hug, 72 frames.

Needs the shared videos and the model files (`humact setup`; YOLOX from `../shared/models`);
skips with the reason otherwise. The issue's arm-wrestling targets that are not reached yet
are strict xfails with the measured figure in the reason: they fail loudly (XPASS) once
reached. The figures are in docs/tracking.md, docs/movenet.md and docs/yolox.md.

"Both wrestlers" counts frames with a box at least half the frame tall in each half of the
frame (the wrestlers sit left and right, nearly the frame's height; the background people
are under 130 of its 256 rows). "Two people" counted any two rows, background people
included: 167 frames for the default, where both wrestlers are on 56.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file


def _extract(name: str, **config_kw):
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.pipeline import ExtractConfig, extract_video, make_backend

    video = shared_file("data", "media", name)
    config = ExtractConfig(**config_kw)
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


@pytest.fixture(scope="module")
def arm_yolox():
    return _extract("armwrestling_340x256.mp4", backend="yolox",
                    detector_model=str(shared_file("models", "yolox_nano.onnx")))


def _people_per_frame(result) -> np.ndarray:
    """People seen per frame (rows filled between two sightings not counted)."""
    return result.tracks.seen.sum(axis=0)


def _wrestlers(result, *, filled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(left, right): per frame, whether a box at least half the frame tall is centred in that half."""
    t, m = result.tracks, result.meta
    rows = t.valid if filled else t.seen
    cx = (t.boxes[..., 0] + t.boxes[..., 2]) / 2
    big = rows & (t.boxes[..., 3] - t.boxes[..., 1] >= m.height / 2)
    return (big & (cx < m.width / 2)).any(0), (big & (cx >= m.width / 2)).any(0)


def _both_wrestlers(result) -> tuple[int, int]:
    """Frames with both wrestlers: seen, and counting filled rows."""
    return tuple(int(np.logical_and(*_wrestlers(result, filled=f)).sum()) for f in (False, True))


def test_hug_both_people_are_found_on_all_72_frames(hug):
    assert hug.meta.num_frames == 72
    assert (_people_per_frame(hug) >= 2).sum() == 72


def test_hug_the_two_people_keep_two_track_ids(hug):
    assert hug.tracks.num_persons == 2
    assert hug.tracks.seen.sum(axis=1).tolist() == [72, 72]


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
    longest = int(np.argmax(t.seen.sum(axis=1)))
    boxes = t.boxes[longest, t.seen[longest]]
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


def test_armwrestling_gap_filling_adds_rows_only_between_two_sightings_of_a_track(arm):
    """Default: both wrestlers seen on 56 frames, 133 with the rows `fill_gaps` interpolates in
    gaps of up to 1 s; someone on 274 seen, 280 with them."""
    t = arm.tracks
    assert t.filled is not None and not (t.filled & ~t.valid).any()
    for p in range(t.num_persons):
        f = np.flatnonzero(t.seen[p])
        assert not t.filled[p, : f[0]].any() and not t.filled[p, f[-1] + 1:].any()
    seen, filled = _both_wrestlers(arm)
    assert seen >= 50 and filled >= 120


@pytest.mark.xfail(strict=True, reason="issue target not reached by the default: both wrestlers seen on 56 "
                                       "of 280 frames (133 with filled gaps); MoveNet scores the cut-off "
                                       "close-ups below 0.1 and the right wrestler is mostly out of the frame")
def test_armwrestling_both_wrestlers_are_found_on_at_least_220_frames(arm):
    assert _both_wrestlers(arm)[0] >= 220


@pytest.mark.xfail(strict=True, reason="issue target not reached by the default: 11 ids, 6 seen >= 1 s, of "
                                       "which 2 are background people MoveNet finds correctly")
def test_armwrestling_at_most_3_track_ids(arm):
    assert arm.tracks.num_persons <= 3


def _longest_wrestler_track(result, right: bool) -> int:
    """Seen frames of the longest track whose median box is at least half the frame tall, in that half."""
    t, m = result.tracks, result.meta
    best = 0
    for p in range(t.num_persons):
        b = t.boxes[p, t.seen[p]]
        cx, h = np.median((b[:, 0] + b[:, 2]) / 2), np.median(b[:, 3] - b[:, 1])
        if h >= m.height / 2 and (cx >= m.width / 2) == right:
            best = max(best, int(t.seen[p].sum()))
    return best


def test_armwrestling_yolox_follows_each_wrestler_with_one_long_track(arm_yolox):
    """YOLOX boxes the landmark model finds no pose in are kept as box-only rows, boxes scoring
    0.1-0.3 continue tracks (ByteTrack's rule) and each pose is held to its detector box: the
    right wrestler, mostly outside the frame, is one track seen on 250 frames, the left one on 169
    (measured; before box-only rows the right one was found on 121 frames in all)."""
    assert _longest_wrestler_track(arm_yolox, right=True) >= 240
    assert _longest_wrestler_track(arm_yolox, right=False) >= 160


def test_armwrestling_yolox_both_wrestlers_with_filled_gaps(arm_yolox):
    """Measured: someone on 280 frames; both wrestlers seen on 184, 213 with filled gaps."""
    assert (_people_per_frame(arm_yolox) >= 1).sum() >= 270
    seen, filled = _both_wrestlers(arm_yolox)
    assert seen >= 175 and filled >= 205


@pytest.mark.xfail(strict=True, reason="issue target not reached by `yolox`: both wrestlers seen on 184 of 280 "
                                       "frames, 213 with filled gaps (the left wrestler is lost on the "
                                       "corrupted frames 229-270)")
def test_armwrestling_yolox_both_wrestlers_are_seen_on_at_least_220_frames(arm_yolox):
    assert _both_wrestlers(arm_yolox)[0] >= 220


@pytest.mark.xfail(strict=True, reason="issue target not reached by `yolox`: 17 ids, 10 seen >= 1 s: YOLOX "
                                       "finds the background people (mostly box-only rows); the wrestlers "
                                       "are one long track each plus fragments on the blurred frames")
def test_armwrestling_yolox_at_most_3_track_ids(arm_yolox):
    assert arm_yolox.tracks.num_persons <= 3
