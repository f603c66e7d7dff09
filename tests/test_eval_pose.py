"""COCO keypoint AP of humact results through pycocotools (`humact eval pose`).

The unit tests build a tiny COCO ground truth and humact result JSONs in the test; the
last test runs the real default backend on the four shared COCO val2017 images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from humact.cli import main
from humact.errors import InputError
from humact.eval.pose import evaluate_pose_dir, load_coco_gt, results_to_coco
from humact.io.results import write_result_json
from humact.types import PoseTracks, VideoMeta, VideoResult

W, H = 200, 100


def _person(x0: float, y0: float) -> np.ndarray:
    """(17, 2) a plausible standing pose inside a 40 x 80 box at (x0, y0)."""
    rel = np.array([[20, 5], [18, 4], [22, 4], [15, 5], [25, 5], [10, 20], [30, 20], [8, 35], [32, 35],
                    [6, 48], [34, 48], [14, 50], [26, 50], [14, 65], [26, 65], [14, 79], [26, 79]], np.float64)
    return rel + [x0, y0]


def _gt(tmp: Path, people: list[np.ndarray]) -> Path:
    anns = []
    for i, kp in enumerate(people):
        x1, y1 = kp.min(0)
        x2, y2 = kp.max(0)
        flat = np.concatenate([kp, np.full((17, 1), 2.0)], 1).reshape(-1).tolist()
        anns.append({"id": i + 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                     "keypoints": flat, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float((x2 - x1) * (y2 - y1))})
    doc = {"images": [{"id": 7, "file_name": "img7.jpg", "width": W, "height": H}], "annotations": anns,
           "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}
    path = tmp / "gt.json"
    path.write_text(json.dumps(doc))
    return path


def _result(tmp: Path, poses: list[np.ndarray], scores: list[float], name: str = "img7") -> Path:
    m = len(poses)
    kp = np.zeros((m, 1, 17, 2), np.float32)
    for i, p in enumerate(poses):
        kp[i, 0] = p
    tracks = PoseTracks(track_ids=np.arange(m), keypoints=kp, keypoint_scores=np.full((m, 1, 17), 0.9, np.float32),
                        boxes=np.zeros((m, 1, 4), np.float32), box_scores=np.array(scores, np.float32).reshape(m, 1),
                        valid=np.ones((m, 1), bool))
    meta = VideoMeta(path=f"{name}.jpg", width=W, height=H, fps=1.0, num_frames=1, frame_times=np.zeros(1))
    out = tmp / "pred"
    write_result_json(VideoResult(meta=meta, tracks=tracks), out / f"{name}.json")
    return out


def test_exact_poses_score_ap_1_and_every_person_is_found(tmp_path):
    people = [_person(10, 10), _person(120, 15)]
    r = evaluate_pose_dir(_gt(tmp_path, people), _result(tmp_path, people, [0.9, 0.8]))
    assert r.ap == pytest.approx(1.0) and r.ap50 == pytest.approx(1.0)
    assert (r.found, r.num_gt, r.num_pred) == (2, 2, 2)


def test_a_missed_person_halves_the_recall_and_counts_as_not_found(tmp_path):
    people = [_person(10, 10), _person(120, 15)]
    r = evaluate_pose_dir(_gt(tmp_path, people), _result(tmp_path, people[:1], [0.9]))
    assert r.found == 1 and r.stats["AR"] == pytest.approx(0.5)
    assert r.ap < 0.6


def test_a_pose_a_body_width_off_is_not_found(tmp_path):
    people = [_person(10, 10)]
    r = evaluate_pose_dir(_gt(tmp_path, people), _result(tmp_path, [_person(50, 10)], [0.9]))
    assert r.found == 0 and r.ap == pytest.approx(0.0)


def test_the_person_score_ranks_predictions(tmp_path):
    """A confident wrong pose ranked above a right one costs AP; ranked below, it does not."""
    people = [_person(10, 10)]
    wrong = _person(120, 15)
    bad = evaluate_pose_dir(_gt(tmp_path, people), _result(tmp_path, [wrong, people[0]], [0.9, 0.5]))
    good = evaluate_pose_dir(_gt(tmp_path, people), _result(tmp_path, [wrong, people[0]], [0.5, 0.9]))
    assert good.ap == pytest.approx(1.0) and bad.ap < good.ap


def test_results_become_coco_keypoint_results_with_the_rescored_person_score(tmp_path):
    people = [_person(10, 10)]
    gt = load_coco_gt(_gt(tmp_path, people))
    res = results_to_coco(_result(tmp_path, people, [0.5]), gt)
    assert len(res) == 1 and res[0]["image_id"] == 7 and res[0]["category_id"] == 1
    assert len(res[0]["keypoints"]) == 51 and res[0]["keypoints"][:2] == pytest.approx(list(people[0][0]), abs=0.01)
    assert res[0]["score"] == pytest.approx(0.5 * 0.9, rel=1e-3)


def test_nobody_predicted_anywhere_scores_zero(tmp_path):
    r = evaluate_pose_dir(_gt(tmp_path, [_person(10, 10)]), _result(tmp_path, [], []))
    assert r.ap == 0.0 and r.found == 0 and r.num_pred == 0


def test_an_image_without_a_result_is_an_error_naming_it(tmp_path):
    gt = _gt(tmp_path, [_person(10, 10)])
    (tmp_path / "pred").mkdir()
    with pytest.raises(InputError, match="no result img7.jpg.json for ground-truth image img7.jpg"):
        evaluate_pose_dir(gt, tmp_path / "pred")
    assert evaluate_pose_dir(gt, tmp_path / "pred", missing="empty").found == 0


def test_a_result_of_another_image_size_is_refused(tmp_path):
    gt = json.loads(_gt(tmp_path, [_person(10, 10)]).read_text())
    gt["images"][0]["width"] = 640
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match="200x100, but the ground truth's img7.jpg is 640x100"):
        evaluate_pose_dir(tmp_path / "gt.json", _result(tmp_path, [_person(10, 10)], [0.9]))


def test_a_ground_truth_without_keypoints_is_a_clear_error(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1]}],
                               "categories": []}))
    with pytest.raises(InputError, match=r"annotations\[0\]\.keypoints' missing"):
        load_coco_gt(bad)


def test_the_eval_pose_command_prints_ap_and_people_found(tmp_path, capsys):
    people = [_person(10, 10), _person(120, 15)]
    gt, pred = _gt(tmp_path, people), _result(tmp_path, people, [0.9, 0.8])
    assert main(["eval", "pose", "--gt", str(gt), "--pred", str(pred)]) == 0
    out = capsys.readouterr().out
    assert "AP 1.000" in out and "people found (OKS >= 0.5): 2 of 2" in out
    assert json.loads((pred / "pose_eval.json").read_text())["found"] == 2


def test_the_eval_pose_command_reports_a_missing_folder_as_a_user_error(tmp_path, capsys):
    gt = _gt(tmp_path, [_person(10, 10)])
    assert main(["eval", "pose", "--gt", str(gt), "--pred", str(tmp_path / "absent")]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_backend_scores_at_least_0_55_ap_on_the_shared_coco_images(tmp_path):
    from humact.perception.model_files import ModelFilesMissing
    from humact.perception.pipeline import ExtractConfig, extract_video, make_backend

    folder = shared_file("data", "images", "coco_val2017_kp")
    try:
        backend = make_backend(ExtractConfig())
    except ModelFilesMissing as e:
        pytest.skip(f"model files missing: {e}")
    for img in sorted(folder.glob("*.jpg")):
        write_result_json(extract_video(img, backend=backend), tmp_path / f"{img.name}.json")
    r = evaluate_pose_dir(folder / "test_coco.json", tmp_path)
    assert r.ap >= 0.55 and r.found >= 10


def test_a_box_only_person_is_no_keypoint_prediction(tmp_path):
    """A detector box the pose model found no pose in (every keypoint score 0) is not scored as a pose."""
    people = [_person(10, 10)]
    gt = load_coco_gt(_gt(tmp_path, people))
    pred = _result(tmp_path, [people[0], _person(120, 15)], [0.9, 0.8])
    from humact.io.results import read_result_json

    res = read_result_json(pred / "img7.json")
    res.tracks.keypoint_scores[1] = 0.0
    write_result_json(res, pred / "img7.json")
    out = results_to_coco(pred, gt)
    assert len(out) == 1 and out[0]["score"] == pytest.approx(0.9 * 0.9, rel=1e-3)
