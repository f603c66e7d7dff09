"""Video decoding and writing: frame indices, exact times, ranges, strides, every kind of bad
file, truncated files reported as partial, variable frame rate kept when writing, temp files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import json
import warnings

import av
import numpy as np
import pytest

from humact.io.results import read_result_json, result_to_dict, write_result_json
from humact.perception.pipeline import extract_video, write_annotated_video
from humact.types import Detections, PoseTracks, VideoResult
from humact.batch import find_inputs
from humact.io.atomic import is_temp_file
from humact.video import (
    DecodeReport,
    PartialDecodeWarning,
    TruncatedVideo,
    VideoError,
    VideoNotFound,
    VideoWriter,
    probe,
    read_frames,
)

W, H = 64, 48


def _frame(k: int) -> np.ndarray:
    """A frame whose colour encodes its index in base 14 (coarse enough to survive lossy coding)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 20 + 16 * (k % 14)
    rgb[..., 1] = 20 + 16 * (k // 14)
    rgb[..., 2] = 128
    return rgb


def _index_of(rgb: np.ndarray, n: int) -> int:
    r, g = (float(rgb[..., c].mean()) for c in (0, 1))
    return int(round((r - 20) / 16)) + 14 * int(round((g - 20) / 16))


def _write(path: Path, n: int, fps: float = 25.0) -> Path:
    with VideoWriter(path, width=W, height=H, fps=fps) as w:
        for k in range(n):
            w.write(_frame(k))
    return path


def _write_vfr(path: Path, pts: list[int], time_base: Fraction) -> Path:
    """An MP4 whose frames sit at arbitrary timestamps (variable frame rate)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = time_base
        s.codec_context.time_base = time_base
        for k, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(_frame(k), format="rgb24")
            f.pts, f.time_base = p, time_base
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_probe_reports_size_rate_and_frame_count(tmp_path, suffix):
    meta = probe(_write(tmp_path / f"v{suffix}", 30, fps=25))
    assert (meta.width, meta.height, meta.num_frames) == (W, H, 30)
    assert meta.fps == pytest.approx(25.0)
    assert np.allclose(np.diff(meta.frame_times), 1 / 25)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_frames_come_in_presentation_order_with_their_index(tmp_path, suffix):
    path = _write(tmp_path / f"v{suffix}", 30)
    frames = list(read_frames(path))
    assert [i for i, _ in frames] == list(range(30))
    assert all(_index_of(rgb, 30) == i for i, rgb in frames)
    assert frames[0][1].shape == (H, W, 3) and frames[0][1].dtype == np.uint8


def test_range_and_stride_select_frames_like_python_range(tmp_path):
    path = _write(tmp_path / "v.mp4", 30)
    got = [(i, _index_of(rgb, 30)) for i, rgb in read_frames(path, start=3, stop=20, step=4)]
    assert got == [(i, i) for i in range(3, 20, 4)]


def test_sparse_indices_seek_to_the_right_frames(tmp_path):
    path = _write(tmp_path / "v.mp4", 200)
    want = [150, 2, 199, 70]
    got = [(i, _index_of(rgb, 200)) for i, rgb in read_frames(path, indices=want)]
    assert got == [(i, i) for i in sorted(want)]


def test_variable_frame_rate_keeps_indices_and_exact_times(tmp_path):
    pts = [0, 1, 3, 7, 8, 20, 21, 40]
    path = _write_vfr(tmp_path / "vfr.mp4", pts, Fraction(1, 30))
    meta = probe(path)
    assert meta.num_frames == len(pts)
    assert np.allclose(meta.frame_times, np.array(pts) / 30)
    got = [(i, _index_of(rgb, len(pts))) for i, rgb in read_frames(path)]
    assert got == [(k, k) for k in range(len(pts))]


def test_out_of_range_indices_are_refused(tmp_path):
    path = _write(tmp_path / "v.mp4", 10)
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        list(read_frames(path, indices=[3, 10]))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        probe(tmp_path / "nope.mp4")


def test_a_text_file_is_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are not frames\n" * 50)
    with pytest.raises(VideoError, match=r"notes\.mp4.*not a video"):
        probe(bad)


def test_a_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="directory"):
        probe(tmp_path)


def test_a_video_with_zero_frames_is_refused(tmp_path):
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()  # header only, no packets
    with pytest.raises(VideoError, match=r"empty\.avi: the video stream has zero frames"):
        probe(path)


def test_a_truncated_video_is_reported_not_silently_short(tmp_path):
    path = _write(tmp_path / "v.avi", 60)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    try:
        meta = probe(cut)
    except VideoError as e:
        assert "cut.avi" in str(e)
        return
    # The index is damaged gracefully: whatever is announced must decode, or the error says so.
    try:
        n = sum(1 for _ in read_frames(cut))
    except VideoError as e:
        assert "cut.avi" in str(e) and "truncated" in str(e)
    else:
        assert n == meta.num_frames < 60


def _inputs(folder):
    return [rel.as_posix() for _, rel in find_inputs(folder)]


def test_folder_inputs_are_videos_in_subfolders_found_by_suffix(tmp_path):
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "x.mp4", 2)
    _write(tmp_path / "y.avi", 2)
    (tmp_path / "readme.txt").write_text("hi")
    assert _inputs(tmp_path) == ["a/x.mp4", "y.avi"]


def test_real_videos_decode_with_their_announced_frame_counts(shared):
    media = shared / "data" / "media"
    for name, (w, h, n) in {
        "ntu_hug_1080p.avi": (1920, 1080, 72),
        "archery_320x240.avi": (320, 240, 131),
        "pool_cleaning_340x256.mp4": (340, 256, 300),
    }.items():
        meta = probe(media / name)
        assert (meta.width, meta.height, meta.num_frames) == (w, h, n), name
        assert sum(1 for _ in read_frames(media / name, step=7)) == len(range(0, n, 7))


def _pyav_rgb(path) -> list[np.ndarray]:
    """Every frame as PyAV converts it on its own (a fresh swscale context per frame)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_decoded_pixels_are_pyavs_own_rgb_conversion(tmp_path):
    # read_frames keeps one swscale context per stream: the pixels must stay PyAV's own.
    rng = np.random.default_rng(1)
    path = tmp_path / "noise.mp4"
    with VideoWriter(path, width=W, height=H, fps=25) as w:
        for k in range(6):
            w.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    ours = [rgb for _, rgb in read_frames(path)]
    theirs = _pyav_rgb(path)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        assert a.shape == (H, W, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    # frames kept across iterations are independent copies, not one reused buffer
    assert not np.array_equal(ours[0], ours[1])


def test_real_videos_decode_to_pyavs_own_rgb_pixels(shared):
    for name in ("ntu_hug_1080p.avi", "armwrestling_340x256.mp4"):
        path = shared / "data" / "media" / name
        theirs = _pyav_rgb(path)
        ours = dict(read_frames(path, indices=[0, 1, 40, len(theirs) - 1]))
        for i, rgb in ours.items():
            np.testing.assert_array_equal(rgb, theirs[i], err_msg=f"{name} frame {i}")


# --- truncated and corrupt files -------------------------------------------------------------


class _OnePerson:
    """A pose backend that finds one standing person in every frame (no model files needed)."""

    name = "one-person"

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        h, w = frame.shape[:2]
        kp = np.stack([np.linspace(0.3, 0.7, 17) * w, np.linspace(0.2, 0.9, 17) * h], -1).astype(np.float32)
        return Detections(frame=[frame_index], xyxy=[[*kp.min(0), *kp.max(0)]], score=[0.9], keypoints=kp[None],
                          keypoint_scores=np.full((1, 17), 0.9, np.float32))


def _write_noisy(path: Path, n: int, fps: int = 25) -> Path:
    """Frames of noise: every frame costs about the same bytes, so half the file is about half the frames."""
    rng = np.random.default_rng(0)
    with VideoWriter(path, width=W, height=H, fps=fps) as w:
        for k in range(n):
            w.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    return path


def _cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_a_complete_video_reports_every_announced_frame_decoded(tmp_path):
    report = DecodeReport()
    n = sum(1 for _ in read_frames(_write_noisy(tmp_path / "v.avi", 40), report=report))
    assert n == 40 and (report.announced, report.indexed, report.requested, report.decoded) == (40, 40, 40, 40)
    assert not report.partial and report.error is None


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_a_file_cut_in_half_reports_decoded_frames_against_the_announced_count(tmp_path, suffix):
    cut = _cut_in_half(_write_noisy(tmp_path / f"v{suffix}", 60), tmp_path / f"cut{suffix}")
    report = DecodeReport()
    frames = list(read_frames(cut, report=report))
    assert 10 < len(frames) < 50 and report.decoded == len(frames)
    assert report.announced == 60  # AVI's frame count; MKV's duration times its rate
    assert report.truncated and report.partial
    assert f"cut{suffix}: decoded {len(frames)} of 60 frames" in report.describe()
    assert "truncated" in report.describe()


def test_a_decoding_failure_without_a_report_raises_truncated_video_with_the_counts(tmp_path):
    path = _write_noisy(tmp_path / "v.mp4", 30)
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4: len(data) - 2000] = b"\x00" * (len(data) - 2000 - mdat - 4)  # frames wiped, index kept
    (tmp_path / "wiped.mp4").write_bytes(bytes(data))
    with pytest.raises(TruncatedVideo, match=r"wiped\.mp4: corrupt or truncated") as err:
        list(read_frames(tmp_path / "wiped.mp4"))
    assert err.value.report.decoded < 30 and err.value.report.indexed == 30


def test_extract_video_marks_a_truncated_avi_partial_and_warns(tmp_path):
    cut = _cut_in_half(_write_noisy(tmp_path / "v.avi", 60), tmp_path / "cut.avi")
    with pytest.warns(PartialDecodeWarning, match=r"cut\.avi: decoded \d+ of 60 frames"):
        result = extract_video(cut, backend=_OnePerson())
    assert result.partial and result.frames_announced == 60
    assert result.frames_decoded == result.meta.num_frames < 60
    assert len(result.warnings) == 1 and "cut.avi" in result.warnings[0]


def test_extract_video_of_a_complete_file_is_not_partial_and_does_not_warn(tmp_path):
    path = _write_noisy(tmp_path / "v.avi", 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialDecodeWarning)
        result = extract_video(path, backend=_OnePerson())
    assert not result.partial and result.warnings == [] and result.frames_decoded == 20


def test_the_result_json_records_partial_decodes_and_reads_them_back(tmp_path):
    cut = _cut_in_half(_write_noisy(tmp_path / "v.avi", 60), tmp_path / "cut.avi")
    with pytest.warns(PartialDecodeWarning):
        result = extract_video(cut, backend=_OnePerson())
    write_result_json(result, tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["partial"] is True and doc["warnings"] == result.warnings
    assert doc["video"]["frames_decoded"] == result.frames_decoded and doc["video"]["frames_announced"] == 60
    back = read_result_json(tmp_path / "r.json")
    assert back.partial and back.warnings == result.warnings
    assert (back.frames_decoded, back.frames_announced) == (result.frames_decoded, 60)


def test_a_result_json_written_before_partial_decodes_were_reported_still_loads(tmp_path):
    meta = probe(_write(tmp_path / "v.mp4", 3))
    doc = result_to_dict(VideoResult(meta, PoseTracks.empty(3)))
    for key in ("partial", "warnings"):
        del doc[key]
    for key in ("frames_decoded", "frames_announced"):
        del doc["video"][key]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    back = read_result_json(tmp_path / "old.json")
    assert not back.partial and back.warnings == [] and back.frames_decoded is None


def test_a_real_avi_cut_in_half_is_processed_as_far_as_it_goes_and_marked_partial(shared, tmp_path):
    cut = _cut_in_half(shared / "data" / "media" / "archery_320x240.avi", tmp_path / "archery_cut.avi")
    with pytest.warns(PartialDecodeWarning, match=r"archery_cut\.avi: decoded \d+ of 131 frames"):
        result = extract_video(cut, backend=_OnePerson())
    assert result.partial and result.frames_announced == 131
    assert 40 < result.frames_decoded < 131 and result.tracks.valid[:, : result.frames_decoded].all()


def test_a_missing_video_is_a_video_error_and_a_file_not_found_error(tmp_path):
    with pytest.raises(VideoNotFound, match="ghost.avi: no such file") as err:
        list(read_frames(tmp_path / "ghost.avi"))
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, VideoError)


# --- variable frame rate when writing ------------------------------------------------------------


def _container_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return c.duration / 1e6


@pytest.mark.parametrize("first", [0, 15])
def test_an_annotated_variable_frame_rate_video_keeps_every_frame_time(tmp_path, first):
    pts = [first + p for p in (0, 1, 3, 7, 8, 20, 21, 40, 41, 42, 90)]
    src = _write_vfr(tmp_path / "vfr.mp4", pts, Fraction(1, 30))
    meta = probe(src)
    write_annotated_video(VideoResult(meta, PoseTracks.empty(meta.num_frames)), tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4")
    assert out.num_frames == meta.num_frames
    assert np.allclose(out.frame_times, meta.frame_times, atol=1 / 90000)
    # It lasts as long as the input: from the first frame to the end of the last (1 / fps).
    want = meta.frame_times[-1] - meta.frame_times[0] + 1 / meta.fps
    assert _container_duration(tmp_path / "out.mp4") == pytest.approx(want, abs=2e-3)


def test_frames_written_without_times_are_one_frame_interval_apart(tmp_path):
    meta = probe(_write(tmp_path / "v.mp4", 12, fps=30))
    assert np.allclose(meta.frame_times, np.arange(12) / 30, atol=1 / 90000)
    assert _container_duration(tmp_path / "v.mp4") == pytest.approx(12 / 30, abs=1e-3)


def test_variable_frame_rate_times_in_avi_are_kept_to_the_nearest_frame_slot(tmp_path):
    times = [0.0, 0.04, 0.2, 0.21, 1.0]
    with VideoWriter(tmp_path / "v.avi", width=W, height=H, fps=25) as w:
        for k, t in enumerate(times):
            w.write(_frame(k), time_s=t)
    meta = probe(tmp_path / "v.avi")
    assert np.allclose(meta.frame_times, [0.0, 0.04, 0.2, 0.24, 1.0])  # 0.21 would share 0.2's slot
    report = DecodeReport()
    assert [_index_of(rgb, 5) for _, rgb in read_frames(tmp_path / "v.avi", report=report)] == list(range(5))
    assert not report.partial  # the skipped slots are not missing frames


# --- discovery -------------------------------------------------------------------------------------


def test_folder_inputs_never_include_humacts_own_temp_files(tmp_path):
    from humact.io.atomic import atomic_path

    _write(tmp_path / "a.mp4", 2)
    (tmp_path / ".b.k3j_9x2a.tmp.mp4").write_bytes((tmp_path / "a.mp4").read_bytes())  # left by a kill
    (tmp_path / ".c.json.ab12cd34.tmp").write_text("{}")
    with atomic_path(tmp_path / "d.mp4") as tmp:
        _write(tmp, 2)
        assert is_temp_file(tmp)
        assert _inputs(tmp_path) == ["a.mp4"]
    assert _inputs(tmp_path) == ["a.mp4", "d.mp4"]


def test_hidden_files_are_not_inputs_but_a_tmp_in_a_plain_name_is(tmp_path):
    _write(tmp_path / "._x.mp4", 2)  # macOS metadata sidecar
    _write(tmp_path / "x.tmp.mp4", 2)
    assert _inputs(tmp_path) == ["x.tmp.mp4"]


def test_extract_of_a_truncated_file_prints_one_warning_line_and_marks_the_result_partial(tmp_path, capsys,
                                                                                           monkeypatch):
    from humact.cli import main
    from humact.io.results import read_result_json
    from humact.perception import pipeline

    cut = _cut_in_half(_write_noisy(tmp_path / "v.avi", 60), tmp_path / "cut.avi")
    monkeypatch.setattr(pipeline, "make_backend", lambda config: _OnePerson())
    assert main(["extract", str(cut), "--out", str(tmp_path / "out"), "--no-video", "--no-progress"]) == 0
    out = capsys.readouterr()
    warn = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "cut.avi" in warn[0] and "of 60 frames" in warn[0]
    assert "PartialDecodeWarning" not in out.err and "partial" in out.out
    assert read_result_json(tmp_path / "out" / "cut.avi.json").partial
