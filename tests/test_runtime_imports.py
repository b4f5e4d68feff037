"""The robot runtime (vega_ros/) never needs torch, diffusers or transformers, nor the simulator
or the evaluation harness (vega_eval/) that runs in it."""

import ast
import json
import os
import pkgutil
import subprocess
import sys

import vega_ros

FORBIDDEN = ("torch", "torchvision", "diffusers", "transformers")
SIMULATOR = ("vega_eval", "robosuite", "libero", "mujoco")  # imported lazily, inside the functions that simulate
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _runtime_modules() -> list[str]:
    return ["vega_ros"] + [m.name for m in pkgutil.walk_packages(vega_ros.__path__, "vega_ros.")]


def test_no_forbidden_import_statements():
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "vega_ros")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path).read(), path)):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                offenders += [f"{path}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders, "vega_ros/ imports training-only packages:\n" + "\n".join(offenders)


def test_importing_every_runtime_module_loads_no_training_package_nor_the_simulator():
    modules = _runtime_modules()
    assert "vega_ros.geometry" in modules and "vega_ros.conversions" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN + SIMULATOR!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing vega_ros loaded {loaded}"
    assert "vega_ros.policy_io" in modules and "vega_ros.proprio" in modules  # the policy contract stays on the robot
    assert not any(m.startswith("vega_ros.libero") for m in modules)
