"""YOLOX-Nano person detection and the top-down backend (boxes -> BlazePose landmarks).

Decoding is checked against `../shared/reference/yolox/`'s reference detections (the
sample repository's own onnxruntime code) on its three images; the geometry tests are
synthetic.
"""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from conftest import shared_file
from humact.perception.yolox import STRIDES, decode_yolox, nms, preprocess

IMAGES = ("000000000785.jpg", "000000000872.jpg", "000000001000.jpg")


def test_the_grid_has_3549_anchors_in_stride_order_and_decodes_cell_centres():
    raw = np.zeros((3549, 85), np.float32)
    boxes, scores = decode_yolox(raw, ratio=1.0)
    assert boxes.shape == (3549, 4) and scores.shape == (3549, 80)
    # anchor 0: cell (0, 0) of stride 8 -> centre (0, 0), size exp(0) * 8
    assert boxes[0] == pytest.approx([-4, -4, 4, 4])
    # anchor 1 is the next cell to the right; the first stride-16 anchor follows 52 x 52 stride-8 ones
    assert boxes[1] == pytest.approx([4, -4, 12, 4])
    assert boxes[52 * 52] == pytest.approx([-8, -8, 8, 8])
    assert boxes[52 * 52 + 26 * 26 + 13 * 13 - 1] == pytest.approx([12 * 32 - 16, 12 * 32 - 16, 12 * 32 + 16, 12 * 32 + 16])
    assert STRIDES == (8, 16, 32)


def test_scores_are_objectness_times_class_probability_and_boxes_are_divided_by_the_ratio():
    raw = np.zeros((3549, 85), np.float32)
    raw[10, 0:4] = [0.5, 0.5, np.log(2.0), np.log(3.0)]
    raw[10, 4] = 0.5
    raw[10, 5] = 0.8
    boxes, scores = decode_yolox(raw, ratio=0.5)
    cx, cy = (10 + 0.5) * 8, 0.5 * 8
    assert boxes[10] == pytest.approx(np.array([cx - 8, cy - 12, cx + 8, cy + 12]) / 0.5)
    assert scores[10, 0] == pytest.approx(0.4)


def test_nms_suppresses_with_the_plus_one_pixel_area_convention():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 4], [20, 20, 29, 29]], np.float32)   # IoU 50/100 = 0.5 with +1
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.45)
    assert keep.tolist() == [0, 2]
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1, 2]


def test_preprocessing_places_the_resized_bgr_frame_top_left_on_114():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[..., 0] = 255   # pure red in RGB
    blob, ratio = preprocess(frame, 416)
    assert ratio == pytest.approx(2.08) and blob.shape == (1, 3, 416, 416)
    assert blob[0, :, 10, 10].tolist() == [0, 0, 255]       # BGR
    assert blob[0, :, 300, 10].tolist() == [114, 114, 114]   # below the 208-row resized frame


@pytest.fixture(scope="module")
def refs():
    return json.loads(shared_file("reference", "yolox", "yolox_nano_refs.json").read_text())


@pytest.fixture(scope="module")
def detector():
    from humact.perception.yolox import YoloxDetector

    return YoloxDetector(shared_file("models", "yolox_nano.onnx"), num_threads=2)


def _rgb(name: str) -> np.ndarray:
    return cv2.imread(str(shared_file("data", "images", name)))[..., ::-1].copy()


@pytest.mark.parametrize("name", IMAGES)
def test_preprocessing_is_bit_identical_to_the_reference(refs, name):
    blob, ratio = preprocess(_rgb(name))
    ref = refs["images"][name]
    assert ratio == pytest.approx(ref["ratio"])
    assert hashlib.sha256(blob[0].tobytes()).hexdigest() == ref["preprocessed_sha256_float32_CHW"]


@pytest.mark.parametrize("name", IMAGES)
def test_every_reference_detection_is_reproduced(refs, detector, name):
    ref = refs["images"][name]["all_detections"]
    boxes, scores, classes = detector.detect_all(_rgb(name), score_threshold=refs["thresholds"]["nms_score_th"],
                                                 nms_iou=refs["thresholds"]["nms_th"])
    assert len(boxes) == len(ref)
    assert boxes == pytest.approx(np.array([d["box_xyxy"] for d in ref]), abs=1e-2)
    assert scores == pytest.approx(np.array([d["score"] for d in ref]), abs=1e-5)
    assert classes.tolist() == [d["class_id"] for d in ref]


@pytest.mark.parametrize("name", IMAGES)
def test_the_person_detector_finds_the_reference_persons_above_0_3(refs, detector, name):
    ref = [d for d in refs["images"][name]["persons"] if d["score"] >= 0.3]
    got = detector(_rgb(name))
    assert len(got) == len(ref)
    assert got.xyxy == pytest.approx(np.array([d["box_xyxy"] for d in ref]).reshape(-1, 4), abs=1e-2)


def test_a_file_that_is_not_onnx_is_a_checkpoint_error(tmp_path):
    from humact.errors import CheckpointError
    from humact.perception.yolox import YoloxDetector

    bad = tmp_path / "yolox.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not an ONNX model"):
        YoloxDetector(bad)


# --- top-down ------------------------------------------------------------------------------

def test_a_whole_body_box_gives_one_box_centred_roi():
    from humact.perception.topdown import roi_hypotheses

    rois = roi_hypotheses(np.array([100, 50, 140, 150]), frame_height=400)
    assert len(rois) == 1 and (rois[0].cx, rois[0].cy, rois[0].size) == pytest.approx((120, 100, 125))


def test_a_box_cut_off_by_the_bottom_edge_first_tries_a_roi_centred_on_that_edge():
    from humact.perception.topdown import CUT_OFF_ROI_SCALE, roi_hypotheses

    rois = roi_hypotheses(np.array([0, 4, 202, 256]), frame_height=256)
    assert len(rois) == 2
    assert (rois[0].cx, rois[0].cy, rois[0].size) == pytest.approx((101, 256, 252 * CUT_OFF_ROI_SCALE))


def test_the_top_down_backend_poses_both_people_of_the_hug_video():
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.topdown import TopDownBackend
    from humact.video import read_frames

    frame = next(read_frames(shared_file("data", "media", "ntu_hug_1080p.avi")))[1]
    try:
        backend = TopDownBackend(detector_model=shared_file("models", "yolox_nano.onnx"))
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")
    det = backend(frame, 0)
    assert len(det) == 2 and det.landmarks is not None
    xs = sorted(det.keypoints[:, 11:13, 0].mean(1))   # hip centres
    assert 600 < xs[0] < 900 < xs[1] < 1150


class _FakeLandmarks:
    """A landmark model that finds a person in ROIs centred on the frame's bottom edge (the
    assistant's scan ROIs) when `finds` is "scan", in every ROI when it is "all" (then the
    person found by a scan is followed), never when it is "none"; it counts its calls in scan ROIs."""

    def __init__(self, finds: bool, height: int):
        self.finds, self.height, self.scan_calls = finds, height, 0

    def __call__(self, frame, roi):
        from humact.perception.blazepose import Person, Roi

        self.scan_calls += roi.cy == self.height
        if self.finds == "none" or (self.finds == "scan" and roi.cy != self.height):
            return None
        lm = np.zeros((33, 3), np.float32)
        cx = roi.cx
        lm[:, 0], lm[:, 1] = cx + np.linspace(-20, 20, 33), np.linspace(40, 90, 33)
        return Person(roi=roi, next_roi=Roi(cx=cx, cy=50.0, size=80.0, rotation=0.0), presence=0.9,
                      landmarks=lm, visibility=np.ones(33, np.float32), world=np.zeros((33, 3), np.float32),
                      box=np.array([cx - 20, 40, cx + 20, 90], np.float32))


def _scan_frames(finds: str, frames: int = 110) -> list[int]:
    from humact.perception.topdown import SCAN_CENTRES, LandmarkAssist

    fake = _FakeLandmarks(finds, 100)
    assist = LandmarkAssist(fake, scan_every=10, max_scan_every=40)
    scanned = []
    for t in range(frames):
        before = fake.scan_calls
        assist(np.zeros((100, 160, 3), np.uint8), np.zeros((0, 4)), np.zeros((0, 4)))
        if fake.scan_calls - before == len(SCAN_CENTRES):
            scanned.append(t)
    return scanned


def test_the_assistant_scans_less_often_while_its_scans_find_nobody():
    assert _scan_frames("none") == [0, 20, 60, 100]       # the wait doubles: 20, 40, then at most 40
    assert _scan_frames("all") == [0, 10, 30, 70]         # the people found at 0 are followed, not new


def test_the_assistant_keeps_scanning_every_10_frames_while_scans_find_people():
    # Each scan finds people, whom the assistant then loses at once: every 10 frames.
    assert _scan_frames("scan") == list(range(0, 110, 10))


def _pose_rows(boxes):
    """Detections of poses whose keypoints fill each box (scores 0.9)."""
    from humact.types import Detections

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    kp = np.stack([np.stack([np.linspace(b[0], b[2], 17), np.linspace(b[1], b[3], 17)], 1) for b in boxes]) \
        if len(boxes) else np.zeros((0, 17, 2))
    return Detections(frame=np.zeros(len(boxes), np.int64), xyxy=boxes, score=np.full(len(boxes), 0.9),
                      keypoints=kp, keypoint_scores=np.full((len(boxes), 17), 0.9))


def test_a_detector_box_no_pose_accounts_for_becomes_a_box_only_row():
    from humact.perception.topdown import box_only_rows

    boxes = np.array([[0, 0, 100, 200], [200, 0, 340, 250], [400, 0, 500, 200]], np.float32)
    # Pose 1 is box 0's (IoU 0.8); pose 2 is a small person standing inside box 1 (a background
    # person behind a close-up): it does not account for the large box.
    poses = _pose_rows([[0, 10, 100, 200], [210, 10, 240, 60]])
    rows = box_only_rows(boxes, np.array([0.9, 0.4, 0.2], np.float32), poses, 7, max_rows=10)
    assert rows.xyxy.tolist() == boxes[1:].tolist() and rows.score.tolist() == pytest.approx([0.4, 0.2])
    assert (rows.keypoint_scores == 0).all() and (rows.frame == 7).all() and rows.landmarks is not None
    assert len(box_only_rows(boxes, np.ones(3), poses, 7, max_rows=1)) == 1
    # A cut-off person's landmark box spreads beyond the detector box and covers it: the pose's.
    assert len(box_only_rows(boxes[1:2], np.ones(1), _pose_rows([[150, 0, 340, 256]]), 0, max_rows=5)) == 0


class _Boxes:
    """A fake person detector: the same boxes and scores on every frame."""

    def __init__(self, xyxy, score):
        from humact.perception.yolox import PersonBoxes

        self.out = PersonBoxes(np.asarray(xyxy, np.float32), np.asarray(score, np.float32))

    def __call__(self, frame):
        return self.out


def test_low_score_boxes_get_no_landmark_pass_and_only_continue_tracks():
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.pipeline import ExtractConfig, make_tracker
    from humact.perception.topdown import TopDownBackend

    try:
        backend = TopDownBackend(detector=_Boxes([[10, 10, 60, 90], [100, 10, 150, 90]], [0.9, 0.15]),
                                 min_box_score=0.3, low_box_score=0.1, detect_every=5)
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")
    calls = []
    backend.landmark_model = lambda frame, roi: calls.append(roi) or None    # finds nobody, counts its passes
    frame = np.zeros((100, 160, 3), np.uint8)
    det = backend(frame, 0)
    assert det.score.tolist() == pytest.approx([0.9, 0.15]) and (det.keypoint_scores == 0).all()
    assert {round(r.cx) for r in calls} == {35}            # only the 0.9 box was given to the landmark model
    # Box-only people can only be followed by the detector: it runs on the next frame too, and the
    # box that gave no pose is not tried again until the next scheduled detector frame.
    calls.clear()
    assert len(backend(frame, 1)) == 2 and calls == []
    tracker = make_tracker(ExtractConfig(), 30.0, backend)
    assert tracker.new_track_score == pytest.approx(0.3)
    assert TopDownBackend(detector=_Boxes(np.zeros((0, 4)), []), keep_boxes=False).low_box_score == 0.3
    with pytest.raises(ValueError, match="low_box_score"):
        TopDownBackend(detector=_Boxes(np.zeros((0, 4)), []), min_box_score=0.3, low_box_score=0.5)


def test_a_pose_is_held_to_its_detector_box():
    """The landmark ROI is 1.25-2.5 times the box: joints the model puts far outside the box it came
    from (a cut-off person's unseen hips on the table) are capped, and the row takes the detector box."""
    from humact.perception.topdown import within_boxes

    pose = _pose_rows([[0, 0, 300, 250]])            # keypoints spread from x 0 to 300
    box = np.array([[0, 0, 200, 250]], np.float32)    # the detector's box of that person
    out = within_boxes(pose, box, margin=0.15, score_cap=0.1)
    far = pose.keypoints[0, :, 0] > 230               # beyond 200 + 0.15 x 200
    assert far.any() and (out.keypoint_scores[0, far] == pytest.approx(0.1)) and (out.keypoint_scores[0, ~far] == 0.9).all()
    assert out.xyxy[0].tolist() == box[0].tolist() and pose.xyxy[0].tolist() == [0, 0, 300, 250]   # input unchanged
    # A pose no detector box matches is left alone.
    alone = within_boxes(pose, np.array([[400, 0, 450, 50]], np.float32), margin=0.15, score_cap=0.1)
    assert alone.xyxy[0].tolist() == [0, 0, 300, 250] and (alone.keypoint_scores == 0.9).all()
