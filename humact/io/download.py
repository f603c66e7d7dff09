"""Downloading model files: checkpoints given as URLs, release files named by `humact setup`.

`fetch(url)` downloads once into a cache folder (`$HUMACT_CACHE_DIR`, else `~/.cache/humact/downloads`)
and returns the local path; a second call finds the file there. The transfer streams to a temporary
file next to the target, checks the size limit and the sha256 when one is given, and renames it into
place, so an interrupted download never leaves a half file under the final name. `http://`,
`https://` and `file://` URLs are accepted (the tests use `file://` and a local HTTP server: this
machine has no internet, a user's does). A plain path is returned as it is.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Collection

from humact.errors import InputError
from humact.io.atomic import atomic_path

__all__ = ["fetch", "is_url", "cache_dir", "sha256_file", "DownloadError", "MAX_DOWNLOAD_BYTES"]

#: Refuse larger files: no checkpoint of this field comes near it.
MAX_DOWNLOAD_BYTES = 8 << 30
_CHUNK = 1 << 20


class DownloadError(InputError):
    """A download failed or its file is not the one expected; the message names the URL."""


def is_url(text: str | os.PathLike) -> bool:
    """Whether `text` is an http(s) or file URL rather than a path."""
    return urllib.parse.urlparse(str(text)).scheme in ("http", "https", "file")


def cache_dir() -> Path:
    """`$HUMACT_CACHE_DIR` if set, else `~/.cache/humact/downloads`."""
    env = os.environ.get("HUMACT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "humact" / "downloads"


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in chunks (model files and checkpoints are checked with it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str | os.PathLike, *, dest_dir: str | os.PathLike | None = None, name: str | None = None,
          sha256: str | Collection[str] | None = None, max_bytes: int = MAX_DOWNLOAD_BYTES,
          timeout: float = 60.0, progress: bool = True, replace: bool = False) -> Path:
    """The local file of `url`: downloaded into `dest_dir` (default `cache_dir()`) unless already there.

    Args:
        url: http(s) or file URL; a path that is not a URL is returned unchanged.
        dest_dir, name: where the file goes (default: the cache, the URL's last path component).
        sha256: the expected hex digest, or the digests accepted (a file published in more
            than one export); a cached or downloaded file that differs is refused (and a bad
            download removed).
        max_bytes: refuse a file larger than this (announced or received).
        replace: download again even when the file is already there (it is replaced only
            once the new one is complete and verified).
    Raises:
        DownloadError naming the URL: no network, HTTP error, too large, wrong checksum.
    """
    if not is_url(url):
        return Path(url)
    url = str(url)
    parsed = urllib.parse.urlparse(url)
    name = name or Path(urllib.parse.unquote(parsed.path)).name
    if not name:
        raise DownloadError(f"{url}: the URL names no file")
    target = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    target = target / name
    accepted = None if sha256 is None else {sha256} if isinstance(sha256, str) else set(sha256)
    if target.is_file() and not replace:
        if accepted is None or sha256_file(target) in accepted:
            return target
        raise DownloadError(f"{target}: cached copy of {url} has the wrong sha256 (delete it to download again)")
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http/https/file only, checked above)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: cannot download (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot download ({reason}); where there is no internet, download it "
                            f"elsewhere and give the local path instead") from None
    with response:
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) > max_bytes:
            raise DownloadError(f"{url}: {int(announced)} bytes, more than the {max_bytes}-byte limit")
        total = int(announced) if announced is not None and announced.isdigit() else None
        from humact.progress import progress as bar

        received = 0
        digest = hashlib.sha256()
        with atomic_path(target) as tmp, open(tmp, "wb") as f, \
                bar(total=total, desc=f"downloading {name}", unit="B", enabled=progress) as shown:
            while True:
                try:
                    block = response.read(_CHUNK)
                except OSError as e:
                    raise DownloadError(f"{url}: download interrupted ({e})") from None
                if not block:
                    break
                received += len(block)
                if received > max_bytes:
                    raise DownloadError(f"{url}: more than the {max_bytes}-byte limit")
                digest.update(block)
                f.write(block)
                shown.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"{url}: received {received} of {total} bytes")
            if accepted is not None and digest.hexdigest() not in accepted:
                expected = sha256 if isinstance(sha256, str) else "one of " + ", ".join(sorted(accepted))
                raise DownloadError(f"{url}: sha256 {digest.hexdigest()} ({received} bytes) is not the expected "
                                    f"{expected}")
    return target
