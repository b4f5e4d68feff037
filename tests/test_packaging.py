"""The package is a valid ament_python ROS 2 package and a pip-installable one."""

import ast
import os
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBOT_EXEC_DEPENDS = {"rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs", "diagnostic_msgs", "visualization_msgs", "tf2_ros"}


def test_package_xml_is_format_3_ament_python_with_robot_dependencies():
    root = ET.parse(os.path.join(ROOT, "package.xml")).getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "vega_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert ROBOT_EXEC_DEPENDS <= exec_deps, ROBOT_EXEC_DEPENDS - exec_deps


def test_ament_index_marker_and_setup_cfg_exist():
    assert os.path.isfile(os.path.join(ROOT, "resource", "vega_ros"))
    cfg = open(os.path.join(ROOT, "setup.cfg")).read()
    assert "$base/lib/vega_ros" in cfg  # where `ros2 run vega_ros <exe>` looks


def test_setup_py_installs_data_files_under_share_and_declares_extras():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    source = ast.unparse(tree)
    for needle in ("share/ament_index/resource_index/packages", "package.xml", "launch", "config", "models/catalog.json"):
        assert needle in source, needle
    extras = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "extras")
    keys = {k.value for k in extras.keys}
    assert {"runtime", "train", "sim", "dev", "ros"} <= keys
    train = ast.unparse(extras.values[[k.value for k in extras.keys].index("train")])
    assert "torch==2.13.0" in train  # never an unpinned torch (it would pull CUDA wheels)


def test_console_scripts_resolve_to_callables():
    import importlib
    from importlib.metadata import entry_points

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.value.startswith("vega_ros")}
    assert "vega-ros" in scripts
    for ep in scripts.values():
        module, _, attr = ep.value.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), ep.value


def test_ci_runs_exactly_the_readme_test_command():
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "make test" in ci and "make test" in readme
    constraints = open(os.path.join(ROOT, "requirements", "constraints.txt")).read().splitlines()
    assert "torch==2.13.0" in constraints


def test_readme_is_a_front_door_of_at_most_150_lines_whose_links_resolve():
    import re

    text = open(os.path.join(ROOT, "README.md")).read()
    assert len(text.splitlines()) <= 150
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert targets, "the README links into docs/"
    missing = [t for t in targets if not t.startswith("http") and not os.path.exists(os.path.join(ROOT, t))]
    assert not missing, f"README links to files that do not exist: {missing}"
