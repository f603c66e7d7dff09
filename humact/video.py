"""Video decoding with PyAV (any container FFmpeg reads).

Frame indices and times
-----------------------
A frame's index is its position in presentation order, counted from the first
decodable frame: decoders emit frames in presentation order, so index = order of
output. Its time comes from the container's timestamps, not from `index / fps`:

- `probe` demuxes the stream without decoding, collects every packet's
  presentation timestamp and sorts them. For containers with real timestamps
  (MP4, MKV, WebM, MOV, ...) this is exact, including variable frame rate.
- AVI has no presentation timestamps (FFmpeg numbers packets in decode order);
  sorting those numbers gives the constant-rate times FFmpeg itself reports.

Seeking (for sparse `indices`) maps a decoded frame back to its index through its
timestamp, which only works where timestamps are real and unique; elsewhere humact
decodes sequentially and converts only the frames asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from humact.errors import InputError
from humact.types import VideoMeta

#: File suffixes treated as videos when a folder is given.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".ogv"}
)

# Seek instead of decoding through when the next wanted frame is this far ahead.
_SEEK_GAP = 48


class VideoError(InputError):
    """A video that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class _Index:
    meta: VideoMeta
    pts: np.ndarray  # (num_frames,) int64 sorted presentation timestamps, stream time base
    seekable: bool  # timestamps are real and unique, so a decoded frame maps back to its index


def _open(path: str):
    import av

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise VideoError(f"{path}: is a directory, not a video file")
    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video FFmpeg can read ({e.strerror or e})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: contains no video stream")
    return container


def _index(path: str) -> _Index:
    import av

    path = os.fspath(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        pts: list[int] = []
        missing = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    missing += 1
                else:
                    pts.append(ts)
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: corrupt or truncated video stream ({e.strerror or e})") from e
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        n = len(pts) + missing
        if n == 0:
            raise VideoError(f"{path}: the video stream has zero frames")
        if width <= 0 or height <= 0:
            raise VideoError(f"{path}: the video stream has no frame size (width={width}, height={height})")
        tb = float(stream.time_base) if stream.time_base else 0.0
        is_avi = container.format.name == "avi"
        if missing or tb == 0.0:
            times = np.arange(n, dtype=np.float64) / (fps or 25.0)
            sorted_pts = np.arange(n, dtype=np.int64)
            seekable = False
        else:
            sorted_pts = np.sort(np.asarray(pts, dtype=np.int64))
            times = sorted_pts.astype(np.float64) * tb
            seekable = not is_avi and bool(np.all(np.diff(sorted_pts) > 0))
        if fps <= 0.0:
            span = times[-1] - times[0]
            fps = (n - 1) / span if n > 1 and span > 0 else 25.0
        meta = VideoMeta(path=path, width=width, height=height, fps=fps, num_frames=n, frame_times=times)
        return _Index(meta=meta, pts=sorted_pts, seekable=seekable)
    finally:
        container.close()


def probe(path: str | os.PathLike) -> VideoMeta:
    """Read a video's size, frame rate, frame count and exact frame times without decoding.

    Raises:
        FileNotFoundError: `path` does not exist.
        VideoError: not a video, no video stream, zero frames, or an unreadable stream.
    """
    return _index(os.fspath(path)).meta


def _wanted(num_frames: int, start: int, stop: int | None, step: int, indices: Iterable[int] | None) -> np.ndarray:
    if indices is not None:
        want = np.unique(np.asarray(list(indices), dtype=np.int64))
        if want.size and (want[0] < 0 or want[-1] >= num_frames):
            raise IndexError(f"frame indices must lie in [0, {num_frames}), got {want[0]}..{want[-1]}")
        return want
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    stop = num_frames if stop is None else min(stop, num_frames)
    return np.arange(max(start, 0), stop, step, dtype=np.int64)


def read_frames(
    path: str | os.PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    indices: Iterable[int] | None = None,
    threads: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode frames as `(index, rgb)` pairs, `rgb` of shape (H, W, 3) uint8.

    Either a range (`start`, `stop`, `step`, like Python's `range`) or explicit
    `indices` (any order, duplicates ignored; yielded ascending). Frames not asked
    for are decoded (codecs need them) but never converted to RGB; far jumps seek
    where the container's timestamps allow it.

    Args:
        threads: decoder threads (0 = FFmpeg's choice).

    Raises:
        FileNotFoundError, VideoError: as `probe`; VideoError also when decoding fails
        mid-stream (the message names the file and the frame index).
    """
    import av

    path = os.fspath(path)
    idx = _index(path)
    want = _wanted(idx.meta.num_frames, start, stop, step, indices)
    if want.size == 0:
        return
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        pts_to_index = {int(p): i for i, p in enumerate(idx.pts)} if idx.seekable else None
        k = 0  # position in `want`
        current: int | None = -1  # index of the last decoded frame; None right after a seek
        while k < len(want):
            if pts_to_index is not None and want[k] - current > _SEEK_GAP:
                container.seek(int(idx.pts[want[k]]), stream=stream, backward=True, any_frame=False)
                current = None
            try:
                for frame in container.decode(stream):
                    if current is None:
                        if frame.pts is None or int(frame.pts) not in pts_to_index:
                            raise VideoError(f"{path}: decoded a frame with an unknown timestamp after seeking")
                        current = pts_to_index[int(frame.pts)]
                    else:
                        current += 1
                    if current > want[k]:
                        raise VideoError(f"{path}: seeking overshot frame {int(want[k])}")
                    if current == want[k]:
                        yield current, frame.to_ndarray(format="rgb24")
                        k += 1
                        if k == len(want):
                            return
                        if pts_to_index is not None and want[k] - current > _SEEK_GAP:
                            break  # far ahead: seek rather than decode through
                else:
                    break  # the stream ended
            except av.error.FFmpegError as e:
                raise VideoError(
                    f"{path}: corrupt or truncated video: decoding failed after frame {current} ({e.strerror or e})"
                ) from e
        if k < len(want):
            raise VideoError(
                f"{path}: corrupt or truncated video: {idx.meta.num_frames} frames announced, "
                f"frame {int(want[k])} could not be decoded"
            )
    finally:
        container.close()


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files (by suffix) directly inside `folder` and its subfolders, sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


class VideoWriter:
    """Write RGB frames to a video file with PyAV (H.264 in .mp4, MPEG-4 Part 2 elsewhere).

    Use as a context manager; write frames (H, W, 3) uint8 RGB with `write`.
    The caller makes it atomic by writing to a temporary path (`humact.io.atomic.atomic_path`).
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: float, crf: int = 23):
        import av

        self.path = os.fspath(path)
        self._container = av.open(self.path, mode="w")
        codec = "libx264" if self.path.lower().endswith((".mp4", ".mkv", ".mov")) else "mpeg4"
        from fractions import Fraction

        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._stream = self._container.add_stream(codec, rate=rate)
        # yuv420p needs even sizes.
        self._stream.width = width - width % 2
        self._stream.height = height - height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}

    def write(self, rgb: np.ndarray) -> None:
        import av

        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
