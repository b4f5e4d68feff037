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


def _run_demo(out, source: str, duration: float, timeout: float, model: str | None = None):
    cmd = [sys.executable, "-m", "vega_ros.cli", "demo", "--out", str(out), "--source", source, "--duration", str(duration)]
    if model:
        cmd += ["--model", os.path.join(ROOT, "models", model)]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=timeout, check=False)


def _check_outputs(out, proc, random_init: bool):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"]["depth_published"] >= 5
    assert summary["frames"]["matched_with_ground_truth"] >= 5
    assert summary["depth"]["abs_rel"] is not None and summary["depth"]["abs_rel"] > 0
    assert summary["pose"]["matched_frames"] >= 5
    # a number, or (the random model's depth gives odometry nothing to track) no alignment, said in a note
    assert (summary["pose"]["ate_rmse_m_sim3"] or 0) >= 0 and (summary["pose"]["ate_rmse_m_sim3"] is not None or "note" in summary["pose"])
    assert summary["latency_ms"]["stamp_to_cloud_publish_p50"] > 0
    assert summary["model"]["random_init"] is random_init
    assert ("random-init" in (out / "summary.md").read_text()) is random_init
    # the bag: every recorded channel decodes with mcap-ros2-support, and rosbag2 metadata lists them
    meta = yaml.safe_load((out / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["relative_file_paths"] == ["recording.mcap"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/depth/image"] == summary["frames"]["depth_published"] and counts["/camera/image_raw"] > 0
    decoded = summary["bag"]["decoded_by_mcap_ros2"]
    assert {t: n for t, n in counts.items() if n} == decoded
    assert meta["message_count"] == sum(counts.values())
    for pic in summary["pictures"]:
        assert (out / pic).stat().st_size > 1000
    assert "cloud.png" in summary["pictures"] and any(p.startswith("depth_") for p in summary["pictures"])
    # the trajectory: a plot of published against true poses, ATE without alignment and AUC@30 in the summary
    assert "trajectory.png" in summary["pictures"] and (out / "trajectory.png").stat().st_size > 1000
    pose = summary["pose"]
    assert pose["ate_pct_of_path"] >= 0 and pose["ate_rmse_m"] >= 0 and 0.0 <= pose["auc30"] <= 1.0
    assert pose["ate_pct_of_path"] == pytest.approx(100 * pose["ate_rmse_m"] / pose["gt_path_length_m"])
    md = (out / "summary.md").read_text()
    assert "% of the true path" in md and "AUC@30" in md and "trajectory.png" in md
    return summary


def test_demo_on_the_synthetic_camera(tmp_path):
    """The pipeline end to end with the tiny random-init model (the shipped student is ~10x slower on CPU)."""
    out = tmp_path / "demo_out"
    _check_outputs(out, _run_demo(out, "synthetic", 6.0, timeout=180, model="vega-random-tiny"), random_init=True)


@pytest.mark.slow
def test_demo_on_the_libero_camera_with_the_shipped_student(tmp_path):
    """What `make demo` runs: the trained student on the simulated LIBERO camera; its depth must be informative."""
    out = tmp_path / "demo_out"
    summary = _check_outputs(out, _run_demo(out, "libero", 30.0, timeout=500), random_init=False)
    assert summary["run"]["source"] == "libero"
    assert summary["depth"]["abs_rel"] < 0.3  # random-init weights score ~0.4-1.0 here
