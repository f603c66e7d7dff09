"""TFLite interpreters (ai-edge-litert) without the runtime's start-up chatter.

LiteRT's C++ runtime prints `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` on
the process's stderr (file descriptor 2, below Python's `sys.stderr`) the first time an
interpreter allocates its tensors; neither `TF_CPP_MIN_LOG_LEVEL` nor an interpreter
option turns it off (checked with ai-edge-litert 2.3.0). Every humact run would print
it. `quiet_native_stderr` points descriptor 2 at a temporary file around the calls that
print it and passes on everything else written meanwhile, so real warnings and errors
still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

__all__ = ["quiet_native_stderr", "make_interpreter", "allocate"]

#: The lines dropped; anything else the runtime prints is passed on.
_CHATTER = re.compile(r"^INFO: (Created TensorFlow Lite XNNPACK delegate for CPU\.|Initialized TensorFlow Lite runtime\.)\s*$")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Within the block, drop LiteRT's INFO lines from native stderr; pass on the rest."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:   # no descriptor 2 at all (a daemon): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not _CHATTER.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def make_interpreter(path: str | os.PathLike, *, num_threads: int, allocate_now: bool = True):
    """An ai-edge-litert `Interpreter` for the model at `path`, tensors allocated, quietly."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native_stderr():
        interp = Interpreter(model_path=os.fspath(path), num_threads=int(num_threads))
        if allocate_now:
            interp.allocate_tensors()
    return interp


def allocate(interp) -> None:
    """`interp.allocate_tensors()` (after a `resize_tensor_input`), quietly."""
    with quiet_native_stderr():
        interp.allocate_tensors()
