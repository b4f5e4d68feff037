"""Counters, rates and latency percentiles for a node, and their ``diagnostic_msgs`` form.

:class:`NodeStats` is thread-safe (the perception node updates it from its subscription
callbacks and its worker thread). Rejected frames are counted by :class:`RejectReason`; the
``/diagnostics`` message carries every counter as ``key: value`` so a test or a monitor on
another process can read them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from enum import Enum

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class RejectReason(str, Enum):
    """Why an input message was not used (the key in /diagnostics is ``rejected.<value>``)."""

    UNSUPPORTED_ENCODING = "unsupported_encoding"  # not a colour / mono8 encoding we read
    BAD_LAYOUT = "bad_layout"  # zero size, step smaller than a row, data length != step * height
    NO_CAMERA_INFO = "no_camera_info"  # no valid camera_info received yet
    SIZE_MISMATCH = "size_mismatch"  # image size differs from the camera_info size
    BAD_CAMERA_INFO = "bad_camera_info"  # camera_info with zero size, NaN / non-positive K, NaN D
    OUT_OF_ORDER = "out_of_order"  # stamp not after the previous image's stamp
    BAD_COMPRESSED = "bad_compressed"  # a CompressedImage with no data or data OpenCV cannot decode
    ENGINE_ERROR = "engine_error"  # the engine raised on this frame


class NodeStats:
    """Counters, a processed-frame rate and latency windows."""

    def __init__(self, window: int = 300, counters: tuple[str, ...] = (), reasons: type[Enum] = RejectReason):
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter({k: 0 for k in counters})  # reported even while zero
        self.reasons = reasons  # the node's own reject-reason enum; every member is reported, zero or not
        self.rejected: Counter[Enum] = Counter()
        self._windows: dict[str, deque[float]] = {}
        self._done_times: deque[float] = deque(maxlen=window)
        self._window = window
        self.start = time.monotonic()

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def reject(self, reason: Enum) -> int:
        with self._lock:
            self.rejected[reason] += 1
            return self.rejected[reason]

    def sample(self, key: str, value: float) -> None:
        with self._lock:
            self._windows.setdefault(key, deque(maxlen=self._window)).append(float(value))

    def frame_done(self) -> None:
        with self._lock:
            self._done_times.append(time.monotonic())

    def rate_hz(self) -> float:
        with self._lock:
            t = list(self._done_times)
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])

    def percentiles(self, key: str, qs=(50, 95)) -> dict[int, float]:
        with self._lock:
            values = list(self._windows.get(key, ()))
        if not values:
            return {q: float("nan") for q in qs}
        return {q: float(np.percentile(values, q)) for q in qs}

    def snapshot(self) -> dict[str, float]:
        """Every counter, rate and percentile as a flat dict (what /diagnostics carries)."""
        out: dict[str, float] = {}
        with self._lock:
            out.update({k: float(v) for k, v in self.counters.items()})
            out.update({f"rejected.{r.value}": float(self.rejected.get(r, 0)) for r in self.reasons})
            keys = list(self._windows)
        out["rejected.total"] = float(sum(out[f"rejected.{r.value}"] for r in self.reasons))
        out["rate_hz"] = self.rate_hz()
        for k in keys:
            for q, v in self.percentiles(k, (50, 95, 99)).items():
                out[f"{k}.p{q}"] = v
        out["uptime_s"] = time.monotonic() - self.start
        return out


def to_diagnostic_array(stamp, name: str, hardware_id: str, values: dict[str, float | str], level: bytes, message: str) -> DiagnosticArray:
    def fmt(v) -> str:
        if isinstance(v, float):
            if not np.isfinite(v) or abs(v) > 1e15 or v != int(v):
                return f"{v:.6g}"
            return str(int(v))
        return str(v)

    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=fmt(v)) for k, v in sorted(values.items())])
    arr = DiagnosticArray(status=[status])
    arr.header.stamp = stamp
    return arr


def diagnostic_values(msg: DiagnosticArray, name: str) -> dict[str, str] | None:
    """The key/values of the status called ``name`` in a DiagnosticArray (None if absent)."""
    for s in msg.status:
        if s.name == name:
            return {kv.key: kv.value for kv in s.values}
    return None
