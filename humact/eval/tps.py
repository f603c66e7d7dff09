"""Kinetics-TPS (Kinetics-Temporal Part State) files and the official task score.

Files (one folder each for ground truth and prediction):

    gt_vid_result.json     {video: action}
    gt_part_result.json    {video: {"img_00001.json": {"humans": [
                               {"box": [x1, y1, x2, y2], "parts": {part: {"box": [x1, y1, x2, y2], "verb": state}}}]}}}
    pred_vid_result.json   {video: action}
    pred_part_result.json  same layout; a predicted human has "box" and, per part, up to 5
                           proposals: {"box": [[x1, y1, x2, y2], ...], "verb": [state, ...]}

Part names and states are opaque strings; boxes are pixels.

The score (`evaluate_tps`) is the one of the challenge's `evaluation.py`; it is not an AP:

- per video, the frames are those of the ground truth; a frame without humans, or whose
  humans have no parts, is dropped -- except that a frame missing from the prediction is
  checked first and scores 0 (the official loop `continue`s before counting parts);
- humans are matched one-to-one by Hungarian assignment (scipy's linear_sum_assignment) on
  1 - IoU, the IoU with the +1-pixel convention, computed in float32 as the official code
  does (it builds the matrix from `np.float32` boxes; -1 for boxes that do not overlap),
  padded to a square matrix with IoU 0; a pair counts only if IoU > the human threshold
  (0.5). At most 10 predicted humans per frame; extra ones cost nothing;
- an unmatched ground-truth human scores 0 for all its parts. For a matched human and each
  ground-truth part: 0 if the prediction lacks that part, else, with N proposals (at most
  5), 1/N if any proposal has IoU >= the part threshold (0.3, same +1 convention, in
  Python floats) and exactly the ground-truth verb;
- frame score = sum of credits / number of ground-truth parts in the frame; a video's
  part-state correctness (PSC) = mean over its valid frames (1.0 if it has none); a video
  is correct when the predicted action string equals the ground truth;
- acc(t) = fraction of videos with PSC >= t and a correct action; Score = sum over
  t = 1..9999 of acc(t / 10000) / 10000, summed in that order as the official loop does.
  The official report also prints the 5 x 5 grid of Scores over human / part IoU
  thresholds {0.001, 0.3, 0.5, 0.9, 0.99}: `TpsResult.grid`.

A video missing from the prediction is an error naming it (the official code stops with a
KeyError), or scores PSC 0 and a wrong action with `missing="zero"`.

Every file is checked whole before anything is scored (`check_tps_files`): a field of the
wrong type would otherwise be scored 0 without a word (an action or a verb that is a number
never equals the ground truth's string; parts given as a list match no part name), or stop
the official code with a KeyError. Each problem is a `TpsFormatError` naming the file, the
video, the frame, the human, the part and the field. Boxes must be 4 finite numbers of
magnitude at most `MAX_COORDINATE`; a frame has at most `MAX_HUMANS` predicted and
`MAX_HUMANS_PER_FRAME` ground-truth humans (matching is cubic in their number); the ground
truth must hold at least one video. On files that pass, the score is the official one.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from humact.errors import InputError
from humact.io.atomic import atomic_write
from humact.io.limits import MAX_COORDINATE, MAX_HUMANS_PER_FRAME, check_limit, read_json, short_repr

__all__ = ["GRID_THRESHOLDS", "MAX_HUMANS", "MAX_PROPOSALS", "FILE_NAMES", "TpsFormatError", "TpsResult",
           "read_tps_dir", "write_tps_dir", "check_tps_files", "evaluate_tps", "evaluate_tps_dirs", "video_psc",
           "task_score", "tps_humans_from_parts"]

GRID_THRESHOLDS = (0.001, 0.3, 0.5, 0.9, 0.99)
MAX_HUMANS = 10       # predicted humans per frame the official evaluator accepts
MAX_PROPOSALS = 5     # proposals per predicted part
STEPS = 10000         # resolution of the PSC threshold sweep


class TpsFormatError(InputError):
    """A Kinetics-TPS file does not follow the format; the message names file, video, frame and field."""


#: The four files, in the order `evaluate_tps` takes their contents.
FILE_NAMES = ("gt_vid_result.json", "gt_part_result.json", "pred_vid_result.json", "pred_part_result.json")


def _load_json(path: Path) -> dict:
    data = read_json(path, error=TpsFormatError)
    if not isinstance(data, dict):
        raise TpsFormatError(f"{path}: expected a JSON object {{video: ...}}, got {type(data).__name__}")
    return data


def read_tps_dir(folder: str | os.PathLike, kind: str) -> tuple[dict, dict]:
    """Read `{kind}_vid_result.json` and `{kind}_part_result.json` (kind "gt" or "pred").

    Only the JSON is checked here (size, UTF-8, syntax, an object at the top); the fields
    are checked by `evaluate_tps` / `check_tps_files`.
    """
    if kind not in ("gt", "pred"):
        raise ValueError(f"kind: expected 'gt' or 'pred', got {kind!r}")
    folder = Path(folder)
    vid = _load_json(folder / f"{kind}_vid_result.json")
    part = _load_json(folder / f"{kind}_part_result.json")
    return vid, part


# --------------------------------------------------------------------------------------
# Checking the files
# --------------------------------------------------------------------------------------

def _at(source, video=None, frame=None, human=None, part=None) -> str:
    out = str(source)
    if video is not None:
        out += f": video {short_repr(video)}"
    if frame is not None:
        out += f" frame {short_repr(frame)}"
    if human is not None:
        out += f" human {human}"
    if part is not None:
        out += f" part {short_repr(part)}"
    return out


def _check_box(v, where: str, field: str = "box") -> None:
    if not (isinstance(v, (list, tuple)) and len(v) == 4
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
        raise TpsFormatError(f"{where}: field {field}: expected [x1, y1, x2, y2] (4 numbers), got {short_repr(v)}")
    for x in v:
        if isinstance(x, float) and not math.isfinite(x):
            raise TpsFormatError(f"{where}: field {field}: expected finite numbers, got {short_repr(v)}")
        check_limit(abs(x), MAX_COORDINATE, source=where, field=field)


def _check_mapping(v, where: str, field: str, what: str) -> dict:
    if not isinstance(v, dict):
        raise TpsFormatError(f"{where}: field {field}: expected an object {what}, got {type(v).__name__} "
                             f"{short_repr(v)}")
    return v


def _check_list(v, where: str, field: str, what: str) -> list:
    if not isinstance(v, (list, tuple)):
        raise TpsFormatError(f"{where}: field {field}: expected a list {what}, got {type(v).__name__} "
                             f"{short_repr(v)}")
    return v


def _check_labels(data: dict, source: str, what: str) -> None:
    for video, label in data.items():
        if not isinstance(label, str):
            raise TpsFormatError(f"{_at(source, video)}: expected the {what} as a string, got "
                                 f"{type(label).__name__} {short_repr(label)} (it would never equal a string)")


def _check_frames(data: dict, source: str, predicted: bool) -> None:
    """`{video: {frame: {"humans": [...]}}}` of a ground-truth or prediction part file."""
    most = MAX_HUMANS if predicted else MAX_HUMANS_PER_FRAME.value
    for video, frames in data.items():
        _check_mapping(frames, _at(source, video), "frames", "{frame: {'humans': [...]}}")
        for frame, content in frames.items():
            where = _at(source, video, frame)
            _check_mapping(content, where, "frame", "{'humans': [...]}")
            if "humans" not in content:
                raise TpsFormatError(f"{where}: missing field 'humans'")
            humans = _check_list(content["humans"], where, "humans", "of humans")
            if predicted and len(humans) > MAX_HUMANS:
                raise TpsFormatError(f"{where}: at most {MAX_HUMANS} predicted humans per frame, got {len(humans)}")
            if not predicted and len(humans) > most:
                check_limit(len(humans), MAX_HUMANS_PER_FRAME, source=where, field="humans")
            for i, h in enumerate(humans):
                hw = _at(source, video, frame, i)
                _check_mapping(h, hw, "human", "{'box': [...], 'parts': {...}}")
                for key in ("box", "parts"):
                    if key not in h:
                        raise TpsFormatError(f"{hw}: missing field {key!r}")
                _check_box(h["box"], hw)
                parts = _check_mapping(h["parts"], hw, "parts", "{part name: {'box': ..., 'verb': ...}}")
                for name, part in parts.items():
                    pw = _at(source, video, frame, i, name)
                    _check_mapping(part, pw, "part", "{'box': ..., 'verb': ...}")
                    for key in ("box", "verb"):
                        if key not in part:
                            raise TpsFormatError(f"{pw}: missing field {key!r}")
                    if predicted:
                        _check_proposals(part, pw)
                    else:
                        _check_box(part["box"], pw)
                        if not isinstance(part["verb"], str):
                            raise TpsFormatError(f"{pw}: field verb: expected a string, got "
                                                 f"{type(part['verb']).__name__} {short_repr(part['verb'])}")


def _check_proposals(part: dict, where: str) -> None:
    verbs, boxes = part["verb"], part["box"]
    if isinstance(verbs, str):              # a single proposal written without lists
        _check_box(boxes, where)
        return
    _check_list(verbs, where, "verb", "of states (or one state string)")
    _check_list(boxes, where, "box", "of [x1, y1, x2, y2] boxes")
    if len(verbs) > MAX_PROPOSALS:
        raise TpsFormatError(f"{where}: field verb: at most {MAX_PROPOSALS} proposals per part, got {len(verbs)}")
    if len(boxes) != len(verbs):
        raise TpsFormatError(f"{where}: fields box/verb: {len(boxes)} boxes for {len(verbs)} verbs")
    for j, (b, v) in enumerate(zip(boxes, verbs)):
        _check_box(b, where, f"box[{j}]")
        if not isinstance(v, str):
            raise TpsFormatError(f"{where}: field verb[{j}]: expected a string, got {type(v).__name__} "
                                 f"{short_repr(v)}")


def check_tps_files(gt_vid, gt_part, pred_vid, pred_part, sources=FILE_NAMES) -> None:
    """Check the four files' contents against the layout of the module docstring.

    Raises `TpsFormatError` naming the file (`sources`, in the same order), video, frame,
    human, part and field of the first problem, or `LimitError` for a size beyond the limits.
    """
    for data, source in zip((gt_vid, gt_part, pred_vid, pred_part), sources):
        _check_mapping(data, str(source), "top level", "{video: ...}")
    if not gt_vid:
        raise TpsFormatError(f"{sources[0]}: no videos: nothing to score")
    _check_labels(gt_vid, sources[0], "action")
    _check_labels(pred_vid, sources[2], "predicted action")
    _check_frames(gt_part, sources[1], predicted=False)
    _check_frames(pred_part, sources[3], predicted=True)


def write_tps_dir(folder: str | os.PathLike, kind: str, vid_result: dict, part_result: dict) -> None:
    """Write the two JSON files of a ground-truth or prediction folder, atomically."""
    if kind not in ("gt", "pred"):
        raise ValueError(f"kind: expected 'gt' or 'pred', got {kind!r}")
    folder = Path(folder)
    for name, data in ((f"{kind}_vid_result.json", vid_result), (f"{kind}_part_result.json", part_result)):
        with atomic_write(folder / name) as f:
            json.dump(data, f)


def tps_humans_from_parts(tracks, parts, frame: int, verbs: dict | None = None) -> list[dict]:
    """Predicted humans of one frame in the pred_part_result layout, from our typed results.

    Args:
        tracks: `humact.types.PoseTracks` (boxes (M, T, 4), valid (M, T)).
        parts: `humact.types.PartBoxes` of the same people (boxes (M, T, P, 4), valid (M, T, P)).
        frame: frame index t.
        verbs: optional {(person index, part name): [state, ...]} predicted states; a part
            without states is written with an empty proposal list (it then scores 0).
    Returns:
        [{"box": [x1, y1, x2, y2], "parts": {name: {"box": [[...]], "verb": [...]}}}] for the
        people valid at `frame`, best box score first, at most `MAX_HUMANS`.
    """
    people = np.flatnonzero(tracks.valid[:, frame])
    people = people[np.argsort(-tracks.box_scores[people, frame], kind="stable")][:MAX_HUMANS]
    out = []
    for m in people.tolist():
        human = {"box": [float(v) for v in tracks.boxes[m, frame]], "parts": {}}
        for p, name in enumerate(parts.names):
            if not parts.valid[m, frame, p]:
                continue
            states = list((verbs or {}).get((m, name), []))[:MAX_PROPOSALS]
            box = [float(v) for v in parts.boxes[m, frame, p]]
            human["parts"][name] = {"box": [box] * len(states), "verb": states}
        out.append(human)
    return out


# --------------------------------------------------------------------------------------
# The score
# --------------------------------------------------------------------------------------

def _human_iou_f32(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(G, P) float32 IoU with +1 pixels, -1 where boxes do not overlap (official bbox_iou on float32)."""
    g = gt[:, None, :]
    p = pred[None, :, :]
    one = np.float32(1)
    iw = (np.minimum(g[..., 2], p[..., 2]) - np.maximum(g[..., 0], p[..., 0])) + one
    ih = (np.minimum(g[..., 3], p[..., 3]) - np.maximum(g[..., 1], p[..., 1])) + one
    inter = iw * ih
    area_g = (g[..., 2] - g[..., 0] + one) * (g[..., 3] - g[..., 1] + one)
    area_p = (p[..., 2] - p[..., 0] + one) * (p[..., 3] - p[..., 1] + one)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_g + area_p - inter)
    return np.where((iw <= 0) | (ih <= 0), np.float32(-1.0), iou).astype(np.float32)


def _part_iou(a, b) -> float:
    """IoU with +1 pixels in Python floats, -1.0 for boxes that do not overlap (official bbox_iou)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return -1.0
    inter = iw * ih
    return inter / float((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def _match_humans(gt_boxes: np.ndarray, pred_boxes: np.ndarray, thr: float, where: str) -> dict[int, tuple[int, float]]:
    """{gt index: (pred index, IoU)} of Hungarian pairs with IoU > thr (official match_bboxes)."""
    n_true, n_pred = len(gt_boxes), len(pred_boxes)
    iou = _human_iou_f32(gt_boxes, pred_boxes) if n_pred else np.zeros((n_true, 0), np.float32)
    if not np.isfinite(iou).all():
        raise TpsFormatError(f"{where}: field box: the human boxes give an IoU that is not a number")
    # the official code pads with float64 zeros (which turns the matrix float64) only when not square
    if n_pred > n_true:
        iou = np.concatenate((iou, np.full((n_pred - n_true, n_pred), 0.0)), axis=0)
    if n_true > n_pred:
        iou = np.concatenate((iou, np.full((n_true, n_true - n_pred), 0.0)), axis=1)
    rows, cols = linear_sum_assignment(1 - iou)
    real = cols < n_pred
    rows, cols = rows[real], cols[real]
    vals = iou[rows, cols]
    keep = vals > thr   # array comparison: in the matrix's dtype, as the official code
    return {int(r): (int(c), float(v)) for r, c, v in zip(rows[keep], cols[keep], vals[keep])}


def _part_credit(gt_part: dict, pred_part: dict, part_thr: float) -> float:
    verbs = pred_part["verb"]
    boxes = pred_part["box"]
    if isinstance(verbs, str):              # a single proposal written without lists
        verbs, boxes = [verbs], [boxes]
    if not verbs:
        return 0.0
    gbox = gt_part["box"]
    for b, v in zip(boxes, verbs):
        if _part_iou(gbox, b) >= part_thr and v == gt_part["verb"]:
            return 1.0 / len(verbs)
    return 0.0


def _video_psc(gt_frames: dict, pred_frames: dict, human_thr: float, part_thr: float, where: str) -> float:
    """`video_psc` on frames already checked (`check_tps_files`)."""
    total = len(gt_frames)
    acc_sum = 0.0
    for frame, gt in gt_frames.items():
        gt_humans = gt["humans"]
        if len(gt_humans) == 0:
            total -= 1
            continue
        if frame not in pred_frames:
            continue   # scores 0, and counts (checked before the parts, as the official loop)
        pred_humans = pred_frames[frame]["humans"]
        gt_boxes = np.float32([h["box"] for h in gt_humans])
        pred_boxes = np.float32([h["box"] for h in pred_humans]).reshape(-1, 4)
        matched = _match_humans(gt_boxes, pred_boxes, human_thr, f"{where} frame {short_repr(frame)}")
        n_parts = 0
        frame_sum = 0.0
        for i, gh in enumerate(gt_humans):
            n_parts += len(gh["parts"])
            human_sum = 0
            if i in matched:
                j, iou = matched[i]
                pparts = pred_humans[j]["parts"]
                for name, gp in gh["parts"].items():
                    if name in pparts and iou >= human_thr:
                        human_sum += _part_credit(gp, pparts[name], part_thr)
            frame_sum += human_sum
        if n_parts == 0:
            total -= 1
        else:
            acc_sum += 1.0 * frame_sum / n_parts
    return 1.0 if total == 0 else 1.0 * acc_sum / total


def video_psc(gt_frames: dict, pred_frames: dict, human_thr: float = 0.5, part_thr: float = 0.3,
              video: str = "") -> float:
    """Part-state correctness of one video: mean frame score over its valid frames (1.0 if none).

    Args:
        gt_frames, pred_frames: `{frame: {"humans": [...]}}` of one video (layout in the module
            docstring; checked first, a `TpsFormatError` naming the video on a problem).
    """
    _check_frames({video: gt_frames}, FILE_NAMES[1], predicted=False)
    _check_frames({video: pred_frames}, FILE_NAMES[3], predicted=True)
    return _video_psc(gt_frames, pred_frames, human_thr, part_thr, f"video {video!r}")


def task_score(psc: np.ndarray, correct: np.ndarray, steps: int = STEPS) -> tuple[float, np.ndarray]:
    """(Score, acc at t = 0, 0.1, ..., 0.9): Score = sum_{t=1}^{steps-1} acc(t/steps) / steps."""
    psc = np.asarray(psc, np.float64)
    correct = np.asarray(correct, bool)
    total = len(psc)
    if total == 0:
        raise ValueError("psc: no videos to score")
    ok = np.sort(psc[correct])

    def acc(ts: np.ndarray) -> np.ndarray:
        cor = len(ok) - np.searchsorted(ok, ts, side="left")   # videos with psc >= t and correct
        return cor / total

    area = 0.0
    for a in acc(np.array([t / steps for t in range(1, steps)])).tolist():
        area += 1.0 / steps * a        # same order and rounding as the official loop
    return area, acc(np.array([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]))


@dataclass
class TpsResult:
    """Kinetics-TPS results.

    Attributes:
        score: the task Score at human IoU 0.5 / part IoU 0.3.
        acc_at: acc(t) for t = 0, 0.1, ..., 0.9 at those thresholds.
        videos: {video: {"psc": float, "correct": bool}}.
        grid: {(human_thr, part_thr): Score} over GRID_THRESHOLDS (empty unless asked for).
    """

    score: float
    acc_at: list
    videos: dict
    grid: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"score": self.score,
                "acc_at": {f"{t / 10:.1f}": a for t, a in enumerate(self.acc_at)},
                "grid": [{"human_iou": h, "part_iou": p, "score": s} for (h, p), s in self.grid.items()],
                "videos": self.videos}


def _psc_all(gt_vid, gt_part, pred_vid, pred_part, human_thr, part_thr, missing, sources):
    psc, correct, names = [], [], []
    for video, action in gt_vid.items():
        names.append(video)
        if video not in pred_vid or video not in pred_part:
            if missing == "zero":
                psc.append(0.0)
                correct.append(False)
                continue
            which = sources[2] if video not in pred_vid else sources[3]
            raise TpsFormatError(f"{which}: video {short_repr(video)} of the ground truth has no prediction "
                                 f"(use missing='zero' / --missing zero to score it 0)")
        if video not in gt_part:
            raise TpsFormatError(f"{sources[1]}: video {short_repr(video)} of {sources[0]} is missing")
        correct.append(pred_vid[video] == action)
        psc.append(_video_psc(gt_part[video], pred_part[video], human_thr, part_thr,
                              f"{sources[3]}: video {short_repr(video)}"))
    return names, np.array(psc), np.array(correct, bool)


def evaluate_tps(gt_vid: dict, gt_part: dict, pred_vid: dict, pred_part: dict, *, human_thr: float = 0.5,
                 part_thr: float = 0.3, grid: bool = False, missing: str = "error",
                 sources: tuple = FILE_NAMES) -> TpsResult:
    """The official Kinetics-TPS score (module docstring) of a prediction against the ground truth.

    Args:
        gt_vid, gt_part, pred_vid, pred_part: the four files' contents, checked first
            (`check_tps_files`).
        human_thr, part_thr: IoU thresholds for humans (pair if >) and parts (credit if >=).
        grid: also compute the 5 x 5 grid over GRID_THRESHOLDS.
        missing: "error" (default) or "zero" for ground-truth videos without a prediction.
        sources: the names of the four files in messages (default `FILE_NAMES`).
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing: expected 'error' or 'zero', got {missing!r}")
    check_tps_files(gt_vid, gt_part, pred_vid, pred_part, sources)
    names, psc, correct = _psc_all(gt_vid, gt_part, pred_vid, pred_part, human_thr, part_thr, missing, sources)
    score, acc_at = task_score(psc, correct)
    videos = {n: {"psc": float(p), "correct": bool(c)} for n, p, c in zip(names, psc, correct)}
    out = TpsResult(float(score), [float(a) for a in acc_at], videos)
    if grid:
        for h in GRID_THRESHOLDS:
            for p in GRID_THRESHOLDS:
                _, ps, co = _psc_all(gt_vid, gt_part, pred_vid, pred_part, h, p, missing, sources)
                out.grid[(h, p)] = float(task_score(ps, co)[0])
    return out


def evaluate_tps_dirs(gt_dir, pred_dir, **kw) -> TpsResult:
    """Read a ground-truth and a prediction folder and evaluate (see `evaluate_tps`); messages
    name the files by their paths."""
    gt_vid, gt_part = read_tps_dir(gt_dir, "gt")
    pred_vid, pred_part = read_tps_dir(pred_dir, "pred")
    sources = tuple(str(Path(d) / n) for d, n in zip((gt_dir, gt_dir, pred_dir, pred_dir), FILE_NAMES))
    return evaluate_tps(gt_vid, gt_part, pred_vid, pred_part, sources=sources, **kw)
