"""Start the policy node: ``ros2 launch vega_ros policy.launch.py policy:=<artifact dir> task:="<instruction>"``.

Refuses to start without a policy artifact: ``policy:=noop`` (asked for by name) starts a policy
that holds the robot still, for bring-up, and says so.

Arguments:
  policy               policy artifact directory (policy.onnx, language_embeddings.json, policy_card.json), or noop
  task                 the language instruction (one the policy was trained on, or a rewording of one)
  models_root          where the policy's encoder artifact lives ('' = next to the policy)
  backend              auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu
  namespace            namespace of the node ('' = the launch's)
  agentview_image      the scene camera's Image topic           (the node's agentview/image)
  wrist_image          the wrist camera's Image topic           (wrist/image)
  joint_states         JointState topic with the gripper joints (robot_state)
  ee_pose              end-effector PoseStamped topic           (ee_pose)
  cmd_ee_delta         output TwistStamped topic                (cmd_ee_delta)
  gripper_command      output Float32 topic                     (gripper_command)
  params_file          policy parameters (default: the package's config/policy.yaml)
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vega_ros.launch_support import NOOP, NOOP_WARNING, resolve_policy

# launch argument -> the node's own topic name it remaps (and its default)
TOPICS = {"agentview_image": "agentview/image", "wrist_image": "wrist/image", "joint_states": "robot_state",
          "ee_pose": "ee_pose", "cmd_ee_delta": "cmd_ee_delta", "gripper_command": "gripper_command"}


def _node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in
             ("policy", "task", "models_root", "backend", "namespace", "params_file", *TOPICS)}
    policy = resolve_policy(value["policy"], value["task"])  # refuses before anything starts
    if policy == NOOP:
        get_logger("vega_ros.launch").warning(NOOP_WARNING)
    overrides = {"policy": policy, "task": value["task"], "backend": value["backend"]}
    if value["models_root"]:
        overrides["models_root"] = os.path.abspath(value["models_root"])
    remaps = [(own, value[arg]) for arg, own in TOPICS.items() if value[arg] != own]
    return [Node(package="vega_ros", executable="policy_node", name="policy_node", namespace=value["namespace"] or None,
                 output="screen", parameters=[value["params_file"], overrides], remappings=remaps)]


def generate_launch_description():
    share = get_package_share_directory("vega_ros")
    return LaunchDescription([
        DeclareLaunchArgument("policy", default_value="", description="policy artifact directory, or 'noop' (holds still)"),
        DeclareLaunchArgument("task", default_value="", description="language instruction of the task"),
        DeclareLaunchArgument("models_root", default_value="", description="where the policy's encoder artifact lives"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the policy node"),
        *[DeclareLaunchArgument(arg, default_value=own, description=f"topic of the node's {own}") for arg, own in TOPICS.items()],
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "policy.yaml"),
                              description="policy parameters (ROS 2 params file)"),
        OpaqueFunction(function=_node),
    ])
