"""Result files: JSON and PYSKL pickle round trips, schema errors, safe unpickling, atomic writes."""

from __future__ import annotations

import json
import os
import re
import pickle

import numpy as np
import pytest

from humact.io.atomic import atomic_write
from humact.io.results import (
    ResultFormatError,
    read_pyskl_pickle,
    read_result_json,
    result_to_dict,
    write_pyskl_pickle,
    write_result_json,
)
from humact.io.safe_pickle import UnsafePickleError, safe_load
from humact.types import ActionScores, PartBoxes, PoseTracks, VideoMeta, VideoResult


def _result(m: int = 2, t: int = 6, with_actions: bool = True) -> VideoResult:
    rng = np.random.default_rng(0)
    valid = rng.random((m, t)) > 0.3
    kp = (rng.random((m, t, 17, 2)) * 300).astype(np.float32) * valid[..., None, None]
    ks = rng.random((m, t, 17)).astype(np.float32) * valid[..., None]
    boxes = np.concatenate([kp.min(2), kp.max(2)], -1) * valid[..., None]
    tracks = PoseTracks(np.arange(m) * 3, kp, ks, boxes, rng.random((m, t)) * valid, valid,
                        world_landmarks=(rng.random((m, t, 33, 3)) - 0.5) * valid[..., None, None])
    pvalid = (rng.random((m, t, 10)) > 0.5) & valid[..., None]
    parts = PartBoxes(np.repeat(boxes[:, :, None], 10, 2) * pvalid[..., None], pvalid)
    meta = VideoMeta("/videos/clip.mp4", 320, 240, 25.0, t, np.arange(t) / 25.0)
    actions = None
    if with_actions:
        labels = tuple(f"action{i}" for i in range(7))
        scores = rng.dirichlet(np.ones(7), m).astype(np.float32)
        actions = ActionScores(labels, scores, tracks.track_ids.copy(), "demo")
    return VideoResult(meta, tracks, parts, actions, backend="test")


def test_json_round_trip_keeps_tracks_parts_and_meta(tmp_path):
    res = _result()
    write_result_json(res, tmp_path / "r.json")
    back = read_result_json(tmp_path / "r.json")
    assert back.meta.num_frames == res.meta.num_frames and back.meta.path == res.meta.path
    assert np.array_equal(back.tracks.track_ids, res.tracks.track_ids)
    assert np.array_equal(back.tracks.valid, res.tracks.valid)
    assert np.allclose(back.tracks.keypoints, res.tracks.keypoints, atol=0.006)
    assert np.allclose(back.tracks.keypoint_scores, res.tracks.keypoint_scores, atol=6e-5)
    assert np.allclose(back.tracks.boxes, res.tracks.boxes, atol=0.006)
    assert np.array_equal(back.parts.valid, res.parts.valid)
    assert np.allclose(back.parts.boxes, res.parts.boxes, atol=0.006)
    assert np.allclose(back.tracks.world_landmarks, res.tracks.world_landmarks, atol=6e-5)


def test_json_keeps_each_persons_top5_actions_best_first(tmp_path):
    res = _result()
    doc = result_to_dict(res)
    for m, entry in enumerate(doc["tracks"]):
        scores = [a["score"] for a in entry["actions"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert entry["actions"][0]["label"] == res.actions.labels[int(np.argmax(res.actions.scores[m]))]


def test_json_lists_only_frames_where_the_person_was_seen():
    res = _result()
    doc = result_to_dict(res)
    for m, entry in enumerate(doc["tracks"]):
        assert entry["frames"] == np.flatnonzero(res.tracks.valid[m]).tolist()
        assert len(entry["keypoints"]) == len(entry["frames"])


def test_json_with_no_person_is_a_valid_empty_result(tmp_path):
    meta = VideoMeta("/v.mp4", 10, 10, 25.0, 3, np.arange(3) / 25)
    write_result_json(VideoResult(meta, PoseTracks.empty(3)), tmp_path / "e.json")
    back = read_result_json(tmp_path / "e.json")
    assert back.tracks.num_persons == 0 and back.tracks.num_frames == 3


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(schema="other"), "schema"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d["video"].pop("num_frames"), "video.num_frames"),
        (lambda d: d["tracks"][0].pop("keypoints"), "tracks[0].keypoints"),
        (lambda d: d["tracks"][0].update(frames=[0, 999]), "tracks[0].frames"),
    ],
)
def test_a_broken_json_result_names_the_file_and_field(tmp_path, mutate, field):
    doc = result_to_dict(_result())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultFormatError, match=r"bad\.json.*" + re.escape(field)):
        read_result_json(path)


def test_pyskl_pickle_has_pyskls_fields_and_round_trips(tmp_path):
    res = _result()
    write_pyskl_pickle(res, tmp_path / "clip.pkl", label=4)
    anno = read_pyskl_pickle(tmp_path / "clip.pkl")
    assert anno["frame_dir"] == "clip" and anno["label"] == 4 and anno["total_frames"] == 6
    assert anno["img_shape"] == (240, 320) and anno["original_shape"] == (240, 320)
    assert anno["keypoint"].dtype == np.float32 and anno["keypoint"].shape == (2, 6, 17, 2)
    assert np.array_equal(anno["keypoint"], res.tracks.keypoints)
    assert np.array_equal(anno["keypoint_score"], res.tracks.keypoint_scores)


def test_safe_load_refuses_a_pickle_that_runs_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"keypoint": Evil()}))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*(posix|os)\.system"):
        safe_load(path)


def test_safe_load_reads_containers_and_arrays(tmp_path):
    obj = {"split": {"train": ["a"]}, "annotations": [{"x": np.arange(6, dtype=np.float32).reshape(2, 3),
                                                        "n": np.int64(3), "t": (1, 2.5, "s")}]}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj))
    back = safe_load(path)
    assert np.array_equal(back["annotations"][0]["x"], obj["annotations"][0]["x"])
    assert back["annotations"][0]["t"] == (1, 2.5, "s") and back["split"] == {"train": ["a"]}


def test_safe_load_names_a_file_that_is_not_a_pickle(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(pickle.UnpicklingError, match=r"junk\.pkl"):
        safe_load(path)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
