"""Video input and output: files and still images (`probe`, `read_frames`), live sources
(`open_live`, `read_live`) and writing (`VideoWriter`), all with PyAV except still images
(Pillow). What each accepts, and how times and partial decodes are reported, is in
`docs/video.md`.

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
- A still image (`IMAGE_SUFFIXES`) is one frame at time 0 (`IMAGE_FPS`).
- A live frame's time is its timestamp relative to the first frame received
  (wall-clock arrival where the source has no timestamps).

Seeking (for sparse `indices`) maps a decoded frame back to its index through its
timestamp, which only works where timestamps are real and unique; elsewhere humact
decodes sequentially and converts only the frames asked for.

Truncated and corrupt files
---------------------------
A file cut short keeps its header, so the container still announces its full length
(AVI and MP4 a frame count, MKV/WebM a duration) while demuxing finds fewer frames.
`probe` indexes the frames that are there; `read_frames(..., report=DecodeReport())`
says how many were announced, indexed and decoded (`DecodeReport.partial`), and stops
at a decoding failure instead of raising. Without a report, a decoding failure raises
`TruncatedVideo`.
"""

from __future__ import annotations

import collections
import math
import os
import re
import threading
import time
import warnings
from array import array
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np

from humact.errors import InputError, LimitError
from humact.types import VideoMeta

__all__ = [
    "VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "IMAGE_FPS", "LIVE_SCHEMES", "VideoError", "VideoNotFound",
    "TruncatedVideo", "PartialDecodeWarning", "DecodeReport", "probe", "read_frames", "is_image",
    "VideoWriter", "LiveStats", "LiveStream", "open_live", "read_live",
]

#: File suffixes treated as videos when a folder is given.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".ogv"}
)

#: File suffixes read as still images (one frame at time 0), decoded with Pillow.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

#: The frame rate reported for a still image: one frame lasting one second.
IMAGE_FPS = 1.0

#: URL schemes `open_live` opens as network streams (FFmpeg protocols).
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "rtp", "srt")

# Seek instead of decoding through when the next wanted frame is this far ahead.
_SEEK_GAP = 48

# Containers whose header states the duration (written when the file is finalised) but no
# frame count; a stream ending well before it is cut short.
_DURATION_HEADER_FORMATS = ("matroska", "webm")



class VideoError(InputError):
    """A video, image or live source that cannot be read; the message names it and what is wrong."""


class VideoNotFound(VideoError, FileNotFoundError):
    """The path does not exist (also a `FileNotFoundError`)."""


class TruncatedVideo(VideoError):
    """Decoding failed part-way through a file; `report` holds how far it got."""

    def __init__(self, message: str, report: "DecodeReport"):
        super().__init__(message)
        self.report = report


class PartialDecodeWarning(UserWarning):
    """Fewer frames were decoded than the file announces; the result covers only those."""


@dataclass
class DecodeReport:
    """How much of a file `read_frames` read; pass an empty one in, it is filled as frames come.

    Attributes:
        path: the file.
        announced: frames the container's header announces (AVI, MP4 and MOV store a
            frame count; for MKV/WebM one estimated from the announced duration), or
            None when it states neither (MPEG-TS, fragmented MP4, ...).
        indexed: frames demuxing found, i.e. `probe(path).num_frames`.
        requested: frames asked for.
        decoded: frames decoded and yielded so far.
        announced_duration: seconds the header announces (MKV/WebM), else None.
        error: why reading stopped early (a demuxing or decoding failure), else None.
    """

    path: str = ""
    announced: int | None = None
    indexed: int = 0
    requested: int = 0
    decoded: int = 0
    announced_duration: float | None = None
    error: str | None = None

    @property
    def truncated(self) -> bool:
        """The file holds fewer frames than its header announces, or its stream is damaged."""
        return (self.announced is not None and self.indexed < self.announced) or self.error is not None

    @property
    def partial(self) -> bool:
        """Not every frame the file announces or the caller asked for was decoded."""
        return self.truncated or self.decoded < self.requested

    def describe(self) -> str:
        """One line for the user: what was decoded out of what, and why it stopped."""
        total = self.announced if self.announced is not None else self.indexed
        text = f"{self.path}: decoded {self.decoded} of {total} frames"
        if self.announced is not None and self.indexed < self.announced:
            what = (f"{self.announced_duration:.2f} s" if self.announced_duration is not None
                    else f"{self.announced} frames")
            text += f" (the container announces {what}, only {self.indexed} frames are in the file: truncated)"
        if self.error:
            text += f"; stopped: {self.error}"
        return text


@dataclass(frozen=True)
class _Index:
    meta: VideoMeta
    pts: np.ndarray  # (num_frames,) int64 sorted presentation timestamps, stream time base
    seekable: bool  # timestamps are real and unique, so a decoded frame maps back to its index
    announced: int | None = None  # frame count (or duration-based estimate) from the header
    announced_duration: float | None = None
    error: str | None = None  # why demuxing stopped before the end of the file


def is_image(path: str | os.PathLike) -> bool:
    """Whether `path` is read as a still image (by its suffix, `IMAGE_SUFFIXES`)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_file(path: str) -> None:
    if "://" in path and path.split("://", 1)[0].lower() in ("http", "https", "ftp"):
        return  # a recorded file FFmpeg fetches (an input list's URL); FFmpeg says if it is not there
    if not os.path.exists(path):
        raise VideoNotFound(f"{path}: no such file")
    if os.path.isdir(path):
        raise VideoError(f"{path}: is a directory, not a video file")


def _open(path: str):
    import av

    _check_file(path)
    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video FFmpeg can read ({e.strerror or e})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: contains no video stream")
    return container


def _index(path: str) -> _Index:
    if is_image(path):
        return _image_index(path)
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        pts: list[int] = []
        missing = 0
        error = None
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
            if not pts and not missing:
                raise VideoError(f"{path}: corrupt or truncated video stream ({e.strerror or e})") from e
            # Keep what came before the damage; the report says the file is partial.
            error = f"demuxing failed after {len(pts) + missing} frames ({e.strerror or e})"
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
        announced, announced_duration = None, None
        if stream.frames > 0:
            announced = int(stream.frames)
            if is_avi and not missing and tb:
                # AVI's header counts the empty "dropped frame" chunks of a variable-rate
                # source too; our timestamps are chunk numbers, so remove the gaps seen.
                slots = int(sorted_pts[-1]) + 1
                if slots <= announced:
                    announced -= slots - n
        elif container.format.name.split(",")[0] in _DURATION_HEADER_FORMATS and container.duration:
            announced_duration = container.duration / 1e6
            start = container.start_time / 1e6 if container.start_time is not None else float(times[0])
            end = float(times[-1]) + 1.0 / fps - start
            if end < announced_duration - max(2.0 / fps, 0.01 * announced_duration):
                announced = max(int(round(announced_duration * fps)), n + 1)
        meta = VideoMeta(path=path, width=width, height=height, fps=fps, num_frames=n, frame_times=times)
        return _Index(meta=meta, pts=sorted_pts, seekable=seekable, announced=announced,
                      announced_duration=announced_duration, error=error)
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------
# Still images


def _open_image(path: str):
    from PIL import Image, UnidentifiedImageError

    _check_file(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns about sizes between its limit and twice it; we refuse those below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise LimitError(f"{path}: the image is above the limit of {Image.MAX_IMAGE_PIXELS} pixels "
                         f"(PIL.Image.MAX_IMAGE_PIXELS): {e}") from e
    except UnidentifiedImageError as e:
        raise VideoError(f"{path}: not an image Pillow can read") from e
    except OSError as e:
        raise VideoError(f"{path}: cannot read the image ({e})") from e
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise VideoError(f"{path}: the image has no size (width={w}, height={h})")
    if w * h > Image.MAX_IMAGE_PIXELS:
        im.close()
        raise LimitError(f"{path}: image of {w}x{h} pixels is above the limit of {Image.MAX_IMAGE_PIXELS} "
                         f"pixels (PIL.Image.MAX_IMAGE_PIXELS)")
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        im.close()
        raise VideoError(f"{path}: an animated image with {frames} frames; convert it to a video file")
    return im


def _oriented_size(im) -> tuple[int, int]:
    w, h = im.size
    # EXIF orientations 5-8 are transposed (rotated by 90 degrees): shown as h x w.
    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        w, h = h, w
    return w, h


def _image_index(path: str) -> _Index:
    im = _open_image(path)
    try:
        w, h = _oriented_size(im)
    finally:
        im.close()
    meta = VideoMeta(path=path, width=w, height=h, fps=IMAGE_FPS, num_frames=1, frame_times=np.zeros(1))
    return _Index(meta=meta, pts=np.zeros(1, np.int64), seekable=False, announced=1)


def _read_image(path: str) -> np.ndarray:
    """The image as upright RGB (H, W, 3) uint8: EXIF orientation applied, grey expanded,
    16-bit scaled to 8 bits, transparency composited over white."""
    from PIL import ImageOps

    im = _open_image(path)
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            grey = np.asarray(im, dtype=np.int64)
            rgb = np.clip(grey >> 8, 0, 255).astype(np.uint8)
            return np.repeat(rgb[..., None], 3, axis=2)
        if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
            alpha = rgba[..., 3:]
            # Over a white page, as an image viewer shows it; rounded, exact at alpha 0 and 255.
            return ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except OSError as e:
        raise VideoError(f"{path}: corrupt or truncated image ({e})") from e
    finally:
        im.close()


# ---------------------------------------------------------------------------------------------
# Files


def probe(path: str | os.PathLike) -> VideoMeta:
    """Read a video's size, frame rate, frame count and exact frame times without decoding.

    A still image (`IMAGE_SUFFIXES`) is one frame at time 0 with fps `IMAGE_FPS`, its size
    as shown (after EXIF orientation). A file cut short gives the frames actually in it
    (`read_frames`' `DecodeReport` says how many the header announced).

    Raises:
        VideoNotFound (a FileNotFoundError): `path` does not exist.
        VideoError: not a video, no video stream, zero frames, or an unreadable stream.
        LimitError: an image beyond `PIL.Image.MAX_IMAGE_PIXELS`.
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


def _rgb_converter():
    """A function frame -> (H, W, 3) uint8 RGB that keeps one swscale context for a whole
    stream. `frame.to_ndarray(format="rgb24")` sets one up for every frame; reusing it gives
    the same pixels (`tests/test_video.py` checks them bit for bit) sooner: decoding plus
    conversion of the 1080p hug video took 5.4-6.1 against 8.9-9.3 ms a frame
    (`benchmarks/perception.py`, 2 threads)."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    return lambda frame: reformatter.reformat(frame, format="rgb24").to_ndarray()


def read_frames(
    path: str | os.PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    indices: Iterable[int] | None = None,
    threads: int = 0,
    report: DecodeReport | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode frames as `(index, rgb)` pairs, `rgb` of shape (H, W, 3) uint8.

    Either a range (`start`, `stop`, `step`, like Python's `range`) or explicit
    `indices` (any order, duplicates ignored; yielded ascending). Frames not asked
    for are decoded (codecs need them) but never converted to RGB; far jumps seek
    where the container's timestamps allow it. A still image yields its one frame.

    Args:
        threads: decoder threads (0 = FFmpeg's choice).
        report: filled in while decoding (announced / indexed / requested / decoded
            frames, see `DecodeReport`). With a report, a decoding failure part-way ends
            the iteration and is recorded in `report.error`; without one it raises
            `TruncatedVideo`.

    Raises:
        VideoNotFound, VideoError, LimitError: as `probe`.
        TruncatedVideo: decoding failed mid-stream and no `report` was given (the
            message names the file and the frame index).
    """
    import av

    path = os.fspath(path)
    idx = _index(path)
    want = _wanted(idx.meta.num_frames, start, stop, step, indices)
    rep = report if report is not None else DecodeReport()
    rep.path, rep.announced, rep.indexed = path, idx.announced, idx.meta.num_frames
    rep.announced_duration, rep.error = idx.announced_duration, idx.error
    rep.requested, rep.decoded = int(want.size), 0

    def fail(message: str, cause: BaseException | None = None) -> None:
        if report is None:
            raise TruncatedVideo(f"{path}: {message}", rep) from cause
        rep.error = message

    if want.size == 0:
        return
    if is_image(path):
        rgb = _read_image(path)
        rep.decoded = 1
        yield 0, rgb
        return
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        pts_to_index = {int(p): i for i, p in enumerate(idx.pts)} if idx.seekable else None
        to_rgb = _rgb_converter()
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
                        rep.decoded += 1
                        yield current, to_rgb(frame)
                        k += 1
                        if k == len(want):
                            return
                        if pts_to_index is not None and want[k] - current > _SEEK_GAP:
                            break  # far ahead: seek rather than decode through
                else:
                    break  # the stream ended
            except av.error.FFmpegError as e:
                fail(f"corrupt or truncated video: decoding failed after frame {current} ({e.strerror or e})", e)
                return
        if k < len(want):
            fail(f"corrupt or truncated video: {idx.meta.num_frames} frames indexed, "
                 f"frame {int(want[k])} could not be decoded")
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------
# Writing


class VideoWriter:
    """Write RGB frames to a video file with PyAV (H.264 in .mp4/.mkv/.mov, MPEG-4 Part 2 elsewhere).

    Use as a context manager; write frames (H, W, 3) uint8 RGB with `write`, each at
    its real presentation time `time_s` when given (variable frame rate is kept), else
    one `1 / fps` after the previous frame. Times are stored in a 1/90000 s time base
    (H.264; MKV rounds them to its 1/1000 s), and in AVI (no timestamps) to the nearest
    `1 / fps` slot, FFmpeg filling skipped slots with empty "dropped frame" chunks so the
    file still plays at the real speed. A time not after the previous frame's is moved
    one time-base step after it. The last frame lasts `1 / fps`.

    The caller makes it atomic by writing to a temporary path (`humact.io.atomic.atomic_path`).
    """

    #: Time base of H.264 output: fine enough for any frame time (the MPEG-TS clock).
    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: float, crf: int = 23):
        import av

        self.path = os.fspath(path)
        self._container = av.open(self.path, mode="w")
        codec = "libx264" if self.path.lower().endswith((".mp4", ".mkv", ".mov")) else "mpeg4"
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._rate = rate
        self._stream = self._container.add_stream(codec, rate=rate)
        # yuv420p needs even sizes.
        self._stream.width = width - width % 2
        self._stream.height = height - height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # No B-frames: with them H.264 decode times lag presentation times by a fixed
            # number of frames, which makes MP4's track duration wrong at variable frame rate.
            self._stream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0"}
            self._tb = self.TIME_BASE
        else:
            self._tb = 1 / rate  # MPEG-4 Part 2 time bases are limited to 16 bits
        self._stream.codec_context.time_base = self._tb
        self._stream.time_base = self._tb
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}  # pts -> duration of that frame, once the next one is known
        self._held: list = []  # packets waiting for their frame's duration

    def _mux(self, packets, final: bool = False) -> None:
        self._held.extend(packets)
        keep = []
        for p in self._held:
            if p.pts is not None and p.pts in self._durations:
                p.duration = self._durations.pop(p.pts)
            elif not final:
                keep.append(p)
                continue
            self._container.mux(p)
        self._held = keep

    def write(self, rgb: np.ndarray, time_s: float | None = None) -> None:
        """Encode one frame (H, W, 3) uint8 RGB, at `time_s` seconds when given."""
        import av

        step = max(1, round(1 / (self._rate * self._tb)))
        if time_s is None:
            pts = 0 if self._last_pts is None else self._last_pts + step
        else:
            if not math.isfinite(time_s):
                raise ValueError(f"{self.path}: time_s must be a finite number of seconds, got {time_s}")
            pts = round(Fraction(time_s) / self._tb)
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
        if self._last_pts is not None:
            self._durations[self._last_pts] = pts - self._last_pts
        self._last_pts = pts
        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        frame.pts, frame.time_base = pts, self._tb
        self._mux(self._stream.encode(frame))

    def close(self) -> None:
        if self._last_pts is not None:
            self._durations[self._last_pts] = max(1, round(1 / (self._rate * self._tb)))
        self._mux(self._stream.encode(), final=True)
        self._container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()


# ---------------------------------------------------------------------------------------------
# Live sources


@dataclass
class LiveStats:
    """Counters of one live source (updated while it runs).

    Attributes:
        queue_size: most frames ever held between the reader and the consumer.
        received: frames decoded from the source.
        delivered: frames handed to the consumer.
        dropped: frames discarded because the queue was full (policy "drop_oldest").
        max_depth: most frames that were waiting in the queue at once (<= queue_size).
    """

    queue_size: int = 0
    received: int = 0
    delivered: int = 0
    dropped: int = 0
    max_depth: int = 0


class _FrameQueue:
    """A bounded FIFO between the reader thread and the consumer.

    When full, `put` either discards the oldest waiting frame (`drop=True`: the consumer
    always gets the newest frames, with bounded latency) or waits for room (`drop=False`).
    The end of the stream is a flag, never an item, so it cannot be dropped.
    """

    def __init__(self, stats: LiveStats, *, drop: bool):
        self._items: collections.deque = collections.deque()
        self._stats = stats
        self._drop = drop
        self._cond = threading.Condition()
        self.finished = False  # the producer is done
        self.error: BaseException | None = None
        self.stopped = False  # the consumer is gone

    def put(self, item) -> bool:
        """Queue `item`; False once the consumer has stopped (the producer should end)."""
        with self._cond:
            size = self._stats.queue_size
            while not self._drop and len(self._items) >= size and not self.stopped:
                self._cond.wait(0.1)
            if self.stopped:
                return False
            if len(self._items) >= size:
                self._items.popleft()
                self._stats.dropped += 1
            self._items.append(item)
            self._stats.max_depth = max(self._stats.max_depth, len(self._items))
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.finished, self.error = True, error
            self._cond.notify_all()

    def get(self, timeout: float):
        """The oldest waiting item; None once the producer finished and nothing is left.

        Raises TimeoutError when nothing arrives for `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items and not self.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self._cond.wait(min(left, 0.25))
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._items.clear()
            self._cond.notify_all()


def _live_source(source: int | str | os.PathLike) -> tuple[str, str | None]:
    """(what FFmpeg opens, the input format to force or None)."""
    if isinstance(source, bool) or not isinstance(source, (int, str, os.PathLike)):
        raise VideoError(f"{source!r}: a live source is a URL, a device path or a device number, "
                         f"got {type(source).__name__}")
    if isinstance(source, int):
        if source < 0:
            raise VideoError(f"{source}: a device number must be >= 0 (N means /dev/videoN)")
        return f"/dev/video{source}", "v4l2"
    text = os.fspath(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme:
        if scheme not in LIVE_SCHEMES:
            raise VideoError(f"{text}: unsupported live URL scheme {scheme!r}; expected one of "
                             + ", ".join(f"{s}://" for s in LIVE_SCHEMES))
        return text, None
    if re.fullmatch(r"/dev/video\d+", text):
        return text, "v4l2"
    if os.path.exists(text) and not os.path.isdir(text):
        return text, None  # a pipe (FIFO), a growing file, or a plain file read as a stream
    raise VideoError(f"{text}: not a live source: expected a URL ({', '.join(s + '://' for s in LIVE_SCHEMES[:6])}"
                     f", ...), a device /dev/videoN or its number N, or an existing pipe or file")


class LiveStream:
    """A live source being read by a background thread, frames handed over as they arrive.

    Built by `open_live`; iterate `frames()` once. A reader thread decodes frames into a
    queue of at most `queue_size` frames; when the consumer is slower than the source,
    `when_full="drop_oldest"` (the default) discards the oldest waiting frame, so memory
    is bounded and the consumer always works on recent frames; `"wait"` makes the reader
    wait instead (nothing is dropped here; a live source's own buffers may then
    overflow). Frames are converted to RGB only when handed over. Indices count every
    frame received, so dropped frames leave gaps.

    Attributes:
        source: the URL or device path opened.
        width, height: frame size in pixels.
        fps: the stream's nominal frame rate, 0.0 when it states none.
        stats: `LiveStats`, updated as frames come and go.
        frame_times: times (seconds from the first frame) of every frame received,
            dropped ones included: 8 bytes per frame.
    """

    def __init__(self, container, source: str, *, queue_size: int, when_full: str, timeout: float,
                 stats: LiveStats | None = None):
        self._container = container
        self.source = source
        stream = container.streams.video[0]
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.timeout = timeout
        self.stats = stats if stats is not None else LiveStats()
        self.stats.queue_size = queue_size
        self.frame_times = array("d")
        self._queue = _FrameQueue(self.stats, drop=when_full == "drop_oldest")
        self._thread: threading.Thread | None = None
        self._closed = False

    def _read(self) -> None:
        import av

        container = self._container
        error: BaseException | None = None
        t0: float | None = None
        wall0 = time.monotonic()

        def hand_over(frame) -> bool:
            nonlocal t0
            if frame.pts is not None and frame.time_base is not None:
                t = float(frame.pts * frame.time_base)
            else:
                t = time.monotonic() - wall0
            t0 = t if t0 is None else t0
            index = self.stats.received
            self.frame_times.append(t - t0)
            self.stats.received += 1
            return self._queue.put((index, t - t0, frame))

        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for packet in container.demux(stream):
                    # The last packet is empty and flushes the decoder.
                    for frame in packet.decode():
                        if self._queue.stopped or not hand_over(frame):
                            return
            except av.error.EOFError:
                pass
            except (av.error.FFmpegError, OSError) as e:
                error = e
                # The frames still inside the decoder are good: hand them over before the error.
                try:
                    for frame in stream.codec_context.decode(None):
                        if self._queue.stopped or not hand_over(frame):
                            return
                except (av.error.FFmpegError, OSError):
                    pass
        finally:
            try:
                container.close()
            finally:
                self._queue.finish(error)

    def _start(self) -> None:
        if self._thread is None:
            if self._closed:
                raise VideoError(f"{self.source}: the live stream was closed")
            self._thread = threading.Thread(target=self._read, name=f"humact-live {self.source}", daemon=True)
            self._thread.start()

    def frames(self, *, max_frames: int | None = None,
               timeout: float | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """Yield `(index, time_s, rgb)` as frames arrive, rgb (H, W, 3) uint8.

        Ends when the stream ends, after `max_frames` frames, or when the caller stops
        iterating; the stream is closed then.

        Raises:
            VideoError: no frame for `timeout` seconds (default: the stream's), or the
                source failed (the message names it and says after how many frames).
        """
        if self._thread is not None:
            raise VideoError(f"{self.source}: frames() can be iterated only once per open_live")
        timeout = self.timeout if timeout is None else timeout
        self._start()
        to_rgb = _rgb_converter()
        try:
            while max_frames is None or self.stats.delivered < max_frames:
                try:
                    item = self._queue.get(timeout)
                except TimeoutError:
                    raise VideoError(f"{self.source}: no frame arrived for {timeout:g} s "
                                     f"(after {self.stats.received} frames)") from None
                if item is None:
                    err = self._queue.error
                    if err is not None:
                        why = getattr(err, "strerror", None) or err
                        raise VideoError(f"{self.source}: the live stream failed after "
                                         f"{self.stats.received} frames ({why})") from err
                    return
                index, t, frame = item
                rgb = to_rgb(frame)
                if not self.width:
                    self.height, self.width = rgb.shape[:2]
                self.stats.delivered += 1
                yield index, t, rgb
        finally:
            self.close()

    def close(self, wait: float = 2.0) -> None:
        """Stop the reader (it ends after its current frame, or its read timeout on a stalled
        network source) and free the queue."""
        self._closed = True
        self._queue.stop()
        if self._thread is None:
            self._container.close()
        elif self._thread is not threading.current_thread():
            self._thread.join(wait)

    def __enter__(self) -> "LiveStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_live(
    source: int | str | os.PathLike,
    *,
    options: dict[str, str] | None = None,
    queue_size: int = 4,
    when_full: Literal["drop_oldest", "wait"] = "drop_oldest",
    timeout: float = 10.0,
    stats: LiveStats | None = None,
) -> LiveStream:
    """Open a live source without reading it through: a network URL (`LIVE_SCHEMES`:
    rtsp://, http(s)://, udp://, ...), a V4L2 device `/dev/videoN` or its number N, or a
    pipe / growing file.

    Args:
        options: FFmpeg options for the input (e.g. `{"rtsp_transport": "udp"}`, or a
            webcam's `{"video_size": "1280x720", "framerate": "30", "input_format":
            "mjpeg"}`). RTSP defaults to `rtsp_transport=tcp`.
        queue_size: frames held at most between the reader and the consumer.
        when_full: what the reader does when the queue is full (see `LiveStream`).
        timeout: seconds to wait for the source to open, and for each frame.
        stats: a `LiveStats` to fill (the stream makes its own when None).

    Raises:
        VideoError: the source cannot be opened or has no video stream (the message
            names it and FFmpeg's reason), or an argument is out of range.
    """
    import av

    url, fmt = _live_source(source)
    if queue_size < 1:
        raise VideoError(f"{url}: queue_size must be >= 1, got {queue_size}")
    if when_full not in ("drop_oldest", "wait"):
        raise VideoError(f"{url}: when_full must be 'drop_oldest' or 'wait', got {when_full!r}")
    if not timeout > 0:
        raise VideoError(f"{url}: timeout must be > 0 seconds, got {timeout}")
    opts = dict(options or {})
    if url.lower().startswith(("rtsp://", "rtsps://")):
        opts.setdefault("rtsp_transport", "tcp")
    try:
        container = av.open(url, format=fmt, options=opts, timeout=(timeout, timeout))
    except (av.error.FFmpegError, OSError) as e:
        why = getattr(e, "strerror", None) or e
        raise VideoError(f"{url}: cannot open the live source ({why})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{url}: the live source has no video stream")
    return LiveStream(container, url, queue_size=queue_size, when_full=when_full, timeout=timeout, stats=stats)


def read_live(
    source: int | str | os.PathLike,
    *,
    max_frames: int | None = None,
    timeout: float = 10.0,
    options: dict[str, str] | None = None,
    queue_size: int = 4,
    when_full: Literal["drop_oldest", "wait"] = "drop_oldest",
    stats: LiveStats | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield `(index, time_s, rgb)` from a live source as frames arrive (`open_live` +
    `LiveStream.frames`); `stats`, when given, is filled with the stream's counters."""
    live = open_live(source, options=options, queue_size=queue_size, when_full=when_full, timeout=timeout,
                     stats=stats)
    yield from live.frames(max_frames=max_frames)
