"""Batch jobs over a file or a folder of videos and images, with outputs that never cost an input.

Every command that turns inputs into per-input outputs (`extract`, `analyze`, ...) plans its work
with `plan_jobs` and runs it with `run_jobs`:

- **Discovery** (`find_inputs`): a file is itself; a folder is searched recursively for videos and
  images (`humact.video.VIDEO_SUFFIXES`, `IMAGE_SUFFIXES`). Never inputs: hidden files and folders,
  humact's own temp files, and anything under the output folder when it lies inside the input
  folder (so re-runs do not take their own outputs for new inputs).
- **Input lists** (`read_input_list`): a `.txt` / `.csv` / `.lst` file names the inputs instead, one
  path or URL (http, https, ftp: read by FFmpeg) a line (CSV: the `path` / `video` / `url` / `file`
  column, else the first), relative paths from the list's folder, so a corpus on shared storage is
  processed without walking it. Names (`REL`) are the paths under their common folder and a URL's
  host and path. Nothing is checked on the driver: a missing entry fails as its own job.
- **Names** (`output_paths`): an input `REL` (its path relative to the input folder, extension
  kept) writes `OUT/REL.json`, `OUT/REL.pkl`, `OUT/REL.annotated.mp4`, ...: the full input name plus
  a suffix, so two inputs can never share an output (`x.avi` and `x.mp4` give `x.avi.json` and
  `x.mp4.json`), and no output is ever named like an input it could overwrite (checked anyway:
  `OutputError`).
- **Output folder** (`prepare_output_dir`): checked before any work (exists or can be created, is a
  folder, is writable: `OutputError`), and temp files a killed run left there are removed.
- **Resume**: a job whose outputs all exist is skipped unless `force`; outputs are atomic and the
  "done" marker (the JSON) is written last.
- **Failures**: a failing input is reported once (its path and the one-line reason) and the batch
  goes on; the summary counts what was done, skipped and failed.
- **Where the work runs**: here (`run_jobs`), one input after another, or on a Ray cluster
  (`humact.scale.ray_jobs.run_jobs_on_ray`, which builds on this module), one task per input on worker actors that each keep what the
  work loads (`Lazy`: a pose backend, a model) for all the inputs they get. The same rules hold
  there: the driver plans, skips what is done and prints the summary; `work` has to be picklable
  (a closure over plain settings and `Lazy` holders is).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from humact.errors import HumactError, OutputError, one_line

__all__ = ["Job", "BatchSummary", "Lazy", "find_inputs", "read_input_list", "output_paths", "prepare_output_dir",
           "plan_jobs", "run_jobs", "attempt", "remove_temp_files", "OUTPUT_SUFFIXES", "LIST_SUFFIXES"]

#: What each output kind appends to the input's name.
OUTPUT_SUFFIXES: dict[str, str] = {"json": ".json", "pkl": ".pkl", "video": ".annotated.mp4",
                                   "csv": ".ava.csv", "timeline": ".timeline.png",
                                   "gestures": ".gestures.json", "gesture_video": ".gestures.mp4"}


#: Files that list inputs rather than being one.
LIST_SUFFIXES = frozenset({".txt", ".csv", ".lst"})
#: URL schemes of recorded files an input list may name (FFmpeg reads them; live streams are
#: `humact extract`'s single live source, not list entries).
URL_SCHEMES = ("http", "https", "ftp")
_LIST_COLUMNS = ("path", "video", "url", "file", "filename")


def _media_suffixes() -> frozenset[str]:
    from humact import video

    return video.VIDEO_SUFFIXES | getattr(video, "IMAGE_SUFFIXES", frozenset())


def _is_output_name(name: str) -> bool:
    """A file humact writes as an output (an annotated video is a video, but never an input)."""
    return name.endswith((OUTPUT_SUFFIXES["video"], OUTPUT_SUFFIXES["gesture_video"]))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _is_url(text: str) -> bool:
    return "://" in text and text.split("://", 1)[0].lower() in URL_SCHEMES


def _url_rel(url: str) -> Path:
    """`host/dir/name.mp4` for a URL: no query, no `..`, only safe characters in each part."""
    import re
    from urllib.parse import unquote, urlsplit

    u = urlsplit(url)
    parts = [u.netloc or "host", *unquote(u.path).split("/")]
    safe = [re.sub(r"[^A-Za-z0-9._+-]+", "_", p) for p in parts if p not in ("", ".", "..")]
    return Path(*[p for p in safe if p.strip("._")] or ["input"])


def read_input_list(path: str | os.PathLike) -> list[tuple[Path | str, Path]]:
    """(input, relative name) pairs of an input list (see the module docstring), in the list's order
    with repeats dropped; InputError naming the file and line for an entry that cannot be one."""
    import csv

    from humact.errors import InputError
    from humact.io.limits import MAX_ARRAY_ELEMENTS, MAX_CSV_LINE_BYTES, check_limit

    src = Path(path)
    entries: list[tuple[int, str]] = []
    try:
        with open(src, "r", encoding="utf-8-sig", newline="") as f:
            lines = []
            for n, line in enumerate(f, 1):
                check_limit(len(line), MAX_CSV_LINE_BYTES, source=f"{src}:{n}", field="line length")
                check_limit(n, MAX_ARRAY_ELEMENTS, source=str(src), field="lines")
                lines.append(line)
    except UnicodeDecodeError as e:
        raise InputError(f"{src}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{src}: cannot read the input list ({e.strerror})") from None
    if src.suffix.lower() == ".csv":
        rows = list(csv.reader(lines))
        column = 0
        if rows and any(c.strip().lower() in _LIST_COLUMNS for c in rows[0]):
            column = next(i for i, c in enumerate(rows[0]) if c.strip().lower() in _LIST_COLUMNS)
            rows[0] = []
        for n, row in enumerate(rows, 1):
            if row and row[0].lstrip().startswith("#"):
                continue
            if len(row) > column and row[column].strip():
                entries.append((n, row[column].strip()))
    else:
        entries = [(n, x.strip()) for n, x in enumerate(lines, 1) if x.strip() and not x.lstrip().startswith("#")]
    if not entries:
        raise InputError(f"{src}: the input list names no inputs")
    local: list[tuple[int, Path]] = []
    out: dict[str, tuple[int, Path | str, Path | None]] = {}
    for n, text in entries:
        if _is_url(text):
            out.setdefault(text, (n, text, _url_rel(text)))
        elif "://" in text:
            raise InputError(f"{src}:{n}: {text!r} is not a file path or an http(s)/ftp URL")
        else:
            p = Path(text).expanduser()
            p = p if p.is_absolute() else src.parent / p
            p = Path(os.path.normpath(p.absolute()))
            if str(p) not in out:
                out[str(p)] = (n, p, None)
                local.append((n, p))
    if local:
        root = Path(os.path.commonpath([str(p.parent) for _, p in local]))
        for key, (n, p, _) in list(out.items()):
            if isinstance(p, Path):
                out[key] = (n, p, p.relative_to(root))
    seen: dict[str, int] = {}
    pairs = []
    for n, p, rel in out.values():
        key = rel.as_posix()
        if key in seen:
            raise InputError(f"{src}:{n}: {p} gets the output name {key!r} of line {seen[key]}; give them "
                             f"different names or folders")
        seen[key] = n
        if not (rel.name.startswith(".") or _is_output_name(rel.name)):
            pairs.append((p, rel))
    return pairs


def find_inputs(source: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[tuple[Path | str, Path]]:
    """(input, relative name) pairs for `source`, sorted (an input list: in its order); see the module
    docstring for what is skipped. An input is a path, or a URL string from an input list."""
    from humact.io.atomic import is_temp_file

    src = Path(source)
    if not src.exists():
        raise HumactError(f"{src}: no such file or directory")
    if src.is_file() and src.suffix.lower() in LIST_SUFFIXES:
        return [(p, rel) for p, rel in read_input_list(src) if not (isinstance(p, Path) and is_temp_file(p))]
    if src.is_file():
        return [(src, Path(src.name))]
    suffixes = _media_suffixes()
    out = Path(out_dir) if out_dir is not None else None
    skip_out = out is not None and out.exists() and _inside(out, src) and out.resolve() != src.resolve()
    found = []
    for root, dirs, files in os.walk(src):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (skip_out and (rootp / d).resolve() == out.resolve()))
        for name in sorted(files):
            p = rootp / name
            if (name.startswith(".") or is_temp_file(p) or _is_output_name(name)
                    or p.suffix.lower() not in suffixes):
                continue
            found.append((p, p.relative_to(src)))
    return sorted(found, key=lambda pair: pair[1].as_posix())


def output_paths(out_dir: str | os.PathLike, rel: str | os.PathLike, kinds: tuple[str, ...]) -> dict[str, Path]:
    """The output of each kind for an input named `rel` (see `OUTPUT_SUFFIXES`)."""
    base = Path(out_dir) / Path(rel)
    return {k: base.with_name(base.name + OUTPUT_SUFFIXES[k]) for k in kinds}


def prepare_output_dir(out_dir: str | os.PathLike) -> list[Path]:
    """Make sure `out_dir` can take outputs (before any work); returns the stale temp files removed."""
    from humact.io.atomic import clean_stale_temp_files

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: the output path exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the output folder ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable")
    return clean_stale_temp_files(out)


@dataclass
class Job:
    """One input (a path, or a URL of an input list) and the outputs it writes."""

    input: Path | str
    rel: Path
    outputs: dict[str, Path]

    @property
    def done(self) -> bool:
        return all(p.exists() for p in self.outputs.values())


def plan_jobs(source: str | os.PathLike, out_dir: str | os.PathLike, kinds: tuple[str, ...]) -> list[Job]:
    """The jobs for every input of `source`, outputs in `out_dir`; OutputError if an output would be an input."""
    pairs = find_inputs(source, out_dir)
    if not pairs:
        raise HumactError(f"{source}: no video or image files found (looked for "
                          f"{', '.join(sorted(_media_suffixes()))})")
    jobs = [Job(p, rel, output_paths(out_dir, rel, kinds)) for p, rel in pairs]
    inputs = {p.resolve() for p, _ in pairs if isinstance(p, Path)}
    for job in jobs:
        for o in job.outputs.values():
            if o.resolve() in inputs:
                raise OutputError(f"{o}: would overwrite an input; choose another --out")
    return jobs


@dataclass
class BatchSummary:
    """What a batch did: jobs done (with a one-line note each), skipped as already done, and failed."""

    done: list[tuple[Job, str]] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self, out_dir: str | os.PathLike) -> str:
        return (f"summary: {len(self.done)} processed, {len(self.skipped)} already done (skipped), "
                f"{len(self.failed)} failed — outputs in {out_dir}")


class Lazy:
    """`factory(*args, **kwargs)`, built on first call and kept: what a batch's `work` loads once per
    process (a pose backend, a model). It pickles as the recipe alone, so every Ray worker builds
    its own copy once and keeps it for all its inputs; `value` seeds an already built one here."""

    _unset = object()

    def __init__(self, factory: Callable, *args, value=_unset, **kwargs) -> None:
        self.factory, self.args, self.kwargs, self.value = factory, args, kwargs, value

    def __call__(self):
        if self.value is Lazy._unset:
            self.value = self.factory(*self.args, **self.kwargs)
        return self.value

    def __getstate__(self):
        return {"factory": self.factory, "args": self.args, "kwargs": self.kwargs}

    def __setstate__(self, state):
        self.__dict__.update(state, value=Lazy._unset)


def attempt(work: Callable[[Job, str], str], job: Job, desc: str) -> tuple[bool, str]:
    """(True, note) when `work(job, desc)` succeeded, else (False, the one-line reason): a
    `HumactError` (bad input) or any other exception (a bug, a crash in a decoder) fails the job
    alone."""
    try:
        return True, work(job, desc)
    except HumactError as e:
        return False, one_line(e)
    except Exception as e:  # a batch goes on past one bad input, whatever broke
        return False, f"{type(e).__name__}: {one_line(e)}"


def remove_temp_files(job: Job) -> list[Path]:
    """Delete the temp files of `job`'s outputs (a writer killed mid-write left them); call only when
    nothing is writing them. Returns what was deleted."""
    import glob

    from humact.io.atomic import TEMP_MARKER, is_temp_file

    removed = []
    for out in job.outputs.values():
        if not out.parent.is_dir():
            continue
        for p in out.parent.glob(f".{glob.escape(out.name)}{TEMP_MARKER}*"):
            if is_temp_file(p) and p.is_file():
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def report_failure(job: Job, why: str, command: str) -> None:
    """Print a failed job once, on stderr (the reason usually starts with the path already)."""
    prefix = "" if why.startswith(str(job.input)) else f"{job.input}: "
    print(f"{command}: skipped {prefix}{why}", file=sys.stderr)


def pending(jobs: list[Job], *, force: bool = False) -> tuple[BatchSummary, list[Job]]:
    """A summary with the jobs already done counted as skipped (none with `force`), and the rest to do."""
    summary = BatchSummary()
    todo = []
    for job in jobs:
        if not force and job.done:
            summary.skipped.append(job)
        else:
            todo.append(job)
    return summary, todo


def run_jobs(jobs: list[Job], work: Callable[[Job, str], str], *, force: bool = False, command: str = "humact",
             log: Callable[[str], None] | None = print) -> BatchSummary:
    """Run `work(job, desc)` here for every job not already done (or all with `force`).

    `work` writes the job's outputs and returns a one-line note to print; a `HumactError` (bad input)
    or any other exception (a bug, a crash in a decoder) fails that job alone: it is reported with
    the input's path and the reason, and the batch goes on. The same jobs run on a Ray cluster with
    `humact.scale.ray_jobs.run_jobs_on_ray` (what they load held in `Lazy`).
    """
    t0 = time.perf_counter()
    summary, todo = pending(jobs, force=force)
    for i, job in enumerate(todo):
        desc = f"[{i + 1}/{len(todo)}] {job.rel}" if len(todo) > 1 else str(job.rel)
        ok, text = attempt(work, job, desc)
        if ok:
            summary.done.append((job, text))
            if log and text:
                log(text)
        else:
            summary.failed.append((job, text))
            if log:
                report_failure(job, text, command)
    summary.seconds = time.perf_counter() - t0
    return summary
