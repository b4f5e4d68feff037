"""The launch files under the real ``launch`` / ``launch_ros`` (a ROS 2 install with vega_ros built by colcon).

Skipped where ``launch_ros`` is not importable or vega_ros is not in the ament index (pip-only
machines: there tests/test_launch.py checks the files statically). Ctrl-C is sent to the launch's
whole process group, as a terminal does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.ros_helpers import ROOT, unique

launch_ros = pytest.importorskip("launch_ros")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

RUN = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
ls = LaunchService()
ls.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=[tuple(a.split(':=', 1)) for a in sys.argv[2:]])]))
sys.exit(ls.run())
"""


@pytest.fixture(scope="module", autouse=True)
def _installed():
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("vega_ros")
    except PackageNotFoundError:
        pytest.skip("vega_ros is not in the ament index (build it with colcon and source install/setup.bash)")


def _launch(name: str, *args: str, wait_s: float) -> tuple[int, str, list[str]]:
    """(exit code, output, processes left in its group) of a launch Ctrl-C'd after ``wait_s``."""
    proc = subprocess.Popen([sys.executable, "-c", RUN, os.path.join(ROOT, "launch", name), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(wait_s)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    return proc.returncode, out, left


def test_sim_launch_with_rviz_requested_runs_in_its_namespace_and_stops_cleanly():
    from vega_ros.launch_support import package_executable

    rc, out, left = _launch("perception.launch.py", "camera:=sim", "sim_source:=synthetic", "backend:=onnxruntime-cpu",
                            "use_rviz:=true", wait_s=15)
    assert rc == 0 and not left, out[-3000:]
    assert "Traceback" not in out and "has died" not in out, out[-3000:]
    assert "[sim.perception]" in out and "[sim.sim_camera]" in out  # both nodes in the namespace
    if package_executable("rviz2", "rviz2") is None:
        assert "RViz is not installed" in out


def test_policy_launch_refuses_without_an_artifact_before_starting_anything():
    rc, out, left = _launch("policy.launch.py", f"namespace:={unique('p')}", wait_s=8)
    assert rc != 0 and not left
    assert "policy:=<policy artifact directory> is required" in out and "process started" not in out
