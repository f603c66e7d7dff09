"""COCO keypoint AP of humact's pose results, computed by pycocotools (the field's own evaluator).

    ground truth   a COCO keypoints JSON (`images`, `annotations` with `keypoints`, `categories`)
    predictions    a folder of humact result JSONs (`humact extract IMAGE --out DIR`), one per
                   image, named after the image as `humact extract` names it
                   (`000000000785.jpg` -> `000000000785.jpg.json`; `000000000785.json`, the name
                   older humact versions wrote, is read when that is absent)

Each person in an image's result becomes one COCO result (`results_to_coco`):

    {"image_id": id, "category_id": 1, "keypoints": [x1, y1, s1, ..., x17, y17, s17], "score": s}

with x, y in pixels of the image and `s` the person score used to rank detections:
the person (box) score times the mean score of the keypoints above `keypoint_threshold`
(the rescoring MMPose's top-down evaluation applies; a box score alone ranks a
confident detection with a poor pose above a good one). COCOeval then runs with
`iouType="keypoints"`: OKS with COCO's per-keypoint sigmas, 20 detections per image,
AP averaged over OKS thresholds 0.50:0.05:0.95.

"People found" counts the ground-truth persons with keypoints (and not crowd) that some
prediction matches at OKS >= 0.5 in COCOeval's own matching (`evalImgs[...]["gtMatches"]`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humact.errors import InputError

__all__ = ["PoseEvalResult", "load_coco_gt", "results_to_coco", "evaluate_coco_keypoints", "evaluate_pose_dir"]

#: COCOeval's `stats` for iouType="keypoints", in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")


@dataclass
class PoseEvalResult:
    """COCO keypoint evaluation of one prediction folder.

    Attributes:
        stats: COCOeval's ten summary numbers by name (`STAT_NAMES`); -1 where undefined
            (e.g. no ground truth of that size), as pycocotools reports them.
        num_gt: ground-truth persons with keypoints (not crowd): the ones AP is about.
        num_pred: predicted persons over all images.
        found: ground-truth persons matched by a prediction at OKS >= 0.5.
        per_image: {file_name: {"gt": int, "pred": int, "found": int}}.
    """

    stats: dict[str, float]
    num_gt: int
    num_pred: int
    found: int
    per_image: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ap(self) -> float:
        return self.stats["AP"]

    @property
    def ap50(self) -> float:
        return self.stats["AP50"]

    @property
    def ap75(self) -> float:
        return self.stats["AP75"]

    def to_json(self) -> dict:
        return {"stats": self.stats, "num_gt": self.num_gt, "num_pred": self.num_pred, "found": self.found,
                "per_image": self.per_image}


def load_coco_gt(path: str | os.PathLike):
    """The ground truth as a `pycocotools.coco.COCO`, with clear errors for a wrong file."""
    from pycocotools.coco import COCO

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such ground-truth file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON file ({e})") from e
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a COCO JSON object, got {type(doc).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise InputError(f"{path}: field '{key}' missing or not a list (expected COCO keypoints format)")
    for i, a in enumerate(doc["annotations"]):
        for key in ("image_id", "keypoints", "num_keypoints", "bbox", "area"):
            if key not in a:
                raise InputError(f"{path}: field 'annotations[{i}].{key}' missing (expected COCO keypoints format)")
        if len(a["keypoints"]) != 51:
            raise InputError(f"{path}: field 'annotations[{i}].keypoints' has {len(a['keypoints'])} values, "
                             f"expected 51 (17 x (x, y, v))")
        a.setdefault("iscrowd", 0)
    gt = COCO()
    gt.dataset = doc
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def results_to_coco(pred_dir: str | os.PathLike, gt, *, keypoint_threshold: float = 0.2,
                    missing: str = "error") -> list[dict]:
    """COCO keypoint results from the humact result JSONs in `pred_dir`.

    Args:
        pred_dir: folder with `NAME.json` (extract's name; else `STEM.json`) for each ground-truth
            image `NAME` = `STEM.EXT`.
        gt: the ground truth (`load_coco_gt`).
        keypoint_threshold: keypoints above this score enter the person's rescoring.
        missing: an image without a result file: "error" (InputError naming it) or
            "empty" (nobody predicted there).

    Returns:
        A list of COCO result dicts (possibly empty).
    """
    from humact.io.results import ResultFormatError, read_result_json

    if missing not in ("error", "empty"):
        raise ValueError(f"missing: expected 'error' or 'empty', got {missing!r}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(f"{pred_dir}: no such prediction folder")
    out = []
    for img in gt.dataset["images"]:
        name = Path(img["file_name"]).name
        path = pred_dir / f"{name}.json"
        if not path.is_file():
            path = pred_dir / f"{Path(name).stem}.json"
        if not path.is_file():
            if missing == "error":
                raise InputError(f"{pred_dir}: no result {name}.json for ground-truth image {img['file_name']} "
                                 f"(run `humact extract` on it, or pass --missing empty)")
            continue
        try:
            result = read_result_json(path)
        except ResultFormatError as e:
            raise InputError(str(e)) from e
        meta, tracks = result.meta, result.tracks
        if meta.num_frames != 1:
            raise InputError(f"{path}: field 'video.num_frames' is {meta.num_frames}, expected 1 (an image)")
        if (meta.width, meta.height) != (img["width"], img["height"]):
            raise InputError(f"{path}: field 'video.width/height' is {meta.width}x{meta.height}, but the "
                             f"ground truth's {img['file_name']} is {img['width']}x{img['height']}")
        for m in np.flatnonzero(tracks.valid[:, 0]):
            kp = tracks.keypoints[m, 0].astype(np.float64)
            ks = tracks.keypoint_scores[m, 0].astype(np.float64)
            if not ks.any():
                continue   # a box-only person (a detector box the pose model found no pose in): no keypoints to score
            good = ks > keypoint_threshold
            pose_score = float(ks[good].mean()) if good.any() else 0.0
            flat = np.concatenate([kp, ks[:, None]], axis=1).reshape(-1)
            out.append({"image_id": img["id"], "category_id": 1, "keypoints": [round(float(v), 3) for v in flat],
                        "score": float(tracks.box_scores[m, 0]) * pose_score})
    return out


def evaluate_coco_keypoints(gt, results: list[dict]) -> PoseEvalResult:
    """Run pycocotools' COCOeval (keypoints) on `results` against `gt`."""
    from pycocotools.cocoeval import COCOeval

    ann = [a for a in gt.dataset["annotations"] if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]
    names = {img["id"]: img["file_name"] for img in gt.dataset["images"]}
    per_image = {names[i]: {"gt": 0, "pred": 0, "found": 0} for i in names}
    for a in ann:
        per_image[names[a["image_id"]]]["gt"] += 1
    for r in results:
        if r["image_id"] not in names:
            raise InputError(f"result for image_id {r['image_id']}: not an image of the ground truth")
        per_image[names[r["image_id"]]]["pred"] += 1
    if not results:   # COCO.loadRes refuses an empty list; nothing predicted scores 0
        stats = {k: (0.0 if ann else -1.0) for k in STAT_NAMES}
        return PoseEvalResult(stats=stats, num_gt=len(ann), num_pred=0, found=0, per_image=per_image)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
    # evalImgs is ordered category x area range x image; area range 0 is "all", and
    # iouThrs[0] is OKS 0.5. gtMatches holds the matched detection's id, 0 when unmatched.
    all_area = ev.params.areaRng[0]
    found = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != all_area:
            continue
        matched = (np.asarray(e["gtMatches"])[0] > 0) & ~np.asarray(e["gtIgnore"], bool)
        per_image[names[e["image_id"]]]["found"] = int(matched.sum())
        found += int(matched.sum())
    return PoseEvalResult(stats=stats, num_gt=len(ann), num_pred=len(results), found=found, per_image=per_image)


def evaluate_pose_dir(gt_path: str | os.PathLike, pred_dir: str | os.PathLike, *,
                      missing: str = "error", keypoint_threshold: float = 0.2) -> PoseEvalResult:
    """`humact eval pose`: COCO keypoint AP of the result JSONs in `pred_dir` against `gt_path`."""
    gt = load_coco_gt(gt_path)
    results = results_to_coco(pred_dir, gt, missing=missing, keypoint_threshold=keypoint_threshold)
    return evaluate_coco_keypoints(gt, results)
