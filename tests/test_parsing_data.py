"""Kinetics-TPS reading, part groups, System 1's video-level labels and the most-frequent baseline."""

import json

import numpy as np
import pytest

from humact.errors import InputError
from humact.eval.tps import TpsFormatError
from humact.parsing.dataset import frame_index, frame_key, read_tps
from humact.parsing.labels import (group_parts, label_name, most_frequent_states, parse_label, part_group,
                                   video_labels)


def _h(box, **parts):
    return {"box": box, "parts": {p: {"box": [0, 0, 5, 5], "verb": v} for p, v in parts.items()}}


# A small annotation: 3 frames, the counts below are done by hand.
FRAMES = {
    "img_00001.json": {"humans": [_h([0, 0, 50, 90], head="none", left_hand="hold", right_hand="wave"),
                                  _h([60, 0, 99, 90], head="nod", left_hand="hold")]},
    "img_00006.json": {"humans": [_h([0, 0, 50, 90], head="nod", right_hand="wave", left_leg="step")]},
    "img_00011.json": {"humans": []},
}


def test_video_labels_by_hand():
    labels = video_labels("belly_dancing", FRAMES)
    # head: none 1, nod 2 -> nod; hand: hold 2, wave 2 -> tie, alphabetical -> hold; leg: step;
    # arm, hip, foot: never annotated -> none.
    assert labels == {"head": "belly_dancing_Head_nod", "hand": "belly_dancing_Hand_hold",
                      "arm": "belly_dancing_Arm_none", "hip": "belly_dancing_Hip_none",
                      "leg": "belly_dancing_Leg_step", "foot": "belly_dancing_Foot_none",
                      "action": "belly_dancing"}
    assert parse_label("belly_dancing_Hand_hold_something", "hand") == ("belly_dancing", "hold_something")
    assert label_name("a_b", "foot", "none") == "a_b_Foot_none"


def test_part_groups():
    from humact.keypoints import PART_NAMES

    groups = group_parts(PART_NAMES)
    assert groups["hand"] == ("left_hand", "right_hand") and groups["head"] == ("head",)
    assert sum(len(v) for v in groups.values()) == 10
    assert part_group("Right_Foot") == "foot"
    with pytest.raises(ValueError):
        part_group("torso")


def test_most_frequent_baseline_by_hand():
    from humact.parsing.dataset import TpsVideo

    other = {"img_00001.json": {"humans": [_h([0, 0, 9, 9], head="none", left_hand="wave")]}}
    videos = [TpsVideo("a", "dance", FRAMES), TpsVideo("b", "dance", other), TpsVideo("c", "run", other)]
    got = most_frequent_states(videos)
    # dance/head: none 2 (1 + 1), nod 2 -> tie -> "nod" (alphabetically first); left_hand: hold 2, wave 1
    assert got["dance"] == {"head": "nod", "left_hand": "hold", "right_hand": "wave", "left_leg": "step"}
    assert got["run"] == {"head": "none", "left_hand": "wave"}


def test_frame_keys():
    assert frame_key(0) == "img_00001.json" and frame_index("img_00006.json") == 5
    with pytest.raises(TpsFormatError, match="img_00000"):
        frame_index("img_00000.json")


def test_read_tps_folder_and_list(tmp_path):
    (tmp_path / "gt_vid_result.json").write_text(json.dumps({"v1": "dance", "v2": "run"}))
    (tmp_path / "gt_part_result.json").write_text(json.dumps({"v1": FRAMES, "v2": {}}))
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "v1.mp4").write_bytes(b"")
    ds = read_tps(tmp_path)
    assert [v.name for v in ds.videos] == ["v1", "v2"] and ds.actions == ("dance", "run")
    assert ds.videos[0].video == tmp_path / "videos" / "v1.mp4" and ds.videos[1].video is None
    assert ds.states == ("hold", "nod", "none", "step", "wave")
    assert ds.videos[0].frame_indices() == [0, 5, 10]
    (tmp_path / "val.txt").write_text("v2\n")
    assert [v.name for v in read_tps(tmp_path, "val").videos] == ["v2"]
    gt_vid, gt_part = ds.gt_files()
    assert gt_vid == {"v1": "dance", "v2": "run"} and gt_part["v1"] is ds.videos[0].frames


def test_read_release_layout(tmp_path):
    """train_annotations/<class>/<video>/<video>/img_*.json, list/ vocabularies and split lists."""
    for name, cls in (("vidA", "dance"), ("vidB", "run")):
        folder = tmp_path / "train_annotations" / cls / name / name
        folder.mkdir(parents=True)
        for key, frame in FRAMES.items():
            (folder / key).write_text(json.dumps(dict(frame, objects=[])))
        (tmp_path / "train_videos" / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / "train_videos" / cls / f"{name}.mp4").write_bytes(b"")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "part_stat.txt").write_text("none\nnod\nhold\nwave\nstep\nbend\n")
    (tmp_path / "list" / "val.txt").write_text("run/vidB.mp4\n")
    train = read_tps(tmp_path, "train")
    assert [(v.name, v.action) for v in train.videos] == [("vidA", "dance"), ("vidB", "run")]
    assert train.videos[0].frames == FRAMES
    assert train.videos[0].video == tmp_path / "train_videos" / "dance" / "vidA.mp4"
    assert train.states == ("none", "nod", "hold", "wave", "step", "bend")
    val = read_tps(tmp_path, "val")
    assert [v.name for v in val.videos] == ["vidB"] and val.videos[0].frames == FRAMES
    # test videos without annotations: the action is the class folder's name
    (tmp_path / "test_videos" / "dance").mkdir(parents=True)
    (tmp_path / "test_videos" / "dance" / "vidC.mp4").write_bytes(b"")
    test = read_tps(tmp_path, "test")
    assert [(v.name, v.action, v.frames) for v in test.videos] == [("vidC", "dance", {})]


def test_bad_annotations_name_the_field(tmp_path):
    (tmp_path / "gt_vid_result.json").write_text(json.dumps({"v1": "dance"}))
    bad = {"v1": {"img_00001.json": {"humans": [{"box": [0, 0, 1, 1], "parts": {"head": {"box": [0, 0, 1],
                                                                                       "verb": "x"}}}]}}}
    (tmp_path / "gt_part_result.json").write_text(json.dumps(bad))
    with pytest.raises(TpsFormatError, match="part 'head'.*box"):
        read_tps(tmp_path)
    (tmp_path / "gt_part_result.json").write_text(json.dumps({"v1": {"frame1.json": {"humans": []}}}))
    with pytest.raises(TpsFormatError, match="img_00001.json"):
        read_tps(tmp_path)
    with pytest.raises(InputError, match="no such"):
        read_tps(tmp_path / "nope")


@pytest.mark.slow
def test_perceive_frame_folder_matches_the_video(tmp_path, shared):
    """A release-style frame folder (img_%05d.jpg from 1) gives the tracks the video gives (same pixels)."""
    from PIL import Image

    from humact.parsing.tracks import perceive_frames
    from humact.perception.pipeline import ExtractConfig, extract_video
    from humact.video import read_frames

    video = shared / "data" / "media" / "archery_320x240.avi"
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, rgb in read_frames(video, stop=12):
        Image.fromarray(rgb).save(folder / f"img_{t + 1:05d}.png")
    # lossless frames so both paths see identical pixels; the reader takes .jpg: rename (Pillow reads by content)
    for p in sorted(folder.glob("*.png")):
        p.rename(p.with_suffix(".jpg"))
    cfg = ExtractConfig(threads=1)
    a = perceive_frames(folder, config=cfg)
    assert a.meta.num_frames == 12 and a.meta.width == 320
    b = extract_video(video, config=cfg)
    n = min(12, b.tracks.num_frames)
    assert a.tracks.num_persons >= 1
    np.testing.assert_allclose(a.tracks.keypoints[0, :n][a.tracks.valid[0, :n]],
                               b.tracks.keypoints[0, :n][a.tracks.valid[0, :n]], atol=1e-3)
    (folder / "img_00003.jpg").unlink()
    with pytest.raises(InputError, match="img_00003.jpg is missing"):
        perceive_frames(folder, config=cfg)


def test_a_frame_folder_gets_the_offline_passes_of_a_file(tmp_path):
    """A person missed on one frame of a folder keeps one id, and that frame is filled, as in a file."""
    from PIL import Image

    from humact.parsing.tracks import perceive_frames
    from humact.perception.pipeline import ExtractConfig
    from humact.types import Detections

    class MissesFrame4:
        name = "misses-frame-4"

        def reset(self):
            pass

        def __call__(self, frame, t):
            if t == 4:
                return Detections.empty()
            h, w = frame.shape[:2]
            kp = np.stack([np.linspace(0.3, 0.7, 17) * w, np.linspace(0.2, 0.9, 17) * h + t], -1).astype(np.float32)
            return Detections(frame=[t], xyxy=[[*kp.min(0), *kp.max(0)]], score=[0.9], keypoints=kp[None],
                              keypoint_scores=np.full((1, 17), 0.9, np.float32))

    for i in range(10):
        Image.fromarray(np.full((64, 48, 3), 20 * i, np.uint8)).save(tmp_path / f"img_{i + 1:05d}.jpg")
    r = perceive_frames(tmp_path, config=ExtractConfig(), backend=MissesFrame4())
    assert r.tracks.num_persons == 1
    assert r.tracks.valid[0].all() and r.tracks.filled is not None
    assert np.flatnonzero(r.tracks.filled[0]).tolist() == [4]
    assert not r.tracks.seen[0, 4] and r.tracks.seen[0].sum() == 9
    # the filled row lies between its neighbours, as interpolation puts it
    assert r.tracks.boxes[0, 3, 1] < r.tracks.boxes[0, 4, 1] < r.tracks.boxes[0, 5, 1]


def test_tps_dataset_reader_keeps_the_reader_contract():
    """Mutated TPS folders (both layouts) give a dataset or a HumactError naming a file, never a crash."""
    from hypothesis import given
    from hypothesis import strategies as st

    from test_fuzz_readers import FUZZ, assert_reader_contract, mutated_json

    folder_files = {"gt_vid_result.json": {"v1": "dance", "v2": "run"}, "gt_part_result.json": {"v1": FRAMES, "v2": {}}}
    release_files = {f"train_annotations/dance/vidA/vidA/{k}": f for k, f in FRAMES.items()}

    @FUZZ
    @given(layout=st.sampled_from(["folder", "release"]), data=st.data())
    def run(layout, data):
        base = folder_files if layout == "folder" else release_files
        files = {k: json.dumps(v).encode() for k, v in base.items()}
        which = data.draw(st.sampled_from(sorted(base)))
        files[which] = data.draw(mutated_json(base[which], max_ops=2))

        def check(ds):
            assert len(ds.videos) >= 1 and all(isinstance(v.action, str) for v in ds.videos)

        assert_reader_contract(lambda d: read_tps(d), files, target="Kinetics-TPS dataset", check=check)

    run()
