"""The robot launch file, the params files and the RViz config agree with the nodes' declared parameters."""

from __future__ import annotations

import ast
import dataclasses
import os

import yaml

from vega_ros.settings import PerceptionSettings, SimCameraSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch_tree(name: str = "perception.launch.py"):
    path = os.path.join(ROOT, "launch", name)
    with open(path) as f:
        src = f.read()
    compile(src, path, "exec")
    return ast.parse(src)


def test_launch_file_declares_its_arguments_and_entry_point():
    tree = _launch_tree()
    declared = [c.args[0].value for c in ast.walk(tree)
                if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "DeclareLaunchArgument"]
    assert declared == ["camera", "model", "backend", "use_rviz", "with_policy", "params_file"]
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    executables = {kw.value.value for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Node"
                   for kw in c.keywords if kw.arg == "executable"}
    assert {"perception_node", "sim_camera_node", "rviz2", "policy_node"} <= executables
    used = {c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "LaunchConfiguration"}
    assert used == set(declared)


def test_sim_demo_launch_file_starts_camera_perception_and_recorder():
    tree = _launch_tree("sim_demo.launch.py")
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call)]
    executables = {kw.value.value for c in calls if getattr(c.func, "id", "") == "Node" for kw in c.keywords if kw.arg == "executable"}
    assert {"sim_camera_node", "perception_node"} <= executables
    record = [c for c in calls if getattr(c.func, "id", "") == "ExecuteProcess"]
    assert record and "mcap" in ast.unparse(record[0])
    declared = {c.args[0].value for c in calls if getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    used = {c.args[0].value for c in calls if getattr(c.func, "id", "") == "LaunchConfiguration"}
    assert used <= declared


def _params(name: str, node: str) -> dict:
    with open(os.path.join(ROOT, "config", name)) as f:
        data = yaml.safe_load(f)
    assert list(data) == [node] and list(data[node]) == ["ros__parameters"]
    return data[node]["ros__parameters"]


def test_params_files_set_exactly_the_declared_parameters_with_their_types():
    for file, node, cls in (("perception.yaml", "perception", PerceptionSettings), ("sim_camera.yaml", "sim_camera", SimCameraSettings)):
        params = _params(file, node)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(params) == set(fields), f"{file}: {set(params) ^ set(fields)}"
        for k, v in params.items():
            assert type(v) is type(fields[k].default), f"{file}: {k} is {type(v).__name__}, the node declares {type(fields[k].default).__name__}"
            choices = fields[k].metadata.get("choices")
            assert not choices or v in choices, f"{file}: {k}={v!r} not in {choices}"


def test_rviz_config_shows_image_depth_cloud_path_and_tf():
    with open(os.path.join(ROOT, "config", "vega.rviz")) as f:
        cfg = yaml.safe_load(f)
    displays = cfg["Visualization Manager"]["Displays"]
    classes = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/Image", "rviz_default_plugins/PointCloud2", "rviz_default_plugins/Path",
            "rviz_default_plugins/TF"} <= classes
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert {"/camera/image_raw", "/depth", "/points", "/path", "/pose"} <= topics
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == "odom"
