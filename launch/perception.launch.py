"""Start vega_ros perception on a robot: ``ros2 launch vega_ros perception.launch.py camera:=front``.

Everything runs in the namespace ``camera``: the perception node is ``/<camera>/perception`` and
its topics are relative to it (``<camera>/depth/image``, ``<camera>/points``, ...), so two launches
with different ``camera`` values run side by side.

Arguments:
  camera             namespace of the camera driver and of the perception node (default camera);
                     ``camera:=sim`` also starts vega_ros' simulated camera in the namespace ``sim``
  image_topic        the driver's image topic, relative to the namespace (default image_raw; its
                     ``/compressed`` sibling feeds the CompressedImage input)
  camera_info_topic  the driver's CameraInfo topic, relative to the namespace (default camera_info)
  sim_source         with camera:=sim: libero | synthetic
  model              model artifact directory ('' = the one installed with the package)
  backend            auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu
  params_file        perception parameters (default: the package's config/perception.yaml)
  use_rviz           true to open RViz with config/vega.rviz moved to the namespace; without rviz2
                     installed the launch says so and starts the nodes without it

The policy has its own launch file, policy.launch.py. The same parameters drive
``vega-ros bringup --params config/perception.yaml`` on machines without ``launch`` (pip-only installs).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vega_ros.launch_support import normalize_namespace, package_executable, rviz_config_for_namespace, rviz_missing_message

SIM = "sim"


def _nodes(context, *args, **kwargs):
    """Every check first (namespace, RViz), then the nodes: nothing starts if a check refuses."""
    share = get_package_share_directory("vega_ros")
    arg = {name: LaunchConfiguration(name).perform(context) for name in
           ("camera", "image_topic", "camera_info_topic", "sim_source", "model", "backend", "params_file", "use_rviz")}
    namespace = normalize_namespace(arg["camera"])
    image, info = arg["image_topic"].strip("/"), arg["camera_info_topic"].strip("/")
    overrides = {"backend": arg["backend"]}
    if arg["model"]:
        overrides["model_dir"] = os.path.abspath(arg["model"])
    rviz = None
    if arg["use_rviz"].lower() in ("true", "1", "yes"):
        if package_executable("rviz2", "rviz2"):
            rviz = Node(package="rviz2", executable="rviz2", name="rviz", namespace=namespace, output="log",
                        arguments=["-d", rviz_config_for_namespace(os.path.join(share, "config", "vega.rviz"), namespace)])
        else:
            get_logger("vega_ros.launch").warning(rviz_missing_message())

    actions = []
    if namespace == SIM:
        actions.append(Node(
            package="vega_ros", executable="sim_camera_node", name="sim_camera", namespace=namespace, output="screen",
            parameters=[os.path.join(share, "config", "sim_camera.yaml"), {"source": arg["sim_source"]}],
            remappings=[("image", image), ("camera_info", info)],
        ))
    actions.append(Node(
        package="vega_ros", executable="perception_node", name="perception", namespace=namespace, output="screen",
        parameters=[arg["params_file"] or os.path.join(share, "config", "perception.yaml"), overrides],
        remappings=[("image", image), ("image/compressed", f"{image}/compressed"), ("camera_info", info)],
    ))
    if rviz is not None:
        actions.append(rviz)
    return actions


def generate_launch_description():
    share = get_package_share_directory("vega_ros")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="camera", description="namespace of the camera and the perception node, or 'sim'"),
        DeclareLaunchArgument("image_topic", default_value="image_raw", description="camera image topic, relative to the namespace"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info", description="CameraInfo topic, relative to the namespace"),
        DeclareLaunchArgument("sim_source", default_value="libero", description="camera:=sim scene: libero | synthetic"),
        DeclareLaunchArgument("model", default_value="", description="model artifact directory ('' = installed default)"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "perception.yaml"),
                              description="perception parameters (ROS 2 params file)"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="open RViz with config/vega.rviz (needs rviz2)"),
        OpaqueFunction(function=_nodes),
    ])
