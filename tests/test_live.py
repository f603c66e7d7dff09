"""Live sources: frames as they arrive from HTTP streams and pipes, a bounded queue that drops
the oldest frame for a slow consumer, clear errors for sources that cannot be read, and the
perception chain run live (`extract_live`) with a `VideoResult` at the end.

Streams are served by `http.server` threads started here (with byte ranges, as FFmpeg seeks
MP4 over HTTP, or paced like a live broadcast); no network and no ffmpeg binary needed.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from humact.perception.live import extract_live
from humact.types import Detections
from humact.video import LiveStats, PartialDecodeWarning, VideoError, VideoWriter, open_live, probe, read_live

W, H, FPS = 64, 48, 25


# --- sources ----------------------------------------------------------------------------------


def _frame(k: int) -> np.ndarray:
    """A frame whose colour encodes its index (coarse enough to survive lossy coding)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 20 + 16 * (k % 14)
    rgb[..., 1] = 20 + 16 * (k // 14)
    rgb[..., 2] = 128
    return rgb


def _index_of(rgb: np.ndarray) -> int:
    r, g = (float(rgb[..., c].mean()) for c in (0, 1))
    return int(round((r - 20) / 16)) + 14 * int(round((g - 20) / 16))


def _clip(path: Path, n: int) -> Path:
    with VideoWriter(path, width=W, height=H, fps=FPS) as w:
        for k in range(n):
            w.write(_frame(k))
    return path


class _Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that stops reading early resets the connection: expected here


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Files of a folder, with `Range: bytes=a-b` requests answered (206) as real servers do."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(m[1]), int(m[2]) if m[2] else size - 1
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return _Slice(f, end - start + 1)


class _Slice:
    def __init__(self, f, n: int):
        self.f, self.n = f, n

    def read(self, k: int = -1) -> bytes:
        data = self.f.read(self.n if k < 0 else min(k, self.n))
        self.n -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


class _PacedHandler(http.server.BaseHTTPRequestHandler):
    """Sends `data` bit by bit over `seconds`, like a live broadcast; `stall_after` bytes then
    silence; without `length` the stream just stops (connection closed, no Content-Length)."""

    data = b""
    seconds = 1.0
    length = True
    stall_after: int | None = None
    finished_at: float | None = None

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        if self.length:
            self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        n = len(self.data)
        chunk = max(188, n // 50)
        try:
            for k in range(0, n, chunk):
                if self.stall_after is not None and k >= self.stall_after:
                    time.sleep(30)
                    return
                if k:
                    time.sleep(self.seconds * chunk / n)
                self.wfile.write(self.data[k: k + chunk])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        type(self).finished_at = time.monotonic()


def _serve(handler) -> tuple[http.server.HTTPServer, str]:
    server = _Quiet(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def files(tmp_path):
    """An HTTP server for `tmp_path`; yields a function name -> URL."""
    server, base = _serve(functools.partial(_RangeHandler, directory=str(tmp_path)))
    yield lambda name: f"{base}/{name}"
    server.shutdown()
    server.server_close()


def _paced(data: bytes, **attrs):
    handler = type("Paced", (_PacedHandler,), {"data": data, **attrs})
    server, base = _serve(handler)
    return server, f"{base}/live.ts", handler


def _no_reader_threads(wait: float = 3.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not any(t.name.startswith("humact-live") for t in threading.enumerate()):
            return True
        time.sleep(0.05)
    return False


# --- read_live ----------------------------------------------------------------------------------


def test_frames_of_a_video_served_over_http_come_in_order_with_their_times(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 40)
    got = list(read_live(files("clip.mp4"), when_full="wait"))
    assert [i for i, _, _ in got] == list(range(40))
    assert [_index_of(rgb) for _, _, rgb in got] == list(range(40))
    assert np.allclose([t for _, t, _ in got], np.arange(40) / FPS, atol=1e-4)
    assert got[0][2].shape == (H, W, 3) and got[0][2].dtype == np.uint8


def test_frames_arrive_while_the_stream_is_still_being_sent(tmp_path):
    data = _clip(tmp_path / "live.ts", 100).read_bytes()
    server, url, handler = _paced(data, seconds=1.5)
    try:
        start = time.monotonic()
        arrivals = [time.monotonic() for _ in read_live(url, when_full="wait")]
    finally:
        server.shutdown()
    assert len(arrivals) == 100
    assert arrivals[0] < handler.finished_at - 0.5  # the first frames came long before the last byte
    assert arrivals[0] - start < 1.0


def test_a_slow_consumer_gets_the_newest_frames_and_the_queue_never_exceeds_its_bound(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 150)
    stats = LiveStats()
    seen = []
    for index, _, rgb in read_live(files("clip.mp4"), queue_size=3, stats=stats):
        time.sleep(0.01)  # slower than the source
        seen.append(index)
    assert stats.queue_size == 3 and 1 <= stats.max_depth <= 3
    assert stats.dropped > 0 and stats.delivered + stats.dropped == stats.received == 150
    assert seen == sorted(set(seen)) and seen[-1] == 149  # gaps where frames were dropped, newest last


def test_the_wait_policy_delivers_every_frame_within_the_same_bound(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 60)
    stats = LiveStats()
    seen = []
    for index, _, _ in read_live(files("clip.mp4"), queue_size=2, when_full="wait", stats=stats):
        time.sleep(0.005)
        seen.append(index)
    assert seen == list(range(60)) and stats.dropped == 0 and stats.max_depth <= 2


def test_max_frames_stops_the_stream_and_its_reader_thread(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 100)
    got = [i for i, _, _ in read_live(files("clip.mp4"), max_frames=5, when_full="wait")]
    assert got == [0, 1, 2, 3, 4]
    assert _no_reader_threads()


def test_a_pipe_is_read_as_a_live_source(tmp_path):
    data = _clip(tmp_path / "clip.ts", 30).read_bytes()
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            for k in range(0, len(data), 4096):
                f.write(data[k: k + 4096])
                f.flush()
                time.sleep(0.01)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got = [_index_of(rgb) for _, _, rgb in read_live(fifo, when_full="wait")]
    writer.join(5)
    assert got == list(range(30))


def test_a_stream_that_stops_abruptly_hands_over_every_frame_then_names_the_failure(tmp_path):
    data = _clip(tmp_path / "live.ts", 50).read_bytes()
    server, url, _ = _paced(data, seconds=0.3, length=False)
    got = []
    try:
        with pytest.raises(VideoError, match=r"live\.ts: the live stream failed after 50 frames"):
            for index, _, _ in read_live(url, when_full="wait"):
                got.append(index)
    finally:
        server.shutdown()
    assert got == list(range(50))


def test_a_stalled_stream_is_a_video_error_after_the_timeout(tmp_path):
    data = _clip(tmp_path / "live.ts", 100).read_bytes()
    server, url, _ = _paced(data, seconds=0.2, stall_after=len(data) // 2)
    start = time.monotonic()
    try:
        with pytest.raises(VideoError, match=re.escape(url)):
            for _ in read_live(url, timeout=1.0):
                pass
    finally:
        server.shutdown()
    assert time.monotonic() - start < 6.0
    assert _no_reader_threads()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_url_is_a_video_error_naming_it():
    url = f"http://127.0.0.1:{_closed_port()}/cam.mp4"
    with pytest.raises(VideoError, match=re.escape(url) + r": cannot open the live source \(Connection refused"):
        open_live(url, timeout=2.0)


def test_a_missing_stream_names_the_url_and_the_servers_answer(files):
    with pytest.raises(VideoError, match=r"nothing\.mp4: cannot open the live source .*404"):
        next(read_live(files("nothing.mp4")))


def test_a_device_number_means_its_v4l2_device():
    with pytest.raises(VideoError, match=r"/dev/video97: cannot open the live source"):
        open_live(97)


@pytest.mark.parametrize("source, message", [
    ("ftp://host/cam", r"ftp://host/cam: unsupported live URL scheme 'ftp'"),
    ("/no/such/pipe", r"/no/such/pipe: not a live source: expected a URL"),
    (-1, r"-1: a device number must be >= 0"),
    (True, r"True: a live source is a URL"),
])
def test_what_is_not_a_live_source_is_refused_naming_it(source, message):
    with pytest.raises(VideoError, match=message):
        open_live(source)


def test_queue_settings_out_of_range_are_refused(tmp_path):
    path = _clip(tmp_path / "clip.mp4", 2)
    with pytest.raises(VideoError, match="queue_size must be >= 1"):
        open_live(path, queue_size=0)
    with pytest.raises(VideoError, match="when_full must be"):
        open_live(path, when_full="grow")


# --- extract_live -------------------------------------------------------------------------------


class _Walker:
    """One person walking right by a pixel a frame (no model files needed); optionally slow,
    or pressing Ctrl-C at frame `interrupt_at`."""

    name = "walker"

    def __init__(self, delay: float = 0.0, interrupt_at: int | None = None):
        self.delay, self.interrupt_at = delay, interrupt_at
        self.frames: list[int] = []

    def reset(self) -> None:
        self.frames = []

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        if frame_index == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.delay)
        self.frames.append(frame_index)
        x = 10.0 + 0.3 * frame_index
        kp = np.stack([x + np.linspace(0, 12, 17), np.linspace(5, 40, 17)], -1).astype(np.float32)
        return Detections(frame=[frame_index], xyxy=[[*kp.min(0), *kp.max(0)]], score=[0.9], keypoints=kp[None],
                          keypoint_scores=np.full((1, 17), 0.9, np.float32))


def test_extract_live_yields_tracked_detections_as_frames_arrive_and_a_result_at_the_end(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 30)
    url = files("clip.mp4")
    seen = []
    with extract_live(url, backend=_Walker(), when_full="wait", on_frame=lambda i, rgb, det: seen.append(i)) as live:
        dets = list(live)
    assert [d.frame.tolist() for d in dets] == [[k] for k in range(30)] and seen == list(range(30))
    assert all(d.track_id.tolist() == [0] for d in dets)  # one person, confirmed at once
    result = live.result()
    assert result.meta.path == url and (result.meta.width, result.meta.height) == (W, H)
    assert result.meta.num_frames == 30 and np.allclose(result.meta.frame_times, np.arange(30) / FPS, atol=1e-4)
    assert result.tracks.num_persons == 1 and result.tracks.valid.all() and result.parts is not None
    assert result.frames_decoded == 30 and not result.partial and result.warnings == []
    assert result.backend == "walker"


def test_extract_live_stops_after_max_frames(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 50)
    live = extract_live(files("clip.mp4"), backend=_Walker(), max_frames=12, when_full="wait")
    assert len(list(live)) == 12
    assert live.result().meta.num_frames == 12 and live.result().tracks.valid.all()
    assert _no_reader_threads()


def test_ctrl_c_ends_a_live_session_and_keeps_what_was_processed(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 50)
    live = extract_live(files("clip.mp4"), backend=_Walker(interrupt_at=10), when_full="wait")
    assert len(list(live)) == 10  # no exception reaches the caller
    assert live.interrupted
    result = live.result()
    assert result.meta.num_frames == 10 and result.tracks.valid.all()
    assert _no_reader_threads()


def test_a_slow_chain_drops_frames_keeps_the_queue_bounded_and_marks_the_result_partial(tmp_path, files):
    _clip(tmp_path / "clip.mp4", 120)
    backend = _Walker(delay=0.01)
    live = extract_live(files("clip.mp4"), backend=backend, queue_size=2)
    dets = list(live)
    stats = live.stream.stats
    assert stats.max_depth <= 2 and stats.dropped > 0 and stats.received == 120
    assert len(dets) == stats.delivered == len(backend.frames) < 120
    result = live.result()
    assert result.meta.num_frames == backend.frames[-1] + 1
    assert np.flatnonzero(result.tracks.valid.any(axis=0)).tolist() == backend.frames  # dropped: nobody seen
    assert result.partial and result.frames_decoded == len(dets)
    assert "were dropped because processing was slower than the stream" in result.warnings[0]


def test_a_live_stream_that_fails_after_frames_ends_the_session_with_a_warning(tmp_path):
    data = _clip(tmp_path / "live.ts", 40).read_bytes()
    server, url, _ = _paced(data, seconds=0.3, length=False)
    try:
        live = extract_live(url, backend=_Walker(), when_full="wait")
        with pytest.warns(PartialDecodeWarning, match=r"live\.ts: the live stream failed after 40 frames"):
            dets = list(live)
    finally:
        server.shutdown()
    assert len(dets) == 40 and live.error is not None
    result = live.result()
    assert result.partial and result.warnings == [live.error] and result.tracks.valid.all()


def test_extract_live_on_a_source_that_cannot_be_opened_is_a_video_error_at_once():
    url = f"http://127.0.0.1:{_closed_port()}/cam"
    with pytest.raises(VideoError, match=re.escape(url)):
        extract_live(url, backend=_Walker(), timeout=2.0)


# --- real media ---------------------------------------------------------------------------------


@pytest.fixture
def shared_media(shared):
    media = shared / "data" / "media"
    server, base = _serve(functools.partial(_RangeHandler, directory=str(media)))
    yield media, base
    server.shutdown()
    server.server_close()


def test_a_real_mp4_served_over_http_is_processed_live_frame_by_frame(shared_media):
    media, base = shared_media
    name = "pool_cleaning_340x256.mp4"
    backend = _Walker()
    live = extract_live(f"{base}/{name}", backend=backend, max_frames=90, when_full="wait")
    dets = list(live)
    assert len(dets) == 90 and backend.frames == list(range(90))
    result = live.result()
    assert (result.meta.width, result.meta.height) == (340, 256)
    assert np.allclose(result.meta.frame_times, probe(media / name).frame_times[:90], atol=1e-6)


@pytest.mark.slow
def test_blazepose_live_over_http_finds_what_it_finds_in_the_file(shared_media):
    from humact.perception.model_files import ModelFilesMissing, find_models
    from humact.perception.pipeline import extract_video

    try:
        find_models()
    except ModelFilesMissing as e:
        pytest.skip(f"BlazePose model files missing: {e}")
    media, base = shared_media
    name = "archery_320x240.avi"
    live = extract_live(f"{base}/{name}", when_full="wait")
    dets = list(live)
    result = live.result()
    assert len(dets) == 131 and any(len(d) for d in dets)
    from_file = extract_video(media / name, backend=live.backend)
    assert result.tracks.num_persons == from_file.tracks.num_persons >= 1
    # A file's tracks get their short gaps filled (the future is known there), live tracks do not.
    seen = from_file.tracks.seen
    assert result.tracks.filled is None and np.array_equal(result.tracks.valid, seen)
    assert np.allclose(result.tracks.keypoints[seen], from_file.tracks.keypoints[seen], atol=1e-3)


def test_humact_extract_of_a_stream_url_writes_the_result_and_an_annotated_video(tmp_path, files, monkeypatch):
    from humact.cli import main
    from humact.io.results import read_result_json
    from humact.perception import pipeline
    from humact.video import probe

    _clip(tmp_path / "clip.mp4", 20)
    monkeypatch.setattr(pipeline, "make_backend", lambda config: _Walker())
    import humact.perception.live as live_mod

    monkeypatch.setattr(live_mod, "make_backend", lambda config: _Walker())
    out = tmp_path / "out"
    assert main(["extract", files("clip.mp4"), "--out", str(out), "--video", "--max-frames", "12",
                 "--no-drop", "--no-progress"]) == 0
    jsons = list(out.glob("*.json"))
    assert len(jsons) == 1 and jsons[0].name.startswith("127.0.0.1")
    result = read_result_json(jsons[0])
    assert result.meta.num_frames == 12 and result.tracks.num_persons == 1
    video = jsons[0].with_name(jsons[0].name[: -len(".json")] + ".annotated.mp4")
    assert probe(video).num_frames == 12
