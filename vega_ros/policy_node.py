"""PolicyNode: camera images + robot state -> the next end-effector action, at a fixed control rate.

Topics (relative to the node's namespace, all remappable):

  in   agentview/image   sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8), top row first (the ROS
                         convention; LIBERO's bottom-row-first renders must be flipped by the sender)
       wrist/image       sensor_msgs/Image, same encodings: the wrist (eye-in-hand) camera
       robot_state       sensor_msgs/JointState: ``position`` of the two gripper finger joints named by
                         ``gripper_joint_names`` (metres, in any order among other joints; robosuite's
                         ``robot0_gripper_qpos``, whose second finger is negative when open)
       ee_pose           geometry_msgs/PoseStamped: the end-effector (robosuite's ``robot0_eef``) in the
                         robot base frame the policy was trained in (LIBERO: the world frame)
       (all four with SensorDataQoS by default: best effort, keep last 5)
  out  cmd_ee_delta      geometry_msgs/TwistStamped: the end-effector delta of ONE control step,
                         linear = (dx, dy, dz) * ``linear_scale``, angular = (droll, dpitch, dyaw) *
                         ``angular_scale``; with both scales 1 (the default) the values are the policy's
                         normalised units in [-1, 1], which LIBERO's OSC_POSE controller scales to
                         ±0.05 m and ±0.5 rad per step (``linear_scale: 0.05``, ``angular_scale: 0.5``
                         publish those metres / radians per step instead). It is a per-step delta, not a
                         velocity: multiply by ``rate_hz`` for m/s, rad/s. header.stamp = the node's
                         clock at publication; frame_id = ``command_frame`` or, if empty, ee_pose's frame
       gripper_command   std_msgs/Float32: -1 open ... +1 close (the policy's 7th action component)
       /diagnostics      diagnostic_msgs/DiagnosticArray, status ``vega_ros/<node name>``: state, rate_hz
                         (commands published per second), inference_ms.p50/p95/p99, obs_age_ms.*, counters
                         (ticks, commands.<mode>, stale_ticks, stale.<input>, received.<input>,
                         policy_errors, policy_resets) and rejected.<reason> (see :class:`InputRejectReason`)

Proprioception (the raw 9-d robot state, vega_ros.proprio.ROBOT_STATE_LAYOUT) is
``[ee_pose position (3, m), ee_pose orientation as a unit quaternion (x, y, z, w),
gripper finger positions (2, m, in the order of gripper_joint_names)]``; the policy encodes it into
the layout it was trained with (its card's ``proprio_layout``).

Perception ``features`` are not an input: the policy's 3D stream is the student encoder's
per-camera tokens, which OnnxPolicy computes from the two images with the exact encoder the policy
was trained with (checked by sha256); the perception node's pooled clip features come from a
single camera, possibly another model, and no policy is trained on them.

Control loop: a timer at ``rate_hz`` calls :meth:`PolicyController.step`. With every input fresh
(received within ``stale_after_s``, ages on the node's steady clock at reception, so a sender's
clock does not matter) the policy acts on the newest inputs (one action per tick; OnnxPolicy predicts
a chunk every ``execute_steps`` ticks). Otherwise:

* WAITING (an input never received) and any state before the first policy action: nothing is
  published; the robot's own controller keeps its last setpoint or times out.
* STALE, ``on_stale: stop``: a zero twist and the last gripper command (the hand keeps its state).
* STALE, ``on_stale: hold``: the last published command repeated unchanged (motion continues) for at
  most ``hold_timeout_s`` since the inputs went stale (0 = without limit), then as ``stop``.
* When every input is fresh again the policy is reset to the task (its queued action chunk was
  planned from old observations) and acts again.
* ERROR (the policy raised on this tick): counted, logged, and the ``stop`` command is published.

A message that cannot be decoded is counted by reason, logged at most once per ``log_throttle_s``
per reason, and ignored (the previous good message of that input stays current); it never stops the
node. /diagnostics level: ERROR while the policy fails, WARN while waiting or stale or when inputs were
rejected since the previous diagnostics message, OK otherwise.

Threading: one SingleThreadedExecutor runs the subscriptions and the control timer, so the policy
always sees a consistent set of inputs; an inference slower than the period delays the next tick
(the published rate and inference percentiles say so).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from enum import Enum

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32

from vega_ros import conversions
from vega_ros.conversions import ConversionError
from vega_ros.diagnostics import NodeStats, to_diagnostic_array
from vega_ros.node_main import run_node
from vega_ros.policy_io import ACTION_DIM, NoOpPolicy, Policy, PolicyInputs, check_action
from vega_ros.proprio import GRIPPER_DIM
from vega_ros.settings import QosSettings, declare_settings, param

NOOP = "noop"
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1")
_RELIABILITY = ("reliable", "best_effort")
_DURABILITY = ("volatile", "transient_local")


def diagnostic_status_name(node_name: str) -> str:
    """The name of this node's status in /diagnostics."""
    return f"vega_ros/{node_name}"


@dataclass(frozen=True)
class PolicySettings:
    """Parameters of ``policy_node`` (see config/policy.yaml)."""

    policy: str = param(NOOP, "Policy artifact directory (policy.onnx + language_embeddings.json + policy_card.json), "
                              "or 'noop' (hold still, gripper open; for bring-up)")
    models_root: str = param("", "Directory holding the encoder artifact named in the policy card; empty = the policy directory's parent")
    backend: str = param("auto", "Inference backend of the policy's encoder", choices=("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"))
    threads: int = param(1, "ONNX Runtime intra-op threads of the policy and encoder (0 = let ORT choose)", 0, 256)
    task: str = param("", "Language instruction of the task: one the policy was trained on, or (with a sentence encoder) "
                          "any rewording of one (any text for 'noop')")
    language_encoder: str = param("auto", "Sentence encoder artifact for an instruction the policy does not know; 'auto' = "
                                          "minilm-l6-v2-int8 in models_root (default: the policy's parent) if present, '' = refuse such instructions")
    language_mode: str = param("nearest", "An unknown instruction becomes the nearest known one ('nearest') or its own "
                                          "embedding ('embed')", choices=("nearest", "embed"))
    execute_steps: int = param(0, "Actions executed per predicted chunk, 1 .. the chunk length; 0 = the policy card's", 0, 1024)
    temporal_ensemble: float = param(-1.0, "ACT temporal ensembling: predict every tick and execute the mean of the overlapping "
                                           "chunks weighted exp(-m i) for this m >= 0; negative = off (plain chunking)", -1.0, 1000.0)
    rate_hz: float = param(20.0, "Control rate (Hz): one command per tick (LIBERO: 20)", 0.1, 1000.0)
    stale_after_s: float = param(0.5, "An input older than this (s since reception) is stale", 0.001, 3600.0)
    on_stale: str = param("stop", "With stale inputs: 'stop' = zero twist, gripper unchanged; "
                                  "'hold' = repeat the last command (up to hold_timeout_s)", choices=("stop", "hold"))
    hold_timeout_s: float = param(0.5, "on_stale 'hold': repeat the last command at most this long, then stop (0 = without limit)", 0.0, 3600.0)
    gripper_joint_names: tuple[str, ...] = param(("gripper0_finger_joint1", "gripper0_finger_joint2"),
                                                 "robot_state joints whose positions are the gripper's 2 proprio values, in order")
    linear_scale: float = param(1.0, "cmd_ee_delta linear = normalised dx, dy, dz times this (0.05 = metres per step of LIBERO's OSC_POSE)", 0.0, 1000.0)
    angular_scale: float = param(1.0, "cmd_ee_delta angular = normalised droll, dpitch, dyaw times this (0.5 = radians per step of OSC_POSE)", 0.0, 1000.0)
    command_frame: str = param("", "frame_id of cmd_ee_delta; empty = the frame_id of ee_pose")
    input_qos_reliability: str = param("best_effort", "QoS reliability of the image / robot_state / ee_pose subscriptions", choices=_RELIABILITY)
    input_qos_depth: int = param(5, "QoS queue depth of the subscriptions", 1, 10000)
    output_qos_reliability: str = param("reliable", "QoS reliability of cmd_ee_delta and gripper_command", choices=_RELIABILITY)
    output_qos_depth: int = param(10, "QoS queue depth of cmd_ee_delta and gripper_command", 1, 10000)
    output_qos_durability: str = param("volatile", "QoS durability of cmd_ee_delta and gripper_command", choices=_DURABILITY)
    diagnostics_period_s: float = param(1.0, "Period of /diagnostics messages (s)", 0.05, 3600.0)
    log_throttle_s: float = param(5.0, "Minimum seconds between repeated warnings of one kind", 0.0, 3600.0)
    latency_window: int = param(300, "Ticks kept for rate / latency statistics", 10, 100000)

    @property
    def input_qos(self) -> QosSettings:
        return QosSettings(self.input_qos_reliability, self.input_qos_depth)

    @property
    def output_qos(self) -> QosSettings:
        return QosSettings(self.output_qos_reliability, self.output_qos_depth, self.output_qos_durability)


# ----------------------------------------------------------------------------- the controller (no ROS)


class InputName(str, Enum):
    """The inputs the policy needs; the value is the topic name."""

    AGENTVIEW = "agentview/image"
    WRIST = "wrist/image"
    ROBOT_STATE = "robot_state"
    EE_POSE = "ee_pose"

    @property
    def key(self) -> str:
        """Its name in /diagnostics keys (``stale.agentview``, ``received.ee_pose``)."""
        return self.value.split("/")[0]


class InputRejectReason(str, Enum):
    """Why an input message was not used (the key in /diagnostics is ``rejected.<value>``)."""

    UNSUPPORTED_ENCODING = "unsupported_encoding"  # an image encoding that is not colour / mono8
    BAD_LAYOUT = "bad_layout"  # zero size, step smaller than a row, data length != step * height
    BAD_JOINT_STATE = "bad_joint_state"  # a gripper joint missing, names / positions mismatched, non-finite
    BAD_POSE = "bad_pose"  # non-finite position or orientation, zero quaternion


class OnStale(str, Enum):
    STOP = "stop"
    HOLD = "hold"


class ControlState(str, Enum):
    WAITING = "waiting"  # an input was never received
    RUNNING = "running"  # every input fresh, the policy acts
    STALE = "stale"  # an input is older than stale_after_s
    ERROR = "error"  # the policy raised on the last tick


class CommandMode(str, Enum):
    POLICY = "policy"  # the policy's action for this tick
    HOLD = "hold"  # the last command repeated (inputs stale, on_stale hold)
    STOP = "stop"  # zero motion, gripper unchanged (inputs stale or policy error)


class Health(str, Enum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Command:
    """What to publish this tick."""

    action: np.ndarray  # [7] float64 in [-1, 1]: dx, dy, dz, droll, dpitch, dyaw (normalised), gripper
    mode: CommandMode


def decode_gripper(msg: JointState, names: tuple[str, ...]) -> np.ndarray:
    """``[len(names)]`` float32 positions of the named joints; ConversionError names what is wrong."""
    if len(msg.position) != len(msg.name):
        raise ConversionError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConversionError(f"JointState lacks gripper joints {missing} (has {list(msg.name)[:8]})")
    q = np.array([msg.position[index[n]] for n in names], dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ConversionError(f"gripper joint positions are not finite: {q}")
    return q.astype(np.float32)


def decode_ee_pose(msg: PoseStamped) -> np.ndarray:
    """``[7]`` float32: position (m) and unit orientation quaternion (x, y, z, w) of a PoseStamped."""
    p, o = msg.pose.position, msg.pose.orientation
    pos = np.array([p.x, p.y, p.z], dtype=np.float64)
    q = np.array([o.x, o.y, o.z, o.w], dtype=np.float64)
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(q))):
        raise ConversionError(f"ee_pose is not finite: position {pos}, orientation {q}")
    if np.linalg.norm(q) < 1e-6:
        raise ConversionError("ee_pose orientation is a zero quaternion")
    return np.concatenate([pos, q / np.linalg.norm(q)]).astype(np.float32)


class PolicyController:
    """Owns the policy: keeps the newest good inputs, decides each tick what to command, keeps statistics.

    Every method takes ``now``, seconds on a steady clock, so tests drive time directly.

    Args:
        policy: a vega_ros.policy_io.Policy, already constructed.
        task: the language instruction; ``policy.reset(task)`` runs here, so an unknown task raises now.
        stale_after_s, on_stale, hold_timeout_s: see the module docstring.
        gripper_joint_names: the robot_state joints that are the gripper's proprio values.
    """

    def __init__(self, policy: Policy, task: str, stale_after_s: float = 0.5, on_stale: OnStale | str = OnStale.STOP,
                 hold_timeout_s: float = 0.5, gripper_joint_names: tuple[str, ...] = ("gripper0_finger_joint1", "gripper0_finger_joint2"),
                 latency_window: int = 300) -> None:
        if len(gripper_joint_names) != GRIPPER_DIM:
            raise ValueError(f"gripper_joint_names must name {GRIPPER_DIM} joints, got {list(gripper_joint_names)}")
        self.policy = policy
        self.task = task
        self.stale_after_s = float(stale_after_s)
        self.on_stale = OnStale(on_stale)
        self.hold_timeout_s = float(hold_timeout_s)
        self.gripper_joint_names = tuple(gripper_joint_names)
        self.policy.reset(task)
        self.stats = NodeStats(window=latency_window, counters=(
            "ticks", "stale_ticks", "waiting_ticks", "policy_errors", "policy_resets",
            *(f"commands.{m.value}" for m in CommandMode), *(f"stale.{n.key}" for n in InputName), *(f"received.{n.key}" for n in InputName)))
        self.rejected: Counter[InputRejectReason] = Counter()
        self._rejected_reported = 0
        self._values: dict[InputName, np.ndarray] = {}
        self._received_at: dict[InputName, float] = {}
        self.ee_frame = ""
        self.state = ControlState.WAITING
        self.last_command: Command | None = None
        self.last_error = ""
        self._stale_since: float | None = None
        self._needs_reset = False

    # -- inputs: each returns None when used, else the reason and a message (the caller logs it) ----

    def _accept(self, name: InputName, value: np.ndarray, now: float) -> None:
        self._values[name] = value
        self._received_at[name] = now
        self.stats.count(f"received.{name.key}")

    def _reject(self, reason: InputRejectReason, detail: str) -> tuple[InputRejectReason, str]:
        self.rejected[reason] += 1
        return reason, detail

    def on_image(self, name: InputName, msg: Image, now: float) -> tuple[InputRejectReason, str] | None:
        if name not in (InputName.AGENTVIEW, InputName.WRIST):
            raise ValueError(f"{name} is not an image input")
        if msg.encoding not in COLOR_ENCODINGS:
            return self._reject(InputRejectReason.UNSUPPORTED_ENCODING, f"{name.value}: encoding '{msg.encoding}' (need one of {', '.join(COLOR_ENCODINGS)})")
        try:
            rgb = conversions.image_to_rgb(msg)  # [H, W, 3] uint8 RGB, top row first
        except ConversionError as e:
            return self._reject(InputRejectReason.BAD_LAYOUT, f"{name.value}: {e}")
        self._accept(name, rgb, now)
        return None

    def on_robot_state(self, msg: JointState, now: float) -> tuple[InputRejectReason, str] | None:
        try:
            q = decode_gripper(msg, self.gripper_joint_names)
        except ConversionError as e:
            return self._reject(InputRejectReason.BAD_JOINT_STATE, f"robot_state: {e}")
        self._accept(InputName.ROBOT_STATE, q, now)
        return None

    def on_ee_pose(self, msg: PoseStamped, now: float) -> tuple[InputRejectReason, str] | None:
        try:
            ee = decode_ee_pose(msg)
        except ConversionError as e:
            return self._reject(InputRejectReason.BAD_POSE, f"ee_pose: {e}")
        self._accept(InputName.EE_POSE, ee, now)
        self.ee_frame = msg.header.frame_id
        return None

    # -- control ----------------------------------------------------------------------------------

    def input_ages(self, now: float) -> dict[InputName, float | None]:
        """Seconds since each input's last good message (None: never received)."""
        return {n: (now - self._received_at[n]) if n in self._received_at else None for n in InputName}

    def policy_inputs(self) -> PolicyInputs:
        proprio = np.concatenate([self._values[InputName.EE_POSE], self._values[InputName.ROBOT_STATE]]).astype(np.float32)
        return PolicyInputs(agentview=self._values[InputName.AGENTVIEW], wrist=self._values[InputName.WRIST], proprio=proprio)

    def _stop_command(self) -> Command | None:
        if self.last_command is None:
            return None
        action = np.zeros(ACTION_DIM)
        action[6] = self.last_command.action[6]
        return Command(action, CommandMode.STOP)

    def step(self, now: float) -> Command | None:
        """The command for this tick, or None when nothing is to be published (see the module docstring)."""
        self.stats.count("ticks")
        ages = self.input_ages(now)
        if any(a is None for a in ages.values()):
            self.state = ControlState.WAITING
            self.stats.count("waiting_ticks")
            return None
        stale = [n for n, a in ages.items() if a > self.stale_after_s]
        if stale:
            self.state = ControlState.STALE
            self.stats.count("stale_ticks")
            for n in stale:
                self.stats.count(f"stale.{n.key}")
            if self._stale_since is None:
                self._stale_since = now
            self._needs_reset = True
            held = self.on_stale is OnStale.HOLD and (self.hold_timeout_s == 0 or now - self._stale_since <= self.hold_timeout_s)
            if held and self.last_command is not None:
                command = Command(self.last_command.action, CommandMode.HOLD)
            else:
                command = self._stop_command()
            return self._issue(command)
        self._stale_since = None
        if self._needs_reset:
            self.policy.reset(self.task)
            self.stats.count("policy_resets")
            self._needs_reset = False
        self.stats.sample("obs_age_ms", max(ages.values()) * 1e3)
        t0 = time.perf_counter()
        try:
            action = check_action(self.policy.act(self.policy_inputs()))
        except Exception as e:  # noqa: BLE001 - a failing policy must not take the node down
            self.state = ControlState.ERROR
            self.last_error = f"{type(e).__name__}: {e}"
            self.stats.count("policy_errors")
            self._needs_reset = True
            return self._issue(self._stop_command())
        self.stats.sample("inference_ms", (time.perf_counter() - t0) * 1e3)
        self.state = ControlState.RUNNING
        return self._issue(Command(action, CommandMode.POLICY))

    def _issue(self, command: Command | None) -> Command | None:
        if command is not None:
            self.last_command = command
            self.stats.count(f"commands.{command.mode.value}")
            self.stats.frame_done()
        return command

    # -- reporting --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, float | str]:
        """Every counter, rate and percentile (what /diagnostics carries), with this node's reject reasons."""
        values: dict[str, float | str] = {k: v for k, v in self.stats.snapshot().items() if not k.startswith("rejected.")}
        for r in InputRejectReason:
            values[f"rejected.{r.value}"] = float(self.rejected.get(r, 0))
        values["rejected.total"] = float(sum(self.rejected.values()))
        values["state"] = self.state.value
        values["on_stale"] = self.on_stale.value
        values["task"] = self.task
        return values

    def report(self, now: float) -> tuple[Health, str, dict[str, float | str]]:
        """(health, one-line message, values) for a diagnostics message; starts a new rejection interval."""
        values = self.snapshot()
        ages = self.input_ages(now)
        for n, a in ages.items():
            values[f"age_s.{n.key}"] = "never" if a is None else a  # not NaN: diagnostics.to_diagnostic_array cannot format it
        total = sum(self.rejected.values())
        new_rejects = total - self._rejected_reported
        self._rejected_reported = total
        if self.state is ControlState.ERROR:
            health, text = Health.ERROR, f"policy failed: {self.last_error}"
        elif self.state is ControlState.WAITING:
            health, text = Health.WARN, "waiting for " + ", ".join(n.value for n, a in ages.items() if a is None)
        elif self.state is ControlState.STALE:
            old = ", ".join(f"{n.value} ({a:.2f} s)" for n, a in ages.items() if a is not None and a > self.stale_after_s)
            mode = self.last_command.mode.value if self.last_command is not None else "nothing published"
            health, text = Health.WARN, f"stale inputs: {old}; {mode}"
        else:
            p50 = values.get("inference_ms.p50", float("nan"))
            health, text = Health.OK, f"running at {values['rate_hz']:.1f} Hz, inference p50 {p50:.2f} ms"
        if new_rejects > 0:
            health = Health.ERROR if health is Health.ERROR else Health.WARN
            text += f"; {new_rejects} inputs rejected since the last report"
        return health, text, values


def load_policy(spec: str, models_root: str = "", backend: str = "auto", threads: int = 1,
                execute_steps: int = 0, temporal_ensemble: float = -1.0,
                language_encoder: str = "auto", language_mode: str = "nearest") -> Policy:
    """``noop`` -> NoOpPolicy; a directory -> OnnxPolicy (its card, checksums and encoder are checked).

    ``execute_steps`` 0 and a negative ``temporal_ensemble`` keep the card's chunking (ROS parameters have no None)."""
    if spec == NOOP:
        return NoOpPolicy()
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"parameter policy = {spec!r} is neither 'noop' nor a policy artifact directory")
    from vega_ros.policy_runtime import OnnxPolicy

    return OnnxPolicy(spec, models_root=models_root or None, backend=backend, threads=threads,
                      execute_steps=execute_steps or None, temporal_ensemble=temporal_ensemble if temporal_ensemble >= 0 else None,
                      language_encoder=language_encoder or None, language_mode=language_mode)


# ----------------------------------------------------------------------------- the node


_LEVELS = {Health.OK: DiagnosticStatus.OK, Health.WARN: DiagnosticStatus.WARN, Health.ERROR: DiagnosticStatus.ERROR}


class PolicyNode(Node):
    def __init__(self, node_name: str = "policy_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self.settings = s = declare_settings(self, PolicySettings)
        self._last_warn: dict[str, float] = {}
        if s.policy != NOOP and not s.task:
            raise ValueError("parameter 'task' (the language instruction) is required with a trained policy")
        policy = load_policy(s.policy, s.models_root, s.backend, s.threads, s.execute_steps, s.temporal_ensemble,
                             s.language_encoder, s.language_mode)
        self.controller = PolicyController(policy, s.task, s.stale_after_s, s.on_stale, s.hold_timeout_s,
                                           tuple(s.gripper_joint_names), s.latency_window)
        if s.policy == NOOP:
            self.get_logger().warning("policy 'noop': publishing zero motion with the gripper open (bring-up only)")
        else:
            card = policy.card
            self.get_logger().info(f"policy {card.name} ({card.fusion}, chunk {card.chunk}, {policy.execution}) from {s.policy}")
            match = policy.language_match
            if not match.get("known", True):
                self.get_logger().info(f"task {s.task!r} is not one the policy was trained on: language_mode {match['mode']}, "
                                       f"nearest known {match['matched']!r} (cosine {match['cosine']:.3f}, margin {match['margin']:.3f})")

        out_qos = s.output_qos.profile()
        self.pub_twist = self.create_publisher(TwistStamped, "cmd_ee_delta", out_qos)
        self.pub_gripper = self.create_publisher(Float32, "gripper_command", out_qos)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        in_qos = s.input_qos.profile()
        for name in (InputName.AGENTVIEW, InputName.WRIST):
            self.create_subscription(Image, name.value, lambda msg, n=name: self._log(self.controller.on_image(n, msg, time.monotonic())), in_qos)
        self.create_subscription(JointState, InputName.ROBOT_STATE.value, lambda msg: self._log(self.controller.on_robot_state(msg, time.monotonic())), in_qos)
        self.create_subscription(PoseStamped, InputName.EE_POSE.value, lambda msg: self._log(self.controller.on_ee_pose(msg, time.monotonic())), in_qos)
        self.create_timer(1.0 / s.rate_hz, self._tick)
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)
        self._last_state = self.controller.state
        inputs = ", ".join(self.resolve_topic_name(n.value) for n in InputName)
        self.get_logger().info(f"task {s.task!r}; {s.rate_hz:g} Hz on {self.resolve_topic_name('cmd_ee_delta')} + "
                               f"{self.resolve_topic_name('gripper_command')} from {inputs}; on_stale {s.on_stale} after {s.stale_after_s:g} s")

    def _warn_throttled(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e18) >= self.settings.log_throttle_s:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    def _log(self, rejection: tuple[InputRejectReason, str] | None) -> None:
        if rejection is not None:
            reason, detail = rejection
            self._warn_throttled(reason.value, f"rejected input ({reason.value}, {self.controller.rejected[reason]} so far): {detail}")

    def _tick(self) -> None:
        c = self.controller
        command = c.step(time.monotonic())
        if c.state is not self._last_state:
            text = f"state {self._last_state.value} -> {c.state.value}"
            if c.state is ControlState.ERROR:
                self.get_logger().error(f"{text}: {c.last_error}")
            elif c.state is ControlState.RUNNING:
                self.get_logger().info(text)
            else:
                self.get_logger().warning(text)
            self._last_state = c.state
        elif c.state is ControlState.ERROR:
            self._warn_throttled("policy_error", f"policy still failing ({c.stats.counters['policy_errors']} errors): {c.last_error}")
        if command is not None:
            self._publish(command)

    def _publish(self, command: Command) -> None:
        s = self.settings
        a = command.action
        msg = TwistStamped()
        msg.header = conversions.make_header(self.get_clock().now().to_msg(), s.command_frame or self.controller.ee_frame)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) * s.linear_scale for v in a[:3])
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) * s.angular_scale for v in a[3:6])
        self.pub_twist.publish(msg)
        self.pub_gripper.publish(Float32(data=float(a[6])))

    def _publish_diagnostics(self) -> None:
        health, text, values = self.controller.report(time.monotonic())
        values["policy"] = self.settings.policy
        self.pub_diag.publish(to_diagnostic_array(self.get_clock().now().to_msg(), diagnostic_status_name(self.get_name()),
                                                  self.get_fully_qualified_name(), values, _LEVELS[health], text))


def main(args: list[str] | None = None) -> None:
    # a bad parameter, artifact or task: one clear line, exit code 2
    run_node(PolicyNode, args, name="policy_node", startup_errors=(ValueError, OSError, ParameterException))


if __name__ == "__main__":
    main()
