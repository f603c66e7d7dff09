"""Batch jobs on a Ray cluster: `humact extract|analyze INPUTS --out DIR --ray [ADDRESS]`.

`run_jobs_on_ray` is `humact.batch.run_jobs` on a Ray cluster: it plans and skips as the local run does and hands the jobs still to do to `run_on_ray`. The driver (this
process) starts `workers` actors (`BatchWorker`, one CPU each); each receives the command's
`work` once, pickled (a closure over plain settings whose models are `humact.batch.Lazy`), so
it loads its pose backend or model on its first input and keeps it for the rest. One Ray task
per input: the driver keeps each actor busy with one input at a time (the next goes to whichever
actor is free, so a long video does not hold up a queue behind it), aggregates progress (one
bar or plain line of inputs done, each input's note as it arrives) and fills the same
`BatchSummary` as a local run, whose rules hold unchanged: outputs written atomically by the
worker, the result JSON last; a failing input is reported with its reason and the rest go on.

Worker failure: a worker process that dies mid-input (killed, out of memory, its node lost) is
restarted by Ray (`max_restarts`) and the input it was working on is retried there
(`max_task_retries`, Ray's actor task retries). Its outputs were never half-written (temp
file + rename), and the temp files of the attempt it died in are removed once every worker is
done. An input whose attempts all die is reported as failed like any other.

ADDRESS "" (`--ray` alone) joins the cluster `RAY_ADDRESS` names or the latest one `ray start`
made on this machine, else starts a local one; otherwise it is a cluster address
(`HOST:6379`, `ray://HOST:10001`, `auto`). Inputs and `--out` must be paths every node sees
(shared storage) or URLs.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

from humact.batch import BatchSummary, Job, attempt, pending, remove_temp_files, report_failure
from humact.errors import UsageError, one_line

__all__ = ["run_on_ray", "BatchWorker", "MAX_RESTARTS", "MAX_TASK_RETRIES"]

#: How often Ray restarts a dead worker, and retries the input it died on.
MAX_RESTARTS = 4
MAX_TASK_RETRIES = 2


class BatchWorker:
    """A Ray actor (made remote in `_actor_class`) that runs one batch `work` on the inputs it is given."""

    def __init__(self, work: Callable[[Job, str], str]) -> None:
        os.environ["HUMACT_PROGRESS"] = "0"  # no per-frame bars in worker logs; the driver reports
        self.work = work

    def run(self, job: Job, desc: str) -> tuple[bool, str]:
        return attempt(self.work, job, desc)

    def pid(self) -> int:
        return os.getpid()


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs the ray package: pip install 'humact[ray]'") from None
    return ray


def _actor_class(ray):
    return ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(BatchWorker)


def _connect(ray, address: str) -> bool:
    """Join or start the cluster; True when this call did (and so should leave it at the end)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or None, logging_level=logging.WARNING, log_to_driver=True,
                 include_dashboard=False if not address else None)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UsageError(f"--ray {address or '(local)'}: cannot reach a Ray cluster ({one_line(e)})") from None
    return True


def run_jobs_on_ray(jobs: list[Job], work: Callable[[Job, str], str], *, force: bool = False, address: str = "",
                    workers: int | None = None, command: str = "humact", log: Callable[[str], None] | None = print,
                    progress: bool = True) -> BatchSummary:
    """`humact.batch.run_jobs` on a Ray cluster: "" starts a local one (or joins the one `RAY_ADDRESS`
    names), else a cluster address; `workers` actors (default: one per CPU of the cluster); `progress`:
    the driver's bar of inputs done."""
    t0 = time.perf_counter()
    summary, todo = pending(jobs, force=force)
    if todo:
        run_on_ray(todo, work, summary, address=address, workers=workers, command=command, log=log,
                   progress=progress)
    summary.seconds = time.perf_counter() - t0
    return summary


def run_on_ray(todo: list[Job], work: Callable[[Job, str], str], summary: BatchSummary, *, address: str = "",
               workers: int | None = None, command: str = "humact", log: Callable[[str], None] | None = print,
               progress: bool = True) -> BatchSummary:
    """Run `work` on each job of `todo` on a Ray cluster, filling `summary` (see the module docstring)."""
    from humact.progress import progress as bar

    ray = _ray()
    joined = _connect(ray, address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, len(todo)))
        Actor = _actor_class(ray)
        # `work` goes inline with each actor's creation (a small closure), so a restart still has it.
        actors = [Actor.remote(work) for _ in range(n)]
        queue = list(enumerate(todo))
        running: dict = {}  # ObjectRef -> (actor, index, job)

        def submit(actor) -> None:
            if queue:
                i, job = queue.pop(0)
                desc = f"[{i + 1}/{len(todo)}] {job.rel}" if len(todo) > 1 else str(job.rel)
                running[actor.run.remote(job, desc)] = (actor, i, job)

        for actor in actors:
            submit(actor)
        results: dict[int, tuple[Job, bool, str]] = {}
        shown = bar(total=len(todo), desc=f"{command} on ray ({n} workers)", unit="input", enabled=progress)
        with shown:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, i, job = running.pop(ready[0])
                try:
                    ok, text = ray.get(ready[0])
                except ray.exceptions.RayActorError as e:  # restarts and retries used up
                    ok, text = False, f"the worker died on it {MAX_TASK_RETRIES + 1} times ({one_line(e)[:200]})"
                    actor = None
                except ray.exceptions.RayError as e:
                    ok, text = False, f"{type(e).__name__}: {one_line(e)[:300]}"
                results[i] = (job, ok, text)
                if ok and log and text:
                    log(text)
                elif not ok and log:
                    report_failure(job, text, command)
                shown.update()
                if actor is not None:
                    submit(actor)
                elif not running and queue:  # every worker is gone: say so for what is left
                    for j, left in queue:
                        results[j] = (left, False, "no Ray worker left to run it")
                    queue.clear()
        for actor in actors:
            ray.kill(actor)
    finally:
        if joined:
            ray.shutdown()
    for i in sorted(results):  # the input order, as a local run reports it
        job, ok, text = results[i]
        if ok:
            summary.done.append((job, text))
        else:
            summary.failed.append((job, text))
    for job in todo:  # every attempt is over: nothing half-written stays
        remove_temp_files(job)
    return summary
