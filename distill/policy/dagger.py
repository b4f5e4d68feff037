"""DAgger (Ross et al., AISTATS 2011) for the LIBERO policies, with the scripted expert as the labeller.

    python -m distill.policy.dagger --policy models/bc-fused-brisk-ft --out data/dagger1 \\
        --episodes-per-task 10 --init-state-offset 0 --beta 0.5 --workers 2

A cloned policy drifts into states its demonstrations never show and has no label for coming back
(``distill.policy.drift`` measures this). DAgger lets the policy drive and asks the expert what it
would have done in every state the policy reached; training on those labels teaches the way back.

Per episode: the task's fixed init state ``init_state_offset + i`` is loaded and settled as the
evaluation does (keep the offset clear of the held-out states), then at every chunk boundary
(``execute_steps`` of the policy's card) a coin with probability ``beta`` decides who drives for
the chunk: the expert or the policy (exported artifact, ``vega_ros.policy_runtime``). Every step
records the frames the policy saw, the proprioception and, as the action, the expert's label from
that state: ``PickPlaceExpert.act`` after ``PickPlaceExpert.resync``, which re-reads the phase
from the scene because the expert did not take the last actions itself. The episode ends on success
or at the suite's step limit; failed episodes are kept too (their states are the point).

Writes ``<out>/<suite>/<task name>_demo.hdf5`` (the demo layout of ``hdf5_io``; per-episode
attrs ``dagger_beta``, ``success``, ``expert_fraction``, ``expert_restarts``) and
``<out>/<suite>_summary.json`` with the policy's success while collecting. ``distill.policy.train``
reads the files like demonstrations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill.data.scenes import suite_tasks
from distill.policy.demos import (
    GRASP_SIDES,
    MAX_STEPS,
    DemoConfig,
    demo_file_meta,
    jsonable,
    recorded_proprio,
    run_parallel,
    survey_task_side,
)
from distill.policy.experts import GRASP_ORDERS, PACES, Phase, SceneView, expert_for, pace_named
from distill.policy.hdf5_io import Episode, write_demo_file
from vega_eval.observations import AGENTVIEW_KEY, WRIST_KEY, flip_rows, observation_to_inputs
from vega_eval.protocol import SETTLE_ACTION
from vega_ros.policy_io import check_action


@dataclass(frozen=True)
class DaggerConfig:
    """One round of DAgger data collection."""

    policy: str  # exported policy folder (models/<name>)
    models_root: str | None = None  # where the policy's encoder artifact lives (default: the policy's parent)
    suite: str = "libero_spatial"
    tasks: tuple[int, ...] | None = None  # None: every task of the suite
    episodes_per_task: int = 10
    init_state_offset: int = 0  # episode i starts from fixed init state offset + i (keep clear of held-out states)
    beta: float = 0.5  # probability that the expert drives a chunk (0: the policy always drives)
    settle_steps: int = 10
    max_steps: int | None = None  # None: the suite's protocol limit
    seed: int = 0
    grasp_order: str = "no-turn-first"  # the labelling expert's (experts.GRASP_ORDERS); match the policy's demos
    grasp_clear_cost: float = 0.0  # the labelling expert's clearance tolerance (experts.rank_grasps); match the demos
    grasp_side: str = "per-episode"  # demos.GRASP_SIDES; per-task: one side surveyed over the task's starts; match the demos
    pace: str = "standard"  # the labelling expert's pace (experts.PACES); match the demos

    def __post_init__(self) -> None:
        if self.grasp_order not in GRASP_ORDERS:
            raise ValueError(f"grasp_order must be one of {sorted(GRASP_ORDERS)}, got {self.grasp_order!r}")
        if self.grasp_side not in GRASP_SIDES:
            raise ValueError(f"grasp_side must be one of {GRASP_SIDES}, got {self.grasp_side!r}")
        pace_named(self.pace)
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.episodes_per_task < 1:
            raise ValueError("episodes_per_task must be >= 1")
        if self.max_steps is None and self.suite not in MAX_STEPS:
            raise ValueError(f"no step limit known for suite {self.suite!r}; pass max_steps")

    @property
    def step_limit(self) -> int:
        return self.max_steps if self.max_steps is not None else MAX_STEPS[self.suite]


def run_dagger_episode(env, policy, init_state: np.ndarray, cfg: DaggerConfig, seed: int,
                       side: str | None = None) -> tuple[Episode, dict]:
    """One DAgger episode: the policy (or, per chunk with probability ``beta``, the expert) drives;
    every step is labelled with the expert's action. ``env``: a LIBERO ``OffScreenRenderEnv``;
    ``policy``: an ``OnnxPolicy``; ``side``: the rim grasp the labeller tries first
    (``PickPlaceExpert.side``; None ranks them in this scene). Returns the episode (images top row
    first) and its statistics."""
    from vega_eval.rollout import scene_instruction, seeded_reset

    rng = np.random.default_rng(seed)
    seeded_reset(env, seed)
    obs = env.set_init_state(init_state)
    for _ in range(cfg.settle_steps):
        obs, *_ = env.step(list(SETTLE_ACTION))
    expert = expert_for(env, grasp_order=cfg.grasp_order, clear_cost=cfg.grasp_clear_cost, side=side, pace=cfg.pace)
    view = SceneView(env)
    instruction = scene_instruction(env)
    policy.reset(instruction)
    k = policy.card.execute_steps
    frames: dict[str, list[np.ndarray]] = {"agentview": [], "wrist": []}
    proprio: dict[str, list[np.ndarray]] = {}
    labels, states, rewards = [], [], []
    queue: list[np.ndarray] = []
    expert_drives, by_expert, success = False, 0, False
    restarts = 0  # times resync sent the expert back to the approach (a drop, a push, a missed grasp)
    for t in range(cfg.step_limit):
        before = expert.phase
        restarts += expert.resync(obs, view) == Phase.APPROACH and before != Phase.APPROACH
        label = expert.act(obs, view)
        states.append(env.sim.get_state().flatten())
        frames["agentview"].append(flip_rows(obs[AGENTVIEW_KEY]))
        frames["wrist"].append(flip_rows(obs[WRIST_KEY]))
        for key, v in recorded_proprio(obs).items():
            proprio.setdefault(key, []).append(v)
        labels.append(label)
        if t % k == 0:
            expert_drives = bool(rng.random() < cfg.beta)
            queue = [] if expert_drives else list(policy.predict_chunk(observation_to_inputs(obs))[:k])
        executed = label if expert_drives else check_action(queue.pop(0))
        by_expert += expert_drives
        obs, reward, done, _ = env.step(np.asarray(executed, np.float64).tolist())
        rewards.append(float(reward))
        if done:
            success = True
            break
    T = len(labels)
    stats = {"success": success, "steps": T, "expert_fraction": by_expert / T, "restarts": restarts}
    episode = Episode(
        agentview=np.stack(frames["agentview"]), wrist=np.stack(frames["wrist"]),
        proprio={key: np.stack(v) for key, v in proprio.items()}, actions=np.stack(labels).astype(np.float32),
        language=instruction, rewards=(np.asarray(rewards) > 0).astype(np.uint8),
        dones=np.eye(1, T, T - 1, dtype=np.uint8)[0], states=np.stack(states),
        attrs={"seed": seed, "dagger_beta": cfg.beta, "success": int(success), "expert_fraction": stats["expert_fraction"],
               "expert_restarts": restarts},
    )
    return episode, stats


def collect_task(task_index: int, cfg: DaggerConfig, out_dir: Path, progress=None) -> dict:
    """Run ``cfg.episodes_per_task`` DAgger episodes of one task and write them to one demo file."""
    from vega_eval.rollout import SuiteEnvs, scene_instruction
    from vega_ros.policy_runtime import OnnxPolicy

    t0 = time.perf_counter()
    policy = OnnxPolicy(cfg.policy, models_root=cfg.models_root)
    envs = SuiteEnvs(cfg.suite, policy.card.image_size)
    task = suite_tasks(cfg.suite)[task_index]
    result = {"task_index": task_index, "task": task.name, "episodes": 0, "policy_successes": 0, "frames": 0, "expert_restarts": 0}
    try:
        env = envs.env(task_index)
        inits = envs.init_states(task_index)
        starts = [((cfg.init_state_offset + i) % len(inits), cfg.seed + 1000 * task_index + i)
                  for i in range(cfg.episodes_per_task)]
        side = None
        if cfg.grasp_side == "per-task":  # as demos.record_task does, over these episodes' own starts
            survey_cfg = DemoConfig(suite=cfg.suite, settle_steps=cfg.settle_steps, grasp_order=cfg.grasp_order,
                                    grasp_clear_cost=cfg.grasp_clear_cost, grasp_side=cfg.grasp_side)
            side = result["grasp_side"] = survey_task_side(env, [(inits[idx], seed) for idx, seed in starts], survey_cfg)
        episodes = []
        for i, (idx, seed) in enumerate(starts):
            ep, stats = run_dagger_episode(env, policy, inits[idx], cfg, seed, side)
            ep.name = f"demo_{i}"
            ep.attrs["init_state_index"] = idx
            episodes.append(ep)
            result["episodes"] += 1
            result["policy_successes"] += stats["success"]
            result["frames"] += stats["steps"]
            result["expert_restarts"] += stats["restarts"]
            if progress:
                progress(1)
        path = out_dir / cfg.suite / f"{task.name}_demo.hdf5"
        meta = demo_file_meta(env, task, scene_instruction(env), policy.card.image_size, policy.card.image_size,
                              {"generator": "distill.policy.dagger", "config": jsonable(cfg)})
        write_demo_file(path, episodes, meta)
        result["file"] = str(path)
    finally:
        with contextlib.suppress(Exception):
            envs.close()
    result["wall_s"] = time.perf_counter() - t0
    return result


def _worker(args) -> dict:
    task_index, cfg, out_dir, queue = args
    return collect_task(task_index, cfg, Path(out_dir), progress=queue.put)


def collect(cfg: DaggerConfig, out_dir: Path, workers: int = 2) -> dict:
    """All selected tasks, one process per task (``workers`` at a time); writes the summary JSON."""
    tasks = [t.task_index for t in suite_tasks(cfg.suite) if cfg.tasks is None or t.task_index in cfg.tasks]
    t0 = time.perf_counter()
    results = run_parallel(_worker, [(t, cfg, str(out_dir)) for t in tasks], len(tasks) * cfg.episodes_per_task,
                           f"dagger {cfg.suite}", workers)
    results.sort(key=lambda r: r["task_index"])
    episodes = sum(r["episodes"] for r in results)
    wins = sum(r["policy_successes"] for r in results)
    summary = {"suite": cfg.suite, "config": jsonable(cfg), "workers": workers,
               "wall_s": time.perf_counter() - t0, "episodes": episodes, "policy_successes": wins,
               "frames": sum(r["frames"] for r in results), "tasks": results}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{cfg.suite}_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, help="exported policy folder (models/<name>)")
    p.add_argument("--models-root", default=None)
    p.add_argument("--suite", default="libero_spatial")
    p.add_argument("--tasks", type=lambda s: tuple(int(x) for x in s.split(",")), default=None, help="comma-separated task indices")
    p.add_argument("--episodes-per-task", type=int, default=10)
    p.add_argument("--init-state-offset", type=int, default=0)
    p.add_argument("--beta", type=float, default=0.5, help="probability that the expert drives a chunk")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grasp-order", default="no-turn-first", choices=sorted(GRASP_ORDERS),
                   help="the labelling expert's preferred rim grasp; match the demos the policy was cloned from")
    p.add_argument("--grasp-clear-cost", type=float, default=0.0, help="the labelling expert's clearance tolerance (m); match the demos")
    p.add_argument("--grasp-side", default="per-episode", choices=GRASP_SIDES,
                   help="the labelling expert's rim grasp side: per-task holds one per task, surveyed from its starts; match the demos")
    p.add_argument("--pace", default="standard", choices=sorted(PACES), help="the labelling expert's pace; match the demos")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=2, help="parallel processes (one per CPU core)")
    args = p.parse_args(argv)
    cfg = DaggerConfig(policy=args.policy, models_root=args.models_root, suite=args.suite, tasks=args.tasks,
                       episodes_per_task=args.episodes_per_task, init_state_offset=args.init_state_offset,
                       beta=args.beta, max_steps=args.max_steps, seed=args.seed, grasp_order=args.grasp_order,
                       grasp_clear_cost=args.grasp_clear_cost, grasp_side=args.grasp_side, pace=args.pace)
    summary = collect(cfg, args.out, workers=args.workers)
    for r in summary["tasks"]:
        print(f"{r['task_index']:2d} policy {r['policy_successes']}/{r['episodes']}  {r['frames']} frames  "
              f"{r['expert_restarts']} expert restarts  {r['task']}")
    print(f"{cfg.suite}: {summary['episodes']} episodes, {summary['frames']} labelled frames, "
          f"policy success while collecting {summary['policy_successes']}/{summary['episodes']} (beta {cfg.beta}), {summary['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
