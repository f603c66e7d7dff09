"""Box geometry: IoU, clipping and the pose-refined person box."""

from __future__ import annotations

import numpy as np
import pytest

from humact.perception.boxes import box_area, box_iou, clip_boxes, refine_boxes
from humact.types import Detections


def _one_person(box, keypoints, scores) -> Detections:
    return Detections(frame=[0], xyxy=[box], score=[0.9], keypoints=[keypoints], keypoint_scores=[scores])


def _keypoints_in(box, rng) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.stack([rng.uniform(x1, x2, 17), rng.uniform(y1, y2, 17)], axis=1)


def test_iou_matches_hand_computed_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [25 / 175, 1.0, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 4 / 100, 0.0])


def test_iou_of_degenerate_boxes_is_zero_not_nan():
    iou = box_iou(np.array([[3, 3, 3, 3]]), np.array([[3, 3, 3, 3], [0, 0, 1, 1]]))
    np.testing.assert_array_equal(iou, [[0.0, 0.0]])


def test_box_area_is_zero_for_inverted_boxes():
    np.testing.assert_allclose(box_area(np.array([[0, 0, 4, 5], [4, 0, 0, 5]])), [20.0, 0.0])


def test_clip_boxes_keeps_boxes_inside_the_image():
    out = clip_boxes(np.array([[-5, -1, 50, 30], [10, 10, 20, 20]]), (40, 25))
    np.testing.assert_array_equal(out, [[0, 0, 40, 25], [10, 10, 20, 20]])


def test_refined_box_contains_every_visible_keypoint_with_margin():
    rng = np.random.default_rng(0)
    det_box = np.array([100, 100, 200, 300], np.float32)
    kp = _keypoints_in([80, 50, 260, 320], rng)
    kp[0] = [80, 50]  # extreme keypoints outside the detector box on two sides
    kp[1] = [260, 320]
    out = refine_boxes(_one_person(det_box, kp, np.ones(17)), margin=0.1).xyxy[0]
    w, h = 260 - 80, 320 - 50  # union of detector box and keypoints
    np.testing.assert_allclose(out, [80 - 0.1 * w, 50 - 0.1 * h, 260 + 0.1 * w, 320 + 0.1 * h], rtol=1e-5)


def test_refined_box_ignores_keypoints_below_the_threshold():
    det_box = np.array([100, 100, 200, 300], np.float32)
    kp = np.full((17, 2), 150.0)
    kp[3] = [1000, 1000]  # a low-confidence outlier
    scores = np.ones(17)
    scores[3] = 0.2
    out = refine_boxes(_one_person(det_box, kp, scores), keypoint_threshold=0.3, margin=0.0).xyxy[0]
    np.testing.assert_array_equal(out, det_box)


def test_refined_box_never_shrinks_the_detector_box():
    rng = np.random.default_rng(1)
    det_box = np.array([0, 0, 500, 500], np.float32)
    kp = _keypoints_in([200, 200, 260, 300], rng)
    out = refine_boxes(_one_person(det_box, kp, np.ones(17)), margin=0.1).xyxy[0]
    np.testing.assert_array_equal(out, det_box)


def test_box_without_visible_keypoints_is_left_as_detected():
    det_box = np.array([10, 20, 30, 40], np.float32)
    out = refine_boxes(_one_person(det_box, np.full((17, 2), 999.0), np.zeros(17)), margin=0.5).xyxy[0]
    np.testing.assert_array_equal(out, det_box)


def test_refined_box_is_clipped_to_the_image():
    det_box = np.array([5, 5, 60, 60], np.float32)
    kp = np.full((17, 2), 30.0)
    kp[0] = [-10, 70]  # a keypoint predicted just outside the frame
    out = refine_boxes(_one_person(det_box, kp, np.ones(17)), margin=0.2, image_size=(64, 64)).xyxy[0]
    # Grown past the left and bottom edges (x1 = -24, y2 = 83 before clipping); top and
    # right stay the detector's.
    np.testing.assert_array_equal(out, [0, 5, 60, 64])


def test_refinement_changes_only_the_boxes():
    rng = np.random.default_rng(2)
    det = Detections(frame=[0, 0, 1], xyxy=np.tile([[10, 10, 50, 90]], (3, 1)), score=[0.9, 0.8, 0.7],
                     keypoints=rng.uniform(0, 100, (3, 17, 2)), keypoint_scores=rng.uniform(0, 1, (3, 17)),
                     track_id=[0, 1, 0])
    out = refine_boxes(det)
    for name in ("frame", "score", "keypoints", "keypoint_scores", "track_id"):
        np.testing.assert_array_equal(getattr(out, name), getattr(det, name))
    assert out.xyxy.dtype == np.float32 and out.xyxy.shape == (3, 4)


def test_negative_margin_is_rejected():
    with pytest.raises(ValueError, match="margin"):
        refine_boxes(Detections.empty(), margin=-0.1)


def _rows(poses, scores, frames=None) -> Detections:
    poses = np.asarray(poses, np.float32)
    n = len(poses)
    boxes = np.concatenate([poses.min(1), poses.max(1)], axis=1)
    return Detections(frame=np.zeros(n, np.int64) if frames is None else frames, xyxy=boxes, score=scores,
                      keypoints=poses, keypoint_scores=np.full((n, 17), 0.9, np.float32))


def _standing(x0, y0, s=1.0):
    rel = np.array([[20, 5], [18, 4], [22, 4], [15, 5], [25, 5], [10, 20], [30, 20], [8, 35], [32, 35],
                    [6, 48], [34, 48], [14, 50], [26, 50], [14, 65], [26, 65], [14, 79], [26, 79]], np.float32)
    return rel * s + [x0, y0]


def test_the_same_body_found_twice_in_a_frame_keeps_only_the_better_row():
    from humact.perception.boxes import suppress_duplicates

    a = _standing(100, 100, 2.0)
    det = _rows([a + 1.5, a, _standing(300, 100, 2.0)], [0.5, 0.9, 0.8])
    out = suppress_duplicates(det)
    assert out.score.tolist() == pytest.approx([0.9, 0.8])


def test_two_people_in_contact_both_survive_the_pose_nms():
    """Overlapping boxes, joints a shoulder-width apart: two bodies, not one."""
    from humact.perception.boxes import suppress_duplicates

    a = _standing(100, 100, 2.0)
    det = _rows([a, a + [20, 0]], [0.9, 0.8])
    assert box_iou(det.xyxy[0], det.xyxy[1])[0, 0] > 0.4
    assert len(suppress_duplicates(det)) == 2


def test_duplicates_are_only_looked_for_within_a_frame():
    from humact.perception.boxes import suppress_duplicates

    a = _standing(100, 100, 2.0)
    assert len(suppress_duplicates(_rows([a, a], [0.9, 0.8], frames=np.array([0, 1])))) == 2


def test_a_pose_with_too_few_confident_joints_is_not_a_person():
    from humact.perception.boxes import plausible_poses

    det = _rows([_standing(0, 0), _standing(50, 0)], [0.9, 0.9])
    det.keypoint_scores[1, 3:] = 0.1   # only 3 joints above 0.3: a poster, a hoop, a pose across two people
    out = plausible_poses(det, min_keypoints=4, keypoint_threshold=0.3)
    assert len(out) == 1 and out.xyxy[0, 0] == pytest.approx(det.xyxy[0, 0])
