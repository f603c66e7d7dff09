"""Tracking on synthetic trajectories: ids are stable, new, lost and re-found as specified."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from humact.perception.boxes import box_iou
from humact.perception.tracking import COCO17_SIGMAS, Tracker, oks_matrix, track
from humact.types import Detections

# A frontal standing person, COCO-17 order, as (x, y) offsets in units of body height
# from the top-centre of the body; the person's left is the image's right.
_SKELETON = np.array([
    [0.00, 0.06], [0.02, 0.05], [-0.02, 0.05], [0.05, 0.06], [-0.05, 0.06],
    [0.12, 0.18], [-0.12, 0.18], [0.15, 0.33], [-0.15, 0.33], [0.16, 0.46], [-0.16, 0.46],
    [0.08, 0.52], [-0.08, 0.52], [0.08, 0.72], [-0.08, 0.72], [0.08, 0.93], [-0.08, 0.93],
])


def _person(cx: float, top: float, height: float, rng=None, jitter: float = 0.0):
    """(box (4,), keypoints (17, 2)) of a standing person of `height` pixels."""
    kp = np.array([cx, top]) + _SKELETON * height
    if rng is not None:
        kp = kp + rng.normal(0.0, jitter * height, kp.shape)
    box = np.array([cx - 0.2 * height, top, cx + 0.2 * height, top + height])
    return box, kp


def _detections(rows) -> Detections:
    """rows: list of (frame, box, keypoints[, keypoint_scores]) -> Detections."""
    if not rows:
        return Detections.empty()
    return Detections(
        frame=[r[0] for r in rows], xyxy=[r[1] for r in rows], score=np.full(len(rows), 0.9),
        keypoints=[r[2] for r in rows],
        keypoint_scores=[r[3] if len(r) > 3 else np.ones(17) for r in rows])


def _ids_by_truth(det: Detections, truth: list[str]) -> dict[str, set[int]]:
    """For each true person label, the set of track ids its rows received."""
    out: dict[str, set[int]] = {}
    for label, tid in zip(truth, det.track_id):
        out.setdefault(label, set()).add(int(tid))
    return out


def test_oks_is_one_for_identical_poses_and_falls_with_distance():
    _, kp = _person(100, 0, 200)
    shifted = [kp + d for d in (0.0, 5.0, 20.0)]
    oks, common = oks_matrix(kp[None], np.ones((1, 17)), np.stack(shifted), np.ones((3, 17)), np.array([80 * 200.0]))
    assert common.all()
    assert oks[0, 0] == pytest.approx(1.0)
    assert 1.0 > oks[0, 1] > oks[0, 2] > 0.0


def test_oks_uses_the_coco_formula():
    kp = np.zeros((1, 17, 2))
    other = kp + np.array([3.0, 4.0])  # every keypoint 5 px away
    area = 400.0
    oks, _ = oks_matrix(kp, np.ones((1, 17)), other, np.ones((1, 17)), np.array([area]))
    expected = np.mean(np.exp(-25.0 / (2 * area * (2 * COCO17_SIGMAS) ** 2)))
    assert oks[0, 0] == pytest.approx(expected)


def test_oks_counts_only_keypoints_visible_in_both_poses():
    kp = np.zeros((1, 17, 2))
    far = kp.copy()
    far[0, 5:] = 1000.0  # only keypoints 0..4 agree ...
    scores = np.zeros((1, 17))
    scores[0, :5] = 1.0  # ... and only those are visible
    oks, common = oks_matrix(kp, scores, far, np.ones((1, 17)), np.array([100.0]))
    assert common[0, 0] and oks[0, 0] == pytest.approx(1.0)
    oks, common = oks_matrix(kp, np.zeros((1, 17)), far, np.ones((1, 17)), np.array([100.0]))
    assert not common[0, 0] and oks[0, 0] == 0.0


def test_ids_are_consecutive_from_zero_in_order_of_first_appearance():
    rows = []
    for t in range(10):
        rows.append((t, *_person(600, 100, 300)))
        if t >= 3:
            rows.append((t, *_person(200, 100, 300)))
        if t >= 6:
            rows.append((t, *_person(1000, 100, 300)))
    out = track(_detections(rows), 10)
    first_id = {}
    for f, tid in zip(out.frame, out.track_id):
        first_id.setdefault(int(tid), int(f))
    assert sorted(first_id) == [0, 1, 2]
    assert [first_id[i] for i in range(3)] == [0, 3, 6]


def test_no_two_rows_of_a_frame_share_an_id():
    rng = np.random.default_rng(0)
    rows = []
    for t in range(30):  # five people in a crowd, jittering and drifting
        for k in range(5):
            rows.append((t, *_person(300 + 120 * k + 3 * t * (-1) ** k, 200, 400, rng, 0.02)))
    out = track(_detections(rows), 30)
    for t in range(30):
        ids = out.track_id[out.frame == t]
        assert len(np.unique(ids)) == len(ids) and (ids >= 0).all()


def test_a_new_person_gets_a_new_id():
    tracker = Tracker()
    first = tracker.update(_detections([(0, *_person(300, 100, 300))]))
    second = tracker.update(_detections([(1, *_person(302, 100, 300)), (1, *_person(900, 100, 300))]))
    assert first.track_id.tolist() == [0]
    assert second.track_id.tolist() == [0, 1]


def test_a_person_who_disappears_for_a_few_frames_keeps_their_id():
    rows, truth = [], []
    for t in range(40):
        rows.append((t, *_person(200 + 4 * t, 100, 300)))
        truth.append("a")
        if not 15 <= t < 22:  # b walks behind a pillar for 7 frames
            rows.append((t, *_person(1400 - 5 * t, 120, 280)))
            truth.append("b")
    out = track(_detections(rows), 40, max_lost_frames=10)
    ids = _ids_by_truth(out, truth)
    assert ids == {"a": {0}, "b": {1}}


def test_a_person_lost_longer_than_max_lost_frames_gets_a_new_id():
    rows = [(t, *_person(500, 100, 300)) for t in list(range(5)) + list(range(15, 20))]
    out = track(_detections(rows), 20, max_lost_frames=5)
    assert out.track_id.tolist() == [0] * 5 + [1] * 5


def test_people_crossing_keep_their_ids():
    # a walks right in the back (smaller), b walks left in front (larger) and hides a
    # for the 5 frames around the crossing.
    rng = np.random.default_rng(1)
    rows, truth = [], []
    for t in range(40):
        xa, xb = 300 + 20 * t, 1100 - 20 * t
        if abs(xa - xb) > 120:
            rows.append((t, *_person(xa, 150, 330, rng, 0.01)))
            truth.append("a")
        rows.append((t, *_person(xb, 100, 400, rng, 0.01)))
        truth.append("b")
    out = track(_detections(rows), 40)
    ids = _ids_by_truth(out, truth)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"]


def test_two_people_walking_up_to_each_other_and_hugging_stay_two_tracks():
    # They approach from both sides, then stand in an embrace with boxes overlapping
    # (IoU ~0.5) while their poses jitter, for 30 frames.
    rng = np.random.default_rng(2)
    rows, truth = [], []
    for t in range(60):
        gap = max(80.0, 900.0 - 30.0 * t)
        for label, sign in (("a", -1), ("b", 1)):
            rows.append((t, *_person(960 + sign * gap / 2, 200, 600, rng, 0.015)))
            truth.append(label)
    out = track(_detections(rows), 60)
    assert box_iou(out.xyxy[-2:-1], out.xyxy[-1:])[0, 0] == pytest.approx(0.5)
    ids = _ids_by_truth(out, truth)
    assert ids == {"a": {0}, "b": {1}}


def test_a_person_hidden_behind_the_other_during_the_hug_gets_their_id_back():
    # As above, but while they embrace b is hidden behind a for 6 frames.
    rng = np.random.default_rng(5)
    rows, truth = [], []
    for t in range(60):
        gap = max(80.0, 900.0 - 30.0 * t)
        for label, sign in (("a", -1), ("b", 1)):
            if label == "b" and 40 <= t < 46:
                continue
            rows.append((t, *_person(960 + sign * gap / 2, 200, 600, rng, 0.015)))
            truth.append(label)
    ids = _ids_by_truth(track(_detections(rows), 60), truth)
    assert ids == {"a": {0}, "b": {1}}


def test_identical_boxes_are_told_apart_by_their_keypoints():
    # During an embrace a detector may give both people the same box; the skeletons
    # still differ, and keypoint similarity must keep each on its own track.
    rng = np.random.default_rng(3)
    rows, truth = [], []
    shared_box = np.array([700.0, 200.0, 1220.0, 800.0])
    for t in range(20):
        for label, cx in (("a", 860.0), ("b", 1060.0)):
            _, kp = _person(cx, 200, 600, rng, 0.01)
            rows.append((t, shared_box, kp))
            truth.append(label)
    # Present b first in odd frames, so row order cannot carry the identity.
    order = [i for t in range(20) for i in ((2 * t, 2 * t + 1) if t % 2 == 0 else (2 * t + 1, 2 * t))]
    det = _detections([rows[i] for i in order])
    out = track(det, 20, use_motion=False)
    ids = _ids_by_truth(out, [truth[i] for i in order])
    assert ids == {"a": {0}, "b": {1}}


def test_track_returns_rows_in_their_input_order():
    rows = [(t, *_person(200 + 10 * t, 100, 300)) for t in range(5)] + \
           [(t, *_person(900 - 10 * t, 100, 300)) for t in range(5)]
    det = _detections(rows)
    perm = np.random.default_rng(4).permutation(len(det))
    out = track(det[perm], 5)
    np.testing.assert_array_equal(out.frame, det.frame[perm])
    np.testing.assert_array_equal(out.track_id, np.where(perm < 5, 0, 1))


def test_a_detection_seen_in_fewer_than_min_hits_frames_becomes_no_track():
    rows = [(t, *_person(300, 100, 300)) for t in range(10)]
    rows += [(4, *_person(1200, 100, 300)), (5, *_person(1201, 100, 300))]  # a 2-frame ghost
    rows += [(t, *_person(700, 100, 300)) for t in range(6, 10)]
    out = track(_detections(rows), 10, min_hits=3)
    assert out.track_id.tolist() == [0] * 10 + [-1, -1] + [1] * 4


def test_a_tentative_track_gets_its_id_on_the_frame_it_is_confirmed():
    tracker = Tracker(min_hits=3)
    for t in range(4):
        tracker.update(_detections([(t, *_person(300, 100, 300))]))
    ids = [tracker.update(_detections([(t, *_person(300, 100, 300)), (t, *_person(900, 100, 300))])).track_id[1]
           for t in range(4, 7)]
    assert ids == [-1, -1, 1]


def test_history_gives_a_confirmed_track_its_tentative_rows():
    tracker = Tracker(min_hits=3)
    for t in range(4):
        tracker.update(_detections([(t, *_person(300, 100, 300))]))
    for t in range(4, 7):
        tracker.update(_detections([(t, *_person(300, 100, 300)), (t, *_person(900, 100, 300))]))
    hist = tracker.history()
    assert hist.frame.tolist() == [0, 1, 2, 3, 4, 4, 5, 5, 6, 6]
    assert hist.track_id.tolist() == [0, 0, 0, 0, 0, 1, 0, 1, 0, 1]


def test_people_present_from_the_first_frames_are_confirmed_at_once():
    tracker = Tracker(min_hits=3)
    out = tracker.update(_detections([(0, *_person(300, 100, 300)), (0, *_person(900, 100, 300))]))
    assert out.track_id.tolist() == [0, 1]


def test_a_confirmed_track_takes_its_detection_before_a_tentative_one():
    # A duplicate of a's detection starts a tentative track at frame 5, right where a
    # will be next; a, still confirmed, keeps the single detection of frame 6.
    rows = [(t, *_person(300 + 10 * t, 100, 300)) for t in range(6)]
    rows.append((5, *_person(362, 100, 300)))
    rows.append((6, *_person(362, 100, 300)))
    out = track(_detections(rows), 7, min_hits=3)
    assert out.track_id.tolist() == [0] * 6 + [-1, 0]


def test_tracks_shorter_than_min_track_length_are_discarded():
    rows = [(t, *_person(300, 100, 300)) for t in range(10)] + [(t, *_person(900, 100, 300)) for t in range(4, 8)]
    out = track(_detections(rows), 10, min_hits=1, min_track_length=5)
    assert out.track_id.tolist() == [0] * 10 + [-1] * 4


def test_a_low_score_detection_starts_no_track():
    det = _detections([(0, *_person(300, 100, 300))])
    det.score[:] = 0.2
    assert Tracker(new_track_score=0.5).update(det).track_id.tolist() == [-1]


def test_update_rejects_rows_from_several_frames():
    det = _detections([(0, *_person(300, 100, 300)), (1, *_person(300, 100, 300))])
    with pytest.raises(ValueError, match="one frame"):
        Tracker().update(det)


def test_update_rejects_frames_out_of_order():
    tracker = Tracker()
    tracker.update(_detections([(5, *_person(300, 100, 300))]))
    with pytest.raises(ValueError, match="increase"):
        tracker.update(_detections([(3, *_person(300, 100, 300))]))


def test_history_keeps_the_landmarks_across_empty_frames():
    tracker = Tracker()
    det = _detections([(0, *_person(300, 100, 300))])
    det.landmarks = np.ones((1, 33, 3), np.float32)
    det.landmark_scores = np.ones((1, 33), np.float32)
    det.world_landmarks = np.ones((1, 33, 3), np.float32)
    tracker.update(det)
    tracker.update(Detections.empty(), frame=1)  # a frame without anybody, built without landmarks
    hist = tracker.history()
    assert hist.landmarks is not None and hist.landmarks.shape == (1, 33, 3)


def _image_with(people: list[tuple[np.ndarray, tuple[int, int, int]]], size=(400, 600)) -> np.ndarray:
    """An RGB image with each person's box filled with its colour."""
    img = np.full(size + (3,), 128, np.uint8)
    for box, colour in people:
        x1, y1, x2, y2 = (int(v) for v in box)
        img[max(y1, 0):y2, max(x1, 0):x2] = colour
    return img


def test_the_torso_histogram_sums_to_one_and_tells_red_from_blue():
    from humact.perception.tracking import torso_histogram

    box, kp = _person(100, 50, 200)
    red = torso_histogram(_image_with([(box, (200, 30, 30))]), box, kp, np.ones(17))
    blue = torso_histogram(_image_with([(box, (30, 30, 200))]), box, kp, np.ones(17))
    assert red.sum() == pytest.approx(1.0) and blue.sum() == pytest.approx(1.0)
    assert np.sqrt(red * blue).sum() < 0.1 and np.sqrt(red * red).sum() == pytest.approx(1.0)


def test_appearance_gives_a_person_seen_again_after_a_gap_their_id_back_where_motion_alone_swaps():
    """Two people side by side; both vanish for 10 frames and come back with their places
    swapped. Without appearance each id goes to whoever is where it was; with the torso
    colour each id goes back to its colour."""
    red, blue = (200, 30, 30), (30, 30, 200)
    frames = []
    for t in range(20):
        if 5 <= t < 15:
            frames.append((t, [], None))
            continue
        left, right = (red, blue) if t < 5 else (blue, red)
        a, ka = _person(150, 60, 220)
        b, kb = _person(230, 60, 220)
        frames.append((t, [(a, ka, left), (b, kb, right)], _image_with([(a, left), (b, right)])))

    def run(weight: float) -> dict:
        tr = Tracker(appearance_weight=weight, max_lost_frames=15, min_hits=1)
        colour_ids: dict[tuple, set] = {}
        for t, people, img in frames:
            det = _detections([(t, box, kp) for box, kp, _ in people])
            out = tr.update(det, frame=t, image=img)
            for (_, _, colour), tid in zip(people, out.track_id):
                colour_ids.setdefault(colour, set()).add(int(tid))
        return colour_ids

    assert run(0.0)[red] == {0, 1}                      # motion and pose alone: swapped
    with_app = run(1.0)
    assert len(with_app[red]) == 1 and len(with_app[blue]) == 1 and with_app[red] != with_app[blue]


def test_without_an_image_the_appearance_weight_changes_nothing():
    rng = np.random.default_rng(1)
    rows = [(t, *_person(100 + 3 * t, 50, 200, rng, 0.01)) for t in range(10)]
    a = track(_detections(rows), 10, appearance_weight=0.0).track_id
    b = track(_detections(rows), 10, appearance_weight=1.0).track_id
    assert a.tolist() == b.tolist()


# --- gates: a track never jumps to another body or to a pose spread over two --------------


def test_the_gate_refuses_far_or_much_larger_boxes_and_allows_more_after_a_gap():
    tr = Tracker(max_shift=0.5, max_shift_growth=0.05, max_area_ratio=3.0)
    pred = np.array([[0.0, 0.0, 30.0, 40.0]])            # diagonal 50
    near, far = [10.0, 0.0, 40.0, 40.0], [30.0, 0.0, 60.0, 40.0]   # centre 10 px / 30 px away
    big, small = [0.0, 0.0, 60.0, 80.0], [10.0, 10.0, 20.0, 20.0]  # 4 x / 1/12 the area
    ok = tr.gate(pred, np.array([1.0]), np.array([near, far, big, small]))
    assert ok.tolist() == [[True, False, False, False]]
    assert tr.gate(pred, np.array([2.0]), np.array([[26.0, 0.0, 56.0, 40.0]]))[0, 0]     # 26 px: 0.55 diag
    assert not tr.gate(pred, np.array([1.0]), np.array([[26.0, 0.0, 56.0, 40.0]]))[0, 0]
    assert Tracker().gate(pred, np.array([1.0]), np.array([far, big])).all()          # off by default


def test_with_the_gates_a_pose_spread_over_two_people_does_not_take_over_a_track():
    # One person tracked for 10 frames; on frames 10-11 the only detection is a pose spread
    # over them and their neighbour (a box 2.5 x as wide that still overlaps theirs, IoU 0.4).
    rows = [(t, *_person(300, 100, 300)) for t in range(12)]
    box, kp = _person(300, 100, 300)
    spread = np.array([box[0], box[1], box[0] + 2.5 * (box[2] - box[0]), box[3]])
    for t in (10, 11):
        rows[t] = (t, spread, kp + np.array([100.0, 0.0]))
    rows += [(t, *_person(300, 100, 300)) for t in range(12, 20)]
    plain = track(_detections(rows), 20)
    gated = track(_detections(rows), 20, max_shift=0.5, max_area_ratio=2.0)
    assert plain.track_id[10] == plain.track_id[0]          # without the gates the track takes it
    assert gated.track_id[10] != gated.track_id[0]
    assert (gated.track_id[12:] == gated.track_id[0]).all()  # and the person keeps their id after it


# --- offline stitching ------------------------------------------------------------------------


def _tracked(spans):
    """spans: list of (id, first, last, cx) -> Detections of standing people with those ids."""
    rows, ids = [], []
    for tid, a, b, cx in spans:
        for t in range(a, b + 1):
            rows.append((t, *_person(cx, 100, 300)))
            ids.append(tid)
    det = _detections(rows)
    return dataclasses.replace(det, track_id=np.array(ids, np.int64))


def _spans(det):
    return sorted({int(i): (int(det.frame[det.track_id == i].min()), int(det.frame[det.track_id == i].max()))
                   for i in np.unique(det.track_id)}.items())


def test_stitching_joins_a_person_lost_and_found_at_the_same_place():
    from humact.perception.tracking import stitch_tracklets

    det = _tracked([(0, 0, 9, 300), (1, 0, 30, 900), (2, 20, 30, 305)])
    out = stitch_tracklets(det, max_gap=15)
    assert _spans(out) == [(0, (0, 30)), (1, (0, 30))]
    assert len(np.unique(out.track_id[out.frame == 25])) == 2   # never two rows of a frame with one id
    assert (out.track_id[det.track_id == 2] == out.track_id[0]).all()


def test_stitching_never_joins_tracks_that_overlap_in_time_far_apart_or_after_too_long():
    from humact.perception.tracking import stitch_tracklets

    overlapping = _tracked([(0, 0, 10, 300), (1, 10, 20, 300)])
    assert len(np.unique(stitch_tracklets(overlapping, max_gap=15).track_id)) == 2
    elsewhere = _tracked([(0, 0, 9, 300), (1, 12, 20, 600)])       # 300 px away: 2.4 diagonals
    assert len(np.unique(stitch_tracklets(elsewhere, max_gap=15).track_id)) == 2
    late = _tracked([(0, 0, 9, 300), (1, 40, 50, 300)])
    assert len(np.unique(stitch_tracklets(late, max_gap=15).track_id)) == 2
    assert len(np.unique(stitch_tracklets(late, max_gap=40).track_id)) == 1
    assert len(np.unique(stitch_tracklets(late, max_gap=0).track_id)) == 2


def test_stitching_chains_in_time_order_and_each_track_continues_one():
    from humact.perception.tracking import stitch_tracklets

    # 0 is lost and two tracks start at its place: 1 (first) continues it, 2 continues 1.
    det = _tracked([(0, 0, 5, 300), (1, 8, 12, 302), (2, 15, 20, 298)])
    assert _spans(stitch_tracklets(det, max_gap=10)) == [(0, (0, 20))]
    # Two candidates start at the same frame: the nearer one continues, the other stays apart.
    det = _tracked([(0, 0, 5, 300), (1, 8, 12, 360), (2, 8, 12, 305)])
    out = stitch_tracklets(det, max_gap=10, max_distance=0.5)
    assert (out.track_id[det.track_id == 2] == out.track_id[0]).all()
    assert (out.track_id[det.track_id == 1] != out.track_id[0]).all()


def test_stitching_uses_the_torso_colour_when_given():
    from humact.perception.tracking import stitch_tracklets

    det = _tracked([(0, 0, 9, 300), (1, 12, 20, 300)])
    red, blue = np.zeros(96, np.float32), np.zeros(96, np.float32)
    red[0], blue[50] = 1.0, 1.0
    same = np.stack([red] * len(det))
    other = np.stack([red if i == 0 else blue for i in det.track_id])
    assert len(np.unique(stitch_tracklets(det, max_gap=15, histograms=same).track_id)) == 1
    assert len(np.unique(stitch_tracklets(det, max_gap=15, histograms=other).track_id)) == 2


def test_files_are_stitched_live_input_is_not_and_lasting_ids_count_people_seen_a_second():
    from humact.perception.pipeline import ExtractConfig, lasting_ids, make_tracker, result_from_tracker
    from humact.types import VideoMeta

    # At 10 frames/s: a person seen on frames 0-11, lost for 4 frames (longer than the
    # tracker's 1 s patience: a new track), seen again on 16-29 at the same place.
    meta = VideoMeta(path="synthetic", width=1280, height=720, fps=10.0, num_frames=30,
                     frame_times=np.arange(30) / 10.0)
    config = ExtractConfig(max_lost_seconds=0.3, stitch_seconds=1.0)
    tracker = make_tracker(config, meta.fps)
    for t in range(30):
        rows = [] if 12 <= t < 16 else [(t, *_person(400, 100, 300))]
        tracker.update(_detections(rows), frame=t)
    live = result_from_tracker(tracker, meta, config=config, backend="synthetic")
    whole = result_from_tracker(tracker, meta, config=config, backend="synthetic", stitch=True)
    assert live.tracks.num_persons == 2 and whole.tracks.num_persons == 1
    assert whole.tracks.seen.sum() == 26 and whole.tracks.valid.sum() == 30   # the 4 lost frames filled
    assert whole.tracks.filled[0, 12:16].all() and whole.tracks.filled.sum() == 4
    assert live.tracks.filled is None                                         # live input is never filled
    assert lasting_ids(live, seconds=1.0) == 2       # 12 and 14 frames, each >= 10
    assert lasting_ids(live, seconds=1.3) == 1
    off = result_from_tracker(tracker, meta, config=ExtractConfig(stitch_seconds=0.0), backend="s", stitch=True)
    assert off.tracks.num_persons == 2


def _dense(seen_frames, num_frames=12, x0=100.0, dx=10.0):
    """One person's PoseTracks seen on `seen_frames`, moving `dx` pixels a frame."""
    from humact.types import PoseTracks

    kp = np.zeros((1, num_frames, 17, 2), np.float32)
    ks = np.zeros((1, num_frames, 17), np.float32)
    boxes = np.zeros((1, num_frames, 4), np.float32)
    bs = np.zeros((1, num_frames), np.float32)
    valid = np.zeros((1, num_frames), bool)
    for t in seen_frames:
        x = x0 + dx * t
        boxes[0, t] = [x, 50, x + 40, 150]
        kp[0, t] = np.array([x + 20, 100])
        ks[0, t] = 0.9
        bs[0, t] = 0.8 - 0.01 * t
        valid[0, t] = True
    return PoseTracks(track_ids=np.array([0]), keypoints=kp, keypoint_scores=ks, boxes=boxes, box_scores=bs,
                      valid=valid)


def test_gaps_up_to_max_gap_are_interpolated_and_marked_filled_never_extrapolated():
    from humact.perception.tracking import fill_gaps

    tracks = _dense([1, 2, 6, 11])       # gaps: 3-5 (3 frames), 7-10 (4 frames); frames 0 and >11 outside
    before = tracks.valid.copy()
    out = fill_gaps(tracks, max_gap=3)
    assert (tracks.valid == before).all() and tracks.filled is None      # the input is not changed
    assert out.valid[0].tolist() == [False, True, True, True, True, True, True, False, False, False, False, True]
    assert out.filled[0].tolist() == [False, False, False, True, True, True] + [False] * 6
    assert out.seen[0].tolist() == before[0].tolist()
    # Linear between frames 2 and 6: the box moves 10 px a frame, as the person did.
    np.testing.assert_allclose(out.boxes[0, 3:6, 0], [130, 140, 150])
    np.testing.assert_allclose(out.keypoints[0, 4, :, 0], 160)
    assert (out.keypoint_scores[0, 3:6] == 0).all()                        # nothing was measured there
    assert out.box_scores[0, 3:6] == pytest.approx([0.74] * 3)            # the lower of the two ends
    assert fill_gaps(tracks, max_gap=4).filled[0, 7:11].all()
    assert fill_gaps(tracks, max_gap=0).filled is None
    with pytest.raises(ValueError):
        fill_gaps(tracks, max_gap=-1)


def test_filled_rows_survive_the_json_result_and_are_not_found_people(tmp_path):
    from humact.io.results import read_result_json, write_result_json
    from humact.perception.pipeline import empty_tracks_count, lasting_ids
    from humact.perception.tracking import fill_gaps
    from humact.types import VideoMeta, VideoResult

    meta = VideoMeta(path="synthetic", width=640, height=360, fps=10.0, num_frames=12,
                     frame_times=np.arange(12) / 10.0)
    result = VideoResult(meta=meta, tracks=fill_gaps(_dense(list(range(0, 4)) + list(range(8, 12))), max_gap=5),
                         parts=None, backend="synthetic")
    assert empty_tracks_count(result) == 4 and lasting_ids(result, seconds=1.0) == 0    # 8 frames seen, not 12
    write_result_json(result, tmp_path / "r.json")
    back = read_result_json(tmp_path / "r.json")
    assert back.tracks.valid.sum() == 12 and back.tracks.filled[0].tolist() == [False] * 4 + [True] * 4 + [False] * 4


def test_a_filled_row_is_drawn_as_a_thin_dashed_box_without_a_label():
    import dataclasses as dc

    from humact.draw import draw_frame

    tracks = _dense([0, 2], num_frames=3)
    tracks = dc.replace(tracks, valid=np.ones((1, 3), bool), filled=np.array([[False, True, False]]),
                        boxes=np.tile(np.float32([[20, 20, 120, 180]]), (1, 3, 1)))
    blank = np.zeros((200, 160, 3), np.uint8)
    seen, filled = (int((draw_frame(blank, t, tracks) != 0).any(-1).sum()) for t in (0, 1))
    assert 0 < filled < seen / 2          # no label, no keypoints, half the line drawn
