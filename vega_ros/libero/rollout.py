"""One LIBERO episode: reset to a fixed init state, settle, then run the policy to success or the limit."""

from __future__ import annotations

import time

import numpy as np

from vega_ros.libero.observations import AGENTVIEW_KEY, flip_rows, observation_to_inputs
from vega_ros.libero.policy_api import Policy, check_action
from vega_ros.libero.protocol import SETTLE_ACTION, Episode, EpisodeResult, EvalProtocol


class SuiteEnvs:
    """Creates LIBERO environments for a suite's tasks on demand, one live env at a time (per process)."""

    def __init__(self, suite: str, image_size: int) -> None:
        from libero.libero import benchmark

        self.suite_name = suite
        self.suite = benchmark.get_benchmark_dict()[suite]()
        self.image_size = image_size
        self._env = None
        self._task_id: int | None = None

    @property
    def n_tasks(self) -> int:
        return self.suite.n_tasks

    def task_names(self) -> list[str]:
        return [self.suite.get_task(t).language for t in range(self.n_tasks)]

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


def scene_instruction(env) -> str:
    """The instruction the scene's BDDL file states (``language_instruction``), as one string.

    The policy hears this sentence, not the benchmark's task name: it is what the demonstrations
    record (distill.policy.demos) and what LIBERO's official HDF5 files carry in ``problem_info``
    (e.g. "pick the akita black bowl ..." where the task name reads "pick up the black bowl ...").
    """
    language = env.language_instruction
    return " ".join(language) if isinstance(language, (list, tuple)) else str(language)


def run_episode(envs: SuiteEnvs, policy: Policy, episode: Episode, protocol: EvalProtocol,
                record: bool = False) -> tuple[EpisodeResult, list[np.ndarray]]:
    """Run one planned episode; returns its result and, if ``record``, the agentview frames ``[H, W, 3]``."""
    t0 = time.perf_counter()
    env = envs.env(episode.task_id)
    env.seed(episode.seed)
    env.reset()
    obs = env.set_init_state(envs.init_states(episode.task_id)[episode.init_state])
    for _ in range(protocol.settle_steps):
        obs, _, _, _ = env.step(list(SETTLE_ACTION))
    policy.reset(scene_instruction(env))
    frames: list[np.ndarray] = []
    success, steps = False, 0
    for step in range(1, protocol.step_limit + 1):
        steps = step
        if record:
            frames.append(flip_rows(obs[AGENTVIEW_KEY]))
        action = check_action(policy.act(observation_to_inputs(obs)))
        obs, _, done, _ = env.step(action.tolist())
        if done:
            success = True
            break
    result = EpisodeResult(task_id=episode.task_id, episode=episode.episode, init_state=episode.init_state,
                           success=success, steps=steps, wall_s=time.perf_counter() - t0)
    return result, frames
