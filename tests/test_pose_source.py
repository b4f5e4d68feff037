"""The perception node's pose sources: the parameter picks one, and visual odometry behind the node's
protocol tracks an exactly rendered path (the node publishes what this returns)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.fixtures.vo_scene import TexturedRoom, arc_path
from vega_ros.pose_source import LearnedPose, PoseInput, VisualOdometryPose, make_pose_source


def test_the_parameter_picks_the_source_and_refuses_others():
    assert isinstance(make_pose_source("learned", 5), LearnedPose)
    vo = make_pose_source("visual_odometry", 5)
    assert isinstance(vo, VisualOdometryPose) and vo.name == "visual_odometry"
    with pytest.raises(ValueError, match="pose_source"):
        make_pose_source("gps", 5)


def test_visual_odometry_source_tracks_a_rendered_path_in_the_first_frames_camera():
    scene, poses = TexturedRoom(), arc_path(30)
    source = make_pose_source("visual_odometry", 5)
    T_w0 = poses[0]
    estimates = []
    for k, T_wc in enumerate(poses):
        gray, depth = scene.render(T_wc)
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
        learned = np.linalg.inv(T_w0) @ T_wc  # a perfect learned pose as the prior
        estimates.append(source.track(PoseInput(rgb, depth, scene.K, 0.1 * k, k, learned, False)))
    truth = np.stack([np.linalg.inv(T_w0) @ T for T in poses])  # odom = the first camera
    est = np.stack([e.T_odom_cam for e in estimates])
    path = np.sum(np.linalg.norm(np.diff(truth[:, :3, 3], axis=0), axis=1))
    ate = np.sqrt(np.mean(np.sum((est[:, :3, 3] - truth[:, :3, 3]) ** 2, axis=1)))
    assert ate < 0.01 * path
    assert {e.status for e in estimates} <= {"initialising", "tracking"} and estimates[-1].status == "tracking"
    assert estimates[0].keyframe and all(e.covariance.shape == (6, 6) for e in estimates)
    np.testing.assert_allclose(est[0], np.eye(4), atol=1e-9)  # the odometry frame is the first camera
