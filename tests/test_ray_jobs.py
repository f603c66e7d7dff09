"""`humact extract --ray`: a local 2-CPU Ray cluster started inside the tests, real videos, a worker
killed once mid-video, and the outputs compared byte for byte with a local run. Input lists too.

The videos are the first 12 frames of two shared 340x256 clips, copied into two folders (4
videos), plus a file that is not a video; perception is the default MoveNet backend.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import socketserver
import threading
import time
from pathlib import Path

import pytest

from humact.batch import find_inputs, read_input_list
from humact.errors import InputError

FRAMES = 12
CLIPS = ("armwrestling_340x256.mp4", "pool_cleaning_340x256.mp4")


def _cut(src: Path, dst: Path, frames: int = FRAMES) -> None:
    from humact.video import VideoWriter, probe, read_frames

    meta = probe(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(dst, width=meta.width, height=meta.height, fps=meta.fps) as w:
        for i, rgb in read_frames(src, stop=frames):
            w.write(rgb, time_s=meta.frame_times[i])


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from conftest import shared_file

    root = tmp_path_factory.mktemp("videos")
    for clip in CLIPS:
        src = shared_file("data", "media", clip)
        _cut(src, root / "a" / clip)
    for clip in CLIPS:
        (root / "b").mkdir(exist_ok=True)
        (root / "b" / clip).write_bytes((root / "a" / clip).read_bytes())
    (root / "b" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    return root


def _options(**kw):
    from humact.perception.pipeline import ExtractConfig
    from humact.tasks import ExtractOptions

    return ExtractOptions(progress=False, config=ExtractConfig(threads=1), **kw)


@pytest.fixture(scope="module")
def local(videos, tmp_path_factory):
    """The reference: the same folder extracted here, one video after another."""
    from humact.tasks import extract

    out = tmp_path_factory.mktemp("local")
    summary = extract(videos, out, _options())
    assert len(summary.done) == 4 and [str(j.rel) for j, _ in summary.failed] == ["b/broken.mp4"]
    return out


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 << 20, logging_level="WARNING",
             log_to_driver=False)
    yield ray
    ray.shutdown()


def _busy_workers() -> list[int]:
    """Pids of Ray worker processes running a BatchWorker.run task now (Ray titles the process so)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::BatchWorker.run"):
                pids.append(int(d.name))
    return pids


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.shared
def test_ray_run_with_a_worker_killed_mid_video_equals_the_local_run_byte_for_byte(cluster, videos, local,
                                                                                  tmp_path, capsys):
    from humact.tasks import extract

    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_one_worker_once():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            busy = _busy_workers()
            if busy:
                time.sleep(0.3)  # well inside the video (each takes a second or more here)
                try:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
                except ProcessLookupError:
                    continue
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_once)
    killer.start()
    summary = extract(videos, out, _options(ray="", ray_workers=2))
    killer.join()
    assert killed, "no busy Ray worker was seen to kill"
    assert sorted(str(j.rel) for j, _ in summary.done) == ["a/" + c for c in CLIPS] + ["b/" + c for c in CLIPS]
    assert [str(j.rel) for j, _ in summary.failed] == ["b/broken.mp4"]
    assert "b/broken.mp4" in capsys.readouterr().err  # reported, and the rest went on
    got, want = _files(out), _files(local)
    assert got.keys() == want.keys()  # no temp file of the killed attempt is left
    for name in want:
        assert got[name] == want[name], name
    # A re-run skips what is done (the broken file is tried again and fails again).
    again = extract(videos, out, _options(ray="", ray_workers=2))
    assert (len(again.skipped), len(again.done), len(again.failed)) == (4, 0, 1)


@pytest.mark.slow
@pytest.mark.shared
def test_an_input_list_of_paths_and_urls_gives_the_outputs_of_the_folder(videos, local, tmp_path):
    from humact.tasks import extract

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(videos))
    handler.log_message = lambda *a, **k: None
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a/{CLIPS[0]}"
        listing = tmp_path / "inputs.csv"
        listing.write_text(f"label,path\nx,{videos / 'a' / CLIPS[1]}\ny,{url}\nz,{videos / 'a' / 'missing.mp4'}\n")
        summary = extract(listing, tmp_path / "out", _options())
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(str(j.rel) for j, _ in summary.done) == [f"127.0.0.1_{server.server_address[1]}/a/{CLIPS[0]}",
                                                            CLIPS[1]]
    assert [str(j.rel) for j, _ in summary.failed] == ["missing.mp4"]  # a missing entry is its own failure
    out = tmp_path / "out"
    assert (out / f"{CLIPS[1]}.pkl").read_bytes() == (local / "a" / f"{CLIPS[1]}.pkl").read_bytes()
    # Read over HTTP, the same poses (the JSON differs only in the video's path).
    url_pkl = out / f"127.0.0.1_{server.server_address[1]}" / "a" / f"{CLIPS[0]}.pkl"
    from humact.io.results import read_pyskl_pickle

    a, b = read_pyskl_pickle(url_pkl), read_pyskl_pickle(local / "a" / f"{CLIPS[0]}.pkl")
    assert (a["keypoint"] == b["keypoint"]).all()


def test_an_input_list_names_inputs_relative_to_their_common_folder(tmp_path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "corpus.txt"
    listing.write_text("# the corpus\n../data/x/1.mp4\n\n/abs/data/y/2.mp4\n../data/x/1.mp4\n"
                       "https://host.org/v/a%20b.mp4?sig=1\n")
    pairs = read_input_list(listing)
    assert [(str(p), r.as_posix()) for p, r in pairs] == [
        (str(tmp_path / "data" / "x" / "1.mp4"), tmp_path.relative_to("/").as_posix() + "/data/x/1.mp4"),
        ("/abs/data/y/2.mp4", "abs/data/y/2.mp4"),
        ("https://host.org/v/a%20b.mp4?sig=1", "host.org/v/a_b.mp4")]
    assert find_inputs(listing) == pairs


def test_two_list_entries_with_one_output_name_are_an_error_naming_the_lines(tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text("http://a.org/x/v.mp4\nhttp://a.org/x/v.mp4?other=1\n")
    with pytest.raises(InputError, match=r"l.txt:2: .* gets the output name 'a.org/x/v.mp4' of line 1"):
        read_input_list(listing)


def test_an_empty_list_or_a_foreign_scheme_is_an_input_error_naming_the_file(tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(InputError, match="e.txt: the input list names no inputs"):
        read_input_list(empty)
    rtsp = tmp_path / "r.lst"
    rtsp.write_text("rtsp://cam/1\n")
    with pytest.raises(InputError, match=r"r.lst:1: 'rtsp://cam/1' is not a file path or an http\(s\)/ftp URL"):
        read_input_list(rtsp)


def test_ray_flags_are_checked_before_any_work(tmp_path, capsys):
    from humact.cli import main

    assert main(["extract", str(tmp_path), "--ray-workers", "2"]) == 2
    assert "--ray-workers: only with --ray" in capsys.readouterr().err
    assert main(["extract", "rtsp://cam/1", "--ray"]) == 2
    assert "--ray: a live source is one stream" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
def test_detect_on_ray_writes_the_local_runs_files(cluster, videos, tmp_path):
    """`humact detect --ray`: the skeleton default's CSV and JSON from Ray workers (each loading its
    own pose backend and skeleton model) equal a local run's, byte for byte."""
    from humact.detect.pipeline import detect

    folder = videos / "a"
    here = detect(folder, tmp_path / "local", _options())
    there = detect(folder, tmp_path / "ray", _options(ray="", ray_workers=2))
    assert len(here.done) == len(there.done) == len(CLIPS) and not here.failed and not there.failed
    got, want = _files(tmp_path / "ray"), _files(tmp_path / "local")
    assert got.keys() == want.keys()
    compared = [n for n in want if n.endswith((".json", ".csv"))]
    assert len(compared) == 2 * len(CLIPS)
    for name in compared:
        assert got[name] == want[name], name
