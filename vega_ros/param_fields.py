"""Dataclass fields that are also ROS parameters: description, range, choices, run-time changeability.

Pure Python (no rclpy), so plain-Python settings such as :class:`vega_ros.odometry.OdometrySettings`
can declare their parameters too; :func:`vega_ros.settings.declare_settings` turns them into
declared ROS parameters with descriptors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any

RUNTIME_NOTE = " (changeable at run time)"


def param(default: Any, description: str, lo: float | None = None, hi: float | None = None, choices: tuple[str, ...] = (),
          dynamic: bool = False) -> Any:
    """A dataclass field that is also a ROS parameter.

    ``dynamic`` marks a parameter the node applies when it changes at run time (its description
    says so); the others are read once at start-up and a change is refused.
    """
    return field(default=default, metadata={"description": description + (RUNTIME_NOTE if dynamic else ""), "range": (lo, hi),
                                            "choices": choices, "dynamic": dynamic})


def dynamic_parameters(cls: type) -> frozenset[str]:
    """Names of the fields of ``cls`` declared ``dynamic`` (applied on change at run time)."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("dynamic"))


def check_choice(cls: type, name: str, value: Any) -> str | None:
    """Why ``value`` is not allowed for field ``name`` of ``cls`` (None = allowed)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    choices = f.metadata.get("choices", ())
    if choices and value not in choices:
        return f"parameter '{name}' = {value!r} is not one of {choices}"
    return None
