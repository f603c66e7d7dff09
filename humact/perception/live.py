"""Perception on a live source: a webcam, an RTSP/HTTP/UDP stream or a pipe, frame by frame.

    open_live (humact.video)            frames as they arrive, bounded queue (drops the oldest)
      -> PoseBackend (backend.py)       Detections of that frame
      -> refine_and_track (pipeline.py) plausibility, duplicates, refine_boxes, Tracker.update: track ids
    yielded per frame; at the end       pipeline.result_from_tracker -> VideoResult

The same chain as `pipeline.extract_video`, run on frames as they come instead of a
file's frames, so a session can be stopped at any time (end of stream, `max_frames`,
Ctrl-C) and still gives the `VideoResult` of everything processed.

Memory: the frame queue holds at most `queue_size` frames; what grows with the session
is the tracker's history (one row per detected person per frame, a few hundred bytes
to ~2 KB with BlazePose's landmarks) and 8 bytes of frame time per frame received.

    with extract_live("rtsp://camera/stream", max_frames=3000) as session:
        for det in session:          # Detections of one frame, with track ids
            ...
    result = session.result()        # VideoResult of every frame processed
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Iterator, Literal

import numpy as np

from humact.perception.backend import PoseBackend
from humact.perception.pipeline import ExtractConfig, make_backend, make_tracker, refine_and_track, result_from_tracker
from humact.types import Detections, VideoMeta, VideoResult
from humact.video import LiveStream, PartialDecodeWarning, VideoError, open_live

__all__ = ["LiveExtraction", "extract_live"]


class LiveExtraction:
    """One perception session on a live source (built by `extract_live`).

    Iterate it once to get each processed frame's `Detections` as it arrives (the rows
    of confirmed tracks carry their id; a new person's first `min_hits` frames carry -1
    until the track is confirmed, and get the id in `result()`). Iteration ends when the
    stream ends, after `max_frames` frames, when the caller stops, or on Ctrl-C
    (`interrupted` is then True; an interrupt while the caller's own loop body runs
    propagates as usual). A stream that fails or stalls after frames were processed
    ends the iteration too, with the reason in `error` and the result partial.

    Attributes:
        source: the URL or device opened.
        stream: the `humact.video.LiveStream` (its `stats`: received, dropped, queue depth).
        frames_processed: frames run through the chain so far.
        interrupted: iteration ended on KeyboardInterrupt.
        error: why the stream ended early, or None.
    """

    def __init__(self, stream: LiveStream, *, config: ExtractConfig, backend: PoseBackend,
                 on_frame: Callable[[int, np.ndarray, Detections], None] | None, max_frames: int | None):
        self.stream = stream
        self.source = stream.source
        self.config = config
        self.backend = backend
        self.backend.reset()
        self.tracker = make_tracker(config, getattr(stream, 'fps', None), backend)
        self.on_frame = on_frame
        self.max_frames = max_frames
        self.frames_processed = 0
        self.last_index = -1
        self.interrupted = False
        self.error: str | None = None
        self._started = False

    def __iter__(self) -> Iterator[Detections]:
        if self._started:
            raise VideoError(f"{self.source}: a live extraction can be iterated only once")
        self._started = True
        try:
            for index, _t, rgb in self.stream.frames(max_frames=self.max_frames):
                det = self.backend(rgb, index)
                det = refine_and_track(det, self.tracker, config=self.config,
                                       image_size=(rgb.shape[1], rgb.shape[0]), frame=index, image=rgb)
                self.frames_processed += 1
                self.last_index = index
                if self.on_frame is not None:
                    self.on_frame(index, rgb, det)
                yield det
        except KeyboardInterrupt:
            self.interrupted = True
        except VideoError as e:
            if self.frames_processed == 0:
                raise
            self.error = str(e)
            warnings.warn(self.error, PartialDecodeWarning, stacklevel=2)
        finally:
            self.stream.close()

    def frame_time(self, index: int) -> float:
        """Seconds from the first frame received to frame `index`."""
        return float(self.stream.frame_times[index])

    def result(self) -> VideoResult:
        """The `VideoResult` of every frame processed so far (callable during or after the loop).

        Its video covers frames 0 .. the last one processed (frames dropped by the queue
        are in it, with nobody found); `frames_decoded` is the number processed, and the
        result is `partial`, with a warning, when frames were dropped or the stream failed.
        """
        n = self.last_index + 1
        # A slice copies under the GIL; a buffer view would block the reader thread's appends.
        times = np.array(self.stream.frame_times[:n], dtype=np.float64)
        fps = self.stream.fps
        if fps <= 0:
            span = times[-1] - times[0] if n > 1 else 0.0
            fps = (n - 1) / span if span > 0 else 25.0
        meta = VideoMeta(path=self.source, width=self.stream.width, height=self.stream.height, fps=fps,
                         num_frames=n, frame_times=times)
        result = result_from_tracker(self.tracker, meta, config=self.config,
                                     backend=getattr(self.backend, "name", self.config.backend))
        result.frames_decoded = self.frames_processed
        skipped = n - self.frames_processed
        if skipped:
            result.warnings.append(f"{self.source}: {skipped} of {n} frames were dropped because processing "
                                   f"was slower than the stream (queue of {self.stream.stats.queue_size})")
        if self.error:
            result.warnings.append(self.error)
        result.partial = bool(result.warnings)
        return result

    def close(self) -> None:
        """Stop reading the source (the result stays available)."""
        self.stream.close()

    def __enter__(self) -> "LiveExtraction":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def extract_live(
    source: int | str | os.PathLike,
    *,
    config: ExtractConfig | None = None,
    backend: PoseBackend | None = None,
    on_frame: Callable[[int, np.ndarray, Detections], None] | None = None,
    max_frames: int | None = None,
    timeout: float = 10.0,
    queue_size: int = 4,
    when_full: Literal["drop_oldest", "wait"] = "drop_oldest",
    options: dict[str, str] | None = None,
) -> LiveExtraction:
    """Detect, pose and track the people of a live source, frame by frame as frames arrive.

    Args:
        source: a URL (rtsp://, http(s)://, udp://, ...), a device `/dev/videoN` or its
            number N, or a pipe (see `humact.video.open_live`).
        config: settings; `ExtractConfig()` when None.
        backend: a ready backend; built from `config` when None.
        on_frame: called as `on_frame(index, rgb, det)` after each frame is processed
            (`rgb` (H, W, 3) uint8, `det` its tracked Detections), e.g. to show it.
        max_frames: stop after this many processed frames (None: until the stream ends).
        timeout: seconds to wait for the source to open and for each frame.
        queue_size, when_full: the frame queue between the source and the chain (see
            `humact.video.LiveStream`): by default the oldest waiting frame is dropped
            when processing is slower than the source.
        options: FFmpeg input options (see `open_live`).

    Returns:
        A `LiveExtraction`: iterate it for per-frame `Detections`, then `result()`.

    Raises:
        humact.video.VideoError: the source cannot be opened (now), or gives no frame at all.
    """
    config = config or ExtractConfig()
    stream = open_live(source, options=options, queue_size=queue_size, when_full=when_full, timeout=timeout)
    try:
        backend = backend or make_backend(config)
    except BaseException:
        stream.close()
        raise
    return LiveExtraction(stream, config=config, backend=backend, on_frame=on_frame, max_frames=max_frames)
