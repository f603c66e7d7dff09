"""Atomic file output: a reader never sees a half-written file.

Everything humact writes goes through `atomic_write` (temp file in the same directory, fsync,
`os.replace`) or `atomic_path`, so an interrupted run leaves either the old file or the new one,
and a batch job can treat "output exists" as "done".

Temp files are named `.NAME.humact-XXXXXXXX.tmp` (with the target's suffix after `.tmp` for
`atomic_path`, so encoders still see the format): hidden, marked as ours, never taken for an input
(`is_temp_file`), and `clean_stale_temp_files` removes the ones a killed run left behind. Finished
files get the usual mode for new files (0666 less the umask, 0644 by default), not `mkstemp`'s 0600.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "atomic_path", "is_temp_file", "clean_stale_temp_files", "TEMP_MARKER"]

#: In every temp file name humact creates.
TEMP_MARKER = ".humact-"
# `.NAME.humact-XXXXXXXX.tmp[.suffix]`, and `.NAME.XXXXXXXX.tmp[.suffix]` of versions before the marker.
_TEMP_NAME = re.compile(r"^\..+\.(humact-)?[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")
_umask_lock = threading.Lock()


def _file_mode() -> int:
    """0666 less the process umask (reading the umask means setting it; the lock keeps that safe)."""
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a temp file of `atomic_write` / `atomic_path` (of any run)."""
    return bool(_TEMP_NAME.match(Path(path).name))


def _mkstemp(target: Path, suffix: str) -> tuple[int, str]:
    target.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARKER}", suffix=suffix, dir=target.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success rename it onto `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    fd, tmp = _mkstemp(path, ".tmp")
    try:
        with os.fdopen(fd, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike) -> "contextlib.AbstractContextManager[Path]":
    """Yield a temporary path for a writer that wants a filename (e.g. a video encoder).

    The file keeps `path`'s suffix so format detection works; it is renamed onto
    `path` when the block succeeds and deleted when it fails.
    """

    @contextlib.contextmanager
    def _cm() -> Iterator[Path]:
        target = Path(path)
        fd, tmp = _mkstemp(target, ".tmp" + target.suffix)
        os.close(fd)
        try:
            yield Path(tmp)
            os.chmod(tmp, _file_mode())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    return _cm()


def clean_stale_temp_files(folder: str | os.PathLike, *, older_than: float = 600.0) -> list[Path]:
    """Delete humact temp files under `folder` not modified for `older_than` seconds (left by a killed
    run; a writer still at work touches its file as it writes). Returns what was deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for p in folder.rglob(".*.tmp*"):
        if not is_temp_file(p) or not p.is_file():
            continue
        try:
            if now - p.stat().st_mtime >= older_than:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue
    return removed
