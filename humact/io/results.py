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
         "actions": [{"label": str, "score": float}, ...],  # top-5, best first (optional)
         "no_actions": str                     # why a track has no actions ("actions" is then [])
        }, ...
      ],
      "actions": {"model": str, "labels": [str, ...]}   # optional, when actions were recognised
    }

Pixels are rounded to 0.01, scores to 1e-4, metres to 1e-4: far below what the
models resolve, and it keeps files small.

PYSKL pickle: the per-video annotation dict PYSKL's pipelines and
`humact.skeleton.datasets` read: `frame_dir`, `label`, `img_shape`,
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
from humact.io.atomic import atomic_write
from humact.io.safe_pickle import safe_load
from humact.keypoints import COCO17_NAMES, PART_NAMES
from humact.errors import InputError
from humact.types import ActionScores, PartBoxes, PoseTracks, VideoMeta, VideoResult

SCHEMA = "humact.result"
SCHEMA_VERSION = 1


class ResultFormatError(InputError):
    """A result file that does not follow the schema; the message names file and field."""


def _r(a: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def result_to_dict(result: VideoResult) -> dict[str, Any]:
    """The JSON-ready dict of `result` (schema above)."""
    meta, tracks = result.meta, result.tracks
    top = result.actions.topk(5) if result.actions is not None else None
    action_row = (
        {int(t): i for i, t in enumerate(result.actions.track_ids)} if result.actions is not None else {}
    )
    out_tracks = []
    for m, tid in enumerate(tracks.track_ids):
        frames = np.flatnonzero(tracks.valid[m])
        entry: dict[str, Any] = {
            "track_id": int(tid),
            "frames": frames.tolist(),
            "boxes": _r(tracks.boxes[m, frames], 2),
            "box_scores": _r(tracks.box_scores[m, frames], 4),
            "keypoints": _r(tracks.keypoints[m, frames], 2),
            "keypoint_scores": _r(tracks.keypoint_scores[m, frames], 4),
        }
        if result.parts is not None:
            entry["part_boxes"] = _r(result.parts.boxes[m, frames], 2)
            entry["part_valid"] = result.parts.valid[m, frames].tolist()
        if tracks.world_landmarks is not None:
            entry["world_landmarks"] = _r(tracks.world_landmarks[m, frames], 4)
        if top is not None and int(tid) in action_row:
            row = action_row[int(tid)]
            entry["actions"] = [{"label": lab, "score": round(s, 4)} for lab, s in top[row]]
            if result.actions.reasons[row]:
                entry["no_actions"] = result.actions.reasons[row]
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
            "frame_times": _r(meta.frame_times, 6),
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
    return doc


def write_result_json(result: VideoResult, path: str | os.PathLike) -> None:
    """Write `result` as a schema-1 JSON file, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(result_to_dict(result), f, separators=(",", ":"))


def _field(doc: dict, key: str, where: str, source: str):
    if key not in doc:
        raise ResultFormatError(f"{source}: missing field '{where}{key}'")
    return doc[key]


def result_from_dict(doc: dict[str, Any], source: str = "<dict>") -> VideoResult:
    """Rebuild a `VideoResult` from a schema-1 dict (the inverse of `result_to_dict`).

    Per-person top-5 actions are restored as an `ActionScores` whose scores are
    zero outside each person's top 5.
    """
    if doc.get("schema") != SCHEMA:
        raise ResultFormatError(f"{source}: field 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    if doc.get("version") != SCHEMA_VERSION:
        raise ResultFormatError(
            f"{source}: field 'version' is {doc.get('version')!r}; this humact reads version {SCHEMA_VERSION}"
        )
    v = _field(doc, "video", "", source)
    n = int(_field(v, "num_frames", "video.", source))
    meta = VideoMeta(
        path=_field(v, "path", "video.", source), width=int(_field(v, "width", "video.", source)),
        height=int(_field(v, "height", "video.", source)), fps=float(_field(v, "fps", "video.", source)),
        num_frames=n, frame_times=np.asarray(_field(v, "frame_times", "video.", source), np.float64),
    )
    entries = _field(doc, "tracks", "", source)
    m = len(entries)
    tracks = PoseTracks(
        track_ids=np.array([e["track_id"] for e in entries], np.int64),
        keypoints=np.zeros((m, n, 17, 2), np.float32), keypoint_scores=np.zeros((m, n, 17), np.float32),
        boxes=np.zeros((m, n, 4), np.float32), box_scores=np.zeros((m, n), np.float32),
        valid=np.zeros((m, n), bool),
    )
    names = tuple(doc.get("part_names", PART_NAMES))
    has_parts = any("part_boxes" in e for e in entries)
    parts = PartBoxes(np.zeros((m, n, len(names), 4), np.float32), np.zeros((m, n, len(names)), bool), names)
    has_world = any("world_landmarks" in e for e in entries)
    world = np.zeros((m, n, 33, 3), np.float32) if has_world else None
    for i, e in enumerate(entries):
        where = f"tracks[{i}]."
        try:
            fr = np.asarray(_field(e, "frames", where, source), np.int64)
            if fr.size and (fr.min() < 0 or fr.max() >= n):
                raise ResultFormatError(f"{source}: field '{where}frames' has indices outside [0, {n})")
            tracks.valid[i, fr] = True
            tracks.boxes[i, fr] = np.asarray(_field(e, "boxes", where, source), np.float32).reshape(-1, 4)
            tracks.box_scores[i, fr] = _field(e, "box_scores", where, source)
            tracks.keypoints[i, fr] = np.asarray(_field(e, "keypoints", where, source), np.float32).reshape(-1, 17, 2)
            tracks.keypoint_scores[i, fr] = np.asarray(
                _field(e, "keypoint_scores", where, source), np.float32
            ).reshape(-1, 17)
            if has_parts and "part_boxes" in e:
                parts.boxes[i, fr] = np.asarray(e["part_boxes"], np.float32).reshape(-1, len(names), 4)
                parts.valid[i, fr] = np.asarray(e["part_valid"], bool).reshape(-1, len(names))
            if world is not None and "world_landmarks" in e:
                world[i, fr] = np.asarray(e["world_landmarks"], np.float32).reshape(-1, 33, 3)
        except (ValueError, TypeError) as err:
            if isinstance(err, ResultFormatError):
                raise
            raise ResultFormatError(f"{source}: field '{where}' has the wrong shape ({err})") from err
    tracks.world_landmarks = world
    actions = None
    if "actions" in doc:
        labels = tuple(doc["actions"]["labels"])
        col = {lab: j for j, lab in enumerate(labels)}
        scores = np.zeros((m, len(labels)), np.float32)
        reasons = []
        for i, e in enumerate(entries):
            for a in e.get("actions", []):
                scores[i, col[a["label"]]] = a["score"]
            if "no_actions" in e:
                reasons.append(str(e["no_actions"]) or "no actions recorded")
            else:
                reasons.append("" if e.get("actions") else "no actions recorded")
        actions = ActionScores(labels, scores, tracks.track_ids.copy(), doc["actions"].get("model", ""),
                               tuple(reasons))
    # Results written before partial decodes were reported lack these fields: complete, no warnings.
    return VideoResult(meta=meta, tracks=tracks, parts=parts if has_parts else None, actions=actions,
                       backend=doc.get("backend", ""), partial=bool(doc.get("partial", False)),
                       frames_decoded=v.get("frames_decoded"), frames_announced=v.get("frames_announced"),
                       warnings=[str(w) for w in doc.get("warnings", [])])


def read_result_json(path: str | os.PathLike) -> VideoResult:
    """Read a schema-1 JSON result file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ResultFormatError(f"{path}: not valid JSON ({e})") from e
    return result_from_dict(doc, source=path)


def to_pyskl(result: VideoResult, label: int = -1) -> dict[str, Any]:
    """PYSKL's per-video annotation dict for `result` (label -1 = unlabelled)."""
    meta, tracks = result.meta, result.tracks
    return {
        "frame_dir": meta.name,
        "label": int(label),
        "img_shape": (meta.height, meta.width),
        "original_shape": (meta.height, meta.width),
        "total_frames": meta.num_frames,
        "keypoint": tracks.keypoints.astype(np.float32),
        "keypoint_score": tracks.keypoint_scores.astype(np.float32),
    }


def write_pyskl_pickle(result: VideoResult, path: str | os.PathLike, label: int = -1) -> None:
    """Write the PYSKL annotation of `result`, atomically."""
    with atomic_write(path, "wb") as f:
        pickle.dump(to_pyskl(result, label), f, protocol=4)


def read_pyskl_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a per-video PYSKL annotation safely, checking its fields."""
    path = os.fspath(path)
    anno = safe_load(path)
    if not isinstance(anno, dict):
        raise ResultFormatError(f"{path}: expected a dict, got {type(anno).__name__}")
    for key in ("frame_dir", "total_frames", "keypoint", "img_shape"):
        if key not in anno:
            raise ResultFormatError(f"{path}: missing field '{key}'")
    kp = np.asarray(anno["keypoint"])
    if kp.ndim != 4 or kp.shape[1] != anno["total_frames"]:
        raise ResultFormatError(
            f"{path}: field 'keypoint' has shape {kp.shape}, expected (M, total_frames={anno['total_frames']}, V, C)"
        )
    return anno
