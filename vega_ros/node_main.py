"""The ``main`` every vega_ros node shares: init, build, spin, and a clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, name: str = "vega_ros",
             startup_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Initialise rclpy, build the node and spin it until Ctrl-C or an external shutdown.

    ``startup_errors`` raised while building the node (a bad parameter, a missing artifact) are
    logged as one FATAL line and end the process with exit code 2 instead of a traceback.
    """
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = make_node()
        except startup_errors as e:
            rclpy.logging.get_logger(name).fatal(f"cannot start: {e}")
            raise SystemExit(2) from None
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
