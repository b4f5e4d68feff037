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


def _calls(tree, name: str) -> list[ast.Call]:
    return [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == name]


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def test_perception_launch_declares_its_arguments_and_puts_every_node_in_the_camera_namespace():
    tree = _launch_tree()
    declared = [c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")]
    assert declared == ["camera", "image_topic", "camera_info_topic", "sim_source", "model", "backend", "params_file", "use_rviz"]
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    nodes = _calls(tree, "Node")
    assert {_kwarg(c, "executable").value for c in nodes} == {"perception_node", "sim_camera_node", "rviz2"}
    for node in nodes:  # every node in the namespace, every remap relative (no leading '/')
        assert ast.unparse(_kwarg(node, "namespace")) == "namespace", ast.unparse(node)
        for remap in getattr(_kwarg(node, "remappings"), "elts", []):
            for name in remap.elts:
                head = name.values[0] if isinstance(name, ast.JoinedStr) else name
                assert not (isinstance(head, ast.Constant) and str(head.value).startswith("/")), ast.unparse(remap)
    read = next(ast.literal_eval(g.iter) for g in ast.walk(tree) if isinstance(g, ast.comprehension) and isinstance(g.iter, ast.Tuple))
    assert set(read) == set(declared)  # every argument is read, none unknown


def test_perception_launch_checks_for_rviz_before_starting_anything():
    tree = _launch_tree()
    src = ast.unparse(tree)
    assert "IfCondition" not in src  # no node that can fail to resolve after the others started
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_nodes")
    body = ast.unparse(fn)
    assert "package_executable('rviz2', 'rviz2')" in body and "rviz_missing_message()" in body
    assert body.index("package_executable('rviz2'") < body.index("actions = []")  # decided before the first node


def test_policy_launch_takes_the_artifact_and_topics_and_refuses_without_an_artifact():
    tree = _launch_tree("policy.launch.py")
    declared = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument") if isinstance(c.args[0], ast.Constant)}
    assert {"policy", "task", "models_root", "backend", "namespace", "params_file"} <= declared
    policy_default = next(_kwarg(c, "default_value").value for c in _calls(tree, "DeclareLaunchArgument")
                          if isinstance(c.args[0], ast.Constant) and c.args[0].value == "policy")
    assert policy_default == ""  # no silent noop
    topics = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "TOPICS")
    assert set(topics.values()) == {"agentview/image", "wrist/image", "robot_state", "ee_pose", "cmd_ee_delta", "gripper_command"}
    fn = ast.unparse(next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_node"))
    assert fn.index("resolve_policy(") < fn.index("Node(") and "NOOP_WARNING" in fn


def test_sim_demo_launch_includes_perception_with_the_sim_camera_and_records():
    tree = _launch_tree("sim_demo.launch.py")
    include = _calls(tree, "IncludeLaunchDescription")
    assert include and "perception.launch.py" in ast.unparse(include[0]) and "'camera': 'sim'" in ast.unparse(include[0])
    record = _calls(tree, "ExecuteProcess")
    assert record and "mcap" in ast.unparse(record[0])
    assert "shutil.which('ros2')" in ast.unparse(tree)  # no recorder that cannot start
    declared = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")}
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
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
    assert {"/camera/image_raw", "/camera/depth/image", "/camera/points", "/camera/path", "/camera/pose"} <= topics
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == "odom"


def test_package_executable_finds_what_launch_ros_would_run(tmp_path, monkeypatch):
    from vega_ros.launch_support import package_executable

    (tmp_path / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (tmp_path / "share" / "ament_index" / "resource_index" / "packages" / "viewer").touch()
    exe = tmp_path / "lib" / "viewer" / "viewer"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert package_executable("viewer", "viewer") is None  # not executable
    exe.chmod(0o755)
    assert package_executable("viewer", "viewer") == str(exe)
    assert package_executable("rviz2", "rviz2") is None  # not in this index


def test_rviz_config_moves_every_topic_to_the_namespace(tmp_path):
    from vega_ros.launch_support import rviz_config_for_namespace

    template = os.path.join(ROOT, "config", "vega.rviz")
    assert rviz_config_for_namespace(template, "/camera/") == template
    moved = rviz_config_for_namespace(template, "front", str(tmp_path))
    with open(moved) as f:
        cfg = yaml.safe_load(f)
    topics = {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics and all(t.startswith("/front/") for t in topics), topics
    assert "/front/depth/image" in topics


def test_resolve_policy_refuses_without_an_artifact_and_names_noop(tmp_path):
    import pytest

    from vega_ros.launch_support import NOOP, LaunchArgumentError, normalize_namespace, resolve_policy

    with pytest.raises(LaunchArgumentError, match="policy:=<policy artifact directory> is required.*noop"):
        resolve_policy("", "")
    with pytest.raises(LaunchArgumentError, match="no policy_card.json"):
        resolve_policy(str(tmp_path), "pick")
    (tmp_path / "policy_card.json").write_text("{}")
    with pytest.raises(LaunchArgumentError, match="task:="):
        resolve_policy(str(tmp_path), " ")
    assert resolve_policy(str(tmp_path), "pick up the bowl") == str(tmp_path)
    assert resolve_policy("noop", "") == NOOP
    assert normalize_namespace("/front/") == "front" and normalize_namespace("robot1/left") == "robot1/left"
    with pytest.raises(LaunchArgumentError, match="not a namespace"):
        normalize_namespace("front camera")
