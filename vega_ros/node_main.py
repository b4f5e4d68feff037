"""The ``main`` every vega_ros node shares: init, build, spin, and a clean shutdown.

How Ctrl-C ends a process here (nodes, ``vega-ros demo``'s recorder):

* rclpy is initialised WITHOUT its signal handlers (:func:`init`). Its handler shuts the context
  down from inside the signal, while callbacks are still running: a timer that publishes then
  raises ``RCLError: context is invalid`` and a worker thread's publish fails. Instead SIGINT
  (and SIGTERM, as ``ros2 launch`` escalates with it) becomes a ``KeyboardInterrupt`` in the main
  thread, and the context stays valid until the node has been destroyed.
* :func:`spin` wakes every 0.1 s, so the interrupt is seen within that even on an idle node.
* From the first signal on, and during teardown (destroy the node, shut rclpy down;
  :func:`uninterruptible`), SIGINT is ignored and SIGTERM ends the process: a terminal's Ctrl-C
  reaches every process of its group and ``ros2 launch`` sends its own SIGINT too, and that second
  one must not cut the teardown with a traceback.

The process then exits 0.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

SPIN_PERIOD_S = 0.1


def _interrupt(signum: int, _frame) -> None:
    """The first SIGINT / SIGTERM: from now on SIGINT is ignored and SIGTERM ends the process, so a
    second signal cannot cut the teardown that this KeyboardInterrupt starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupts_as_keyboard_interrupt() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (once; see :func:`_interrupt`).
    Call from the main thread."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def init(args: list[str] | None = None) -> Context:
    """``rclpy.init`` without rclpy's signal handlers, then :func:`interrupts_as_keyboard_interrupt`.
    Returns the default context."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    interrupts_as_keyboard_interrupt()
    return rclpy.get_default_context()


def spin(executor: Executor, context: Context | None = None) -> None:
    """Spin until the context shuts down; returns to the interpreter every ``SPIN_PERIOD_S`` so a
    KeyboardInterrupt is raised promptly."""
    context = context or rclpy.get_default_context()
    while context.ok():
        executor.spin_once(timeout_sec=SPIN_PERIOD_S)


@contextmanager
def uninterruptible() -> Iterator[None]:
    """SIGINT ignored, SIGTERM back to its default (end the process) inside the block: for teardown."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, name: str = "vega_ros",
             startup_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Initialise rclpy, build the node and spin it until Ctrl-C, SIGTERM or an external shutdown;
    then destroy it and shut down (exit code 0, no traceback).

    ``startup_errors`` raised while building the node (a bad parameter, a missing artifact) are
    logged as one FATAL line and end the process with exit code 2 instead of a traceback.
    """
    init(args)
    node = None
    try:
        try:
            node = make_node()
        except startup_errors as e:
            rclpy.logging.get_logger(name).fatal(f"cannot start: {e}")
            raise SystemExit(2) from None
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with uninterruptible():
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
