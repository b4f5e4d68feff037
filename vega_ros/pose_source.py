"""Where the perception node's camera pose comes from: one call per frame, behind a small protocol.

The node calls ``pose_source.track(PoseInput(...))`` once per processed frame and publishes what it
returns (pose, odometry with covariance, TF) and, where it says ``keyframe``, hands the frame to
the multi-frame heads. :class:`LearnedPose` is today's source: the pose the model's heads predict
(per frame in format version 1; at keyframes, held in between, in version 2).
:class:`VisualOdometryPose` adapts a visual-odometry tracker with the interface
``track(gray, depth, K, stamp_s, prior_T_ck) -> result with T_wc, covariance, status, keyframe``
(the learned pose is its prior).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np


@dataclass
class PoseInput:
    """One frame as a pose source sees it (model resolution)."""

    rgb: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32 metres, 0 = invalid
    K: np.ndarray  # [3, 3] intrinsics of H x W
    stamp_s: float  # image stamp (s)
    frame_index: int  # stream index (0 = first frame after a reset)
    learned_T_odom_cam: np.ndarray  # [4, 4] the model's pose of this frame in the odometry frame (metres)
    learned_keyframe: bool  # the model's stream already made this frame a keyframe (format version 1)


@dataclass
class PoseEstimate:
    T_odom_cam: np.ndarray  # [4, 4] camera in the odometry frame, metres
    covariance: np.ndarray | None  # [6, 6] (x, y, z, rx, ry, rz) or None = unknown
    status: str  # e.g. "learned", "tracking", "lost"
    keyframe: bool  # this frame should start a keyframe (multi-frame heads run on it)


def make_pose_source(kind: str, keyframe_interval: int, odometry: Any = None) -> PoseSource:
    """The node's pose source by parameter value: ``visual_odometry`` (default; ``odometry``: its
    :class:`vega_ros.odometry.OdometrySettings`, None = the defaults) or ``learned``."""
    if kind == "learned":
        return LearnedPose(keyframe_interval)
    if kind == "visual_odometry":
        from vega_ros.odometry import OdometrySettings, VisualOdometry

        return VisualOdometryPose(VisualOdometry(odometry if odometry is not None else OdometrySettings()))
    raise ValueError(f"pose_source must be 'visual_odometry' or 'learned', got {kind!r}")


class PoseSource(Protocol):
    name: str

    def track(self, frame: PoseInput) -> PoseEstimate: ...

    def reset(self) -> None: ...


class LearnedPose:
    """The model's own pose. Keyframes: v1's stream decides; v2 makes every ``keyframe_interval``-th frame one."""

    name = "learned"

    def __init__(self, keyframe_interval: int):
        if keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1, got {keyframe_interval}")
        self.keyframe_interval = int(keyframe_interval)

    def track(self, frame: PoseInput) -> PoseEstimate:
        keyframe = frame.learned_keyframe or frame.frame_index % self.keyframe_interval == 0
        return PoseEstimate(frame.learned_T_odom_cam, None, self.name, keyframe)

    def reset(self) -> None:
        """Nothing to forget: the stream holds the learned state."""


class VisualOdometryPose:
    """Adapts a visual-odometry tracker (``tracker.track(gray, depth, K, stamp_s, prior_T_ck)``) to :class:`PoseSource`.

    The prior ``T_ck`` (current camera from the tracker's keyframe) comes from the learned poses of
    this frame and of the frame the tracker last made its keyframe; the tracker's ``T_wc`` is the
    camera in its world = the odometry frame.
    """

    name = "visual_odometry"

    def __init__(self, tracker: Any):
        self.tracker = tracker
        self._kf_learned: np.ndarray | None = None  # [4, 4] learned T_odom_cam of the tracker's keyframe

    def track(self, frame: PoseInput) -> PoseEstimate:
        gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
        prior = None if self._kf_learned is None else np.linalg.inv(frame.learned_T_odom_cam) @ self._kf_learned
        r = self.tracker.track(gray, frame.depth, frame.K, frame.stamp_s, prior)
        if r.keyframe:
            self._kf_learned = np.asarray(frame.learned_T_odom_cam, dtype=np.float64)
        status = getattr(r.status, "value", r.status)  # an enum (vega_ros.odometry.TrackStatus) or a plain string
        return PoseEstimate(np.asarray(r.T_wc, dtype=np.float64), np.asarray(r.covariance, dtype=np.float64), str(status),
                            bool(r.keyframe))

    def reset(self) -> None:
        self._kf_learned = None
        if hasattr(self.tracker, "reset"):
            self.tracker.reset()
