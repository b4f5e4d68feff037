"""The demo on a ROS 2 installation: simulated LIBERO camera + perception + an MCAP recording.

    ros2 launch vega_ros sim_demo.launch.py [source:=libero|synthetic] [record:=true] [use_rviz:=true]

perception.launch.py with ``camera:=sim`` (both nodes in the namespace ``sim``) plus
``ros2 bag record -s mcap`` of every topic. The same nodes and parameters as ``vega-ros demo``
(which also scores the run). Without the ``ros2`` command (ros2bag) the launch says so and runs
without recording.
"""

import os
import shutil

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription


def _recorder(context, *args, **kwargs):
    if LaunchConfiguration("record").perform(context).lower() not in ("true", "1", "yes"):
        return []
    if shutil.which("ros2") is None:
        get_logger("vega_ros.launch").warning("record:=true but the 'ros2' command is not on PATH (source the ROS setup; "
                                              "recording needs ros2bag and rosbag2_storage_mcap); running without recording")
        return []
    bag = LaunchConfiguration("bag").perform(context)
    return [ExecuteProcess(cmd=["ros2", "bag", "record", "-a", "-s", "mcap", "-o", bag], output="screen")]


def generate_launch_description():
    share = get_package_share_directory("vega_ros")
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="libero", description="libero | synthetic"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu"),
        DeclareLaunchArgument("record", default_value="true", description="record every topic to an MCAP bag"),
        DeclareLaunchArgument("bag", default_value="vega_demo_bag", description="bag directory"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="open RViz with config/vega.rviz (needs rviz2)"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, "launch", "perception.launch.py")),
            launch_arguments={"camera": "sim", "sim_source": LaunchConfiguration("source"), "backend": LaunchConfiguration("backend"),
                              "use_rviz": LaunchConfiguration("use_rviz")}.items(),
        ),
        OpaqueFunction(function=_recorder),
    ])
