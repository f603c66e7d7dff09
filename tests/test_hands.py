"""MediaPipe Hands (`humact.perception.hands`): MediaPipe's ROI geometry, the association of ROIs,
the hand tracker, the wrist regions; then the real models (skipped until `humact setup` has run)
on the shared videos (skipped without `../shared`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from humact.perception.blazepose import PoseDetection, Roi, ssd_anchors
from humact.perception.hands import (
    LANDMARK_ROI_SCALE,
    PALM_ROI_SCALE,
    PALM_SIZE,
    PALM_STRIDES,
    HandTracker,
    associate_rois,
    rect_transformation,
    roi_from_landmarks,
    roi_from_palm,
    wrist_regions,
)
from humact.perception.model_files import HAND_FILES, ModelFilesMissing, find_models
from humact.types import HandDetections

try:
    find_models(files=HAND_FILES)
    _SKIP = None
except ModelFilesMissing as e:
    _SKIP = f"hand model files not set up: {e}"
needs_models = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def _upright_hand(cx: float = 100.0, cy: float = 200.0, s: float = 10.0) -> np.ndarray:
    """21 landmarks of an open hand, fingers up (y decreasing), wrist at (cx, cy)."""
    pts = [(0.0, 0.0)]
    for f, x in enumerate((-3.0, -1.5, 0.0, 1.5, 3.0)):   # thumb .. pinky, 4 joints each
        for j in range(1, 5):
            pts.append((x * (1 + 0.1 * j), -2.0 - 1.2 * j + (1.0 if f == 0 else 0.0)))
    return np.array(pts) * s + [cx, cy]


def _rotate(p: np.ndarray, angle: float, about: np.ndarray) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return (p - about) @ np.array([[c, s], [-s, c]]) + about   # x' = c x - s y, y' = s x + c y


def test_palm_anchors_are_mediapipes_2016():
    a = ssd_anchors(input_size=PALM_SIZE, strides=PALM_STRIDES)
    assert a.shape == (2016, 2)
    # 24 x 24 cells with 2 anchors each, then 12 x 12 cells with 6
    np.testing.assert_allclose(a[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1152], [0.5 / 12, 0.5 / 12])
    assert (a[1152:1158] == a[1152]).all()


def test_rect_transformation_shifts_along_the_rotated_up_axis_and_squares_the_long_side():
    up = rect_transformation(50, 60, 10, 20, 0.0, scale=2.0, shift_y=-0.5)
    assert (up.cx, up.cy, up.size, up.rotation) == pytest.approx((50, 50, 40, 0.0))
    right = rect_transformation(50, 60, 10, 20, math.pi / 2, scale=1.0, shift_y=-0.5)   # "up" is +x
    assert (right.cx, right.cy, right.size) == pytest.approx((60, 60, 20))


def test_a_palm_pointing_up_gives_an_upright_roi_half_a_box_towards_the_fingers():
    det = PoseDetection(score=0.9, box=np.array([80, 80, 120, 120], np.float32),
                        keypoints=np.array([[100, 115], [0, 0], [100, 85]] + [[0, 0]] * 4, np.float32))
    roi = roi_from_palm(det)
    assert roi.rotation == pytest.approx(0.0, abs=1e-9)
    assert (roi.cx, roi.cy, roi.size) == pytest.approx((100, 80, 40 * PALM_ROI_SCALE))
    # fingers to the right: the ROI turns by +90 degrees and moves right
    det.keypoints[:3] = [[85, 100], [0, 0], [115, 100]]
    roi = roi_from_palm(det)
    assert roi.rotation == pytest.approx(math.pi / 2) and (roi.cx, roi.cy) == pytest.approx((120, 100))


def test_the_landmark_roi_turns_and_moves_with_the_hand():
    hand = _upright_hand()
    r0 = roi_from_landmarks(hand)
    assert abs(r0.rotation) < 0.1
    assert r0.cy < 200   # shifted towards the fingers from the wrist
    for angle in (0.7, -1.9, 3.0):
        r = roi_from_landmarks(_rotate(hand, angle, hand[0]))
        turned = _rotate(np.array([[r0.cx, r0.cy]]), angle, hand[0])[0]
        d = (r.rotation - r0.rotation - angle + math.pi) % (2 * math.pi) - math.pi
        assert abs(d) < 1e-6 and r.size == pytest.approx(r0.size, rel=1e-6)
        np.testing.assert_allclose([r.cx, r.cy], turned, atol=1e-6)


def test_the_landmark_roi_uses_only_the_stable_joints():
    hand = _upright_hand()
    moved = hand.copy()
    moved[[4, 8, 12, 16, 20]] += [40.0, -30.0]   # finger tips (not among ROI_LANDMARKS) move
    a, b = roi_from_landmarks(hand), roi_from_landmarks(moved)
    assert (a.cx, a.cy, a.size, a.rotation) == pytest.approx((b.cx, b.cy, b.size, b.rotation))
    assert a.size > 0 and LANDMARK_ROI_SCALE == 2.0


def test_association_keeps_the_last_of_overlapping_rois_and_every_separate_one():
    palm = Roi(100, 100, 50, 0.0)
    followed = Roi(104, 98, 52, 0.3)
    far = Roi(300, 100, 50, 0.0)
    kept = associate_rois([palm, far, followed])
    assert kept == [far, followed]
    assert associate_rois([followed, palm]) == [palm]
    assert associate_rois([palm, Roi(150, 100, 50, 0.0)]) == [palm, Roi(150, 100, 50, 0.0)]   # IoU 0


def _hands(frame: int, boxes) -> HandDetections:
    n = len(boxes)
    return HandDetections(frame=np.full(n, frame), xyxy=np.array(boxes, np.float32).reshape(n, 4),
                          score=np.ones(n), handedness=np.zeros(n), keypoints=np.zeros((n, 21, 3)),
                          world=np.zeros((n, 21, 3)))


def test_the_tracker_keeps_ids_through_motion_crossing_order_and_short_gaps():
    tr = HandTracker(max_lost_frames=3)
    a = tr.update(_hands(0, [[0, 0, 20, 20], [100, 0, 120, 20]]), 0).track_id.tolist()
    assert a == [0, 1]
    # listed in the other order and moved a little: same ids
    assert tr.update(_hands(1, [[103, 2, 123, 22], [3, 1, 23, 21]]), 1).track_id.tolist() == [1, 0]
    # hand 1 unseen for 3 frames, then back: same id; a box elsewhere is a new track
    for f in (2, 3, 4):
        tr.update(_hands(f, [[5, 1, 25, 21]]), f)
    assert tr.update(_hands(5, [[104, 2, 124, 22], [300, 300, 320, 320]]), 5).track_id.tolist() == [1, 2]
    # gone longer than max_lost_frames: a new id
    for f in range(6, 12):
        tr.update(_hands(f, []), f)
    assert tr.update(_hands(12, [[104, 2, 124, 22]]), 12).track_id.tolist() == [3]


def test_wrist_regions_are_squares_of_three_forearms_beyond_each_confident_wrist():
    kp = np.zeros((1, 17, 2))
    sc = np.zeros((1, 17))
    kp[0, 7], kp[0, 9] = [100, 100], [100, 160]     # left elbow -> wrist, 60 px down
    kp[0, 8], kp[0, 10] = [300, 100], [300, 140]
    sc[0, [7, 9]] = 0.9
    sc[0, [8, 10]] = [0.9, 0.1]                     # right wrist not seen: no region
    (m,) = wrist_regions(kp, sc)
    corners = np.array([[0, 0, 1], [PALM_SIZE, PALM_SIZE, 1]]) @ m.T
    np.testing.assert_allclose(corners, [[10, 90], [190, 270]])   # side 180 centred at (100, 180)


# --- the real models ---------------------------------------------------------------------------

def _frames(path, indices):
    from humact.video import read_frames

    return dict(read_frames(path, indices=indices))


@needs_models
def test_the_real_models_have_mediapipes_inputs_and_outputs():
    from humact.perception.hands import HandBackend

    b = HandBackend()
    assert b.palm._interp.get_input_details()[0]["shape"].tolist() == [1, 192, 192, 3]
    assert b.landmark_model._interp.get_input_details()[0]["shape"].tolist() == [1, 224, 224, 3]
    assert b(np.zeros((480, 640, 3), np.uint8), 0).frame.shape == (0,)   # a black frame has no hand


@needs_models
def test_the_arm_wrestlers_clasped_hand_is_found_and_followed(shared):
    from humact.perception.hands import HandBackend

    frames = _frames(shared / "data" / "media" / "armwrestling_340x256.mp4", range(100, 106))
    b = HandBackend()
    found = [b.hands(frames[i]) for i in sorted(frames)]
    assert all(len(h) >= 1 for h in found)
    best = [max(h, key=lambda x: x.presence) for h in found]
    assert min(h.presence for h in best) > 0.9
    boxes = np.stack([h.box for h in best])
    # the clasped hands sit above the middle of the table: x 140-250, y 20-120 of 340 x 256
    assert (boxes[:, 0] > 130).all() and (boxes[:, 2] < 260).all() and (boxes[:, 1] > 10).all() \
        and (boxes[:, 3] < 130).all()
    # followed from frame to frame: the wrist moves by a few pixels, not tens
    wrists = np.stack([h.landmarks[0, :2] for h in best])
    assert np.abs(np.diff(wrists, axis=0)).max() < 12
    # every landmark lies inside the ROI it was found in
    for h in best:
        m = np.linalg.norm(h.landmarks[:, :2] - [h.roi.cx, h.roi.cy], axis=1)
        assert m.max() < h.roi.size * 0.71


@needs_models
def test_small_hands_of_a_1080p_room_shot_need_the_wrist_search(shared):
    from humact.perception.hands import HandBackend
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.movenet import MoveNetBackend

    frames = _frames(shared / "data" / "media" / "ntu_drink_1080p.avi", [50])
    plain = HandBackend()
    assert plain.hands(frames[50]) == []            # 20-pixel hands in a 192-pixel letterbox
    try:
        person = MoveNetBackend()
    except ModelFilesMissing as e:
        pytest.skip(str(e))
    guided = HandBackend(person_backend=person)
    hands = guided.hands(frames[50])
    assert len(hands) == 2 and min(h.presence for h in hands) > 0.7
    # both are hers (the person stands at x 1000-1100): the cup hand at her face, the other by her hip
    ys = sorted(float(h.landmarks[0, 1]) for h in hands)
    assert all(950 < h.landmarks[0, 0] < 1150 for h in hands)
    assert ys[0] < 420 < 480 < ys[1]
