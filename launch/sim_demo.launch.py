"""The demo on a ROS 2 installation: simulated LIBERO camera + perception + an MCAP recording.

    ros2 launch vega_ros sim_demo.launch.py [source:=libero|synthetic] [record:=true] [use_rviz:=true]

The same nodes, parameters and topics as ``vega-ros demo`` (which also scores the run); here the
recording is ``ros2 bag record -s mcap`` of every topic.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("vega_ros")
    camera_remaps = [("image", "/camera/image_raw"), ("camera_info", "/camera/camera_info"),
                     ("ground_truth/depth", "/camera/ground_truth/depth"), ("ground_truth/pose", "/camera/ground_truth/pose")]
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="libero", description="libero | synthetic"),
        DeclareLaunchArgument("backend", default_value="auto", description="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu"),
        DeclareLaunchArgument("record", default_value="true", description="record every topic to an MCAP bag"),
        DeclareLaunchArgument("bag", default_value="vega_demo_bag", description="bag directory"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="open RViz with config/vega.rviz"),
        Node(package="vega_ros", executable="sim_camera_node", name="sim_camera", output="screen",
             parameters=[os.path.join(share, "config", "sim_camera.yaml"), {"source": LaunchConfiguration("source")}],
             remappings=camera_remaps),
        Node(package="vega_ros", executable="perception_node", name="perception", output="screen",
             parameters=[os.path.join(share, "config", "perception.yaml"), {"backend": LaunchConfiguration("backend")}],
             remappings=[("image", "/camera/image_raw"), ("camera_info", "/camera/camera_info")]),
        ExecuteProcess(cmd=["ros2", "bag", "record", "-a", "-s", "mcap", "-o", LaunchConfiguration("bag")], output="screen",
                       condition=IfCondition(LaunchConfiguration("record"))),
        Node(package="rviz2", executable="rviz2", name="rviz", output="log", arguments=["-d", os.path.join(share, "config", "vega.rviz")],
             condition=IfCondition(LaunchConfiguration("use_rviz"))),
    ])
