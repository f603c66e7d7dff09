"""Batch jobs over a file or a folder of videos and images, with outputs that never cost an input.

Every command that turns inputs into per-input outputs (`extract`, `analyze`, ...) plans its work
with `plan_jobs` and runs it with `run_jobs`:

- **Discovery** (`find_inputs`): a file is itself; a folder is searched recursively for videos and
  images (`humact.video.VIDEO_SUFFIXES`, `IMAGE_SUFFIXES`). Never inputs: hidden files and folders,
  humact's own temp files, and anything under the output folder when it lies inside the input
  folder (so re-runs do not take their own outputs for new inputs).
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
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from humact.errors import HumactError, OutputError, one_line

__all__ = ["Job", "BatchSummary", "find_inputs", "output_paths", "prepare_output_dir", "plan_jobs", "run_jobs",
           "OUTPUT_SUFFIXES"]

#: What each output kind appends to the input's name.
OUTPUT_SUFFIXES: dict[str, str] = {"json": ".json", "pkl": ".pkl", "video": ".annotated.mp4",
                                   "csv": ".ava.csv", "timeline": ".timeline.png",
                                   "gestures": ".gestures.json", "gesture_video": ".gestures.mp4"}


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


def find_inputs(source: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """(input path, relative name) pairs for `source`, sorted; see the module docstring for what is skipped."""
    from humact.io.atomic import is_temp_file

    src = Path(source)
    if not src.exists():
        raise HumactError(f"{src}: no such file or directory")
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
    """One input and the outputs it writes."""

    input: Path
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
    inputs = {p.resolve() for p, _ in pairs}
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


def run_jobs(jobs: list[Job], work: Callable[[Job, str], str], *, force: bool = False, command: str = "humact",
             log: Callable[[str], None] | None = print) -> BatchSummary:
    """Run `work(job, desc)` for every job not already done (or all with `force`).

    `work` writes the job's outputs and returns a one-line note to print; a `HumactError` (bad input)
    or any other exception (a bug, a crash in a decoder) fails that job alone: it is reported with
    the input's path and the reason, and the batch goes on.
    """
    summary = BatchSummary()
    t0 = time.perf_counter()
    todo = []
    for job in jobs:
        if not force and job.done:
            summary.skipped.append(job)
        else:
            todo.append(job)
    for i, job in enumerate(todo):
        desc = f"[{i + 1}/{len(todo)}] {job.rel}" if len(todo) > 1 else str(job.rel)
        try:
            note = work(job, desc)
        except HumactError as e:
            why = one_line(e)
        except Exception as e:  # a batch goes on past one bad input, whatever broke
            why = f"{type(e).__name__}: {one_line(e)}"
        else:
            summary.done.append((job, note))
            if log and note:
                log(note)
            continue
        summary.failed.append((job, why))
        if log:
            # The reason usually starts with the path already; do not print it twice.
            prefix = "" if why.startswith(str(job.input)) else f"{job.input}: "
            print(f"{command}: skipped {prefix}{why}", file=sys.stderr)
    summary.seconds = time.perf_counter() - t0
    return summary
