"""Every config file of config/ loads through distill.config to the values its own loader gave before the migration.

tests/fixtures/config_values.json holds those values: written by the per-module loaders (yaml.safe_load +
``cls(**raw)``) of the commit before distill/config.py, one entry per file; the three policy recipes were then
one file per variant (``config/policy/bc-<variant>-<recipe>.yaml``), here ``bc-<recipe>.yaml variant=<variant>``.
The probe presets load with ``load_config(ProbeRunConfig, ...)``, the call distill.probe will make.
"""

import json
from pathlib import Path

import pytest

from distill.config import load_config, to_dict

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((ROOT / "tests" / "fixtures" / "config_values.json").read_text())
ROS_PARAMS = {"config/perception.yaml", "config/policy.yaml", "config/sim_camera.yaml", "config/vega.rviz"}
BASES = {"config/policy/base.yaml"}  # only loaded through a recipe's `base:`


def _config_class(rel: str) -> type:
    folder = rel.split("/")[1]
    if folder == "data" and Path(rel).name.startswith("procedural"):
        from distill.data.procedural.config import ProceduralConfig

        return ProceduralConfig
    if folder == "data":
        from distill.data.config import RenderConfig

        return RenderConfig
    if folder == "distill" and "student-v2" in rel:
        from distill.frame_recipe import FrameDistillConfig

        return FrameDistillConfig
    if folder == "distill":
        from distill.train import DistillConfig

        return DistillConfig
    if folder == "teacher":
        from distill.teacher.wan import WanDiftConfig

        return WanDiftConfig
    if folder == "probe":
        from distill.probe import ProbeRunConfig

        return ProbeRunConfig
    if rel.endswith("/demos.yaml"):
        from distill.policy.demos import DemoConfig

        return DemoConfig
    from distill.policy.train import BCConfig

    return BCConfig


def test_every_config_file_has_its_expected_values():
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "config").rglob("*") if p.is_file()}
    assert files - ROS_PARAMS - BASES == {k.split(" ")[0] for k in EXPECTED}


@pytest.mark.parametrize("entry", sorted(EXPECTED))
def test_a_config_file_loads_to_the_values_it_had(entry):
    rel, *overrides = entry.split(" ")
    cfg = load_config(_config_class(rel), ROOT / rel, overrides)
    assert json.loads(json.dumps(to_dict(cfg))) == EXPECTED[entry]
