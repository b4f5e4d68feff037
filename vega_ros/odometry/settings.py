"""Every knob of the visual odometry, in one frozen dataclass; the perception node declares each one as
the ROS parameter ``odometry.<name>`` (read at start-up; docs/parameters.md lists them)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from vega_ros.param_fields import param

PARAMETER_PREFIX = "odometry."
"""The perception node declares field ``x`` as the parameter ``odometry.x``."""


@dataclass(frozen=True)
class OdometrySettings:
    """Settings of :class:`vega_ros.odometry.VisualOdometry`. Pixels are at the resolution of the
    images handed to ``track``; metres and degrees as the names say."""

    max_features: int = param(400, "Features kept per keyframe (new corners top up the surviving tracks to this number).", 8, 5000)
    fast_threshold: int = param(6, "FAST corner threshold (grey levels); halved once if a keyframe finds too few corners.", 1, 255)
    grid_cols: int = param(8, "Corners are bucketed in a ``grid_cols x grid_rows`` grid so that they cover the image.", 1, 64)
    grid_rows: int = param(6, "See ``grid_cols``.", 1, 64)
    min_feature_distance_px: float = param(6.0, "A new corner is not placed closer than this to a tracked one.", 0.0, 100.0)
    border_px: int = param(8, "Corners closer than this to the image border are ignored.", 0, 100)
    lk_window_px: int = param(11, "Lucas-Kanade window side (odd).", 3, 63)
    lk_levels: int = param(3, "Pyramid levels above the base image (0 = no pyramid).", 0, 8)
    lk_max_iterations: int = param(30, "Lucas-Kanade iterations per level.", 1, 200)
    lk_epsilon: float = param(0.01, "Lucas-Kanade convergence threshold (px).", 0.0, 1.0)
    fb_max_error_px: float = param(0.7, "Forward-backward check: a track survives if tracking it back lands within this of its start.", 0.0, 20.0)
    depth_min_m: float = param(0.05, "Depth below this is treated as invalid.", 0.0, 100.0)
    depth_max_m: float = param(20.0, "Depth above this is treated as invalid.", 0.0, 1000.0)
    depth_edge_max_ratio: float = param(
        0.25,
        "A feature is given no 3D point where its 3x3 depth neighbourhood spans more than this share of its "
        "median (a depth edge: the point could belong to either side); its depth is that median.",
        0.0, 10.0)
    ransac_reprojection_px: float = param(2.0, "RANSAC inlier threshold of the PnP (px).", 0.1, 50.0)
    ransac_iterations: int = param(200, "RANSAC iterations of the PnP.", 1, 10000)
    ransac_confidence: float = param(0.999, "RANSAC confidence of the PnP.", 0.5, 0.999999)
    min_pnp_inliers: int = param(12, "Fewer inliers than this and the PnP has failed (the prior, if any, is the fallback).", 6, 5000)
    max_step_translation_m: float = param(0.5, "A PnP pose more than this from the previous frame's is rejected as a failure.", 0.0, 100.0)
    max_step_rotation_deg: float = param(30.0, "A PnP pose rotated more than this from the previous frame's is rejected as a failure.", 0.0, 180.0)
    keyframe_min_tracked_fraction: float = param(
        0.6,
        "New keyframe when fewer than this share of the keyframe's 3D points are still inliers.",
        0.0, 1.0)
    keyframe_min_inliers: int = param(80, "New keyframe when the PnP has fewer inliers than this.", 0, 5000)
    keyframe_max_parallax_px: float = param(25.0, "New keyframe when the median feature displacement since the keyframe exceeds this.", 0.0, 1000.0)
    keyframe_max_frames: int = param(40, "New keyframe at the latest after this many frames.", 1, 10000)
    depth_fusion_max_weight: float = param(
        4.0,
        "A new keyframe's tracked points take the geometric mean of the map's depth (weight: the depth maps "
        "it already averages, capped at this) and the new depth map's (weight 1); 0 turns fusion off (every "
        "keyframe trusts its own depth map only).",
        0.0, 1000.0)
    window_keyframes: int = param(5, "Keyframes in the windowed bundle adjustment (the oldest is held fixed); 0 or 1 turns it off.", 0, 20)
    window_max_iterations: int = param(
        10,
        "Levenberg-Marquardt iterations per round of the windowed bundle adjustment (each: one Jacobian, one "
        "or more cost evaluations; a second round follows without the observations the first left > 3 Huber "
        "scales off).",
        1, 100)
    window_depth_sigma_log: float = param(
        0.15,
        "The depth maps' error assumed by the windowed bundle adjustment, as a log-depth standard deviation "
        "(0.15: about 15 %); a depth this far off costs as much as one pixel of reprojection error. Smaller "
        "values trust the depth maps' shape more, larger ones let the views' parallax reshape it (scale "
        "always comes from the depth maps).",
        0.01, 10.0)
    window_huber_px: float = param(
        1.5, "Huber scale of the windowed bundle adjustment's residuals (px; depth residuals in window_depth_sigma_log units).",
        0.01, 100.0)
    max_prior_frames: int = param(5, "Consecutive frames on which the prior may stand in for a failed PnP before tracking is LOST.", 0, 1000)
    recover_min_points: int = param(40, "Corners with valid depth a frame needs to (re-)initialise a keyframe.", 6, 5000)
    min_pixel_sigma: float = param(0.3, "Floor of the reprojection noise (px) used for the covariance (exact data would give zero).", 0.0, 100.0)
    prior_sigma_m: float = param(0.05, "Standard deviation assumed for each translation axis of a pose taken from the prior (m).", 0.0, 100.0)
    prior_sigma_deg: float = param(3.0, "Standard deviation assumed for each rotation axis of a pose taken from the prior (deg).", 0.0, 180.0)
    lost_sigma_m: float = param(10.0, "Standard deviation of each translation axis reported while LOST (m).", 0.0, 1000000.0)
    lost_sigma_deg: float = param(90.0, "Standard deviation of each rotation axis reported while LOST (deg).", 0.0, 1000000.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"OdometrySettings.{f.name} must be >= 0, got {value}")
        if self.max_features < 8:
            raise ValueError(f"OdometrySettings.max_features must be >= 8, got {self.max_features}")
        if self.grid_cols < 1 or self.grid_rows < 1:
            raise ValueError(f"OdometrySettings grid must be at least 1x1, got {self.grid_cols}x{self.grid_rows}")
        if self.lk_window_px < 3 or self.lk_window_px % 2 == 0:
            raise ValueError(f"OdometrySettings.lk_window_px must be odd and >= 3, got {self.lk_window_px}")
        if self.min_pnp_inliers < 6:
            raise ValueError(f"OdometrySettings.min_pnp_inliers must be >= 6 (PnP needs them), got {self.min_pnp_inliers}")
        if not self.depth_min_m < self.depth_max_m:
            raise ValueError(f"OdometrySettings.depth_min_m ({self.depth_min_m}) must be < depth_max_m ({self.depth_max_m})")
        if not 0.0 < self.ransac_confidence < 1.0:
            raise ValueError(f"OdometrySettings.ransac_confidence must be in (0, 1), got {self.ransac_confidence}")
        if not 0.0 <= self.keyframe_min_tracked_fraction <= 1.0:
            raise ValueError("OdometrySettings.keyframe_min_tracked_fraction must be in [0, 1], "
                             f"got {self.keyframe_min_tracked_fraction}")
        if not self.window_depth_sigma_log > 0.0:
            raise ValueError(f"OdometrySettings.window_depth_sigma_log must be > 0, got {self.window_depth_sigma_log}")
        if self.keyframe_max_frames < 1:
            raise ValueError(f"OdometrySettings.keyframe_max_frames must be >= 1, got {self.keyframe_max_frames}")
