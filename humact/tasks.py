"""What `humact extract` and `humact analyze` do to each input, over a file or a whole folder.

    extract(source, out)   per input: perception -> REL.pkl (PYSKL annotation), REL.annotated.mp4
                           (with video), REL.json (the result; written last: it marks the input done)
    analyze(source, out)   per input: perception (or a REL.json of `extract`) -> per-track actions
                           with a skeleton model -> REL.json, REL.annotated.mp4 (with video)

Both plan and run through `humact.batch` (discovery or an input list, collision-free output names,
resume, a failing input reported and skipped), build the pose backend once per process (`Lazy`:
here, or once per Ray worker with `ExtractOptions.ray`), and return the `BatchSummary`. Progress is
a bar on a terminal and a few plain lines elsewhere (`humact.progress`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from humact.batch import BatchSummary, Job, Lazy, plan_jobs, prepare_output_dir, run_jobs
from humact.errors import InputError, OutputError

__all__ = ["ExtractOptions", "extract", "extract_live_source", "is_live_source", "analyze", "persons"]


def persons(n: int) -> str:
    """'1 tracked person', '2 tracked people'."""
    return f"{n} tracked {'person' if n == 1 else 'people'}"


@dataclass
class ExtractOptions:
    """Choices shared by the perception commands (see `humact.perception.pipeline.ExtractConfig`)."""

    video: bool | None = None  # write the annotated video; None = yes for a single input, no for a folder
    force: bool = False
    progress: bool = True
    config: object = None  # ExtractConfig; default ExtractConfig()
    labels: list[str] = field(default_factory=list)
    ray: str | None = None  # run on a Ray cluster: "" = local / RAY_ADDRESS, else its address
    ray_workers: int | None = None  # Ray actors (default: one per cluster CPU)


def wants_video(video: bool | None, source: str | os.PathLike) -> bool:
    """Whether a command writes annotated videos: `video` when the user said (--video / --no-video),
    else only for a single file (a folder or an input list would write one per input)."""
    from humact.batch import LIST_SUFFIXES

    src = Path(source)
    return src.is_file() and src.suffix.lower() not in LIST_SUFFIXES if video is None else video


def run_batch(jobs: list[Job], work, o: "ExtractOptions", command: str) -> BatchSummary:
    """`work` over `jobs` here (`batch.run_jobs`) or, with `o.ray`, on a Ray cluster
    (`scale.ray_jobs.run_jobs_on_ray`): the one switch every batch command goes through."""
    if o.ray is not None:
        from humact.scale.ray_jobs import run_jobs_on_ray

        return run_jobs_on_ray(jobs, work, force=o.force, address=o.ray, workers=o.ray_workers, command=command,
                               progress=o.progress)
    return run_jobs(jobs, work, force=o.force, command=command)


def perceive(job: Job, desc: str, config, backend, progress: bool):
    """Perception of one input; a partial decode (a truncated file) is printed as one warning line and
    the result is marked partial, instead of Python's warning format."""
    import sys
    import warnings

    from humact.perception.pipeline import extract_video
    from humact.progress import progress as bar
    from humact.video import PartialDecodeWarning, probe

    meta = probe(job.input)
    with bar(total=meta.num_frames, desc=desc, unit="frame", enabled=progress) as shown, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDecodeWarning)
        result = extract_video(job.input, config=config, backend=backend, meta=meta,
                               on_frame=lambda _t: shown.update())
    for w in result.warnings:
        print(f"warning: {w}" if w.startswith(str(job.input)) else f"warning: {job.input}: {w}", file=sys.stderr)
    return result


def _annotate(result, path: Path, desc: str, progress: bool, labels: dict | None = None) -> None:
    from humact.perception.pipeline import write_annotated_video
    from humact.progress import progress as bar

    with bar(total=result.meta.num_frames, desc=f"{desc} video", unit="frame", enabled=progress) as shown:
        write_annotated_video(result, path, labels=labels, on_frame=lambda _t: shown.update())


def extract(source: str | os.PathLike, out: str | os.PathLike, options: ExtractOptions | None = None, *,
            label_from_folder: bool = False) -> BatchSummary:
    """Perception over `source` (a video, an image or a folder) into `out`; see the module docstring.

    With `label_from_folder` every input is labelled by its top sub-folder's name (classes sorted by
    name, written to `out/labels.json` and into each .pkl), to build a training set.
    """
    import time

    from humact.io.atomic import atomic_write
    from humact.io.results import write_pyskl_pickle, write_result_json
    from humact.perception.pipeline import ExtractConfig, make_backend

    o = options or ExtractOptions()
    config = o.config or ExtractConfig()
    kinds = ("json", "pkl") + (("video",) if wants_video(o.video, source) else ())
    prepare_output_dir(out)
    jobs = plan_jobs(source, out, kinds)
    classes: list[str] = []
    if label_from_folder:
        classes = sorted({j.rel.parts[0] for j in jobs if len(j.rel.parts) > 1})
        if not classes:
            raise InputError(f"{source}: --label-from-folder needs the videos inside class sub-folders")
        with atomic_write(Path(out) / "labels.json", "w", encoding="utf-8") as f:
            json.dump(classes, f, indent=1)
    backend = Lazy(make_backend, config)  # built by the first input that needs it, once per process

    def work(job: Job, desc: str) -> str:
        t0 = time.perf_counter()
        result = perceive(job, desc, config, backend(), o.progress)
        label = classes.index(job.rel.parts[0]) if classes and len(job.rel.parts) > 1 else -1
        write_pyskl_pickle(result, job.outputs["pkl"], label=label)
        if "video" in job.outputs:
            _annotate(result, job.outputs["video"], desc, o.progress)
        write_result_json(result, job.outputs["json"])  # last: its presence marks the input as done
        dt = time.perf_counter() - t0
        fps = result.meta.num_frames / dt if dt > 0 else 0.0
        partial = " (partial: see the warning)" if result.partial else ""
        return (f"{job.rel}: {result.meta.num_frames} frames, {persons(result.tracks.num_persons)}, "
                f"{fps:.1f} frames/s -> {job.outputs['json']}{partial}")

    return run_batch(jobs, work, o, "humact extract")


def analyze(source: str | os.PathLike, out: str | os.PathLike, options: ExtractOptions | None = None, *,
            model: str | os.PathLike | None = None, min_frames: int = 8) -> BatchSummary:
    """Perception and per-track action recognition over `source` into `out`.

    `model`: a `model.safetensors` of `humact train` (default: the shipped ST-GCN++ on JHMDB-14
    classes). A `NAME.json` written by `humact extract` as `source` skips perception (its video is
    then needed only for the annotated video).
    """
    from humact.io.results import read_result_json, write_result_json
    from humact.perception.pipeline import ExtractConfig, make_backend
    from humact.recognize.skeleton import DEFAULT_MODEL, Recognizer

    o = options or ExtractOptions()
    config = o.config or ExtractConfig()
    model_path = Path(model) if model else DEFAULT_MODEL
    if not model_path.is_file():
        raise InputError(f"{model_path}: model not found (give a model.safetensors from `humact train`)")
    recognizer = Lazy(Recognizer.from_checkpoint, model_path)  # Ray workers load their own
    why = recognizer().track_units_ok()
    if why:
        raise InputError(why)
    src = Path(source)
    from_json = src.is_file() and src.suffix == ".json"
    kinds = ("json",) + (("video",) if wants_video(o.video, source) else ())
    prepare_output_dir(out)
    if from_json:
        result0 = read_result_json(src)
        jobs = [Job(src, Path(result0.meta.name), {})]
        from humact.batch import output_paths

        jobs[0].outputs = output_paths(out, Path(result0.meta.path).name, kinds)
        if jobs[0].outputs["json"].resolve() == src.resolve():
            raise OutputError(f"{src}: its analysis would overwrite it (same name in --out); choose another --out")
    else:
        jobs = plan_jobs(source, out, kinds)
    backend = Lazy(make_backend, config)

    def work(job: Job, desc: str) -> str:
        result = read_result_json(job.input) if from_json else perceive(job, desc, config, backend(), o.progress)
        rec = recognizer()
        result.actions = rec.recognize_tracks(result.tracks, min_frames=min_frames,
                                                     frame_shape=(result.meta.height, result.meta.width))
        top = result.actions.topk(5)
        lines = [f"{job.rel}: {persons(result.tracks.num_persons)}, model {rec.name}"]
        labels = {}
        for m, tid in enumerate(result.tracks.track_ids):
            seen = int(result.tracks.valid[m].sum())
            if result.actions.reasons[m]:
                lines.append(f"  track {tid}: {seen} frames, no actions ({result.actions.reasons[m]})")
                continue
            labels[int(tid)] = f"{top[m][0][0]} {top[m][0][1]:.2f}"
            lines.append(f"  track {tid}: {seen} frames: " + ", ".join(f"{lab} {s:.3f}" for lab, s in top[m]))
        if "video" in job.outputs:
            if not Path(result.meta.path).is_file():
                raise InputError(f"{result.meta.path}: the video of {job.input} is needed to draw the annotated "
                                 f"video (or pass --no-video)")
            _annotate(result, job.outputs["video"], desc, o.progress, labels)
            lines.append(f"wrote {job.outputs['video']}")
        write_result_json(result, job.outputs["json"])
        lines.append(f"wrote {job.outputs['json']}")
        return "\n".join(lines)

    return run_batch(jobs, work, o, "humact analyze")


def is_live_source(source: str | os.PathLike) -> bool:
    """A URL (rtsp://, http(s)://, udp://, ...), a device `/dev/videoN` or a bare device number."""
    import re

    from humact.video import LIVE_SCHEMES

    text = os.fspath(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in LIVE_SCHEMES or bool(re.fullmatch(r"/dev/video\d+|\d+", text))


def live_output_name(source: str) -> str:
    """The output name of a live source (a URL or device path made into a file name; "live" if empty)."""
    import re

    name = re.sub(r"^[a-z]+://", "", source.strip())
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "live"
    return f"video{name}" if name.isdigit() else name[:120]


def extract_live_source(source: str | os.PathLike, out: str | os.PathLike, options: ExtractOptions | None = None,
                        *, max_frames: int | None = None, drop: bool = True) -> BatchSummary:
    """Perception on a live source (webcam, stream, pipe) as frames arrive, until it ends, `max_frames`
    frames were processed, or Ctrl-C; then `NAME.json` + `NAME.pkl` (and, with `options.video`,
    `NAME.annotated.mp4` drawn as the frames came) in `out`, NAME from the source. With `drop` (live
    cameras) the oldest waiting frame is dropped when processing is slower than the source; without
    it (a recorded stream) the reader waits."""
    import sys
    import time
    import warnings

    from humact.batch import output_paths
    from humact.draw import draw_detections
    from humact.io.atomic import atomic_path
    from humact.io.results import write_pyskl_pickle, write_result_json
    from humact.perception.live import extract_live
    from humact.perception.pipeline import ExtractConfig
    from humact.video import PartialDecodeWarning, VideoWriter

    o = options or ExtractOptions()
    config = o.config or ExtractConfig()
    source = os.fspath(source)
    prepare_output_dir(out)
    kinds = ("json", "pkl") + (("video",) if o.video else ())
    job = Job(Path(source), Path(live_output_name(source)), output_paths(out, live_output_name(source), kinds))
    t0 = time.perf_counter()
    with warnings.catch_warnings(), (atomic_path(job.outputs["video"]) if o.video else contextlib.nullcontext()) as tmp:
        warnings.simplefilter("ignore", PartialDecodeWarning)
        writer = None

        def show(t, rgb, det):
            nonlocal writer
            if tmp is None:
                return
            if writer is None:
                writer = VideoWriter(tmp, width=rgb.shape[1], height=rgb.shape[0], fps=25.0)
            writer.write(draw_detections(rgb, det), time_s=session.frame_time(t))

        session = extract_live(source, config=config, on_frame=show, max_frames=max_frames,
                               when_full="drop_oldest" if drop else "wait")
        with session:
            for n, _ in enumerate(session, 1):
                if o.progress and n % 100 == 0:
                    print(f"{job.rel}: {n} frames", file=sys.stderr)
        if writer is not None:
            writer.close()
    result = session.result()
    for w in result.warnings:
        print(f"warning: {w}" if w.startswith(source) else f"warning: {source}: {w}", file=sys.stderr)
    write_pyskl_pickle(result, job.outputs["pkl"])
    write_result_json(result, job.outputs["json"])
    summary = BatchSummary()
    summary.done.append((job, f"{source}: {result.meta.num_frames} frames, {persons(result.tracks.num_persons)} "
                              f"-> {job.outputs['json']}"))
    summary.seconds = time.perf_counter() - t0
    print(summary.done[0][1])
    return summary
