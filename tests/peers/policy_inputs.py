"""Peer process for tests/test_policy_node.py: publishes a policy node's inputs at 20 Hz.

Usage: python -m tests.peers.policy_inputs NAMESPACE SEED DURATION_S
Publishes ``<ns>/agentview/image`` and ``<ns>/wrist/image`` (rgb8, SensorDataQoS), ``<ns>/robot_state``
(sensor_msgs/JointState: seven arm joints and the two gripper fingers) and ``<ns>/ee_pose``
(geometry_msgs/PoseStamped) until SIGINT or DURATION_S. The values come from
:func:`fixture_inputs` (seeded), which the test recomputes.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from vega_ros import conversions
from vega_ros.policy_io import PolicyInputs

GRIPPER_JOINTS = ("gripper0_finger_joint1", "gripper0_finger_joint2")
ARM_JOINTS = tuple(f"robot0_joint{i}" for i in range(1, 8))
FRAME = "world"


def fixture_inputs(seed: int) -> dict:
    """Seeded inputs: images [48, 64, 3] uint8, arm / gripper joint positions, ee position and quaternion (x, y, z, w)."""
    rng = np.random.default_rng(seed)
    quat = rng.normal(size=4)
    quat /= np.linalg.norm(quat)
    return {
        "agentview": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "arm_q": rng.normal(size=7),
        "gripper_q": np.array([0.031, -0.029]),
        "ee_pos": np.array([-0.1, 0.05, 1.05]) + 0.01 * rng.normal(size=3),
        "ee_quat": quat,
    }


def expected_policy_inputs(seed: int) -> PolicyInputs:
    """What the policy node must hand its policy for :func:`fixture_inputs`."""
    f = fixture_inputs(seed)
    proprio = np.concatenate([f["ee_pos"], f["ee_quat"], f["gripper_q"]]).astype(np.float32)  # ROBOT_STATE_LAYOUT
    return PolicyInputs(agentview=f["agentview"], wrist=f["wrist"], proprio=proprio)


def messages(seed: int, stamp: float) -> tuple[Image, Image, JointState, PoseStamped]:
    f = fixture_inputs(seed)
    header = conversions.make_header(stamp, FRAME)
    agentview = conversions.numpy_to_image(f["agentview"], "rgb8", conversions.make_header(stamp, "agentview_optical"))
    # The wrist image travels as bgr8: the node must convert it back to RGB.
    wrist = conversions.numpy_to_image(np.ascontiguousarray(f["wrist"][..., ::-1]), "bgr8", conversions.make_header(stamp, "wrist_optical"))
    # Gripper joints last and in reverse order: the node must pick them by name.
    state = JointState(header=header, name=[*ARM_JOINTS, GRIPPER_JOINTS[1], GRIPPER_JOINTS[0]],
                       position=[*map(float, f["arm_q"]), float(f["gripper_q"][1]), float(f["gripper_q"][0])])
    pose = PoseStamped(header=header)
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = map(float, f["ee_pos"])
    o = pose.pose.orientation
    o.x, o.y, o.z, o.w = map(float, f["ee_quat"])
    return agentview, wrist, state, pose


def main() -> None:
    ns, seed, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("policy_inputs_peer")
    pubs = [node.create_publisher(Image, f"{ns}/agentview/image", qos_profile_sensor_data),
            node.create_publisher(Image, f"{ns}/wrist/image", qos_profile_sensor_data),
            node.create_publisher(JointState, f"{ns}/robot_state", qos_profile_sensor_data),
            node.create_publisher(PoseStamped, f"{ns}/ee_pose", qos_profile_sensor_data)]
    deadline = time.monotonic() + duration
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            for pub, msg in zip(pubs, messages(seed, time.time())):
                pub.publish(msg)
            time.sleep(0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
