"""Progress that suits where the output goes: a tqdm bar on a terminal, a few plain lines elsewhere.

`progress(...)` returns an object with tqdm's small interface (iterate over it, `update(n)`,
`set_postfix(**kw)`, `close()`, use as a context manager). When stderr is a terminal it is a tqdm
bar (count, rate, ETA). When it is not (a log file, CI, a pipe), tqdm's carriage-return updates would
become thousands of lines, so `PlainProgress` prints one line at start and then at most one line per
`every` seconds or 25 % of the total, plus one at the end: `desc: 120/280 frames (43 %), 31.2 frames/s,
ETA 5 s`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

__all__ = ["progress", "PlainProgress"]


class PlainProgress:
    """A progress reporter for non-terminal output (see the module docstring)."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", every: float = 30.0, stream=None) -> None:
        self.iterable, self.total, self.desc, self.unit, self.every = iterable, total, desc, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.postfix = ""
        self.t0 = self.last = time.perf_counter()
        self.next_fraction = 0.25
        self.closed = False
        self._line("started")

    def _line(self, what: str | None = None) -> None:
        dt = time.perf_counter() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        if what is None:
            if self.total:
                what = f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f} %)"
                if rate > 0 and self.n < self.total:
                    what += f", {rate:.1f} {self.unit}/s, ETA {(self.total - self.n) / rate:.0f} s"
                else:
                    what += f", {rate:.1f} {self.unit}/s, {dt:.0f} s"
            else:
                what = f"{self.n} {self.unit}, {rate:.1f} {self.unit}/s"
            if self.postfix:
                what += f", {self.postfix}"
        print(f"{self.desc}: {what}" if self.desc else what, file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        due = now - self.last >= self.every
        if self.total:
            while self.n / self.total >= self.next_fraction and self.next_fraction < 1.0:
                due = True
                self.next_fraction += 0.25
        if due and (not self.total or self.n < self.total):
            self.last = now
            self._line()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    """`progress(enabled=False)`: the same interface, printing nothing."""

    def __init__(self, iterable: Iterable | None = None, **_: Any) -> None:
        self.iterable, self.n = iterable, 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **kw: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator:
        yield from self.iterable

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, plain: bool = True, leave: bool = False, stream=None):
    """A tqdm bar when `stream` (default stderr) is a terminal; `PlainProgress` lines when it is not
    (or nothing, with `plain=False`: for loops that log a line of their own, like training epochs);
    nothing when `enabled` is False or the environment has `HUMACT_PROGRESS=0` (a batch worker whose
    driver reports progress)."""
    if os.environ.get("HUMACT_PROGRESS") == "0":
        enabled = False
    stream = stream if stream is not None else sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    if not enabled or (not tty and not plain):
        return _Silent(iterable)
    if tty:
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, stream=stream)
