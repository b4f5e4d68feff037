"""PolicyNode: the controller without ROS (stale handling, bad inputs), then the node over real DDS."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32

from tests.fixtures.ros_helpers import (
    RELIABLE,
    ROOT,
    RosTestNode,
    node_process,
    stop,
    unique,
)
from tests.peers.policy_inputs import GRIPPER_JOINTS, expected_policy_inputs, messages
from vega_ros import conversions
from vega_ros.diagnostics import to_diagnostic_array
from vega_ros.policy_io import NoOpPolicy
from vega_ros.policy_node import (
    CommandMode,
    ControlState,
    Health,
    InputName,
    PolicyController,
    PolicySettings,
    diagnostic_status_name,
)

SEED = 3
TASK = "put the bowl on the plate"


class ScriptedPolicy:
    """Returns actions[i] on the i-th call (the last one afterwards) and records what it saw."""

    def __init__(self, actions=None, fail: bool = False):
        self.actions = actions if actions is not None else [np.array([0.1 * (i + 1), -0.2, 0.3, 0.0, 0.1, -0.1, 1.0]) for i in range(50)]
        self.fail = fail
        self.seen, self.resets = [], []

    def reset(self, instruction: str) -> None:
        self.resets.append(instruction)

    def act(self, inputs):
        if self.fail:
            raise RuntimeError("the policy broke")
        self.seen.append(inputs)
        return self.actions[min(len(self.seen) - 1, len(self.actions) - 1)]


def _feed(c: PolicyController, now: float, names=tuple(InputName)) -> None:
    agentview, wrist, state, pose = messages(SEED, 100.0)
    for name, fn in ((InputName.AGENTVIEW, lambda: c.on_image(InputName.AGENTVIEW, agentview, now)),
                     (InputName.WRIST, lambda: c.on_image(InputName.WRIST, wrist, now)),
                     (InputName.ROBOT_STATE, lambda: c.on_robot_state(state, now)),
                     (InputName.EE_POSE, lambda: c.on_ee_pose(pose, now))):
        if name in names:
            assert fn() is None


def _controller(policy, **kw) -> PolicyController:
    return PolicyController(policy, TASK, **{"stale_after_s": 0.5, "gripper_joint_names": GRIPPER_JOINTS, **kw})


# ----------------------------------------------------------------------------- controller, no ROS


def test_waits_for_every_input_then_acts_on_the_decoded_inputs():
    policy = ScriptedPolicy()
    c = _controller(policy)
    assert policy.resets == [TASK]
    assert c.step(0.0) is None and c.state is ControlState.WAITING
    _feed(c, 0.0, names=(InputName.AGENTVIEW, InputName.WRIST, InputName.ROBOT_STATE))
    assert c.step(0.05) is None and c.state is ControlState.WAITING
    health, text, _ = c.report(0.05)
    assert health is Health.WARN and "ee_pose" in text and "agentview" not in text
    _feed(c, 0.1, names=(InputName.EE_POSE,))
    cmd = c.step(0.15)
    assert c.state is ControlState.RUNNING and cmd.mode is CommandMode.POLICY
    np.testing.assert_allclose(cmd.action, policy.actions[0])
    want, got = expected_policy_inputs(SEED), policy.seen[0]
    np.testing.assert_array_equal(got.agentview, want.agentview)
    np.testing.assert_array_equal(got.wrist, want.wrist)  # sent as bgr8, gripper joints by name in reverse order
    np.testing.assert_allclose(got.proprio, want.proprio, atol=1e-6)
    assert got.proprio.dtype == np.float32 and got.proprio.shape == (9,)
    assert c.report(0.15)[0] is Health.OK


def test_diagnostics_of_a_waiting_controller_are_formattable():
    c = _controller(ScriptedPolicy())
    c.step(0.0)
    health, text, values = c.report(0.0)
    assert health is Health.WARN and values["age_s.wrist"] == "never" and values["state"] == "waiting"
    msg = to_diagnostic_array(Time(), diagnostic_status_name("policy_node"), "/policy_node", values, DiagnosticStatus.WARN, text)
    assert _values(msg.status[0])["rejected.total"] == "0"


def test_stale_input_stops_motion_keeps_the_gripper_and_resets_the_policy_on_recovery():
    policy = ScriptedPolicy()
    c = _controller(policy, on_stale="stop")
    _feed(c, 0.0)
    first = c.step(0.05)
    _feed(c, 0.4, names=(InputName.AGENTVIEW, InputName.ROBOT_STATE, InputName.EE_POSE))  # the wrist camera falls silent
    assert c.step(0.45).mode is CommandMode.POLICY  # wrist 0.45 s old: still fresh
    stopped = [c.step(t) for t in (0.6, 0.65, 0.7)]
    assert c.state is ControlState.STALE
    for cmd in stopped:
        assert cmd.mode is CommandMode.STOP
        np.testing.assert_array_equal(cmd.action[:6], 0.0)
        assert cmd.action[6] == first.action[6] == 1.0
    snap = c.snapshot()
    assert snap["stale_ticks"] == 3 and snap["stale.wrist"] == 3 and snap["stale.agentview"] == 0
    assert snap["commands.stop"] == 3 and snap["state"] == "stale"
    health, text, _ = c.report(0.7)
    assert health is Health.WARN and "wrist/image" in text and "stop" in text
    assert len(policy.seen) == 2  # the policy is not asked while an input is stale
    _feed(c, 0.8)
    cmd = c.step(0.85)
    assert cmd.mode is CommandMode.POLICY and c.state is ControlState.RUNNING
    assert policy.resets == [TASK, TASK] and c.snapshot()["policy_resets"] == 1


def test_hold_repeats_the_last_command_until_its_timeout_then_stops():
    policy = ScriptedPolicy()
    c = _controller(policy, on_stale="hold", hold_timeout_s=0.3)
    _feed(c, 0.0)
    c.step(0.1)
    last = c.step(0.2)
    held = [c.step(t) for t in (0.6, 0.75, 0.85)]  # stale from 0.6: held until 0.9 (= 0.6 + 0.3)
    assert [h.mode for h in held] == [CommandMode.HOLD] * 3
    for h in held:
        np.testing.assert_array_equal(h.action, last.action)
    after = c.step(0.95)
    assert after.mode is CommandMode.STOP
    np.testing.assert_array_equal(after.action, [0, 0, 0, 0, 0, 0, last.action[6]])
    assert c.snapshot()["commands.hold"] == 3

    forever = _controller(ScriptedPolicy(), on_stale="hold", hold_timeout_s=0.0)
    _feed(forever, 0.0)
    forever.step(0.1)
    assert forever.step(1000.0).mode is CommandMode.HOLD


def test_nothing_is_published_while_stale_before_the_first_action():
    c = _controller(ScriptedPolicy(), on_stale="stop")
    _feed(c, 0.0)
    assert c.step(2.0) is None and c.state is ControlState.STALE


def _bad_messages():
    _, _, state, _ = messages(SEED, 100.0)
    depth = conversions.numpy_to_image(np.ones((4, 4), np.float32), "32FC1")
    truncated = conversions.numpy_to_image(np.zeros((8, 8, 3), np.uint8), "rgb8")
    truncated.data = truncated.data[:-5]
    short_step = conversions.numpy_to_image(np.zeros((8, 8, 3), np.uint8), "rgb8")
    short_step.step = 10
    no_gripper = JointState(name=["robot0_joint1"], position=[0.1])
    mismatched = JointState(name=list(state.name), position=list(state.position)[:-1])
    nan_gripper = JointState(name=list(GRIPPER_JOINTS), position=[0.01, float("nan")])
    zero_quat = PoseStamped()
    zero_quat.pose.orientation.w = 0.0  # the message's default is the identity (w = 1)
    nan_pose = PoseStamped()
    nan_pose.pose.orientation.w = 1.0
    nan_pose.pose.position.x = float("inf")
    return {"unsupported_encoding": [depth], "bad_layout": [truncated, short_step],
            "bad_joint_state": [no_gripper, mismatched, nan_gripper], "bad_pose": [zero_quat, nan_pose]}


def test_bad_messages_are_counted_by_reason_and_the_last_good_input_stays_in_use():
    policy = ScriptedPolicy()
    c = _controller(policy)
    _feed(c, 0.0)
    c.step(0.05)
    assert c.report(0.05)[0] is Health.OK
    bad = _bad_messages()
    for msg in bad["unsupported_encoding"] + bad["bad_layout"]:
        _, detail = c.on_image(InputName.AGENTVIEW, msg, 0.1)
        assert detail.startswith("agentview/image")
    for msg in bad["bad_joint_state"]:
        assert c.on_robot_state(msg, 0.1)[0].value == "bad_joint_state"
    for msg in bad["bad_pose"]:
        assert c.on_ee_pose(msg, 0.1)[0].value == "bad_pose"
    snap = c.snapshot()
    assert {k: snap[f"rejected.{k}"] for k in bad} == {k: len(v) for k, v in bad.items()}
    assert snap["rejected.total"] == 8 and "rejected.no_camera_info" not in snap  # the perception node's reasons are not ours
    assert c.step(0.15).mode is CommandMode.POLICY
    np.testing.assert_array_equal(policy.seen[-1].agentview, expected_policy_inputs(SEED).agentview)
    np.testing.assert_allclose(policy.seen[-1].proprio, expected_policy_inputs(SEED).proprio, atol=1e-6)
    health, text, values = c.report(0.15)
    assert health is Health.WARN and "8 inputs rejected" in text and values["rejected.bad_layout"] == 2
    assert c.report(0.2)[0] is Health.OK  # no new rejections since the last report


def test_a_failing_policy_stops_motion_and_reports_error():
    policy = ScriptedPolicy()
    c = _controller(policy)
    _feed(c, 0.0)
    first = c.step(0.05)
    policy.fail = True
    cmd = c.step(0.1)
    assert cmd.mode is CommandMode.STOP and c.state is ControlState.ERROR
    np.testing.assert_array_equal(cmd.action, [0, 0, 0, 0, 0, 0, first.action[6]])
    health, text, values = c.report(0.1)
    assert health is Health.ERROR and "the policy broke" in text and values["policy_errors"] == 1
    policy.fail = False
    assert c.step(0.15).mode is CommandMode.POLICY and c.report(0.15)[0] is Health.OK

    bad_action = _controller(ScriptedPolicy(actions=[np.full(7, np.nan)]))
    _feed(bad_action, 0.0)
    assert bad_action.step(0.05) is None and bad_action.state is ControlState.ERROR  # no command before a first good one


def test_params_file_matches_the_declared_settings():
    with open(os.path.join(ROOT, "config", "policy.yaml")) as f:
        params = yaml.safe_load(f)["policy_node"]["ros__parameters"]
    defaults = PolicySettings()
    assert list(params) == [f.name for f in dataclasses.fields(PolicySettings)]
    for k, v in params.items():
        want = getattr(defaults, k)
        assert (list(want) if isinstance(want, tuple) else want) == v, k


# ----------------------------------------------------------------------------- a tiny trained-shape policy artifact


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """An untrained fused policy on models/vega-random-tiny that knows TASK (~5 s)."""
    pytest.importorskip("torch")
    from tests.fixtures.tiny_policy import export_tiny_policy

    rng = np.random.default_rng(0)
    return export_tiny_policy(str(tmp_path_factory.mktemp("policy_node")), {TASK: (rng.normal(size=384) / 20).tolist()})


def test_an_unknown_task_is_refused_by_the_controller(tiny_policy):
    from vega_ros.policy_runtime import OnnxPolicy, PolicyArtifactError

    policy = OnnxPolicy(tiny_policy, models_root=os.path.join(ROOT, "models"), language_encoder=None)
    with pytest.raises(PolicyArtifactError, match="no language embedding for 'fly to the moon'.*sentence encoder"):
        PolicyController(policy, "fly to the moon")
    PolicyController(NoOpPolicy(), "fly to the moon")  # bring-up: the no-op policy takes any task


def test_temporal_ensemble_weighs_overlapping_chunks_known_answer():
    from vega_ros.policy_runtime import ensemble_action

    a = np.arange(3 * 7, dtype=np.float64).reshape(3, 7)  # predicted at step 0: actions for steps 0, 1, 2
    b = a + 100.0  # predicted at step 1: actions for steps 1, 2, 3
    np.testing.assert_allclose(ensemble_action([(0, a), (1, b)], 0, 0.5), a[0])
    w = np.exp(-0.5 * np.arange(2))
    np.testing.assert_allclose(ensemble_action([(0, a), (1, b)], 2, 0.5), (w[0] * a[2] + w[1] * b[1]) / w.sum())
    np.testing.assert_allclose(ensemble_action([(0, a), (1, b)], 1, 0.0), (a[1] + b[0]) / 2)  # m = 0: the mean
    np.testing.assert_allclose(ensemble_action([(0, a), (1, b)], 3, 0.5), b[2])  # a no longer covers step 3
    with pytest.raises(ValueError, match="no chunk covers"):
        ensemble_action([(0, a)], 3, 0.5)


def test_run_time_execution_options_of_an_exported_policy(tiny_policy):
    from vega_ros.policy_runtime import OnnxPolicy

    models = os.path.join(ROOT, "models")
    inputs = expected_policy_inputs(SEED)
    plain = OnnxPolicy(tiny_policy, models_root=models)
    plain.reset(TASK)
    chunk = plain.predict_chunk(inputs)  # [4, 7]; the same inputs give the same chunk every step
    assert plain.execution == "chunks of 2"
    reads = []  # the evaluator renders the cameras only where needs_images() is True
    for _ in range(4):
        reads.append(plain.needs_images())
        plain.act(inputs if reads[-1] else dataclasses.replace(inputs, agentview=None, wrist=None))
    assert reads == [True, False, True, False] and plain.needs_images()
    with pytest.raises(ValueError, match="needs both camera images"):
        plain.act(dataclasses.replace(inputs, agentview=None, wrist=None))  # a chunk is due
    every_step = OnnxPolicy(tiny_policy, models_root=models, execute_steps=1)
    every_step.reset(TASK)
    for _ in range(3):
        np.testing.assert_allclose(every_step.act(inputs), np.clip(chunk[0], -1, 1), atol=1e-6)
    m = 0.3
    ensemble = OnnxPolicy(tiny_policy, models_root=models, temporal_ensemble=m)
    ensemble.reset(TASK)
    got = [ensemble.act(inputs) for _ in range(6)]
    assert ensemble.needs_images()  # it predicts at every step
    for t, action in enumerate(got):
        covering = min(t + 1, 4)  # chunks predicted at steps max(0, t - 3) .. t, oldest first
        preds = np.stack([chunk[t - t0] for t0 in range(t + 1 - covering, t + 1)])
        w = np.exp(-m * np.arange(covering))
        np.testing.assert_allclose(action, np.clip((w[:, None] * preds).sum(0) / w.sum(), -1, 1), atol=1e-5)
    ensemble.reset(TASK)  # a new episode forgets the old chunks
    np.testing.assert_allclose(ensemble.act(inputs), np.clip(chunk[0], -1, 1), atol=1e-6)
    for bad in ({"execute_steps": 0}, {"execute_steps": 5}, {"temporal_ensemble": -1.0},
                {"execute_steps": 1, "temporal_ensemble": 0.0}):
        with pytest.raises(ValueError):
            OnnxPolicy(tiny_policy, models_root=models, **bad)


@pytest.mark.ros
def test_the_node_refuses_an_unknown_task_or_a_bad_parameter_at_start(tiny_policy, capfd):
    from vega_ros.policy_node import main

    with pytest.raises(SystemExit) as e:  # the node's entry point: one clear line, exit code 2
        main(["--ros-args", "-r", f"__node:={unique('policy')}", "-p", f"policy:={tiny_policy}",
              "-p", f"models_root:={os.path.join(ROOT, 'models')}", "-p", "task:=fly to the moon", "-p", "language_encoder:=''"])
    assert e.value.code == 2  # without a sentence encoder an instruction the policy does not know is refused
    assert "no language embedding for 'fly to the moon'" in "".join(capfd.readouterr())
    with pytest.raises(SystemExit) as e:  # a sentence encoder that is not there
        main(["--ros-args", "-r", f"__node:={unique('policy')}", "-p", f"policy:={tiny_policy}",
              "-p", f"models_root:={os.path.join(ROOT, 'models')}", "-p", f"task:={TASK}", "-p", "language_encoder:=/no/such/encoder"])
    assert e.value.code == 2 and "/no/such/encoder" in "".join(capfd.readouterr())
    with pytest.raises(SystemExit) as e:  # more actions per chunk than the chunk holds (4)
        main(["--ros-args", "-r", f"__node:={unique('policy')}", "-p", f"policy:={tiny_policy}",
              "-p", f"models_root:={os.path.join(ROOT, 'models')}", "-p", f"task:={TASK}", "-p", "execute_steps:=9"])
    assert e.value.code == 2
    for bad in ("rate_hz:=20", "on_stale:=freeze", "policy:=/no/such/policy"):  # an int for a float, an unknown choice, a missing artifact
        with pytest.raises(SystemExit) as e:
            main(["--ros-args", "-r", f"__node:={unique('policy')}", "-p", bad])
        assert e.value.code == 2, bad


# ----------------------------------------------------------------------------- over real DDS


def _status(diags: list, node_name: str) -> DiagnosticStatus | None:
    for msg in reversed(diags):
        for s in msg.status:
            if s.name == diagnostic_status_name(node_name):
                return s
    return None


def _values(status: DiagnosticStatus | None) -> dict[str, str]:
    return {} if status is None else {kv.key: kv.value for kv in status.values}


def _num(diags, node_name, key) -> float:
    return float(_values(_status(diags, node_name)).get(key, "nan"))


def _check_action_stream(twists: list, grippers: list, rate_hz: float) -> None:
    assert len(twists) >= 10 and len(grippers) >= 10
    for m in twists:
        v = [m.twist.linear.x, m.twist.linear.y, m.twist.linear.z, m.twist.angular.x, m.twist.angular.y, m.twist.angular.z]
        assert np.all(np.isfinite(v)) and np.all(np.abs(v) <= 1.0)
    g = np.array([m.data for m in grippers])
    assert np.all(np.isfinite(g)) and np.all(np.abs(g) <= 1.0)
    stamps = np.array([conversions.stamp_to_seconds(m.header.stamp) for m in twists])
    dt = np.diff(stamps)
    assert np.all(dt > 0), "stamps must increase"
    assert 0.3 / rate_hz < np.median(dt) < 3.0 / rate_hz, f"median spacing {np.median(dt):.3f} s at {rate_hz} Hz"


def _start_peer(ns: str, duration: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.peers.policy_inputs", ns, str(SEED), str(duration)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


@pytest.mark.ros
def test_noop_node_publishes_at_its_rate_survives_bad_inputs_and_stops_when_inputs_go_stale(tmp_path):
    ns, name, rate = "/" + unique("pn"), unique("policy_node"), 20.0
    log = tmp_path / "policy_node.log"
    node = node_process("vega_ros.policy_node", name, ns, params={
        "policy": "noop", "task": TASK, "rate_hz": rate, "stale_after_s": 0.3, "on_stale": "stop",
        "diagnostics_period_s": 0.25, "command_frame": "panda_link0"}, log_path=str(log))
    peer = _start_peer(ns, 60.0)
    t = RosTestNode(unique("pn_test"))
    try:
        twists = t.collect(TwistStamped, f"{ns}/cmd_ee_delta")
        grippers = t.collect(Float32, f"{ns}/gripper_command")
        diags = t.collect(DiagnosticArray, "/diagnostics")
        assert t.spin_until(lambda: len(twists) >= 20, 60, [node, peer]), f"{len(twists)} actions; log: {log.read_text()[-2000:]}"
        assert t.spin_until(lambda: _values(_status(diags, name)).get("state") == "running", 10, [node])
        assert _status(diags, name).level == DiagnosticStatus.OK
        _check_action_stream(twists, grippers, rate)
        assert all(m.header.frame_id == "panda_link0" for m in twists)
        assert all(m.data == -1.0 for m in grippers)  # noop: gripper open

        # Malformed inputs: counted by reason, the node keeps publishing from the last good inputs.
        bad = _bad_messages()
        pub_img = t.node.create_publisher(Image, f"{ns}/agentview/image", RELIABLE)
        pub_state = t.node.create_publisher(JointState, f"{ns}/robot_state", RELIABLE)
        pub_pose = t.node.create_publisher(PoseStamped, f"{ns}/ee_pose", RELIABLE)
        keys = ("rejected.unsupported_encoding", "rejected.bad_layout", "rejected.bad_joint_state", "rejected.bad_pose")
        deadline = time.monotonic() + 30
        while not all(_num(diags, name, k) >= 1 for k in keys) and time.monotonic() < deadline:
            for m in bad["unsupported_encoding"] + bad["bad_layout"]:
                pub_img.publish(m)
            pub_state.publish(bad["bad_joint_state"][0])
            pub_pose.publish(bad["bad_pose"][0])
            t.spin_for(0.2)
        assert all(_num(diags, name, k) >= 1 for k in keys), _values(_status(diags, name))
        assert node.poll() is None, "the node died on a malformed message"
        warned = [s for msg in diags for s in msg.status if s.name == diagnostic_status_name(name) and "inputs rejected" in s.message]
        assert warned and all(s.level == DiagnosticStatus.WARN for s in warned)
        n = len(twists)
        assert t.spin_until(lambda: len(twists) >= n + 10, 20, [node]), "actions stopped after malformed inputs"
        assert _values(_status(diags, name)).get("state") == "running"

        # The inputs stop: stop mode (zero twist, gripper kept), diagnostics WARN with the stale count rising.
        assert stop(peer) is not None
        assert t.spin_until(lambda: _values(_status(diags, name)).get("state") == "stale", 20, [node])
        first_stale = _num(diags, name, "stale_ticks")
        assert t.spin_until(lambda: _num(diags, name, "stale_ticks") >= first_stale + 5, 20, [node])
        status = _status(diags, name)
        assert status.level == DiagnosticStatus.WARN and "stale inputs" in status.message
        v = _values(status)
        assert float(v["commands.stop"]) >= 5 and float(v["stale.agentview"]) >= 5 and float(v["stale.ee_pose"]) >= 5
        n = len(twists)
        assert t.spin_until(lambda: len(twists) >= n + 5, 20, [node]), "no stop commands while stale"
        for m in twists[n:]:
            assert [m.twist.linear.x, m.twist.linear.y, m.twist.linear.z, m.twist.angular.x, m.twist.angular.y, m.twist.angular.z] == [0.0] * 6
        assert all(m.data == -1.0 for m in grippers[n:])
    finally:
        t.close()
        stop(peer)
        rc = stop(node)
    assert rc == 0, f"policy node exited with {rc}: {log.read_text()[-2000:]}"


@pytest.mark.ros
def test_node_runs_an_exported_policy_on_the_inputs_it_receives(tiny_policy, tmp_path):
    from vega_ros.policy_runtime import OnnxPolicy

    models = os.path.join(ROOT, "models")
    ns, name, rate = "/" + unique("pr"), unique("policy_node"), 20.0
    log = tmp_path / "policy_node.log"
    node = node_process("vega_ros.policy_node", name, ns, params={
        "policy": tiny_policy, "models_root": models, "backend": "onnxruntime-cpu", "task": TASK, "rate_hz": rate,
        "diagnostics_period_s": 0.25}, log_path=str(log))
    peer = _start_peer(ns, 60.0)
    t = RosTestNode(unique("pr_test"))
    try:
        twists = t.collect(TwistStamped, f"{ns}/cmd_ee_delta")
        grippers = t.collect(Float32, f"{ns}/gripper_command")
        diags = t.collect(DiagnosticArray, "/diagnostics")
        assert t.spin_until(lambda: len(twists) >= 12 and len(grippers) >= 12, 60, [node, peer]), f"{len(twists)} actions; log: {log.read_text()[-2000:]}"
        assert t.spin_until(lambda: np.isfinite(_num(diags, name, "inference_ms.p50")), 10, [node])
    finally:
        t.close()
        stop(peer)
        rc = stop(node)
    assert rc == 0, f"policy node exited with {rc}: {log.read_text()[-2000:]}"
    _check_action_stream(twists, grippers, rate)

    # The same artifact in this process, on the inputs the peer sent: the node published chunk[0] / chunk[1]
    # (execute_steps 2) of that prediction, so it decoded the images and the robot state as the policy expects.
    reference = OnnxPolicy(tiny_policy, models_root=models)
    reference.reset(TASK)
    chunk = np.clip(reference.predict_chunk(expected_policy_inputs(SEED)), -1, 1)[:2]
    assert np.abs(chunk[:, :6]).max() > 1e-3  # an untrained net still gives a distinctive, non-zero action
    for m in twists:
        got = [m.twist.linear.x, m.twist.linear.y, m.twist.linear.z, m.twist.angular.x, m.twist.angular.y, m.twist.angular.z]
        assert np.abs(chunk[:, :6] - got).max(axis=1).min() < 1e-5, got
    for m in grippers:
        assert np.abs(chunk[:, 6] - m.data).min() < 1e-5, m.data
