"""vega_ros.diagnostics: counters by reason and their DiagnosticArray form."""

import math
from enum import Enum

from builtin_interfaces.msg import Time

from vega_ros.diagnostics import NodeStats, RejectReason, diagnostic_values, to_diagnostic_array


class OtherReason(str, Enum):
    BAD_POSE = "bad_pose"


def test_values_format_including_nan_and_inf():
    arr = to_diagnostic_array(Time(sec=1), "vega_ros/x", "hw", {"a": 3.0, "b": 0.25, "c": math.nan, "d": math.inf, "e": "ok"}, b"\x00", "m")
    assert diagnostic_values(arr, "vega_ros/x") == {"a": "3", "b": "0.25", "c": "nan", "d": "inf", "e": "ok"}
    assert diagnostic_values(arr, "other") is None


def test_rejections_are_counted_by_the_nodes_own_reasons():
    stats = NodeStats(counters=("frames",))
    stats.reject(RejectReason.BAD_LAYOUT)
    stats.reject(RejectReason.BAD_LAYOUT)
    snap = stats.snapshot()
    assert snap["rejected.bad_layout"] == 2 and snap["rejected.total"] == 2 and snap["frames"] == 0
    assert snap["rejected.engine_error"] == 0  # every reason is reported, zero or not
    other = NodeStats(reasons=OtherReason)
    other.reject(OtherReason.BAD_POSE)
    snap = other.snapshot()
    assert snap["rejected.bad_pose"] == 1 and snap["rejected.total"] == 1 and "rejected.bad_layout" not in snap
