"""Closed-loop LIBERO evaluation: parallel episodes (one process per core), a progress bar,
per-task and mean success with 95 % intervals in JSON and markdown, and GIFs of a few rollouts.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from vega_ros.libero.policy_api import Policy
from vega_ros.libero.protocol import (
    Episode,
    EpisodeResult,
    EvalProtocol,
    SuiteReport,
    plan_episodes,
)
from vega_ros.libero.rollout import SuiteEnvs, run_episode

PolicyFactory = Callable[[], Policy]
"""Builds a fresh policy inside a worker process (must be picklable: a module-level function or class)."""


def _work_units(plan: list[Episode], per_unit: int) -> list[list[Episode]]:
    """Consecutive episodes of one task, at most ``per_unit`` each (a worker keeps one env per task)."""
    units: list[list[Episode]] = []
    for ep in plan:
        if units and units[-1][0].task_id == ep.task_id and len(units[-1]) < per_unit:
            units[-1].append(ep)
        else:
            units.append([ep])
    return units


def _run_unit(args: tuple) -> list[tuple[EpisodeResult, list[np.ndarray]]]:
    protocol, policy_factory, unit, record_keys = args
    envs = SuiteEnvs(protocol.suite, protocol.image_size)
    policy = policy_factory()
    try:
        return [run_episode(envs, policy, ep, protocol, record=(ep.task_id, ep.episode) in record_keys) for ep in unit]
    finally:
        envs.close()


def save_gif(frames: list[np.ndarray], path: str, fps: int = 20, every: int = 2) -> None:
    """Write ``[H, W, 3]`` uint8 frames as an animated GIF (every ``every``-th frame)."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames[::every]]
    if images:
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 * every / fps), loop=0)


def evaluate(protocol: EvalProtocol, policy_factory: PolicyFactory, out_dir: str, workers: int = 2,
             videos: int = 3, title: str = "LIBERO evaluation", episodes_per_unit: int = 5) -> SuiteReport:
    """Run the protocol and write ``results.json``, ``results.md`` and ``videos/*.gif`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    catalogue = SuiteEnvs(protocol.suite, protocol.image_size)
    names = catalogue.task_names()
    plan = plan_episodes(protocol, catalogue.n_tasks, [len(catalogue.init_states(t)) for t in range(catalogue.n_tasks)])
    record_keys = {(ep.task_id, ep.episode) for ep in plan if ep.episode == 0}
    record_keys = set(sorted(record_keys)[:videos])
    units = [(protocol, policy_factory, u, record_keys) for u in _work_units(plan, episodes_per_unit)]
    report = SuiteReport(protocol=protocol, task_names=names)
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    bar = tqdm(total=len(plan), unit="episode", desc=f"{protocol.suite} ({workers} workers)", dynamic_ncols=True)

    def consume(results):
        for result, frames in results:
            report.episodes.append(result)
            if frames:
                save_gif(frames, os.path.join(out_dir, "videos", f"task{result.task_id:02d}_ep{result.episode:03d}.gif"))
            bar.update(1)
        bar.set_postfix(success=f"{sum(e.success for e in report.episodes)}/{len(report.episodes)}")

    try:
        if workers <= 1:
            for u in units:
                consume(_run_unit(u))
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for results in pool.imap_unordered(_run_unit, units):
                    consume(results)
    finally:
        bar.close()
    report.episodes.sort(key=lambda e: (e.task_id, e.episode))
    payload = {
        "protocol": asdict(protocol),
        "step_limit": protocol.step_limit,
        "per_task": report.per_task(),
        "mean": report.mean_success(),
        "episodes": [asdict(e) for e in report.episodes],
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(report.to_markdown(title))
    return report
