"""MoveNet MultiPose: input geometry, output decoding, the crop refinement, the real model.

The geometry and decoding tests use synthetic outputs; the model tests need the MoveNet
file (`humact setup`) and the shared hug video, and skip with the reason otherwise.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, shared_file
from humact.perception.movenet import MAX_ASPECT, decode_movenet, input_geometry, square_crop


def test_the_long_side_becomes_the_input_size_and_both_sides_are_multiples_of_32():
    scale, cw, ch = input_geometry(1920, 1080, 256)
    assert scale == pytest.approx(256 / 1920) and (cw, ch) == (256, 160)
    assert input_geometry(340, 256, 256)[1:] == (256, 224)
    assert input_geometry(480, 640, 320)[1:] == (256, 320)


def test_an_absurd_aspect_ratio_is_letterboxed_to_at_most_4_to_1():
    _, cw, ch = input_geometry(1, 1000, 256)
    assert (cw, ch) == (256 / MAX_ASPECT, 256)
    _, cw, ch = input_geometry(1000, 1, 256)
    assert (cw, ch) == (256, 64)


def test_an_input_size_that_is_not_a_multiple_of_32_is_refused():
    with pytest.raises(ValueError, match="multiple of 32"):
        input_geometry(100, 100, 250)


def _row(kp_yx: np.ndarray, kp_s: float, box: tuple, score: float) -> np.ndarray:
    yxs = np.concatenate([kp_yx, np.full((17, 1), kp_s)], 1).reshape(-1)
    return np.concatenate([yxs, box, [score]]).astype(np.float32)


def test_decoding_maps_canvas_fractions_to_frame_pixels_and_swaps_y_x():
    kp = np.tile([[0.25, 0.5]], (17, 1))   # y = 0.25, x = 0.5 of a 256 x 160 canvas
    raw = np.zeros((6, 56), np.float32)
    raw[0] = _row(kp, 0.8, (0.1, 0.2, 0.5, 0.6), 0.7)
    det = decode_movenet(raw, canvas_size=(256, 160), frame_scale=(256 / 1920, 144 / 1080),
                         frame_size=(1920, 1080), min_person_score=0.2)
    assert len(det) == 1
    assert det.keypoints[0, 0] == pytest.approx([0.5 * 256 * 1920 / 256, 0.25 * 160 * 1080 / 144])
    assert det.xyxy[0] == pytest.approx([0.2 * 1920, 0.1 * 160 * 7.5, 0.6 * 1920, 0.5 * 160 * 7.5])
    assert det.score[0] == pytest.approx(0.7) and det.keypoint_scores[0] == pytest.approx(np.full(17, 0.8))


def test_decoding_drops_weak_rows_and_puts_the_best_person_first():
    kp = np.full((17, 2), 0.5)
    raw = np.stack([_row(kp, 0.5, (0, 0, 1, 1), s) for s in (0.3, 0.05, 0.9, 0.19, 0.2, 0.0)])
    det = decode_movenet(raw, canvas_size=(256, 256), frame_scale=(1, 1), frame_size=(256, 256),
                         min_person_score=0.2)
    assert det.score.tolist() == pytest.approx([0.9, 0.3, 0.2])


def test_keypoints_in_the_canvas_padding_are_clipped_into_the_frame_with_a_capped_score():
    kp = np.tile([[0.95, 0.5]], (17, 1))   # y in the padding below a 256 x 144 frame on a 256 x 160 canvas
    raw = np.zeros((6, 56), np.float32)
    raw[0] = _row(kp, 0.9, (0, 0, 1, 1), 0.8)
    det = decode_movenet(raw, canvas_size=(256, 160), frame_scale=(1.0, 1.0), frame_size=(256, 144),
                         min_person_score=0.2, outside_score_cap=0.1)
    assert (det.keypoints[0, :, 1] < 144).all() and det.keypoint_scores[0] == pytest.approx(np.full(17, 0.1))
    assert det.xyxy[0, 3] == pytest.approx(144)


def test_a_square_crop_maps_its_pixels_back_to_the_frame():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255   # a white square in the middle of the box below
    crop, k, origin = square_crop(frame, np.array([80, 30, 120, 70]), scale=1.25, out_size=64)
    assert crop.shape == (64, 64, 3) and k == pytest.approx(50 / 64)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    centre = origin + k * np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    assert centre == pytest.approx([100, 50], abs=1.0)


def test_a_crop_beyond_the_frame_edge_is_padded_black():
    frame = np.full((50, 50, 3), 200, np.uint8)
    crop, _, origin = square_crop(frame, np.array([0, 0, 20, 20]), scale=2.0, out_size=40)
    assert origin.tolist() == [-10, -10] and crop[0, 0].tolist() == [0, 0, 0] and crop[-1, -1].tolist() == [200] * 3


@pytest.fixture(scope="module")
def backend():
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.movenet import MoveNetBackend

    try:
        return MoveNetBackend(num_threads=2)
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")


@pytest.fixture(scope="module")
def hug_frame0():
    from humact.video import read_frames

    return next(read_frames(shared_file("data", "media", "ntu_hug_1080p.avi")))[1]


def test_movenet_finds_the_two_people_of_the_hug_video_apart(backend, hug_frame0):
    det = backend(hug_frame0, 0)
    assert len(det) == 2 and (det.score > 0.4).all()
    left, right = sorted(det.xyxy.tolist())
    assert left[2] < right[2] and 500 < left[0] < 750 and 850 < right[0] < 1000
    # each pose is a standing person: nose above the hips above the ankles
    for kp in det.keypoints:
        assert kp[0, 1] < kp[11:13, 1].mean() < kp[15:17, 1].mean()


def test_the_crop_refinement_moves_keypoints_but_keeps_the_people(backend, hug_frame0):
    from humact.perception.movenet import MoveNetBackend

    coarse = MoveNetBackend(refine=False, assist=False)(hug_frame0, 0)
    fine = backend(hug_frame0, 0)
    order_c, order_f = np.argsort(coarse.xyxy[:, 0]), np.argsort(fine.xyxy[:, 0])
    shift = np.linalg.norm(coarse.keypoints[order_c] - fine.keypoints[order_f], axis=-1)
    assert 0.5 < np.median(shift) < 20   # refined (a 256-input pixel is 7.5 frame pixels), same bodies


def test_a_1_by_1000_frame_runs_one_letterboxed_pass(backend):
    det = backend(np.zeros((1000, 1, 3), np.uint8), 3)
    assert len(det) == 0 or (det.frame == 3).all()


def test_loading_models_prints_no_xnnpack_line():
    code = ("from humact.perception.movenet import MoveNetBackend\n"
            "from humact.perception.model_files import ModelFilesMissing\n"
            "import numpy as np\n"
            "try:\n    b = MoveNetBackend()\nexcept ModelFilesMissing:\n    raise SystemExit(3)\n"
            "b(np.zeros((64, 64, 3), np.uint8), 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    if proc.returncode == 3:
        pytest.skip("model files missing")
    assert proc.returncode == 0, proc.stderr
    assert "XNNPACK" not in proc.stderr and "INFO:" not in proc.stderr


def test_downscale_averages_like_one_inter_area_resize_and_other_filters_are_unchanged():
    import cv2

    from humact.perception.movenet import downscale

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 3)
    once = cv2.resize(frame, (256, 144), interpolation=cv2.INTER_AREA).astype(int)
    ours = downscale(frame, (256, 144))
    assert ours.shape == (144, 256, 3) and np.abs(ours.astype(int) - once).mean() < 1.0
    odd = frame[:1079, :1917]      # odd sides are never halved: one resize, as cv2's
    assert (downscale(odd, (256, 144)) == cv2.resize(odd, (256, 144), interpolation=cv2.INTER_AREA)).all()
    lin = downscale(frame, (256, 144), cv2.INTER_LINEAR)
    assert (lin == cv2.resize(frame, (256, 144), interpolation=cv2.INTER_LINEAR)).all()


def test_between_whole_frame_passes_each_person_is_followed_in_their_own_crop(backend):
    from humact.perception.boxes import box_area, oks_matrix
    from humact.perception.movenet import MoveNetBackend
    from humact.video import read_frames

    frames = [rgb for _, rgb in read_frames(shared_file("data", "media", "ntu_hug_1080p.avi"), stop=3)]
    every = MoveNetBackend(num_threads=2, full_every=1, assist=False)
    alternate = MoveNetBackend(num_threads=2, full_every=2, assist=False)
    got = {}
    for name, b in (("every", every), ("alternate", alternate)):
        b.reset()
        passes = []
        for t, rgb in enumerate(frames):
            before = b.times["infer"]
            got[name, t] = b(rgb, t)
            passes.append(b.times["infer"] > before)
        got[name] = passes
    assert got["every"] == [True, True, True] and got["alternate"] == [True, False, True]
    a, f = got["every", 1], got["alternate", 1]
    assert len(a) == len(f) == 2 and (f.frame == 1).all()
    oks, _ = oks_matrix(a.keypoints, a.keypoint_scores, f.keypoints, f.keypoint_scores, box_area(a.xyxy))
    assert (oks.max(axis=1) > 0.95).all()        # the same two poses, person by person
    # A frame that does not follow the previous one (a new video, a dropped frame) gets the whole pass.
    before = alternate.times["infer"]
    alternate(frames[0], 7)
    assert alternate.times["infer"] > before
