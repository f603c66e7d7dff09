"""Body-part boxes on hand-made skeletons: where each part is, its size, when it is invalid."""

from __future__ import annotations

import numpy as np
import pytest

from humact.keypoints import COCO17_NAMES, PART_NAMES
from humact.perception.parts import part_boxes, person_scale
from humact.types import PoseTracks

K = {name: i for i, name in enumerate(COCO17_NAMES)}
P = {name: i for i, name in enumerate(PART_NAMES)}

# A frontal standing person of height 1, offsets from the top-centre of the body; the
# person's left is the image's right. Torso length (shoulder to hip midpoints) = 0.34.
_SKELETON = np.array([
    [0.00, 0.06], [0.02, 0.05], [-0.02, 0.05], [0.05, 0.06], [-0.05, 0.06],
    [0.12, 0.18], [-0.12, 0.18], [0.15, 0.33], [-0.15, 0.33], [0.16, 0.46], [-0.16, 0.46],
    [0.08, 0.52], [-0.08, 0.52], [0.08, 0.72], [-0.08, 0.72], [0.08, 0.93], [-0.08, 0.93],
])
H = 600.0  # body height, pixels
S = 0.34 * H  # person scale = torso length


def _tracks(keypoints, scores=None, box=None, valid=True) -> PoseTracks:
    """One person, one frame."""
    keypoints = np.asarray(keypoints, float)
    scores = np.ones(17) if scores is None else np.asarray(scores, float)
    if box is None:
        box = [keypoints[:, 0].min() - 0.2 * H, keypoints[:, 1].min() - 0.1 * H,
               keypoints[:, 0].max() + 0.2 * H, keypoints[:, 1].max() + 0.1 * H]
    return PoseTracks(track_ids=[0], keypoints=keypoints[None, None], keypoint_scores=scores[None, None],
                      boxes=np.asarray(box, float)[None, None], box_scores=[[0.9]], valid=[[valid]])


def _standing(cx=960.0, top=200.0) -> np.ndarray:
    return np.array([cx, top]) + _SKELETON * H


def _contains(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_every_part_of_a_fully_visible_person_is_valid_and_inside_the_person_box():
    tracks = _tracks(_standing(), box=[780, 180, 1140, 800])
    parts = part_boxes(tracks)
    assert parts.boxes.shape == (1, 1, 10, 4) and parts.valid.all()
    b = parts.boxes[0, 0]
    assert (b[:, 0] >= 780).all() and (b[:, 1] >= 180).all() and (b[:, 2] <= 1140).all() and (b[:, 3] <= 800).all()
    assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all()


def test_person_scale_is_the_torso_length():
    assert person_scale(_tracks(_standing()))[0, 0] == pytest.approx(S)


def test_person_scale_falls_back_to_a_third_of_the_box_height_without_a_torso():
    scores = np.ones(17)
    scores[[K["left_hip"], K["right_hip"]]] = 0.0
    box = [700, 100, 900, 760]  # narrow box: the 0.2 * longest-side floor does not bind
    assert person_scale(_tracks(_standing(), scores, box=box))[0, 0] == pytest.approx(660 / 3)


def test_each_limb_box_contains_its_keypoints_on_the_correct_side():
    kp = _standing()
    b = part_boxes(_tracks(kp)).boxes[0, 0]
    for part, joints in {"left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
                         "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
                         "left_leg": ("left_hip", "left_knee", "left_ankle"),
                         "right_leg": ("right_hip", "right_knee", "right_ankle")}.items():
        assert all(_contains(b[P[part]], kp[K[j]]) for j in joints), part
    # The left arm is on the person's left (image right) and does not reach the right wrist.
    assert not _contains(b[P["left_arm"]], kp[K["right_wrist"]])
    assert not _contains(b[P["left_hand"]], kp[K["right_wrist"]])


def test_hand_box_surrounds_the_wrist_and_extends_beyond_it_along_the_forearm():
    kp = _standing()
    # Stretch the left arm out horizontally to the image right: forearm direction +x.
    shoulder = kp[K["left_shoulder"]]
    kp[K["left_elbow"]] = shoulder + [0.17 * H, 0]
    kp[K["left_wrist"]] = shoulder + [0.32 * H, 0]
    box = [kp[:, 0].min() - 0.2 * H, 150, kp[:, 0].max() + 0.4 * H, 850]
    hand = part_boxes(_tracks(kp, box=box)).boxes[0, 0, P["left_hand"]]
    wx, wy = kp[K["left_wrist"]]
    assert hand[2] - wx == pytest.approx(0.45 * S, rel=1e-4)  # beyond the wrist, along the forearm
    assert wx - hand[0] == pytest.approx(0.10 * S, rel=1e-4)  # a little behind it
    assert wy - hand[1] == pytest.approx(0.18 * S, rel=1e-4) and hand[3] - wy == pytest.approx(0.18 * S, rel=1e-4)


def test_hand_box_follows_a_diagonal_forearm():
    kp = _standing()
    kp[K["right_wrist"]] = kp[K["right_elbow"]] + [-0.1 * H, -0.1 * H]  # pointing up-left
    hand = part_boxes(_tracks(kp)).boxes[0, 0, P["right_hand"]]
    wrist = kp[K["right_wrist"]]
    centre = 0.5 * (hand[:2] + hand[2:])
    assert _contains(hand, wrist)
    assert centre[0] < wrist[0] and centre[1] < wrist[1]


def test_foot_box_extends_below_the_ankle_along_the_shin():
    kp = _standing()
    foot = part_boxes(_tracks(kp)).boxes[0, 0, P["left_foot"]]
    ax, ay = kp[K["left_ankle"]]
    assert foot[3] - ay == pytest.approx(0.25 * S, rel=1e-4)
    assert ay - foot[1] == pytest.approx(0.10 * S, rel=1e-4)
    assert ax - foot[0] == pytest.approx(0.35 * S, rel=1e-4) and foot[2] - ax == pytest.approx(0.35 * S, rel=1e-4)


def test_head_box_covers_the_face_keypoints_and_is_sized_by_the_body():
    kp = _standing()
    head = part_boxes(_tracks(kp)).boxes[0, 0, P["head"]]
    assert all(_contains(head, kp[i]) for i in range(5))
    assert head[2] - head[0] == pytest.approx(0.6 * S, rel=1e-4)
    assert head[3] - head[1] == pytest.approx(0.6 * S, rel=1e-4)


def test_hip_box_is_the_hips_padded_by_a_quarter_of_the_torso():
    kp = _standing()
    hip = part_boxes(_tracks(kp)).boxes[0, 0, P["hip"]]
    lh, rh = kp[K["left_hip"]], kp[K["right_hip"]]
    np.testing.assert_allclose(hip, [rh[0] - 0.25 * S, rh[1] - 0.25 * S, lh[0] + 0.25 * S, lh[1] + 0.25 * S],
                               rtol=1e-5)


def test_a_hidden_wrist_makes_the_hand_invalid_but_not_the_arm():
    scores = np.ones(17)
    scores[K["left_wrist"]] = 0.1
    parts = part_boxes(_tracks(_standing(), scores), keypoint_threshold=0.3)
    v, b = parts.valid[0, 0], parts.boxes[0, 0]
    assert not v[P["left_hand"]] and (b[P["left_hand"]] == 0).all()
    assert v[P["left_arm"]] and v[P["right_hand"]]


def test_an_arm_needs_two_visible_joints():
    scores = np.ones(17)
    scores[[K["right_shoulder"], K["right_elbow"]]] = 0.0
    v = part_boxes(_tracks(_standing(), scores)).valid[0, 0]
    assert not v[P["right_arm"]] and v[P["right_hand"]]


def test_a_hidden_face_makes_the_head_invalid():
    scores = np.ones(17)
    scores[:5] = 0.0
    v = part_boxes(_tracks(_standing(), scores)).valid[0, 0]
    assert not v[P["head"]] and v[[P[n] for n in PART_NAMES if n != "head"]].all()


def test_a_hand_without_a_visible_elbow_is_a_square_around_the_wrist():
    scores = np.ones(17)
    scores[K["left_elbow"]] = 0.0
    kp = _standing()
    hand = part_boxes(_tracks(kp, scores)).boxes[0, 0, P["left_hand"]]
    np.testing.assert_allclose(hand, np.tile(kp[K["left_wrist"]], 2) + 0.45 * S * np.array([-1, -1, 1, 1]),
                               rtol=1e-5)


def test_parts_are_clipped_to_the_person_box():
    kp = _standing()
    tight = [kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()]  # the keypoints' own extent
    parts = part_boxes(_tracks(kp, box=tight))
    b = parts.boxes[0, 0]
    assert parts.valid.all()
    assert b[P["left_foot"], 3] == pytest.approx(tight[3])  # the foot would reach below the box
    assert (b[:, :2] >= np.array(tight[:2], np.float32)).all() and (b[:, 2:] <= np.array(tight[2:], np.float32)).all()


def test_an_absent_person_has_no_valid_part():
    parts = part_boxes(_tracks(_standing(), valid=False))
    assert not parts.valid.any() and (parts.boxes == 0).all()


def test_parts_are_computed_independently_for_every_person_and_frame():
    rng = np.random.default_rng(0)
    m, t = 3, 4
    kp = np.stack([[_standing(300 + 500 * i, 100 + 20 * j) + rng.normal(0, 10, (17, 2)) for j in range(t)]
                   for i in range(m)])
    scores = rng.uniform(0, 1, (m, t, 17))
    boxes = np.concatenate([kp.min(2) - 100, kp.max(2) + 100], axis=-1)
    valid = rng.uniform(0, 1, (m, t)) > 0.2
    tracks = PoseTracks(track_ids=np.arange(m), keypoints=kp, keypoint_scores=scores, boxes=boxes,
                        box_scores=np.ones((m, t)), valid=valid)
    parts = part_boxes(tracks)
    for i in range(m):
        for j in range(t):
            one = part_boxes(_tracks(kp[i, j], scores[i, j], box=boxes[i, j], valid=valid[i, j]))
            np.testing.assert_array_equal(parts.boxes[i, j], one.boxes[0, 0])
            np.testing.assert_array_equal(parts.valid[i, j], one.valid[0, 0])
