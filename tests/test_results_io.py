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
    to_pyskl,
    write_pyskl_pickle,
    write_result_json,
)
from humact.errors import InputError
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


def _doc():
    return result_to_dict(_result())


WRONG = [
    ("a list, not an object", lambda d: [], r"expected a JSON object"),
    ("track_id text", lambda d: d["tracks"][0].update(track_id="a"), r"field 'tracks\[0\]\.track_id': expected an integer"),
    ("num_frames negative", lambda d: d["video"].update(num_frames=-1),
     r"field 'video\.num_frames': expected a non-negative integer, got -1"),
    ("num_frames text", lambda d: d["video"].update(num_frames="6"), r"field 'video\.num_frames': expected a non-negative"),
    ("num_frames a float", lambda d: d["video"].update(num_frames=6.5), r"field 'video\.num_frames'"),
    ("frame_times too short", lambda d: d["video"].update(frame_times=[0.0]), r"field video\.frame_times: expected shape"),
    ("fps text", lambda d: d["video"].update(fps="25"), r"field 'video\.fps': expected a number"),
    ("frames of floats", lambda d: d["tracks"][0].update(frames=[0.5]), r"field tracks\[0\]\.frames: expected integers"),
    ("boxes of text", lambda d: d["tracks"][0].update(boxes=[["a"] * 4] * len(d["tracks"][0]["frames"])),
     r"field tracks\[0\]\.boxes: expected numbers"),
    ("keypoints of the wrong shape", lambda d: d["tracks"][0].update(keypoints=[[1, 2]]), r"field tracks\[0\]\.keypoints: expected shape"),
    ("keypoint beyond float32", lambda d: d["tracks"][0]["keypoints"][0][0].__setitem__(0, 1e300),
     r"field tracks\[0\]\.keypoints: expected finite numbers"),
    ("part_valid missing", lambda d: d["tracks"][0].pop("part_valid"), r"missing field 'tracks\[0\]\.part_valid'"),
    ("action label unknown", lambda d: d["tracks"][0]["actions"][0].update(label="nope"),
     r"field 'tracks\[0\]\.actions\[0\]\.label': 'nope' is not one of actions\.labels"),
    ("action score text", lambda d: d["tracks"][0]["actions"][0].update(score="0.5"),
     r"field 'tracks\[0\]\.actions\[0\]\.score': expected a number"),
    ("actions without labels", lambda d: d["actions"].pop("labels"), r"missing field 'actions\.labels'"),
    ("part_names of numbers", lambda d: d.update(part_names=[1, 2]), r"field 'part_names\[0\]': expected a string"),
    ("tracks an object", lambda d: d.update(tracks={}), r"field 'tracks': expected a list"),
]


@pytest.mark.parametrize("what, mutate, message", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_types_name_the_file_and_field(tmp_path, what, mutate, message):
    doc = _doc()
    doc = mutate(doc) if what.startswith("a list") else (mutate(doc), doc)[1]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ResultFormatError, match=r"bad\.json: " + message):
        read_result_json(tmp_path / "bad.json")


def test_dense_arrays_beyond_the_limit_are_refused_before_allocating(tmp_path, monkeypatch):
    import tracemalloc

    from humact.errors import LimitError
    doc = _doc()
    doc["video"]["num_frames"] = 400_000
    doc["video"]["frame_times"] = [0.0] * 400_000
    doc["tracks"] = doc["tracks"] * 500          # 500 tracks x 400,000 frames: ~200 GB dense
    (tmp_path / "big.json").write_text(json.dumps(doc))
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=r"big\.json: field tracks x video\.num_frames .* over the limit "
                                             r".*HUMACT_LIMIT_MAX_ARRAY_BYTES"):
            read_result_json(tmp_path / "big.json")
        assert tracemalloc.get_traced_memory()[1] < 400e6
    finally:
        tracemalloc.stop()
    doc = _doc()
    doc["video"]["num_frames"] = 20_000_000
    (tmp_path / "long.json").write_text(json.dumps(doc))
    with pytest.raises(LimitError, match=r"long\.json: field video\.num_frames: 20,000,000 frames"):
        read_result_json(tmp_path / "long.json")


def test_json_result_file_errors_name_the_file(tmp_path):
    (tmp_path / "bin.json").write_bytes(b'{"schema": "humact.\xff"}')
    with pytest.raises(ResultFormatError, match=r"bin\.json: not UTF-8: byte 0xff at offset 19"):
        read_result_json(tmp_path / "bin.json")
    (tmp_path / "nan.json").write_text('{"schema": NaN}')
    with pytest.raises(ResultFormatError, match=r"nan\.json: field 'schema' is nan"):
        read_result_json(tmp_path / "nan.json")


def test_pyskl_pickle_fields_are_checked(tmp_path):
    good = to_pyskl(_result())
    for what, mutate, message in [
        ("total_frames text", lambda a: a.update(total_frames="6"), "total_frames"),
        ("keypoint text", lambda a: a.update(keypoint="abc"), "keypoint"),
        ("keypoint_score shape", lambda a: a.update(keypoint_score=np.zeros((1, 1, 1))), "keypoint_score"),
        ("total_frames beyond the limit", lambda a: a.update(total_frames=10 ** 12), "total_frames"),
    ]:
        anno = dict(good)
        mutate(anno)
        with open(tmp_path / "a.pkl", "wb") as f:
            pickle.dump(anno, f)
        with pytest.raises(InputError, match=r"a\.pkl: field '?" + message):
            read_pyskl_pickle(tmp_path / "a.pkl")


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
