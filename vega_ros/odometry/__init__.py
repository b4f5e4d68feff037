"""Visual odometry on predicted metric depth (no ROS, no torch): ``VisualOdometry(OdometrySettings()).track(...)``.

Modules: ``settings`` (every knob), ``pose_math`` (pure geometry), ``features`` (FAST + Lucas-Kanade),
``pnp`` (PnP + RANSAC + refinement), ``window`` (windowed bundle adjustment), ``tracker`` (the state
machine), ``metrics`` (ATE, AUC@30 for the bench and the demo).
"""

from vega_ros.odometry.settings import OdometrySettings
from vega_ros.odometry.tracker import OdometryCounters, TrackStatus, VisualOdometry, VoResult

__all__ = ["OdometryCounters", "OdometrySettings", "TrackStatus", "VisualOdometry", "VoResult"]
