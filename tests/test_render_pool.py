"""distill.data.render_pool: jobs run in spawned workers, their reported units reach the parent's bar,
a job's error is raised in the parent after every other job has finished."""

from __future__ import annotations

import os

import pytest

from distill.data import render_pool


class _Bar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, units: int) -> None:
        self.n += units


def _job(units: int, fail: bool = False) -> tuple[int, str]:
    for _ in range(units):
        render_pool.report(1)
    if fail:
        raise RuntimeError(f"job of {units} failed")
    return units, os.environ["LP_NUM_THREADS"]


def test_jobs_report_to_one_bar_in_order_with_one_llvmpipe_thread_each(monkeypatch):
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)  # the workers set it for themselves
    bar = _Bar()
    results = render_pool.run_jobs(_job, [(3,), (5,), (2,)], workers=2, bar=bar)
    assert results == [(3, "1"), (5, "1"), (2, "1")] and bar.n == 10


def test_a_failing_job_raises_after_the_others_ran():
    bar = _Bar()
    with pytest.raises(RuntimeError, match="job of 4 failed"):
        render_pool.run_jobs(_job, [(4, True), (6,)], workers=1, bar=bar)
    assert bar.n == 10
