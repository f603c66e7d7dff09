"""BlazePose pre/post-processing as specified by MediaPipe's graphs (no model files needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from humact.perception.blazepose import (
    Person,
    Roi,
    box_iou,
    crop_roi,
    crop_to_frame,
    decode_detections,
    frame_to_crop,
    letterbox_matrix,
    merge_persons,
    refine_from_heatmap,
    roi_from_alignment_points,
    ssd_anchors,
    to_detections,
    weighted_nms,
)

# --- anchors and decoding ---------------------------------------------------------------


def test_pose_detection_has_2254_anchors_in_three_feature_maps():
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    # stride 8: 28x28 cells, 2 anchors each (aspect 1 + interpolated scale), row-major
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    # stride 16 starts after 28*28*2 = 1568
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    # the three stride-32 layers share one 7x7 map with 6 anchors per cell
    np.testing.assert_allclose(a[1568 + 392: 1568 + 392 + 6], np.tile([[0.5 / 7, 0.5 / 7]], (6, 1)))
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_decoding_adds_offsets_over_224_to_the_anchor_and_applies_a_sigmoid():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 12), np.float32)
    raw[0, :4] = [22.4, -44.8, 56.0, 112.0]          # cx, cy, w, h (reverse_output_order)
    raw[0, 4:6] = [0.0, 22.4]                          # hip centre
    scores = np.array([[0.0], [-5.0]], np.float32)     # sigmoid 0.5 and 0.0067
    s, boxes, kps = decode_detections(raw, scores, anchors, min_score=0.4)
    assert s.shape == (1,) and s[0] == pytest.approx(0.5)
    np.testing.assert_allclose(boxes[0], [0.35 - 0.125, 0.3 - 0.25, 0.35 + 0.125, 0.3 + 0.25], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.25, 0.6], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], anchors[0], atol=1e-6)


def test_decoding_clips_huge_logits_instead_of_overflowing():
    with np.errstate(over="raise"):
        s, _, _ = decode_detections(np.zeros((1, 12), np.float32), np.array([[-1e4]], np.float32),
                                    np.zeros((1, 2), np.float32), min_score=0.0)
    assert s[0] == pytest.approx(0.0, abs=1e-30)


# --- weighted NMS ---------------------------------------------------------------------------


def test_weighted_nms_averages_overlapping_detections_weighted_by_score():
    scores = np.array([0.6, 0.9, 0.3], np.float32)
    boxes = np.array([[10, 10, 50, 50], [12, 10, 52, 50], [200, 200, 240, 240]], np.float32)
    kps = np.zeros((3, 4, 2), np.float32)
    kps[0, 0] = [30, 100]
    kps[1, 0] = [40, 100]
    out = weighted_nms(scores, boxes, kps)
    assert [round(d.score, 3) for d in out] == [0.9, 0.3]         # best first; score of the best
    np.testing.assert_allclose(out[0].box, [11.2, 10, 51.2, 50], rtol=1e-5)
    np.testing.assert_allclose(out[0].keypoints[0], [36, 100], rtol=1e-5)
    np.testing.assert_allclose(out[1].box, boxes[2])


def test_weighted_nms_keeps_detections_overlapping_at_most_0_3():
    # IoU of these two boxes is 0.25: below MediaPipe's min_suppression_threshold
    boxes = np.array([[0, 0, 10, 10], [0, 6, 10, 16]], np.float32)
    assert box_iou(boxes[0], boxes[1])[0, 0] == pytest.approx(0.25)
    out = weighted_nms(np.array([0.8, 0.7], np.float32), boxes, np.zeros((2, 4, 2), np.float32))
    assert len(out) == 2


def test_letterbox_of_a_1080p_frame_pads_top_and_bottom():
    m = letterbox_matrix(1920, 1080)
    corners = np.array([[0.0, 0.0], [224.0, 224.0]]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(corners, [[0, -420], [1920, 1500]])   # a 1920 square around the frame
    # the frame's rows 0 and 1080 land on input rows 49 and 175
    np.testing.assert_allclose((np.array([0.0, 1080.0]) - m[1, 2]) / m[1, 1], [49, 175])


def test_letterbox_of_a_portrait_frame_pads_left_and_right():
    m = letterbox_matrix(240, 320)
    np.testing.assert_allclose(m, [[320 / 224, 0, -40], [0, 320 / 224, 0]])


# --- ROI geometry ---------------------------------------------------------------------------


def test_roi_of_an_upright_person_is_unrotated_and_1_25_times_twice_the_scale_distance():
    roi = roi_from_alignment_points(np.array([500.0, 600.0]), np.array([500.0, 300.0]))
    assert (roi.cx, roi.cy) == (500.0, 600.0)
    assert roi.size == pytest.approx(2 * 300 * 1.25)
    assert roi.rotation == pytest.approx(0.0)


def test_roi_of_a_person_lying_head_right_is_rotated_90_degrees():
    roi = roi_from_alignment_points(np.array([500.0, 600.0]), np.array([700.0, 600.0]))
    assert roi.rotation == pytest.approx(math.pi / 2)
    # the top centre of the crop (where the model expects the head) is right of the hips
    top = crop_to_frame(np.array([128.0, 0.0]), roi, 256)
    np.testing.assert_allclose(top, [500 + roi.size / 2, 600], atol=1e-9)


def test_crop_centre_is_the_roi_centre():
    roi = Roi(cx=321.0, cy=123.0, size=200.0, rotation=0.7)
    np.testing.assert_allclose(crop_to_frame(np.array([128.0, 128.0]), roi, 256), [321, 123], atol=1e-9)


@pytest.mark.parametrize("rotation", [0.0, 0.3, -1.2, math.pi / 2, 3.0])
def test_roi_warp_and_its_inverse_round_trip(rotation):
    roi = Roi(cx=400.0, cy=250.0, size=333.0, rotation=rotation)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 300, size=(100, 2))
    np.testing.assert_allclose(frame_to_crop(crop_to_frame(pts, roi, 256), roi, 256), pts, atol=1e-9)
    np.testing.assert_allclose(crop_to_frame(frame_to_crop(pts, roi, 256), roi, 256), pts, atol=1e-9)


def test_roi_crop_keeps_side_lengths_in_scale():
    roi = Roi(cx=0.0, cy=0.0, size=512.0, rotation=1.0)
    a, b = crop_to_frame(np.array([[0.0, 0.0], [256.0, 0.0]]), roi, 256)
    assert np.linalg.norm(b - a) == pytest.approx(512.0)


@pytest.mark.parametrize("rotation", [0.0, 0.5, -2.0])
def test_crop_roi_samples_the_frame_where_roi_crop_matrix_points(rotation):
    ys, xs = np.mgrid[:300, :400]
    blob = 255 * np.exp(-((xs - 251.5) ** 2 + (ys - 181.5) ** 2) / (2 * 4.0 ** 2))   # centred at (251.5, 181.5)
    frame = np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8)
    roi = Roi(cx=220.0, cy=150.0, size=256.0, rotation=rotation)
    crop = crop_roi(frame, roi, 128)[..., 0].astype(np.float64)   # 1 crop pixel = 2 frame pixels
    ys, xs = np.mgrid[:128, :128]
    w = crop / crop.sum()
    found = np.array([(xs * w).sum(), (ys * w).sum()])
    # MediaPipe's convention: the matrix maps crop pixel indices to frame pixel indices
    np.testing.assert_allclose(found, frame_to_crop(np.array([251.5, 181.5]), roi, 128), atol=0.05)


def test_crop_roi_replicates_the_border_outside_the_frame():
    frame = np.full((50, 50, 3), 77, np.uint8)
    crop = crop_roi(frame, Roi(cx=0.0, cy=0.0, size=100.0, rotation=0.0), 64)
    assert (crop == 77).all()


# --- heatmap refinement --------------------------------------------------------------------


def test_heatmap_refinement_moves_a_landmark_to_the_confident_cells():
    hm = np.full((64, 64, 2), -10.0, np.float32)
    hm[20, 30, 0] = 10.0                                 # landmark 0: confident at column 30, row 20
    xy = np.array([[31.5 / 64, 21.5 / 64], [10 / 64, 10 / 64]])
    out = refine_from_heatmap(xy, hm)
    np.testing.assert_allclose(out[0], [30 / 64, 20 / 64], atol=2e-3)
    np.testing.assert_allclose(out[1], xy[1])           # landmark 1: nothing confident, unchanged


def test_heatmap_refinement_ignores_a_peak_outside_the_7x7_window():
    hm = np.full((64, 64, 1), -10.0, np.float32)
    hm[20, 40, 0] = 10.0                                 # 9 columns away
    xy = np.array([[31.5 / 64, 20.5 / 64]])
    np.testing.assert_allclose(refine_from_heatmap(xy, hm), xy)


def test_heatmap_refinement_leaves_landmarks_outside_the_crop_alone():
    hm = np.full((64, 64, 1), 10.0, np.float32)
    xy = np.array([[-0.2, 0.5]])
    np.testing.assert_allclose(refine_from_heatmap(xy, hm), xy)


# --- from persons to Detections --------------------------------------------------------------


def _person(offset: float, presence: float = 0.9, width: float = 100.0) -> Person:
    """A stick person: landmarks on a 10x... grid shifted right by `offset` pixels."""
    lm = np.zeros((33, 3), np.float32)
    lm[:, 0] = offset + np.linspace(0, width, 33)
    lm[:, 1] = np.linspace(0, 300, 33)
    box = np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)
    roi = Roi(cx=float(lm[:, 0].mean()), cy=150.0, size=400.0, rotation=0.0)
    return Person(roi=roi, next_roi=roi, presence=presence, landmarks=lm,
                  visibility=np.full(33, 0.9, np.float32), world=np.zeros((33, 3), np.float32), box=box)


def test_merge_keeps_the_more_present_of_two_poses_of_one_body():
    a, b = _person(0.0, presence=0.8), _person(3.0, presence=0.95)
    kept = merge_persons([a, b], merge_distance=0.1, merge_iou=0.65, max_persons=10)
    assert kept == [b]


def test_merge_keeps_two_people_side_by_side():
    a, b = _person(0.0), _person(150.0)
    kept = merge_persons([a, b], merge_distance=0.1, merge_iou=0.65, max_persons=10)
    assert len(kept) == 2


def test_merge_drops_a_pose_whose_box_mostly_covers_a_kept_one():
    a = _person(0.0, presence=0.9)
    b = _person(0.0, presence=0.5)
    b.landmarks = b.landmarks[::-1].copy()              # same box, torso elsewhere
    assert merge_persons([a, b], merge_distance=0.1, merge_iou=0.65, max_persons=10) == [a]


def test_detections_carry_coco17_keypoints_from_the_blazepose_indices():
    p = _person(10.0)
    det = to_detections([p], 7, 640, 480, outside_score_cap=0.1)
    assert det.frame.tolist() == [7] and det.track_id.tolist() == [-1]
    np.testing.assert_allclose(det.keypoints[0, 11], p.landmarks[23, :2])    # left hip
    np.testing.assert_allclose(det.keypoints[0, 0], p.landmarks[0, :2])      # nose
    assert det.landmarks.shape == (1, 33, 3) and det.world_landmarks.shape == (1, 33, 3)


def test_keypoints_outside_the_frame_are_clipped_inside_with_a_capped_score():
    p = _person(-40.0)                                   # left part of the body off the frame
    det = to_detections([p], 0, 200, 250, outside_score_cap=0.1)
    kp, ks = det.keypoints[0], det.keypoint_scores[0]
    assert (kp[:, 0] >= 0).all() and (kp[:, 0] < 200).all()
    assert (kp[:, 1] >= 0).all() and (kp[:, 1] < 250).all()
    outside = (p.landmarks[[0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], 0] < 0) | \
              (p.landmarks[[0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], 1] >= 250)
    assert outside.any() and (~outside).any()
    assert (ks[outside] <= 0.1).all() and (ks[~outside] == pytest.approx(0.9))
    assert (det.xyxy[0] >= 0).all() and det.xyxy[0, 2] <= 200 and det.xyxy[0, 3] <= 250


def test_no_person_gives_empty_detections_with_landmark_arrays():
    det = to_detections([], 3, 100, 100, outside_score_cap=0.1)
    assert len(det) == 0 and det.landmarks.shape == (0, 33, 3)
