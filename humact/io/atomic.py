"""Atomic file output: a reader never sees a half-written file.

Everything humact writes goes through `atomic_write` (temp file in the same
directory, fsync, `os.replace`), so an interrupted run leaves either the old
file or the new one, and a batch job can treat "output exists" as "done".
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success rename it onto `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
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
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + target.suffix, dir=target.parent)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    return _cm()
