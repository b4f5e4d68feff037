"""Scripted demonstrations in LIBERO, written as official-layout HDF5 files (one per task).

    python -m distill.policy.demos --suite libero_spatial --episodes-per-task 10 --out data/demos --workers 2

Per episode: the task's fixed init state ``i % 50`` is loaded (or, with ``init_states: sampled``, a
fresh placement is drawn by LIBERO's own seeded reset, as the official datasets' demos were, which
keeps all 50 fixed init states free for evaluation), 10 no-op steps let it settle (as
the evaluation protocol does; they are not recorded), then the scripted expert (``experts.py``)
acts from privileged state until the goal holds or the suite's step limit runs out. With
``post_success_steps > 0`` the expert keeps acting (release, retreat) for that many recorded steps
after the goal first holds: LIBERO's check fires within the first few "open" actions of the release
(on the first one for init state 0 of libero_spatial task 0), so without them a demo holds 1-4
"open" actions and its last action chunks are padding. The rollout
itself renders nothing; only successful episodes are kept, and their frames are rendered
afterwards by replaying the recorded MuJoCo states through robosuite's own offscreen renderer
(the same ``sim.render`` call that produces ``agentview_image`` in ``OffScreenRenderEnv``), with
rows flipped so row 0 is the top of the image.

Writes ``<out>/<suite>/<task name>_demo.hdf5`` and ``<out>/<suite>_summary.json`` (per-task
expert success, episode lengths and wall times).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distill import config as configlib
from distill.data.scenes import SUITES, LiberoTask, load_init_states, suite_tasks
from distill.policy.experts import (
    FREE_SPACE_PHASES,
    GRASP_ORDERS,
    IDLE,
    PACES,
    PickPlaceExpert,
    SceneView,
    UnsupportedTask,
    choose_task_side,
    expert_for,
    grasp_candidates,
    grasp_costs,
    pace_named,
)
from distill.policy.hdf5_io import Episode, FileMeta, write_demo_file
from distill.policy.sequence import SequenceExpert
from vega_eval.rollout import scene_instruction, seeded_reset

# Step limits of the LIBERO evaluation protocol (after the settle steps).
MAX_STEPS: dict[str, int] = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
CAMERAS: dict[str, str] = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}
INIT_STATES = ("fixed", "sampled")
GRASP_SIDES = ("per-episode", "per-task")


@dataclass(frozen=True)
class DemoConfig:
    """How demonstrations are made. Every field can be set in ``config/policy/demos*.yaml``."""

    suite: str = "libero_spatial"
    episodes_per_task: int = 10
    tasks: tuple[int, ...] | None = None
    """Task indices of the suite to run; None = all."""
    seed: int = 0
    """Root seed; episode ``i`` of task ``k`` seeds the env with ``seed + 1000 * k + i``."""
    width: int = 128
    height: int = 128
    settle_steps: int = 10
    max_steps: int | None = None
    """Step limit after settling; None = the protocol's limit for the suite (``MAX_STEPS``)."""
    init_states: str = "fixed"
    """``fixed``: the suite's fixed init states (those the evaluation uses); ``sampled``: a new
    placement from the env's seeded reset (the BDDL regions' sampler), disjoint from the fixed ones."""
    init_state_offset: int = 0
    """With ``fixed``: episode ``i`` uses init state ``(init_state_offset + i) % n_init_states``."""
    post_success_steps: int = 0
    """Steps recorded after the goal first holds (the expert finishes releasing and retreats)."""
    action_noise: float = 0.0
    """DART-style noise injection (Laskey et al., CoRL 2017): in the expert's free-space phases
    (``experts.FREE_SPACE_PHASES``: approach, lift, carry) the env executes the expert's action plus
    noise of this standard deviation on the translation (action units, each ``OscScale.pos`` m), while
    the demo records the expert's own action. The expert then corrects from states off its
    own path, the states a cloned policy drifts into, and those corrections become training labels."""
    action_noise_corr: float = 0.8
    """Step-to-step correlation of that noise (an AR(1) process with the stationary deviation above),
    so it pushes the hand off course for several steps, as a policy's own bias does."""
    grasp_order: str = "no-turn-first"
    """Which rim grasp the expert prefers on a tie (``experts.GRASP_ORDERS``); ``robot-side-first``
    reproduces the demos of the shipped policies (recorded before session 7 changed the default)."""
    grasp_clear_cost: float = 0.0
    """Obstacle cost (m) up to which a rim grasp counts as clear, so the preference order decides
    (``experts.rank_grasps``). 0 (the shipped policies' demos): the least-cost grasp wins, and a few
    millimetres of a stove's grate flip it between init states; 0.02 keeps the preferred grasp
    wherever it is nearly free (task 6 still split between two: see ``grasp_side``)."""
    grasp_side: str = "per-episode"
    """``per-episode``: the expert ranks the rim grasps anew in every scene (``grasp_clear_cost``
    decides ties), so one task's demos can hold several grasps. ``per-task``: before recording, the
    task's scenes (the same starts the episodes use) are surveyed once and the side clear in most of
    them (``experts.choose_task_side``) is tried first in every episode, as the issue's expert does."""
    pace: str = "standard"
    """How fast the expert carries and lowers (``experts.PACES``): ``standard`` made every demo set
    up to session 17; ``brisk`` asks for full speed there, which shortens the longest demos
    (tasks 4 and 9 of libero_spatial) by 27 and 36 steps."""
    record: bool = True
    """False: only measure the expert's success (no rendering, no HDF5), for quick sweeps."""

    def __post_init__(self):
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; known: {SUITES}")
        if self.episodes_per_task < 1 or self.width <= 0 or self.height <= 0 or self.settle_steps < 0 or self.post_success_steps < 0:
            raise ValueError("episodes_per_task, width, height must be positive; settle_steps, post_success_steps >= 0")
        if self.grasp_clear_cost < 0:
            raise ValueError(f"grasp_clear_cost must be >= 0, got {self.grasp_clear_cost}")
        if self.action_noise < 0 or not 0 <= self.action_noise_corr < 1:
            raise ValueError("action_noise must be >= 0 and action_noise_corr in [0, 1)")
        if self.init_states not in INIT_STATES:
            raise ValueError(f"init_states must be one of {INIT_STATES}, got {self.init_states!r}")
        if self.grasp_order not in GRASP_ORDERS:
            raise ValueError(f"grasp_order must be one of {sorted(GRASP_ORDERS)}, got {self.grasp_order!r}")
        pace_named(self.pace)
        if self.grasp_side not in GRASP_SIDES:
            raise ValueError(f"grasp_side must be one of {GRASP_SIDES}, got {self.grasp_side!r}")

    @property
    def step_limit(self) -> int:
        return self.max_steps if self.max_steps is not None else MAX_STEPS[self.suite]


def load_config(path: str | Path | None, overrides: tuple[str, ...] | list[str] = (), **fields) -> DemoConfig:
    """A ``DemoConfig`` from YAML (``base:`` files allowed; unknown keys are a ConfigError), then the keyword
    ``fields`` that are not None (the CLI's flags), then ``KEY=VALUE`` ``overrides``."""
    return configlib.load_config(DemoConfig, path, overrides, values={k: v for k, v in fields.items() if v is not None})


@dataclass
class Rollout:
    """What one expert episode produced (before rendering)."""

    success: bool
    steps: int
    states: list[np.ndarray] = field(default_factory=list)
    proprio: dict[str, list[np.ndarray]] = field(default_factory=dict)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    success_step: int | None = None
    """Index of the first recorded step after which the goal held (None: never)."""
    grasp: str | None = None
    """The rim grasp the expert ended with (``PickPlaceExpert.grasp_label``: ``+y``, ``-x``, ...)."""
    wall_s: float = 0.0


def make_env(task: LiberoTask, cfg: DemoConfig):
    """A LIBERO ``ControlEnv`` with an offscreen renderer but no camera observations (rendered on replay)."""
    from libero.libero.envs.env_wrapper import ControlEnv

    logging.getLogger("robosuite").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        env = ControlEnv(
            bddl_file_name=task.bddl_path,
            has_offscreen_renderer=True,
            use_camera_obs=False,
            camera_names=list(CAMERAS.values()),
            camera_heights=cfg.height,
            camera_widths=cfg.width,
        )
    return env


def recorded_proprio(obs: dict) -> dict[str, np.ndarray]:
    """The proprioception a demo file records (``hdf5_io.PROPRIO_KEYS`` plus ``ee_quat``) from a LIBERO observation."""
    from distill.policy.experts import rotvec_from_matrix
    from vega_ros.geometry import quat_to_matrix

    quat = np.asarray(obs["robot0_eef_quat"], np.float64)
    return {
        "ee_pos": np.asarray(obs["robot0_eef_pos"], np.float64),
        "ee_ori": rotvec_from_matrix(quat_to_matrix(quat)),
        "ee_quat": quat,
        "gripper_states": np.asarray(obs["robot0_gripper_qpos"], np.float64),
        "joint_states": np.asarray(obs["robot0_joint_pos"], np.float64),
    }




def settled_start(env, init_state: np.ndarray | None, cfg: DemoConfig, seed: int) -> dict:
    """Seed and reset ``env``, load ``init_state`` and step ``cfg.settle_steps`` no-ops; the last obs.

    ``init_state``: a flattened MuJoCo state to start from; None keeps the placement that the
    seeded reset sampled (``seeded_reset``: LIBERO's placement samplers draw from ``np.random``,
    which ``env.seed`` seeds)."""
    obs = seeded_reset(env, seed)
    if init_state is not None:
        obs = env.set_init_state(init_state)
    for _ in range(cfg.settle_steps):
        obs, *_ = env.step(IDLE)
    return obs


def survey_task_side(env, starts: list[tuple[np.ndarray | None, int]], cfg: DemoConfig) -> str | None:
    """The rim grasp side for all of a task's episodes (``experts.choose_task_side``), from the
    candidates' obstacle costs in each settled start ``(init_state, seed)``; None for an object
    grasped from the top (one candidate) and for multi-step goals (``sequence.SequenceExpert``). Steps only the settle no-ops: a few seconds a task."""
    expert = expert_for(env, grasp_order=cfg.grasp_order)
    if not isinstance(expert, (SequenceExpert, PickPlaceExpert)):  # a push (push.PushExpert): no grasp
        return None
    if isinstance(expert, SequenceExpert):
        places = [s for s in expert.steps if s.predicate[0] in ("on", "in")]
        if len(places) != 1 or len(expert.steps) > 2:  # several primitives: each pick-place ranks its own grasps
            return None
        expert = places[0].make(set())  # a pick-and-place into a drawer (libero_spatial task 4), surveyed as before
    cands = grasp_candidates(expert.grasp, cfg.grasp_order)
    if len(cands) == 1:
        return None
    view, costs = SceneView(env), []
    for init_state, seed in starts:
        obs = settled_start(env, init_state, cfg, seed)
        height_at = lambda xy: view.height_at(xy, ignore=(expert.obj,))  # noqa: E731
        costs.append(grasp_costs(expert.grasp, cands, np.asarray(obs[f"{expert.obj}_pos"], np.float64), height_at))
    return choose_task_side(np.asarray(costs), cands, cfg.grasp_clear_cost)


def run_expert(env, init_state: np.ndarray | None, cfg: DemoConfig, seed: int, side: str | None = None) -> Rollout:
    """Settle (``settled_start``), then let the scripted expert act until success (plus
    ``cfg.post_success_steps``) or the step limit. Renders nothing. ``Rollout.steps`` counts every
    recorded step. ``side``: the rim grasp tried first (``PickPlaceExpert.side``); None ranks them here."""
    t0 = time.perf_counter()
    obs = settled_start(env, init_state, cfg, seed)
    expert = expert_for(env, grasp_order=cfg.grasp_order, clear_cost=cfg.grasp_clear_cost, side=side, pace=cfg.pace)
    view = SceneView(env)
    out = Rollout(success=False, steps=0)
    rng, noise = np.random.default_rng(seed), np.zeros(3)
    innovation = cfg.action_noise * np.sqrt(1.0 - cfg.action_noise_corr**2)
    k, limit = 0, cfg.step_limit
    while k < limit:
        action = expert.act(obs, view) if not expert.done else IDLE
        out.states.append(env.sim.get_state().flatten())
        for key, v in recorded_proprio(obs).items():
            out.proprio.setdefault(key, []).append(v)
        out.actions.append(action)  # the label is always the expert's own action
        executed = action
        noise = cfg.action_noise_corr * noise + innovation * rng.standard_normal(3)
        if cfg.action_noise > 0 and expert.phase in FREE_SPACE_PHASES:  # the phase the expert is in now
            executed = action.copy()
            executed[:3] = np.clip(action[:3] + noise, -1.0, 1.0)
        obs, reward, done, _ = env.step(executed)
        out.rewards.append(float(reward))
        if done and not out.success:
            out.success, out.success_step = True, k
            limit = k + 1 + cfg.post_success_steps
        k += 1
    out.steps = k
    out.grasp = expert.grasp_label
    out.wall_s = time.perf_counter() - t0
    return out


def render_states(env, states: list[np.ndarray], width: int, height: int) -> dict[str, np.ndarray]:
    """Frames ``{agentview, wrist}: [T, H, W, 3] uint8`` (top row first) of recorded MuJoCo states.

    ``env`` must have been reset at least once: a fresh robosuite env renders different pixels
    until its first reset. Frames equal ``OffScreenRenderEnv``'s camera images with rows flipped.
    """
    sim = env.sim
    frames = {k: np.empty((len(states), height, width, 3), np.uint8) for k in CAMERAS}
    for t, s in enumerate(states):
        sim.set_state_from_flattened(s)
        sim.forward()
        for key, cam in CAMERAS.items():
            img = sim.render(camera_name=cam, width=width, height=height)
            if not np.any(img):
                raise RuntimeError(f"camera {cam}: render returned an all-black frame (lost GL context?)")
            frames[key][t] = img[::-1]
    return frames


def record_task(task: LiberoTask, cfg: DemoConfig, out_dir: Path, progress=None) -> dict:
    """Run the expert on ``cfg.episodes_per_task`` init states of ``task``; write the successes."""
    t_start = time.perf_counter()
    result = {"task_index": task.task_index, "task": task.name, "attempted": 0, "succeeded": 0}
    env = make_env(task, cfg)
    try:
        try:
            expert_for(env, grasp_order=cfg.grasp_order)
        except UnsupportedTask as e:
            result["unsupported"] = str(e)
            if progress:
                progress(cfg.episodes_per_task)
            return result
        inits = load_init_states(task) if cfg.init_states == "fixed" else None
        language = scene_instruction(env)
        episodes, lengths, rollout_s, render_s = [], [], [], []
        succeeded, failed, grasps = 0, [], {}
        # (init state index or -1, its state or None, seed) of each episode
        starts = []
        for i in range(cfg.episodes_per_task):
            idx = (cfg.init_state_offset + i) % len(inits) if inits is not None else -1
            starts.append((idx, inits[idx] if inits is not None else None, cfg.seed + 1000 * task.task_index + i))
        side = None
        if cfg.grasp_side == "per-task":
            side = result["grasp_side"] = survey_task_side(env, [(state, seed) for _, state, seed in starts], cfg)
        for idx, state, seed in starts:
            r = run_expert(env, state, cfg, seed, side)
            result["attempted"] += 1
            succeeded += r.success
            if not r.success:
                failed.append(idx if inits is not None else seed)
            rollout_s.append(r.wall_s)
            if r.success:
                lengths.append(r.success_step + 1)
                grasps[r.grasp] = grasps.get(r.grasp, 0) + 1
            if r.success and cfg.record:
                t0 = time.perf_counter()
                frames = render_states(env, r.states, cfg.width, cfg.height)
                render_s.append(time.perf_counter() - t0)
                T = r.steps
                episodes.append(
                    Episode(
                        agentview=frames["agentview"],
                        wrist=frames["wrist"],
                        proprio={k: np.stack(v) for k, v in r.proprio.items()},
                        actions=np.stack(r.actions),
                        language=language,
                        rewards=(np.asarray(r.rewards) > 0).astype(np.uint8),
                        dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                        states=np.stack(r.states),
                        name=f"demo_{len(episodes)}",
                        attrs={"init_state_index": idx, "init_states": cfg.init_states, "seed": seed, "success_step": r.success_step,
                               "grasp": r.grasp or ""},
                    )
                )
            if progress:
                progress(1)
        result["succeeded"] = succeeded
        result["success_rate"] = result["succeeded"] / max(result["attempted"], 1)
        result["episode_length_mean"] = float(np.mean(lengths)) if lengths else None
        result["rollout_s_mean"] = float(np.mean(rollout_s))
        result["render_s_mean"] = float(np.mean(render_s)) if render_s else None
        result["failed_init_states" if inits is not None else "failed_seeds"] = failed
        result["grasps"] = dict(sorted(grasps.items()))  # successes per grasp: more than one key is a multi-modal expert
        if episodes:
            path = out_dir / cfg.suite / f"{task.name}_demo.hdf5"
            meta = demo_file_meta(env, task, language, cfg.width, cfg.height,
                                  {"generator": "distill.policy.demos", "suite": cfg.suite, "task_index": task.task_index,
                                   "config": jsonable(cfg)})
            write_demo_file(path, episodes, meta)
            result["file"] = str(path)
    finally:
        with contextlib.suppress(Exception):
            env.close()
    result["wall_s"] = time.perf_counter() - t_start
    return result


def jsonable(cfg) -> dict:
    """A config dataclass as plain JSON types (tuples become lists), for summaries and file metadata."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def demo_file_meta(env, task: LiberoTask, language: str, width: int, height: int, extra: dict) -> FileMeta:
    """The file-level metadata of a demo file recorded in ``env`` (OSC_POSE at 20 Hz, both cameras)."""
    return FileMeta(
        problem_name=env.problem_name,
        language_instruction=language,
        bddl_file_name=task.bddl_path,
        env_kwargs={
            "controller": "OSC_POSE",
            "control_freq": 20,
            "camera_names": list(CAMERAS.values()),
            "camera_heights": height,
            "camera_widths": width,
        },
        extra=extra,
    )


# ----------------------------------------------------------------------------- parallel driver


def _worker(args) -> dict:
    task, cfg, out_dir, queue = args
    result = record_task(task, cfg, Path(out_dir), progress=queue.put)
    save_task_result(Path(out_dir), cfg, result)
    return result


def task_result_path(out_dir: Path, suite: str, task_name: str) -> Path:
    """Where a finished task's result is kept (beside its demo file), so a rerun can skip the task."""
    return out_dir / suite / f"{task_name}_result.json"


def _resume_key(cfg: DemoConfig) -> dict:
    """The settings a saved task result must match to be reused (the task selection may differ)."""
    return {k: v for k, v in jsonable(cfg).items() if k != "tasks"}


def save_task_result(out_dir: Path, cfg: DemoConfig, result: dict) -> None:
    """Keep a finished task's result (``record_task``'s dict) with the settings it was recorded with."""
    path = task_result_path(out_dir, cfg.suite, result["task"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"config": _resume_key(cfg), "result": result}, indent=2))
    os.replace(tmp, path)


def saved_task_result(out_dir: Path, cfg: DemoConfig, task_name: str) -> dict | None:
    """The result of ``task_name`` from an earlier run into ``out_dir`` with the same settings, or
    None (never run, other settings, or its demo file is gone): long recordings resume by task."""
    path = task_result_path(out_dir, cfg.suite, task_name)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    result = saved.get("result") if isinstance(saved, dict) else None
    if not isinstance(result, dict) or not isinstance(saved.get("config"), dict):
        return None
    # A setting added after the result was saved had its default's behaviour then.
    defaults = _resume_key(DemoConfig(suite=cfg.suite))
    if {**defaults, **saved["config"]} != _resume_key(cfg):
        return None
    if result.get("file") and not Path(result["file"]).exists():
        return None
    return result


def _offscreen_gl_defaults() -> None:
    """In each worker: MuJoCo renders offscreen with EGL unless the caller chose another backend."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def run_parallel(worker: Callable[[tuple], dict], jobs: list[tuple], total: int, desc: str, workers: int,
                 show_progress: bool = True) -> list[dict]:
    """``worker(job + (queue,))`` for every job in spawned processes, ``workers`` at a time (one
    fresh process per job: a LIBERO env per process). Workers report finished episodes with
    ``queue.put(n)``; the bar counts them to ``total``. Returns the workers' results in job order."""
    from tqdm import tqdm

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, tqdm(total=total, desc=desc, unit="ep", disable=not show_progress) as bar:
        queue = manager.Queue()
        with ctx.Pool(max(1, workers), initializer=_offscreen_gl_defaults, maxtasksperchild=1) as pool:
            pending = pool.map_async(worker, [(*job, queue) for job in jobs], chunksize=1)
            while not pending.ready():
                with contextlib.suppress(Exception):
                    bar.update(queue.get(timeout=0.5))
            while not queue.empty():
                bar.update(queue.get())
            return pending.get()


def record_suite(cfg: DemoConfig, out_dir: Path, workers: int = 1, show_progress: bool = True) -> dict:
    """Record every selected task of the suite (one process per task, ``workers`` at a time).

    Tasks an earlier run into ``out_dir`` finished with the same settings are not run again
    (``saved_task_result``): a recording cut off midway resumes where it stopped."""
    tasks = [t for t in suite_tasks(cfg.suite) if cfg.tasks is None or t.task_index in cfg.tasks]
    t0 = time.perf_counter()
    saved = {t.task_index: r for t in tasks if (r := saved_task_result(out_dir, cfg, t.name)) is not None}
    if saved:
        logging.getLogger(__name__).warning("%s: %d of %d tasks already recorded with these settings; skipping them",
                                            out_dir, len(saved), len(tasks))
    todo = [t for t in tasks if t.task_index not in saved]
    results = list(saved.values())
    if todo:
        results += run_parallel(_worker, [(t, cfg, str(out_dir)) for t in todo], len(todo) * cfg.episodes_per_task,
                                cfg.suite, workers, show_progress)
    results.sort(key=lambda r: r["task_index"])
    attempted = sum(r["attempted"] for r in results)
    succeeded = sum(r["succeeded"] for r in results)
    summary = {
        "suite": cfg.suite,
        "config": jsonable(cfg),
        "workers": workers,
        "wall_s": time.perf_counter() - t0,
        "resumed_tasks": sorted(saved),
        "attempted": attempted,
        "succeeded": succeeded,
        "success_rate": succeeded / max(attempted, 1),
        "tasks": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{cfg.suite}_summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, path)
    path.with_suffix(".md").write_text(summary_markdown(summary))
    return summary


def _episodes_phrase(cfg: dict) -> str:
    """Which starts the episodes used, from a summary's config (``init_states`` is absent in old summaries)."""
    first, n = cfg["init_state_offset"], cfg["episodes_per_task"]
    if cfg.get("init_states", "fixed") == "sampled":
        return f"{n} sampled placements (seeds {cfg['seed']}+1000k..+{n - 1})"
    return f"init states {first}..{first + n - 1}"


def summary_markdown(summary: dict) -> str:
    """A markdown table of per-task expert success (and wall times) from a suite summary."""
    cfg = summary["config"]
    lines = [
        "| task | expert success | mean steps to success | grasps of the successes | rollout s/ep | render s/ep |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["tasks"]:
        if "unsupported" in r:
            lines.append(f"| {r['task_index']}: {r['task']} | no expert ({r['unsupported'].split(': ', 1)[-1]}) | | | | |")
            continue
        fmt = lambda v, f: "" if v is None else format(v, f)
        grasps = ", ".join(f"{g} {n}" for g, n in r.get("grasps", {}).items())
        if r.get("grasp_side"):
            grasps += f" (task side {r['grasp_side']})"
        lines.append(
            f"| {r['task_index']}: {r['task']} | {r['succeeded']}/{r['attempted']} | {fmt(r.get('episode_length_mean'), '.0f')}"
            f" | {grasps} | {fmt(r.get('rollout_s_mean'), '.1f')} | {fmt(r.get('render_s_mean'), '.1f')} |"
        )
    lines.append(
        f"\n{summary['suite']}: {summary['succeeded']}/{summary['attempted']} ({100 * summary['success_rate']:.0f} %), "
        f"{_episodes_phrase(cfg)} of each task, "
        f"step limit {cfg['max_steps'] or MAX_STEPS[summary['suite']]}, {summary['workers']} worker(s), {summary['wall_s']:.0f} s wall"
        + (f" (tasks {summary['resumed_tasks']} recorded by an earlier run)." if summary.get("resumed_tasks") else ".")
    )
    return "\n".join(lines) + "\n"


@configlib.exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    configlib.add_config_args(p, required=False, help="YAML with DemoConfig fields (command-line flags and --set override it)")
    p.add_argument("--suite", default=None, choices=SUITES)
    p.add_argument("--episodes-per-task", type=int, default=None)
    p.add_argument("--tasks", type=lambda s: [int(x) for x in s.split(",")], default=None, help="comma-separated task indices")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--init-states", default=None, choices=INIT_STATES,
                   help="fixed: the suite's init states (as evaluated); sampled: fresh seeded placements")
    p.add_argument("--init-state-offset", type=int, default=None)
    p.add_argument("--post-success-steps", type=int, default=None, help="steps recorded after the goal first holds")
    p.add_argument("--action-noise", type=float, default=None, help="DART noise on the executed translation (action units)")
    p.add_argument("--grasp-order", default=None, choices=sorted(GRASP_ORDERS),
                   help="the expert's preferred rim grasp on a tie; robot-side-first reproduces the shipped policies' demos")
    p.add_argument("--grasp-clear-cost", type=float, default=None,
                   help="obstacle cost (m) up to which a rim grasp counts as clear (0: the shipped demos; 0.02: one grasp per task)")
    p.add_argument("--grasp-side", default=None, choices=GRASP_SIDES,
                   help="per-task: one rim grasp side for all of a task's episodes, surveyed from its scenes first")
    p.add_argument("--pace", default=None, choices=sorted(PACES),
                   help="how fast the expert carries and lowers (standard: the demos up to session 17; brisk: full speed)")
    p.add_argument("--measure-only", action="store_true", help="only measure expert success: no rendering, no HDF5")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=1, help="parallel processes (one per CPU core; software rendering is single-threaded)")
    args = p.parse_args(argv)
    cfg = load_config(
        args.config,
        args.overrides,
        suite=args.suite,
        episodes_per_task=args.episodes_per_task,
        tasks=args.tasks,
        seed=args.seed,
        init_states=args.init_states,
        init_state_offset=args.init_state_offset,
        post_success_steps=args.post_success_steps,
        action_noise=args.action_noise,
        grasp_order=args.grasp_order,
        grasp_clear_cost=args.grasp_clear_cost,
        grasp_side=args.grasp_side,
        pace=args.pace,
        record=False if args.measure_only else None,
    )
    summary = record_suite(cfg, args.out, workers=args.workers)
    for r in summary["tasks"]:
        note = r.get("unsupported", "")
        print(f"{r['task_index']:2d} {r['succeeded']:3d}/{r['attempted']:<3d} {r['task']} {note}")
    print(f"{cfg.suite}: {summary['succeeded']}/{summary['attempted']} expert successes, {summary['wall_s']:.0f} s")
    print(f"summary: {args.out / (cfg.suite + '_summary.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
