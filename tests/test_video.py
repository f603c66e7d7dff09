"""Video decoding: frame indices, exact times, ranges, strides, and every kind of bad file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from humact.video import VideoError, VideoWriter, list_videos, probe, read_frames

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


def test_list_videos_finds_videos_in_subfolders_only_by_suffix(tmp_path):
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "x.mp4", 2)
    _write(tmp_path / "y.avi", 2)
    (tmp_path / "readme.txt").write_text("hi")
    assert [p.relative_to(tmp_path).as_posix() for p in list_videos(tmp_path)] == ["a/x.mp4", "y.avi"]


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
