"""Render jobs in spawned worker processes, one per core, with their progress on one bar.

Both renderers (``distill.data.render``: a LIBERO task's shards per job; ``distill.data.procedural.render``:
a scene per job) hand their jobs to :func:`run_jobs`; a job calls :func:`report` as it finishes units
(clips, frames), which the parent adds to its tqdm bar. Each worker renders offscreen through EGL
(``MUJOCO_GL``, unless set) with one llvmpipe thread: two workers on two cores, not two workers with
a thread per core each.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_progress: Any = None  # the parent's queue, in a worker


def report(units: int) -> None:
    """Add ``units`` done to the parent's progress bar (from a job in a worker; a no-op elsewhere)."""
    if _progress is not None:
        _progress.put(units)


def _init_worker(q: Any) -> None:
    global _progress
    _progress = q
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one process per core: no llvmpipe thread fan-out


def run_jobs(job: Callable[..., Any], jobs: Sequence[tuple], workers: int, bar: Any) -> list[Any]:
    """``[job(*args) for args in jobs]``, run in ``workers`` spawned processes; what the jobs
    :func:`report` goes to ``bar`` (a tqdm bar) as it comes. A job's exception is raised here once
    every job has ended (the finished ones have written their files)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)) as pool:
        futures = [pool.submit(job, *args) for args in jobs]
        while not all(f.done() for f in futures):
            with contextlib.suppress(queue.Empty):
                bar.update(q.get(timeout=0.5))
    # the workers have exited, so their queue feeders have flushed: what they reported last is in the pipe now
    while True:
        try:
            bar.update(q.get(timeout=0.05))
        except queue.Empty:
            break
    return [f.result() for f in futures]
