"""Start vega_ros perception on a robot: ``ros2 launch vega_ros perception.launch.py camera:=/camera``.

Arguments:
  camera       namespace of the camera driver; its ``image_raw`` and ``camera_info`` feed the node
               (``camera:=sim`` starts vega_ros' simulated camera instead and uses its topics)
  model        model artifact directory ('' = the one installed with the package)
  backend      auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu
  use_rviz     true to open RViz with config/vega.rviz
  with_policy  true to also start the policy node (vega_ros policy_node, config/policy.yaml)
  params_file  perception parameters (default: the package's config/perception.yaml)

The same parameters drive ``vega-ros bringup --params config/perception.yaml`` on machines
without ``launch`` (pip-only installs), which starts the same nodes as separate processes.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def _nodes(context, *args, **kwargs):
    share = get_package_share_directory("vega_ros")
    camera = LaunchConfiguration("camera").perform(context).rstrip("/")
    params_file = LaunchConfiguration("params_file").perform(context) or os.path.join(share, "config", "perception.yaml")
    overrides = {"backend": LaunchConfiguration("backend").perform(context)}
    model = LaunchConfiguration("model").perform(context)
    if model:
        overrides["model_dir"] = model
    actions = []
    if camera == "sim":
        camera = "/camera"
        actions.append(Node(
            package="vega_ros", executable="sim_camera_node", name="sim_camera", output="screen",
            parameters=[os.path.join(share, "config", "sim_camera.yaml")],
            remappings=[("image", f"{camera}/image_raw"), ("camera_info", f"{camera}/camera_info"),
                        ("ground_truth/depth", f"{camera}/ground_truth/depth"), ("ground_truth/pose", f"{camera}/ground_truth/pose")],
        ))
    actions.append(Node(
        package="vega_ros", executable="perception_node", name="perception", output="screen",
        parameters=[params_file, overrides],
        remappings=[("image", f"{camera}/image_raw"), ("camera_info", f"{camera}/camera_info")],
    ))
    return actions


def generate_launch_description():
    share = get_package_share_directory("vega_ros")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="/camera", description="camera namespace (image_raw + camera_info), or 'sim'"),
        DeclareLaunchArgument("model", default_value="", description="model artifact directory ('' = installed default)"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="open RViz with config/vega.rviz"),
        DeclareLaunchArgument("with_policy", default_value="false", description="also start the policy node"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "perception.yaml"),
                              description="perception parameters (ROS 2 params file)"),
        OpaqueFunction(function=_nodes),
        Node(
            package="vega_ros", executable="policy_node", name="policy_node", output="screen",
            parameters=[os.path.join(share, "config", "policy.yaml")],
            condition=IfCondition(LaunchConfiguration("with_policy")),
        ),
        Node(
            package="rviz2", executable="rviz2", name="rviz", output="log",
            arguments=["-d", os.path.join(share, "config", "vega.rviz")],
            condition=IfCondition(LaunchConfiguration("use_rviz")),
        ),
    ])
