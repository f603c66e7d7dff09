"""`humact extract`: outputs, folder batches, re-runs, and every bad input the issue lists.

The pose backend is replaced by a scripted one so these run without model files;
the real backend is exercised in test_perception_real.py.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from humact.cli import main
from humact.io.results import read_pyskl_pickle, read_result_json
from humact.perception import pipeline
from humact.types import Detections
from humact.video import VideoWriter

W, H = 96, 128


class ScriptedBackend:
    """One standing person drifting right; nobody in frames listed in `empty`."""

    name = "scripted"

    def __init__(self, empty: set[int] = frozenset()):
        self.empty = set(empty)

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        if frame_index in self.empty or frame.mean() < 5:
            return Detections.empty()
        x = 30.0 + frame_index
        kp = np.array([[x, 20 + 5 * v] for v in range(17)], np.float32)
        kp[:, 0] += np.tile([0, 6], 9)[:17]
        return Detections(
            frame=[frame_index], xyxy=[[kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()]],
            score=[0.9], keypoints=kp[None], keypoint_scores=np.full((1, 17), 0.9, np.float32),
        )


@pytest.fixture
def scripted(monkeypatch):
    backend = ScriptedBackend()
    monkeypatch.setattr(pipeline, "make_backend", lambda config: backend)
    return backend


def _video(path, n=8, level=120):
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, width=W, height=H, fps=10) as w:
        for _ in range(n):
            w.write(np.full((H, W, 3), level, np.uint8))
    return path


def test_extract_writes_json_and_pyskl_pickle_per_video(tmp_path, scripted):
    video = _video(tmp_path / "in" / "walk.mp4")
    assert main(["extract", str(video), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    res = read_result_json(tmp_path / "out" / "walk.mp4.json")
    assert res.tracks.num_persons == 1 and res.tracks.valid.all()
    assert res.parts is not None and res.parts.boxes.shape == (1, 8, 10, 4)
    anno = read_pyskl_pickle(tmp_path / "out" / "walk.mp4.pkl")
    assert anno["keypoint"].shape == (1, 8, 17, 2) and anno["img_shape"] == (H, W)


def test_extract_video_flag_writes_an_annotated_video(tmp_path, scripted):
    from humact.video import probe

    _video(tmp_path / "in" / "walk.mp4")
    # A folder writes no annotated videos unless asked.
    assert main(["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert not (tmp_path / "out" / "walk.mp4.annotated.mp4").exists()
    assert main(["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--video", "--no-progress",
                 "--force"]) == 0
    meta = probe(tmp_path / "out" / "walk.mp4.annotated.mp4")
    assert meta.num_frames == 8 and (meta.width, meta.height) == (W, H)


def test_a_video_without_people_gives_an_empty_result_not_an_error(tmp_path, scripted):
    video = _video(tmp_path / "dark.mp4", level=0)
    assert main(["extract", str(video), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert read_result_json(tmp_path / "out" / "dark.mp4.json").tracks.num_persons == 0


def test_a_folder_batch_skips_a_bad_video_reports_it_and_goes_on(tmp_path, scripted, capsys):
    _video(tmp_path / "in" / "a.mp4")
    (tmp_path / "in" / "b.mp4").write_text("not a video")
    _video(tmp_path / "in" / "sub" / "c.avi")
    assert main(["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    out = capsys.readouterr()
    assert (tmp_path / "out" / "a.mp4.json").exists() and (tmp_path / "out" / "sub" / "c.avi.json").exists()
    assert not (tmp_path / "out" / "b.mp4.json").exists()
    assert "b.mp4" in out.err and "not a video" in out.err
    skipped = [line for line in out.err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].count("b.mp4") == 1  # the path is printed once
    assert "2 processed, 0 already done (skipped), 1 failed" in out.out


def test_a_rerun_skips_videos_already_done(tmp_path, scripted, capsys):
    _video(tmp_path / "in" / "a.mp4")
    args = ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    stamp = os.stat(tmp_path / "out" / "a.mp4.json").st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "0 processed, 1 already done" in capsys.readouterr().out
    assert os.stat(tmp_path / "out" / "a.mp4.json").st_mtime_ns == stamp


def test_label_from_folder_labels_pickles_by_class_folder(tmp_path, scripted):
    _video(tmp_path / "in" / "wave" / "x.mp4")
    _video(tmp_path / "in" / "clap" / "y.mp4")
    assert main(["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress",
                 "--label-from-folder"]) == 0
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == ["clap", "wave"]
    assert read_pyskl_pickle(tmp_path / "out" / "wave" / "x.mp4.pkl")["label"] == 1
    assert read_pyskl_pickle(tmp_path / "out" / "clap" / "y.mp4.pkl")["label"] == 0


def test_a_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "ghost.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "ghost.mp4: no such file or directory" in capsys.readouterr().err


def test_a_single_bad_video_fails_with_its_reason(tmp_path, scripted, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 1000)
    assert main(["extract", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "bad.avi" in capsys.readouterr().err


def test_a_folder_without_videos_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    assert main(["extract", str(tmp_path / "docs"), "--out", str(tmp_path / "o")]) == 2
    assert "no video or image files found" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    video = _video(tmp_path / "a.mp4")
    (tmp_path / "taken").write_text("x")
    assert main(["extract", str(video), "--out", str(tmp_path / "taken")]) == 2
    assert "taken: the output path exists and is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_an_unwritable_output_directory_is_a_clear_error(tmp_path, capsys):
    video = _video(tmp_path / "a.mp4")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["extract", str(video), "--out", str(ro)]) == 2
    assert "not writable" in capsys.readouterr().err


# ------------------------------------------------------------------ outputs never cost an input


def _sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extract_into_the_input_folder_never_overwrites_the_video(tmp_path, scripted):
    video = _video(tmp_path / "d" / "x.mp4")
    before = _sha(video)
    assert main(["extract", str(tmp_path / "d"), "--out", str(tmp_path / "d"), "--video", "--no-progress"]) == 0
    assert _sha(video) == before
    assert (tmp_path / "d" / "x.mp4.annotated.mp4").is_file() and (tmp_path / "d" / "x.mp4.json").is_file()


def test_analyze_into_the_input_folder_never_overwrites_the_video(tmp_path, scripted):
    video = _video(tmp_path / "d" / "x.mp4", n=12)
    before = _sha(video)
    assert main(["analyze", str(video), "--out", str(tmp_path / "d"), "--no-progress", "--threads", "1"]) == 0
    assert _sha(video) == before and (tmp_path / "d" / "x.mp4.annotated.mp4").is_file()


def test_same_named_inputs_with_different_extensions_get_separate_outputs(tmp_path, scripted, capsys):
    _video(tmp_path / "in" / "x.mp4")
    _video(tmp_path / "in" / "x.avi", n=5)
    args = ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    assert read_result_json(tmp_path / "out" / "x.mp4.json").meta.num_frames == 8
    assert read_result_json(tmp_path / "out" / "x.avi.json").meta.num_frames == 5
    assert "2 processed" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 processed, 2 already done" in capsys.readouterr().out


def test_reruns_with_the_output_inside_the_input_folder_do_not_take_outputs_for_inputs(tmp_path, scripted, capsys):
    _video(tmp_path / "in" / "a.mp4")
    args = ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "humact_out"), "--video", "--no-progress"]
    for _ in range(3):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 processed" in out and out.count("1 already done") == 2
    written = sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*") if p.is_file())
    assert written == ["a.mp4", "humact_out/a.mp4.annotated.mp4", "humact_out/a.mp4.json", "humact_out/a.mp4.pkl"]


def test_a_stale_temp_file_of_a_killed_run_is_removed_and_never_read(tmp_path, scripted, capsys):
    _video(tmp_path / "in" / "a.mp4")
    stale = _video(tmp_path / "in" / ".a.mp4.annotated.mp4.humact-k1ll3d00.tmp.mp4")
    old = stale.stat().st_mtime - 3600
    os.utime(stale, (old, old))
    assert main(["extract", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--no-progress"]) == 0
    assert not stale.exists()
    assert "1 processed" in capsys.readouterr().out


def test_outputs_get_the_usual_file_mode_not_0600(tmp_path, scripted):
    video = _video(tmp_path / "a.mp4")
    old = os.umask(0o022)
    try:
        assert main(["extract", str(video), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    finally:
        os.umask(old)
    for name in ("a.mp4.json", "a.mp4.pkl", "a.mp4.annotated.mp4"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name


def test_an_output_folder_that_is_a_file_stops_analyze_before_any_work(tmp_path, capsys, monkeypatch):
    def boom(config):
        raise AssertionError("perception must not start")

    monkeypatch.setattr(pipeline, "make_backend", boom)
    video = _video(tmp_path / "a.mp4")
    (tmp_path / "taken").write_text("x")
    assert main(["analyze", str(video), "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taken: the output path exists and is not a folder" in err


def test_progress_is_a_few_plain_lines_when_stderr_is_not_a_terminal(tmp_path, scripted, capsys):
    video = _video(tmp_path / "a.mp4", n=40)
    assert main(["extract", str(video), "--out", str(tmp_path / "out"), "--no-video"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "\r" not in err and 2 <= len(lines) <= 8
    assert any("40/40 frame" in line for line in lines)


def test_one_tracked_person_is_singular(tmp_path, scripted, capsys):
    video = _video(tmp_path / "a.mp4")
    assert main(["extract", str(video), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 tracked person," in out and "people" not in out


def test_fill_gaps_fills_a_short_miss_in_the_json_and_0_turns_it_off(tmp_path, scripted, capsys):
    video = _video(tmp_path / "in" / "walk.mp4", n=12)
    scripted.empty = {5, 6}      # missed for 0.2 s at 10 frames/s
    assert main(["extract", str(video), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    doc = json.loads((tmp_path / "a" / "walk.mp4.json").read_text())
    (track,) = doc["tracks"]
    assert track["frames"] == list(range(12)) and [i for i, f in enumerate(track["filled"]) if f] == [5, 6]
    assert track["keypoint_scores"][5] == [0.0] * 17
    anno = read_pyskl_pickle(tmp_path / "a" / "walk.mp4.pkl")     # PYSKL's "not there": zeros
    assert (anno["keypoint"][0, 5:7] == 0).all() and (anno["keypoint"][0, 4] != 0).all()
    assert main(["extract", str(video), "--out", str(tmp_path / "b"), "--no-progress", "--fill-gaps", "0"]) == 0
    (track,) = json.loads((tmp_path / "b" / "walk.mp4.json").read_text())["tracks"]
    assert 5 not in track["frames"] and "filled" not in track
    capsys.readouterr()
    assert main(["extract", str(video), "--out", str(tmp_path / "c"), "--fill-gaps", "-1"]) == 2
    assert "--fill-gaps" in capsys.readouterr().err
