"""LatestWorker: the newest item wins, replaced items are reported, errors do not end the thread, stop ends it."""

from __future__ import annotations

import threading
import time

from vega_ros.latest_worker import LatestWorker


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_the_newest_item_wins_and_replaced_ones_are_reported():
    gate, seen = threading.Event(), []

    def handle(item: int) -> None:
        gate.wait(5.0)  # hold the worker on its first item while more arrive
        seen.append(item)

    w = LatestWorker(handle, "test-latest")
    assert w.submit(0) is False
    assert _wait_for(lambda: w._pending is None)  # the worker holds item 0
    replaced = [w.submit(i) for i in (1, 2, 3)]
    assert replaced == [False, True, True]  # 1 waited, 2 replaced it, 3 replaced 2
    gate.set()
    assert _wait_for(lambda: seen == [0, 3])
    assert w.clear() is False and w.stop(timeout=2.0)


def test_a_failing_item_is_reported_and_the_worker_goes_on():
    errors, seen = [], []

    def handle(item: int) -> None:
        if item == 1:
            raise ValueError("bad item")
        seen.append(item)

    w = LatestWorker(handle, "test-latest-errors", on_error=errors.append)
    w.submit(1)
    assert _wait_for(lambda: len(errors) == 1)
    w.submit(2)
    assert _wait_for(lambda: seen == [2])
    assert isinstance(errors[0], ValueError)
    assert w.stop(timeout=2.0)
    w.submit(3)  # after stop nothing runs
    time.sleep(0.05)
    assert seen == [2]


def test_clear_drops_a_waiting_item():
    gate, seen = threading.Event(), []
    w = LatestWorker(lambda item: (gate.wait(5.0), seen.append(item)), "test-latest-clear")
    w.submit("held")
    assert _wait_for(lambda: w._pending is None)
    w.submit("waiting")
    assert w.clear() is True
    gate.set()
    assert _wait_for(lambda: seen == ["held"])
    time.sleep(0.05)
    assert seen == ["held"] and w.stop(timeout=2.0)
