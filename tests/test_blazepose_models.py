"""The BlazePose backend with the real model files (skipped until `humact setup` has run).

The real-video tests also need the shared data (`../shared`).
"""

from __future__ import annotations

import numpy as np
import pytest

from humact.perception.model_files import ModelFilesMissing, find_models
from conftest import shared_file

try:
    find_models()
    _SKIP = None
except ModelFilesMissing as e:
    _SKIP = f"BlazePose model files not set up: {e}"

needs_models = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

HUG = ("data", "media", "ntu_hug_1080p.avi")


def _frames(path, indices):
    """RGB frames at `indices` (sorted), decoded with PyAV in order."""
    import av

    want = set(indices)
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                out[i] = f.to_ndarray(format="rgb24")
            if i >= max(want):
                break
    return out


@pytest.fixture(scope="module")
def backend():
    if _SKIP:
        pytest.skip(_SKIP)
    from humact.perception.blazepose import BlazePoseBackend

    return BlazePoseBackend(detect_every=5, num_threads=2)


@pytest.fixture(scope="module")
def hug_run(backend):
    """The backend run over frames 0..60 of the hug video; results kept for frames 10, 30, 60.

    (At frame 0 the detector finds only the right person, score 0.97; the left one scores
    0.30 and is found by the detector run of frame 5, like MediaPipe's own detector does.)
    """
    import av

    path = shared_file(*HUG)
    backend.reset()
    kept = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            rgb = f.to_ndarray(format="rgb24")
            det = backend(rgb, i)
            if i in (10, 30, 60):
                kept[i] = (rgb.shape, det)
            if i == 60:
                break
    return kept


def test_missing_model_files_error_says_to_run_humact_setup(tmp_path):
    from humact.perception.blazepose import BlazePoseBackend

    with pytest.raises(ModelFilesMissing, match="humact setup"):
        BlazePoseBackend(model_dir=tmp_path)


@needs_models
def test_detect_every_must_be_positive():
    from humact.perception.blazepose import BlazePoseBackend

    with pytest.raises(ValueError, match="detect_every"):
        BlazePoseBackend(detect_every=0)


@needs_models
def test_a_blank_frame_has_nobody(backend):
    backend.reset()
    det = backend(np.full((240, 320, 3), 128, np.uint8), 0)
    assert len(det) == 0 and det.landmarks is not None


@needs_models
def test_a_frame_must_be_rgb_uint8(backend):
    with pytest.raises(ValueError, match="frame"):
        backend(np.zeros((10, 10), np.uint8), 0)


@needs_models
@pytest.mark.parametrize("t", [10, 30, 60])
def test_both_people_of_the_hug_video_are_found(hug_run, t):
    _, det = hug_run[t]
    assert len(det) == 2
    assert (det.frame == t).all() and (det.score > 0.5).all()
    hips_x = det.keypoints[:, 11:13, 0].mean(axis=1)
    assert abs(hips_x[0] - hips_x[1]) > 100          # two bodies, not one twice (1080p pixels)


@needs_models
@pytest.mark.parametrize("t", [10, 30, 60])
def test_hug_keypoints_are_inside_the_frame_and_upright(hug_run, t):
    (h, w, _), det = hug_run[t]
    kp = det.keypoints
    assert (kp[..., 0] >= 0).all() and (kp[..., 0] < w).all()
    assert (kp[..., 1] >= 0).all() and (kp[..., 1] < h).all()
    y = kp[..., 1]
    # standing people: nose above shoulders above hips above knees above ankles
    nose, shoulders, hips, knees, ankles = y[:, 0], y[:, 5:7].mean(1), y[:, 11:13].mean(1), \
        y[:, 13:15].mean(1), y[:, 15:17].mean(1)
    assert (nose < shoulders).all() and (shoulders < hips).all() and (hips < knees).all() and (knees < ankles).all()
    # a person in this video is 500-1000 px tall; boxes hold their keypoints' bulk
    height = ankles - nose
    assert ((height > 400) & (height < 1000)).all()
    for box, pts in zip(det.xyxy, kp):
        inside = (pts[:, 0] >= box[0] - 1) & (pts[:, 0] <= box[2] + 1) & (pts[:, 1] >= box[1] - 1) & \
                 (pts[:, 1] <= box[3] + 1)
        assert inside.mean() > 0.8


@needs_models
def test_hug_left_and_right_keypoints_face_the_camera_correctly(hug_run):
    # At frame 10 both people face the camera: their left shoulder is on the image's right.
    _, det = hug_run[10]
    assert (det.keypoints[:, 5, 0] > det.keypoints[:, 6, 0]).all()


@needs_models
def test_world_landmarks_are_metric_and_centred_on_the_hips(hug_run):
    _, det = hug_run[10]
    wl = det.world_landmarks
    hip_centre = wl[:, 23:25].mean(axis=1)
    assert np.abs(hip_centre).max() < 0.1                     # metres
    height = wl[:, 27:29, 1].mean(axis=1) - wl[:, 0, 1]       # ankles below nose, y down
    assert ((height > 1.2) & (height < 2.0)).all()


@needs_models
def test_reset_forgets_people_and_detects_again(backend):
    path = shared_file(*HUG)
    rgb = _frames(path, [0])[0]
    backend.reset()
    backend(rgb, 0)
    before = backend.times["detect"]
    backend(rgb, 1)                                   # followed: no detector run
    assert backend.times["detect"] == before
    backend.reset()
    backend(rgb, 0)                                   # new video: detector runs again
    assert backend.times["detect"] > before


# --- parity with MediaPipe 0.10.21 ------------------------------------------------------------
# Reference numbers measured by running MediaPipe 0.10.21's own PoseLandmarkCpu graph
# (model_complexity 1, no smoothing, no previous landmarks) on frame 0 of the hug video:
# the detection it kept, the ROI it derived, and its 33 landmarks (frame pixels).
MP_HUG0_DET_KEYPOINTS = [[1019.3, 575.1], [1026.2, 268.3], [1029.5, 391.5], [1033.9, 150.1]]
MP_HUG0_ROI = (1019.3468, 575.1344, 767.1788, 0.0222117)   # cx, cy, size (px), rotation (rad)
MP_HUG0_LANDMARKS = [
    [1022.1, 311.6], [1033.3, 298.0], [1038.1, 298.0], [1043.1, 298.1], [1016.9, 298.6], [1012.0, 298.7],
    [1007.7, 299.0], [1052.6, 303.7], [1004.3, 304.5], [1033.5, 326.0], [1014.5, 326.3], [1090.8, 390.4],
    [966.0, 385.0], [1098.0, 491.5], [939.0, 485.4], [1092.4, 573.8], [944.6, 565.9], [1095.6, 603.1],
    [942.8, 594.2], [1087.6, 600.9], [953.3, 590.1], [1083.7, 593.1], [957.3, 580.9], [1048.7, 578.4],
    [981.8, 574.1], [1038.7, 715.1], [970.3, 705.4], [1037.5, 808.6], [975.0, 808.3], [1030.3, 817.6],
    [979.3, 816.5], [1051.1, 851.0], [965.8, 852.0],
]


@pytest.fixture(scope="module")
def hug_frame0():
    return _frames(shared_file(*HUG), [0])[0]


@needs_models
def test_detector_matches_mediapipe_keypoints(backend, hug_frame0):
    dets = backend.detect(hug_frame0)
    err = min(np.abs(d.keypoints - np.array(MP_HUG0_DET_KEYPOINTS)).max() for d in dets)
    assert err < 1.0                                   # pixels of a 1920x1080 frame


@needs_models
def test_detection_roi_matches_mediapipe(backend, hug_frame0):
    from humact.perception.blazepose import roi_from_alignment_points

    d = backend.detect(hug_frame0)[0]
    roi = roi_from_alignment_points(d.keypoints[0], d.keypoints[1])
    cx, cy, size, rot = MP_HUG0_ROI
    assert abs(roi.cx - cx) < 1 and abs(roi.cy - cy) < 1 and abs(roi.size - size) < 2
    assert abs(roi.rotation - rot) < 0.005


@needs_models
def test_landmarks_in_mediapipes_roi_match_mediapipes_landmarks(backend, hug_frame0):
    from humact.perception.blazepose import Roi

    cx, cy, size, rot = MP_HUG0_ROI
    p = backend.landmarks(hug_frame0, Roi(cx=cx, cy=cy, size=size, rotation=rot))
    err = np.linalg.norm(p.landmarks[:, :2] - np.array(MP_HUG0_LANDMARKS), axis=1)
    # pixels; a ROI 1 px off, 1 % larger or 0.01 rad more rotated gives a median >= 0.8 px, and
    # skipping the heatmap refinement a median of 6 px
    assert np.median(err) < 0.3 and err.max() < 1.5


@needs_models
def test_tiled_detection_finds_the_person_the_whole_frame_detector_misses(backend, hug_frame0):
    # frame 0: MediaPipe's whole-frame detector scores the left person 0.30 (< 0.5)
    assert len(backend.detect(hug_frame0)) == 1
    hips_x = sorted(float(d.keypoints[0, 0]) for d in backend.detect_tiled(hug_frame0))
    assert hips_x[0] < 850 and hips_x[-1] > 950          # left person (~770) and right person (~1015)


@needs_models
def test_both_hug_people_are_found_from_the_first_frame(backend, hug_frame0):
    backend.reset()
    det = backend(hug_frame0, 0)
    assert len(det) == 2
