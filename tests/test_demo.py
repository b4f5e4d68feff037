"""`vega-ros demo` end to end at a short duration: processes over DDS, an MCAP bag ros2 can read, a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.fixtures.ros_helpers import ROOT

pytestmark = pytest.mark.ros


def _run_demo(out, source: str, duration: float, timeout: float):
    cmd = [sys.executable, "-m", "vega_ros.cli", "demo", "--out", str(out), "--source", source, "--duration", str(duration)]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=timeout, check=False)


def _check_outputs(out, proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"]["depth_published"] >= 5
    assert summary["frames"]["matched_with_ground_truth"] >= 5
    assert summary["depth"]["abs_rel"] is not None and summary["depth"]["abs_rel"] > 0
    assert summary["pose"]["matched_frames"] >= 5 and summary["pose"]["ate_rmse_m_sim3"] >= 0
    assert summary["latency_ms"]["stamp_to_cloud_publish_p50"] > 0
    assert summary["model"]["random_init"] is True
    assert "random-init" in (out / "summary.md").read_text()
    # the bag: every recorded channel decodes with mcap-ros2-support, and rosbag2 metadata lists them
    meta = yaml.safe_load((out / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["relative_file_paths"] == ["recording.mcap"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/depth"] == summary["frames"]["depth_published"] and counts["/camera/image_raw"] > 0
    decoded = summary["bag"]["decoded_by_mcap_ros2"]
    assert {t: n for t, n in counts.items() if n} == decoded
    assert meta["message_count"] == sum(counts.values())
    for pic in summary["pictures"]:
        assert (out / pic).stat().st_size > 1000
    assert "cloud.png" in summary["pictures"] and any(p.startswith("depth_") for p in summary["pictures"])
    return summary


def test_demo_on_the_synthetic_camera(tmp_path):
    out = tmp_path / "demo_out"
    _check_outputs(out, _run_demo(out, "synthetic", 6.0, timeout=180))


@pytest.mark.slow
def test_demo_on_the_libero_camera(tmp_path):
    out = tmp_path / "demo_out"
    summary = _check_outputs(out, _run_demo(out, "libero", 20.0, timeout=400))
    assert summary["run"]["source"] == "libero"
