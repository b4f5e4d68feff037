"""LatestWorker: a thread that handles the newest item handed to it; an older one still waiting is dropped.

The perception node's stages run on these (latest frame wins): the depth stage on the newest
camera frame, the pose stage on the newest depth result. A producer never blocks, and every
replaced item is reported to it, so drops are counted rather than silent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestWorker(Generic[T]):
    """Runs ``handle(item)`` on a daemon thread for the newest item :meth:`submit` gave it.

    ``handle`` must not raise (the node's handlers count their own failures); if it does, ``on_error``
    gets the exception and the worker goes on with the next item.
    """

    def __init__(self, handle: Callable[[T], None], name: str, on_error: Callable[[BaseException], None] | None = None):
        self._handle, self._on_error = handle, on_error
        self._cond = threading.Condition()
        self._pending: T | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Hand ``item`` over; True if it replaced one still waiting (that one is dropped)."""
        with self._cond:
            replaced = self._pending is not None
            self._pending = item
            self._cond.notify()
        return replaced

    def clear(self) -> bool:
        """Drop the waiting item, if any; True if there was one."""
        with self._cond:
            had, self._pending = self._pending is not None, None
        return had

    def stop(self, timeout: float) -> bool:
        """Stop taking items and wait up to ``timeout`` s for the one in hand; True if the thread has ended."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait(timeout=0.5)
                if self._stop:
                    return
                item, self._pending = self._pending, None
            try:
                self._handle(item)
            except Exception as e:  # noqa: BLE001 - the worker must outlive a failing item
                if self._on_error is not None:
                    self._on_error(e)
