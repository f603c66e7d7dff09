"""Downloads of model files: file:// URLs and a local HTTP server stand in for the internet."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest
import torch

from humact.io.download import DownloadError, fetch, is_url


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_path_is_not_a_url_and_is_returned_as_it_is(tmp_path):
    assert not is_url(tmp_path / "x.pth") and fetch(tmp_path / "x.pth") == tmp_path / "x.pth"
    assert is_url("https://example.org/a.pth") and is_url("file:///tmp/a.pth")


def test_http_download_lands_in_the_cache_once_with_its_checksum(server, tmp_path):
    root, base = server
    data = b"weights" * 1000
    (root / "m.pth").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    got = fetch(f"{base}/m.pth", dest_dir=tmp_path / "cache", sha256=digest, progress=False)
    assert got == tmp_path / "cache" / "m.pth" and got.read_bytes() == data
    (root / "m.pth").unlink()  # a second call finds the cached file, no network needed
    assert fetch(f"{base}/m.pth", dest_dir=tmp_path / "cache", sha256=digest, progress=False) == got


def test_a_wrong_checksum_leaves_no_file_behind(server, tmp_path):
    root, base = server
    (root / "m.pth").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="sha256"):
        fetch(f"{base}/m.pth", dest_dir=tmp_path / "cache", sha256="0" * 64, progress=False)
    assert not list((tmp_path / "cache").iterdir())


def test_any_of_several_published_digests_is_accepted_and_replace_downloads_again(server, tmp_path):
    root, base = server
    old, new = b"export one" * 100, b"export two" * 100
    digests = {hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()}
    (root / "m.onnx").write_bytes(old)
    got = fetch(f"{base}/m.onnx", dest_dir=tmp_path / "c", sha256=digests, progress=False)
    assert got.read_bytes() == old
    (root / "m.onnx").write_bytes(new)
    assert fetch(f"{base}/m.onnx", dest_dir=tmp_path / "c", sha256=digests, progress=False).read_bytes() == old
    assert fetch(f"{base}/m.onnx", dest_dir=tmp_path / "c", sha256=digests, progress=False,
                 replace=True).read_bytes() == new
    # a replacement that fails its check leaves the verified copy in place
    (root / "m.onnx").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="is not the expected one of"):
        fetch(f"{base}/m.onnx", dest_dir=tmp_path / "c", sha256=digests, progress=False, replace=True)
    assert got.read_bytes() == new and [p.name for p in (tmp_path / "c").iterdir()] == ["m.onnx"]


def test_a_missing_file_or_no_network_is_one_clear_error(server, tmp_path):
    _, base = server
    with pytest.raises(DownloadError, match="404|Not Found"):
        fetch(f"{base}/nothing.pth", dest_dir=tmp_path, progress=False)
    with pytest.raises(DownloadError, match="cannot download"):
        fetch("http://127.0.0.1:9/x.pth", dest_dir=tmp_path, progress=False, timeout=2)


def test_a_file_larger_than_the_limit_is_refused(server, tmp_path):
    root, base = server
    (root / "big.pth").write_bytes(b"x" * 5000)
    with pytest.raises(DownloadError, match="limit"):
        fetch(f"{base}/big.pth", dest_dir=tmp_path / "c", max_bytes=1000, progress=False)


def test_classify_takes_a_checkpoint_url(tmp_path, monkeypatch):
    from conftest import shared_file
    from humact.cli import main
    from humact.video_models.recognizer import slowonly_r50_recognizer

    video = shared_file("data", "media", "archery_320x240.avi")
    torch.manual_seed(0)
    ckpt = tmp_path / "published.pth"
    torch.save({"state_dict": slowonly_r50_recognizer(num_classes=2).state_dict()}, ckpt)
    monkeypatch.setenv("HUMACT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "s.json"
    assert main(["classify", str(video), "--model", "slowonly_r50_4x16", "--checkpoint", ckpt.as_uri(),
                 "--clips", "1", "--json", str(out), "--threads", "1"]) == 0
    assert (tmp_path / "cache" / "published.pth").is_file()
    assert json.loads(out.read_text())["checkpoint"] == ckpt.as_uri()
