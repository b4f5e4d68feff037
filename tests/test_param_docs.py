"""The parameter tables in README.md and docs/parameters.md are the ones the settings declarations generate."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.node import Node

from vega_ros import param_docs
from vega_ros.settings import PerceptionSettings, declare_settings, param

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "docs" / "parameters.md")
PARAMS_FILES = {"perception_node": ("perception.yaml", "perception"), "policy_node": ("policy.yaml", "policy_node"),
                "sim_camera_node": ("sim_camera.yaml", "sim_camera")}


def _rows(table: str) -> dict[str, list[str]]:
    """Parameter name -> its cells [type, default, range / choices, description], from a generated table."""
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_docs_hold_every_nodes_generated_table_once_and_unchanged():
    generated = param_docs.tables()
    found = [name for path in DOCS for name in param_docs.block_names(path.read_text())]
    assert sorted(found) == sorted(generated), "each node's params block must appear exactly once in README.md + docs/parameters.md"
    assert "params:perception_node" in param_docs.block_names(DOCS[0].read_text())
    for path in DOCS:
        assert param_docs.drifted(path, generated) == [], f"run: python -m vega_ros.param_docs --write {path.relative_to(ROOT)}"


def test_every_declared_field_is_a_row_in_declaration_order_with_its_default_and_description():
    for node, cls in param_docs.node_settings().items():
        rows = _rows(param_docs.settings_table(cls))
        fields = dataclasses.fields(cls)
        assert list(rows) == [f.name for f in fields], node
        for f in fields:
            type_name, default, _, description = rows[f.name]
            assert description == f.metadata["description"].replace("|", "\\|"), f.name
            assert yaml.safe_load(default.strip("`")) == (list(f.default) if isinstance(f.default, tuple) else f.default), f.name
            assert type_name == {bool: "bool", int: "integer", float: "double", str: "string", tuple: "string[]"}[type(f.default)], f.name


def test_the_tables_name_what_the_nodes_declare_in_ros_with_the_same_ranges_and_what_the_params_files_set():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        for node_name, cls in param_docs.node_settings().items():
            node = Node(f"param_docs_{node_name}", context=context)
            try:
                builtin = set(node.list_parameters([], 0).names)  # rclpy's own: use_sim_time, ...
                declare_settings(node, cls)
                rows = _rows(param_docs.settings_table(cls))
                declared = set(node.list_parameters([], 0).names) - builtin
                assert set(rows) == declared, f"{node_name}: {set(rows) ^ declared}"
                for name, descriptor in zip(rows, node.describe_parameters(list(rows))):
                    ranges = list(descriptor.integer_range) + list(descriptor.floating_point_range)
                    shown = rows[name][2]
                    if ranges:
                        lo, hi = (float(v) for v in shown.split(" … "))
                        assert (lo, hi) == pytest.approx((ranges[0].from_value, ranges[0].to_value), rel=1e-5), name
                    assert rows[name][3].replace("\\|", "|") in descriptor.description, name
            finally:
                node.destroy_node()
            file, key = PARAMS_FILES[node_name]
            params = yaml.safe_load((ROOT / "config" / file).read_text())[key]["ros__parameters"]
            assert set(params) == set(rows), f"config/{file}: {set(params) ^ set(rows)}"
    finally:
        rclpy.shutdown(context=context)


def test_a_changed_declaration_is_drift_and_write_repairs_it(tmp_path):
    changed = dataclasses.make_dataclass(
        "PerceptionSettings", [(f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata))
                               for f in dataclasses.fields(PerceptionSettings) if f.name != "cloud_stride"]
        + [("cloud_stride", "int", param(4, "Publish every n-th pixel", 1, 64))], frozen=True)
    generated = dict(param_docs.tables(), **{"params:perception_node": param_docs.settings_table(changed)})
    assert param_docs.drifted(DOCS[0], generated) == ["params:perception_node"]

    readme = tmp_path / "README.md"
    readme.write_text(DOCS[0].read_text().replace("| `odom_frame` | string | `\"odom\"` |", "| `odom_frame` | string | `\"map\"` |"))
    assert param_docs.main(["--check", str(readme)]) == 1
    assert param_docs.main(["--write", str(readme)]) == 0
    assert readme.read_text() == DOCS[0].read_text()
    assert param_docs.main(["--check", str(readme)]) == 0


def test_the_documented_check_command_passes_on_the_tree():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "vega_ros.param_docs", "--check", "README.md", "docs/parameters.md"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_bad_blocks_and_declarations_are_refused_with_their_names(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- BEGIN params:lidar_node -->\n<!-- END params:lidar_node -->\n")
    assert param_docs.main(["--check", str(doc)]) == 2
    assert "lidar_node" in capsys.readouterr().err
    with pytest.raises(ValueError, match="params:policy_node"):
        param_docs.render("<!-- BEGIN params:policy_node -->\nno end\n", param_docs.tables())

    undocumented = dataclasses.make_dataclass("Bare", [("rate", "float", dataclasses.field(default=1.0))], frozen=True)
    with pytest.raises(ValueError, match=r"Bare\.rate has no description"):
        param_docs.settings_table(undocumented)
    odd = dataclasses.make_dataclass("Odd", [("gains", "tuple[float, ...]", param((1.0, 2.0), "gains"))], frozen=True)
    with pytest.raises(ValueError, match=r"'gains'.*tuple\[float"):
        param_docs.settings_table(odd)
