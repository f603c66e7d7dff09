"""humact's result files: the versioned JSON result and PYSKL's skeleton pickle.

JSON result, schema `humact.result` version 1 (one file per video)::

    {
      "schema": "humact.result", "version": 1, "humact_version": "0.1.0",
      "backend": "blazepose-full",
      "video": {"path": str, "name": str, "width": int, "height": int, "fps": float,
                "num_frames": int, "frame_times": [float, ...],         # seconds
                "frames_decoded": int | null, "frames_announced": int | null},  # optional
      "partial": bool, "warnings": [str, ...],   # optional: not every frame was processed, and why
      "keypoint_names": [17 COCO names], "part_names": [10 Kinetics-TPS part names],
      "tracks": [
        {"track_id": int,
         "frames": [int, ...],                 # frame indices where the person is seen (n)
         "boxes": [[x1, y1, x2, y2], ...],     # n pose-refined person boxes, pixels
         "box_scores": [float, ...],           # n
         "keypoints": [[[x, y] * 17], ...],    # n x 17 x 2, pixels, COCO-17 order
         "keypoint_scores": [[s * 17], ...],   # n x 17 in [0, 1]
         "part_boxes": [[[x1, y1, x2, y2] * 10], ...],   # n x 10 (present when parts were computed)
         "part_valid": [[bool * 10], ...],               # n x 10
         "world_landmarks": [[[x, y, z] * 33], ...],     # n x 33 x 3 metres (optional)
         "filled": [bool, ...],                # n: interpolated, not seen (optional; `tracking.fill_gaps`)
         "actions": [{"label": str, "score": float}, ...],  # top-5, best first (optional)
         "no_actions": str,                    # why a track has no actions ("actions" is then [])
         "keyframe_actions": [                 # optional (`humact detect`): this person at each keyframe
           {"keyframe": int,                   # index into detections.keyframes
            "box": [x1, y1, x2, y2],           # pixels
            "actions": [{"label": str, "score": float}, ...]}, ...]   # >= detections.threshold, best first
        }, ...
      ],
      "actions": {"model": str, "labels": [str, ...]},  # optional, when actions were recognised
      "detections": {                          # optional (`humact detect`)
        "model": str, "labels": [str, ...], "class_ids": [int, ...], "threshold": float,
        "keyframes": [{"time": float, "frame": int, "timestamp": int, "no_actions": str}, ...],
        "untracked": [{"person_id": int, "keyframe": int, "box": [...], "actions": [...]}, ...]
      }                                        # boxes from a file, not one of "tracks" (person_id -1: none)
    }

Readers of version 1 without detection support ignore "keyframe_actions" and "detections".

Pixels are rounded to 0.01, scores to 1e-4, metres to 1e-4: far below what the
models resolve, and it keeps files small.

PYSKL pickle: the per-video annotation dict PYSKL's pipelines and
`humact.skeleton.datasets` read: `frame_dir`, `filename` (the video's absolute path, PYSKL's
key for the video RGB+pose models decode), `label`, `img_shape`,
`original_shape`, `total_frames`, `keypoint` (M, T, 17, 2) float32 and
`keypoint_score` (M, T, 17) float32. NumPy >= 1.26 reads it (NumPy 2 names its
array constructor `numpy._core`).
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import numpy as np

from humact import __version__
from humact.errors import InputError
from humact.io.atomic import atomic_write
from humact.io.limits import (MAX_ARRAY_BYTES, MAX_COORDINATE, MAX_FRAMES, MAX_PERSONS, as_array, check_limit,
                              read_json, short_repr)
from humact.io.safe_pickle import safe_load
from humact.keypoints import COCO17_NAMES, PART_NAMES
from humact.types import ActionDetections, ActionScores, PartBoxes, PoseTracks, VideoMeta, VideoResult

SCHEMA = "humact.result"
SCHEMA_VERSION = 1


class ResultFormatError(InputError):
    """A result file that does not follow the schema; the message names file and field."""


def rounded(a: np.ndarray, decimals: int) -> list:
    """`a` as nested lists of floats rounded to `decimals` (how result JSONs store numbers)."""
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def result_to_dict(result: VideoResult) -> dict[str, Any]:
    """The JSON-ready dict of `result` (schema above)."""
    meta, tracks = result.meta, result.tracks
    top = result.actions.topk(5) if result.actions is not None else None
    det = result.detections
    det_rows = None
    if det is not None:
        det_rows, known = {}, set(tracks.track_ids.tolist())
        for r, tid in enumerate(det.track_ids.tolist()):
            det_rows.setdefault(tid if tid in known else None, []).append(r)
    action_row = (
        {int(t): i for i, t in enumerate(result.actions.track_ids)} if result.actions is not None else {}
    )
    out_tracks = []
    for m, tid in enumerate(tracks.track_ids):
        frames = np.flatnonzero(tracks.valid[m])
        entry: dict[str, Any] = {
            "track_id": int(tid),
            "frames": frames.tolist(),
            "boxes": rounded(tracks.boxes[m, frames], 2),
            "box_scores": rounded(tracks.box_scores[m, frames], 4),
            "keypoints": rounded(tracks.keypoints[m, frames], 2),
            "keypoint_scores": rounded(tracks.keypoint_scores[m, frames], 4),
        }
        if result.parts is not None:
            entry["part_boxes"] = rounded(result.parts.boxes[m, frames], 2)
            entry["part_valid"] = result.parts.valid[m, frames].tolist()
        if tracks.world_landmarks is not None:
            entry["world_landmarks"] = rounded(tracks.world_landmarks[m, frames], 4)
        if tracks.filled is not None and tracks.filled[m, frames].any():
            entry["filled"] = tracks.filled[m, frames].tolist()
        if top is not None and int(tid) in action_row:
            row = action_row[int(tid)]
            entry["actions"] = [{"label": lab, "score": round(s, 4)} for lab, s in top[row]]
            if result.actions.reasons[row]:
                entry["no_actions"] = result.actions.reasons[row]
        if det_rows is not None:
            entry["keyframe_actions"] = [_detection_row(det, r) for r in det_rows.pop(int(tid), [])]
        out_tracks.append(entry)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "humact_version": __version__,
        "backend": result.backend,
        "video": {
            "path": meta.path,
            "name": meta.name,
            "width": meta.width,
            "height": meta.height,
            "fps": meta.fps,
            "num_frames": meta.num_frames,
            "frame_times": rounded(meta.frame_times, 6),
            "frames_decoded": result.frames_decoded,
            "frames_announced": result.frames_announced,
        },
        "partial": bool(result.partial),
        "warnings": [str(w) for w in result.warnings],
        "keypoint_names": list(COCO17_NAMES),
        "part_names": list(result.parts.names if result.parts is not None else PART_NAMES),
        "tracks": out_tracks,
    }
    if result.actions is not None:
        doc["actions"] = {"model": result.actions.model, "labels": list(result.actions.labels)}
    if det is not None:
        doc["detections"] = {
            "model": det.model, "labels": list(det.labels), "class_ids": det.class_ids.tolist(),
            "threshold": float(det.threshold),
            "keyframes": [{"time": round(float(t), 6), "frame": int(f), "timestamp": int(ts), "no_actions": why}
                          for t, f, ts, why in zip(det.times, det.frames, det.timestamps, det.reasons)],
            "untracked": [dict(person_id=int(det.track_ids[r]), **_detection_row(det, r))
                          for r in det_rows.get(None, [])],
        }
    return doc


def _detection_row(det: ActionDetections, r: int) -> dict[str, Any]:
    return {"keyframe": int(det.keyframe[r]), "box": rounded(det.boxes[r], 2),
            "actions": [{"label": lab, "score": round(s, 4)} for lab, s in det.above(r)]}


def write_result_json(result: VideoResult, path: str | os.PathLike) -> None:
    """Write `result` as a schema-1 JSON file, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(result_to_dict(result), f, separators=(",", ":"))


def _field(doc: dict, key: str, where: str, source: str):
    if key not in doc:
        raise ResultFormatError(f"{source}: missing field '{where}{key}'")
    return doc[key]


def _typed(value, types, what: str, source: str, field: str):
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ResultFormatError(f"{source}: field '{field}': expected {what}, got {type(value).__name__} "
                                f"{short_repr(value)}")
    return value


def _count(value, limit, source: str, field: str) -> int:
    """A non-negative JSON integer, at most `limit`."""
    _typed(value, (int,), "a non-negative integer", source, field)
    if value < 0:
        raise ResultFormatError(f"{source}: field '{field}': expected a non-negative integer, got {value}")
    return check_limit(value, limit, source=source, field=field)


def _number(value, source: str, field: str, largest: float = 1e300) -> float:
    """A finite JSON number of magnitude at most `largest` (float32's 3.4e38 for a stored score)."""
    _typed(value, (int, float), "a number", source, field)
    if not abs(value) <= largest:       # NaN fails too
        raise ResultFormatError(f"{source}: field '{field}': expected a finite number, got {short_repr(value)}")
    return float(value)


def _person_frame_bytes(n_parts: int, has_parts: bool, has_world: bool) -> int:
    """Bytes of the dense (persons, frames) arrays per person and frame."""
    b = 17 * 2 * 4 + 17 * 4 + 4 * 4 + 4 + 1        # keypoints, scores, box, box score, valid
    if has_parts:
        b += n_parts * (4 * 4 + 1)
    if has_world:
        b += 33 * 3 * 4
    return b


def result_from_dict(doc: dict[str, Any], source: str = "<dict>") -> VideoResult:
    """Rebuild a `VideoResult` from a schema-1 dict (the inverse of `result_to_dict`).

    Every field is checked (type, shape, range) before it is used, and the sizes that set
    the dense `(persons, frames, ...)` arrays (`video.num_frames`, the number of tracks, of
    part names) are bounded by `MAX_FRAMES`, `MAX_PERSONS` and `MAX_ARRAY_BYTES` before they
    are allocated: every problem is a `ResultFormatError` (or `LimitError`) naming `source`
    and the field. Per-person top-5 actions are restored as an `ActionScores` whose scores
    are zero outside each person's top 5.
    """
    if not isinstance(doc, dict):
        raise ResultFormatError(f"{source}: expected a JSON object (schema {SCHEMA!r}), got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise ResultFormatError(f"{source}: field 'schema' is {short_repr(doc.get('schema'))}, expected {SCHEMA!r}")
    if doc.get("version") != SCHEMA_VERSION or isinstance(doc.get("version"), bool):
        raise ResultFormatError(
            f"{source}: field 'version' is {short_repr(doc.get('version'))}; this humact reads version {SCHEMA_VERSION}"
        )
    v = _typed(_field(doc, "video", "", source), (dict,), "an object", source, "video")
    n = _count(_field(v, "num_frames", "video.", source), MAX_FRAMES, source, "video.num_frames")
    times = as_array(_field(v, "frame_times", "video.", source), np.float64, source=source, field="video.frame_times",
                     shape=(n,), limit=None, finite=True, error=ResultFormatError)
    meta = VideoMeta(
        path=_typed(_field(v, "path", "video.", source), (str,), "a string", source, "video.path"),
        width=_count(_field(v, "width", "video.", source), MAX_COORDINATE, source, "video.width"),
        height=_count(_field(v, "height", "video.", source), MAX_COORDINATE, source, "video.height"),
        fps=_number(_field(v, "fps", "video.", source), source, "video.fps"),
        num_frames=n, frame_times=times,
    )
    entries = _typed(_field(doc, "tracks", "", source), (list,), "a list", source, "tracks")
    m = check_limit(len(entries), MAX_PERSONS, source=source, field="tracks")
    for i, e in enumerate(entries):
        _typed(e, (dict,), "an object", source, f"tracks[{i}]")
    names = _typed(doc.get("part_names", list(PART_NAMES)), (list,), "a list of strings", source, "part_names")
    for j, name in enumerate(names):
        _typed(name, (str,), "a string", source, f"part_names[{j}]")
    names = tuple(names)
    has_parts = any("part_boxes" in e for e in entries)
    has_world = any("world_landmarks" in e for e in entries)
    check_limit(m * n * _person_frame_bytes(len(names), has_parts, has_world), MAX_ARRAY_BYTES, source=source,
                field=f"tracks x video.num_frames ({m:,} x {n:,} dense person-frames)")
    labels = col = None
    if "actions" in doc:
        acts = _typed(doc["actions"], (dict,), "an object", source, "actions")
        labels = _typed(_field(acts, "labels", "actions.", source), (list,), "a list of strings", source,
                        "actions.labels")
        for j, lab in enumerate(labels):
            _typed(lab, (str,), "a string", source, f"actions.labels[{j}]")
        labels = tuple(labels)
        check_limit(m * len(labels) * 4, MAX_ARRAY_BYTES, source=source, field="tracks x actions.labels")
        col = {lab: j for j, lab in enumerate(labels)}
        model = _typed(acts.get("model", ""), (str,), "a string", source, "actions.model")
    track_ids = [_typed(_field(e, "track_id", f"tracks[{i}].", source), (int,), "an integer", source,
                        f"tracks[{i}].track_id") for i, e in enumerate(entries)]
    track_ids = as_array(track_ids, np.int64, source=source, field="tracks[].track_id", shape=(m,), limit=None,
                         error=ResultFormatError)
    tracks = PoseTracks(
        track_ids=track_ids,
        keypoints=np.zeros((m, n, 17, 2), np.float32), keypoint_scores=np.zeros((m, n, 17), np.float32),
        boxes=np.zeros((m, n, 4), np.float32), box_scores=np.zeros((m, n), np.float32),
        valid=np.zeros((m, n), bool),
    )
    parts = PartBoxes(np.zeros((m, n, len(names), 4), np.float32), np.zeros((m, n, len(names)), bool), names)
    world = np.zeros((m, n, 33, 3), np.float32) if has_world else None
    filled = np.zeros((m, n), bool) if any("filled" in e for e in entries) else None
    scores = np.zeros((m, len(labels)), np.float32) if labels is not None else None
    reasons: list[str] = []
    p = len(names)
    for i, e in enumerate(entries):
        where = f"tracks[{i}]."

        def arr(key, dtype, shape, finite=True):
            return as_array(_field(e, key, where, source), dtype, source=source, field=where + key, shape=shape,
                            limit=None, finite=finite, error=ResultFormatError)

        fr = arr("frames", np.int64, (None,))
        if fr.size and (fr.min() < 0 or fr.max() >= n):
            raise ResultFormatError(f"{source}: field '{where}frames' has indices outside [0, {n})")
        k = len(fr)
        tracks.valid[i, fr] = True
        tracks.boxes[i, fr] = arr("boxes", np.float32, (k, 4))
        tracks.box_scores[i, fr] = arr("box_scores", np.float32, (k,))
        tracks.keypoints[i, fr] = arr("keypoints", np.float32, (k, 17, 2))
        tracks.keypoint_scores[i, fr] = arr("keypoint_scores", np.float32, (k, 17))
        if "part_boxes" in e:
            parts.boxes[i, fr] = arr("part_boxes", np.float32, (k, p, 4))
            parts.valid[i, fr] = arr("part_valid", bool, (k, p))
        if world is not None and "world_landmarks" in e:
            world[i, fr] = arr("world_landmarks", np.float32, (k, 33, 3))
        if filled is not None and "filled" in e:
            filled[i, fr] = arr("filled", bool, (k,))
        if "actions" in e:
            top = _typed(e["actions"], (list,), "a list", source, where + "actions")
            if col is None:
                raise ResultFormatError(f"{source}: field '{where}actions' is given but the top-level "
                                        "'actions' (labels, model) is missing")
            _read_actions(top, col, scores[i], source, where + "actions", "actions.labels")
        if "no_actions" in e:
            why = _typed(e["no_actions"], (str,), "a string", source, where + "no_actions")
            reasons.append(why or "no actions recorded")
        else:
            reasons.append("" if e.get("actions") else "no actions recorded")
    tracks.world_landmarks = world
    tracks.filled = filled
    detections = _detections_from_dict(doc, entries, track_ids, source) if "detections" in doc else None
    actions = None
    if labels is not None:
        actions = ActionScores(labels, scores, tracks.track_ids.copy(), model, tuple(reasons))
    backend = _typed(doc.get("backend", ""), (str,), "a string", source, "backend")
    # Results written before partial decodes were reported lack these fields: complete, no warnings.
    warns = _typed(doc.get("warnings", []), (list,), "a list", source, "warnings")
    return VideoResult(meta=meta, tracks=tracks, parts=parts if has_parts else None, actions=actions,
                       backend=backend, partial=bool(doc.get("partial", False)),
                       frames_decoded=_optional_count(v, "frames_decoded", source),
                       frames_announced=_optional_count(v, "frames_announced", source),
                       warnings=[str(w) for w in warns], detections=detections)


def _detections_from_dict(doc: dict, entries: list, track_ids: np.ndarray, source: str) -> ActionDetections:
    """The `detections` section and every track's `keyframe_actions` (scores below the threshold are 0)."""
    d = _typed(doc["detections"], (dict,), "an object", source, "detections")
    labels = _typed(_field(d, "labels", "detections.", source), (list,), "a list of strings", source,
                    "detections.labels")
    for j, lab in enumerate(labels):
        _typed(lab, (str,), "a string", source, f"detections.labels[{j}]")
    col = {lab: j for j, lab in enumerate(labels)}
    ids = as_array(_field(d, "class_ids", "detections.", source), np.int64, source=source,
                   field="detections.class_ids", shape=(len(labels),), limit=None, error=ResultFormatError)
    kfs = _typed(_field(d, "keyframes", "detections.", source), (list,), "a list", source, "detections.keyframes")
    check_limit(len(kfs), MAX_FRAMES, source=source, field="detections.keyframes")
    times, frames, stamps, reasons = [], [], [], []
    for i, k in enumerate(kfs):
        where = f"detections.keyframes[{i}]"
        _typed(k, (dict,), "an object", source, where)
        times.append(_number(_field(k, "time", where + ".", source), source, where + ".time"))
        frames.append(_count(_field(k, "frame", where + ".", source), MAX_FRAMES, source, where + ".frame"))
        stamps.append(_typed(_field(k, "timestamp", where + ".", source), (int,), "an integer", source,
                             where + ".timestamp"))
        reasons.append(_typed(k.get("no_actions", ""), (str,), "a string", source, where + ".no_actions"))
    rows = []    # (track id, where, row dict)
    for i, e in enumerate(entries):
        for j, r in enumerate(_typed(e.get("keyframe_actions", []), (list,), "a list", source,
                                     f"tracks[{i}].keyframe_actions")):
            rows.append((int(track_ids[i]), f"tracks[{i}].keyframe_actions[{j}]", r))
    for j, r in enumerate(_typed(d.get("untracked", []), (list,), "a list", source, "detections.untracked")):
        where = f"detections.untracked[{j}]"
        _typed(r, (dict,), "an object", source, where)
        pid = _typed(_field(r, "person_id", where + ".", source), (int,), "an integer", source, where + ".person_id")
        rows.append((pid, where, r))
    check_limit(len(rows) * max(len(labels), 1) * 4, MAX_ARRAY_BYTES, source=source,
                field="detection rows x detections.labels")
    scores = np.zeros((len(rows), len(labels)), np.float32)
    boxes = np.zeros((len(rows), 4), np.float32)
    kf = np.zeros(len(rows), np.int64)
    for n, (_, where, r) in enumerate(rows):
        _typed(r, (dict,), "an object", source, where)
        kf[n] = _count(_field(r, "keyframe", where + ".", source), max(len(kfs) - 1, 0), source, where + ".keyframe")
        boxes[n] = as_array(_field(r, "box", where + ".", source), np.float32, source=source, field=where + ".box",
                            shape=(4,), limit=None, finite=True, error=ResultFormatError)
        _read_actions(_typed(_field(r, "actions", where + ".", source), (list,), "a list", source, where + ".actions"),
                      col, scores[n], source, where + ".actions", "detections.labels")
    model = _typed(d.get("model", ""), (str,), "a string", source, "detections.model")
    thr = _number(d.get("threshold", 0.0), source, "detections.threshold")
    return ActionDetections(tuple(labels), ids, np.array(times, np.float64), np.array(frames, np.int64),
                            np.array(stamps, np.int64), kf, np.array([t for t, _, _ in rows], np.int64), boxes,
                            scores, model=model, threshold=thr, reasons=tuple(reasons))


def _optional_count(v: dict, key: str, source: str) -> int | None:
    """An optional non-negative frame count of the video section."""
    value = v.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ResultFormatError(f"{source}: field 'video.{key}': expected a non-negative integer or null, "
                                f"got {short_repr(value)}")
    return value


def _read_actions(items: list, col: dict[str, int], row: np.ndarray, source, where: str, labels_field: str) -> None:
    """Fill `row` (one score per label, `col`: label -> column) from a list of {"label", "score"} objects
    at field `where`; a label that is not one of `labels_field` is a ResultFormatError."""
    for j, a in enumerate(items):
        aw = f"{where}[{j}]"
        _typed(a, (dict,), "an object", source, aw)
        lab = _typed(_field(a, "label", aw + ".", source), (str,), "a string", source, aw + ".label")
        if lab not in col:
            raise ResultFormatError(f"{source}: field '{aw}.label': {short_repr(lab)} is not one of {labels_field}")
        row[col[lab]] = _number(_field(a, "score", aw + ".", source), source, aw + ".score", 3e38)


def read_result_json(path: str | os.PathLike) -> VideoResult:
    """Read a schema-1 JSON result file (checked as `result_from_dict` says; at most `MAX_JSON_BYTES`)."""
    path = os.fspath(path)
    return result_from_dict(read_json(path, error=ResultFormatError), source=path)


def to_pyskl(result: VideoResult, label: int = -1) -> dict[str, Any]:
    """PYSKL's per-video annotation dict for `result` (label -1 = unlabelled).

    A person-frame without a measured keypoint (absent, filled by `fill_gaps`, or a detector's
    box-only row) is all zeros, PYSKL's "not there"."""
    meta, tracks = result.meta, result.tracks
    keypoints = tracks.keypoints.astype(np.float32)   # a copy
    keypoints[tracks.keypoint_scores.max(-1) <= 0] = 0.0
    return {
        "frame_dir": meta.name,
        "filename": os.path.abspath(meta.path) if os.path.isfile(meta.path) else meta.path,
        "label": int(label),
        "img_shape": (meta.height, meta.width),
        "original_shape": (meta.height, meta.width),
        "total_frames": meta.num_frames,
        "keypoint": keypoints,
        "keypoint_score": tracks.keypoint_scores.astype(np.float32),
    }


def write_pyskl_pickle(result: VideoResult, path: str | os.PathLike, label: int = -1) -> None:
    """Write the PYSKL annotation of `result`, atomically."""
    with atomic_write(path, "wb") as f:
        pickle.dump(to_pyskl(result, label), f, protocol=4)


def read_pyskl_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a per-video PYSKL annotation safely, checking its fields.

    Returns the dict with `keypoint` (M, T, V, C) (and `keypoint_score` (M, T, V) if present)
    as float32 arrays. Every problem is a `ResultFormatError` (or an `InputError` of the
    restricted unpickler) naming the file and the field.
    """
    path = os.fspath(path)
    anno = safe_load(path)
    if not isinstance(anno, dict):
        raise ResultFormatError(f"{path}: expected a dict, got {type(anno).__name__}")
    for key in ("frame_dir", "total_frames", "keypoint", "img_shape"):
        if key not in anno:
            raise ResultFormatError(f"{path}: missing field '{key}'")
    t = anno["total_frames"]
    if not isinstance(t, (int, np.integer)) or isinstance(t, (bool, np.bool_)) or t < 0:
        raise ResultFormatError(f"{path}: field 'total_frames': expected a non-negative integer, got {short_repr(t)}")
    check_limit(int(t), MAX_FRAMES, source=path, field="total_frames")
    kp = as_array(anno["keypoint"], np.float32, source=path, field="keypoint", error=ResultFormatError)
    if kp.ndim != 4 or kp.shape[1] != t:
        raise ResultFormatError(
            f"{path}: field 'keypoint' has shape {kp.shape}, expected (M, total_frames={int(t)}, V, C)"
        )
    anno["keypoint"] = kp
    if "keypoint_score" in anno:
        anno["keypoint_score"] = as_array(anno["keypoint_score"], np.float32, source=path, field="keypoint_score",
                                          shape=kp.shape[:3], error=ResultFormatError)
    return anno
