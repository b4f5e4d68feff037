"""Closed-loop LIBERO evaluation: parallel episodes (one process per core), a progress bar,
per-task and mean success with 95 % intervals in JSON and markdown, and a GIF and a contact sheet
(PNG) of a few rollouts.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from vega_eval.media import save_contact_sheet, save_gif
from vega_eval.protocol import (
    Episode,
    EpisodeResult,
    EvalProtocol,
    SuiteReport,
    is_perturbed,
    plan_episodes,
    wrapped_init_states,
)
from vega_eval.rollout import SuiteEnvs, run_episode
from vega_ros.policy_io import Policy

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


@dataclass(frozen=True)
class UnloadableTask:
    """A work unit whose task's environment did not build (a BDDL file that does not load)."""

    task_id: int
    error: str
    episodes: int  # the unit's episodes, not run


def _run_unit(args: tuple) -> list[tuple[EpisodeResult, list[np.ndarray]]] | UnloadableTask:
    """The unit's episode results, or :class:`UnloadableTask` when the task's environment does not build:
    that task is reported and skipped, the rest of the run goes on."""
    protocol, policy_factory, unit, record_keys = args
    envs = SuiteEnvs(protocol.suite, protocol.image_size)
    try:
        try:
            envs.env(unit[0].task_id)
        except Exception as e:  # noqa: BLE001 - any failure of LIBERO's loader; named in the report
            return UnloadableTask(unit[0].task_id, f"its environment did not load: {type(e).__name__}: {e}", len(unit))
        policy = policy_factory()
        return [run_episode(envs, policy, ep, protocol, record=(ep.task_id, ep.episode) in record_keys) for ep in unit]
    finally:
        envs.close()


class MissingInitStates(ValueError):
    """No task of the run has init states in the installed package (a LIBERO-PRO suite it lists but
    does not ship the files of): nothing can be evaluated at the protocol."""


def init_state_counts(catalogue: SuiteEnvs, protocol: EvalProtocol) -> tuple[list[int], dict[int, str]]:
    """``(init states per task, {task: why it has none})`` for the suite's tasks; a task of the run
    whose init-state file is missing or unreadable is named, not fatal. Raises
    :class:`MissingInitStates` when no task of the run has any."""
    counts, missing = [], {}
    wanted = range(catalogue.n_tasks) if protocol.tasks is None else protocol.tasks
    for t in range(catalogue.n_tasks):
        try:
            counts.append(len(catalogue.init_states(t)) if t in wanted else 0)
        except Exception as e:  # noqa: BLE001 - the package's loader raises FileNotFoundError, numpy errors, ...
            counts.append(0)
            missing[t] = f"its init states did not load: {type(e).__name__}: {e}"
    if wanted and all(t in missing for t in wanted if 0 <= t < catalogue.n_tasks):
        first = missing[min(missing)] if missing else "none"
        raise MissingInitStates(f"{protocol.suite}: the installed package has no init states for any task of the run "
                                f"({first}); `libero-pro audit` lists the suites whose files it ships")
    return counts, missing


JOURNAL = "episodes.jsonl"
"""One line per finished episode (after a header line), so a stopped run resumes where it was."""


def journal_header(protocol: EvalProtocol, policy_id: str) -> dict:
    """What must match for earlier episodes to count: every protocol field that changes an episode.

    ``episodes_per_task`` and ``tasks`` are left out: episode k of task t is the same episode
    (init state, seed, step limit) whatever the run's size, so a run can grow from 5 to 50.
    """
    fields = {k: v for k, v in asdict(protocol).items() if k not in ("episodes_per_task", "tasks")}
    return {"policy": policy_id, "protocol": {**fields, "step_limit": protocol.step_limit}}


def read_journal(path: str, header: dict) -> dict[tuple[int, int], EpisodeResult]:
    """Finished episodes of an earlier run with the same header; another header raises ValueError."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if not lines:
        return {}
    if lines[0] != {"header": header}:
        raise ValueError(f"{path} holds episodes of another policy or protocol ({lines[0]}); "
                         f"use another --out or remove it")
    done = {}
    for row in lines[1:]:
        result = EpisodeResult(**row)
        done[(result.task_id, result.episode)] = result
    return done


def evaluate(protocol: EvalProtocol, policy_factory: PolicyFactory, out_dir: str, workers: int = 2,
             videos: int = 3, title: str = "LIBERO evaluation", episodes_per_unit: int = 5,
             policy_id: str = "") -> SuiteReport:
    """Run the protocol and write ``results.json``, ``results.md`` and ``videos/*.{gif,png}`` into ``out_dir``.

    Finished episodes go to ``out_dir/episodes.jsonl`` as they come; a rerun with the same policy
    (``policy_id``, e.g. the sha256 of its card) and protocol skips them.
    """
    os.makedirs(out_dir, exist_ok=True)
    catalogue = SuiteEnvs(protocol.suite, protocol.image_size)
    names = catalogue.task_names()
    counts, no_states = init_state_counts(catalogue, protocol)
    plan = plan_episodes(protocol, catalogue.n_tasks, counts, skip=no_states)
    wrapped = wrapped_init_states(protocol, plan)
    if wrapped:
        perturbed = is_perturbed(protocol.suite)  # its own init states: no demo used them
        tqdm.write(f"[libero-eval] {'note' if perturbed else 'warning'}: {protocol.episodes_per_task} episodes per task "
                   f"from init state {protocol.init_state_offset} wrap around to init states {wrapped[0]}..{wrapped[-1]}"
                   + (f" of {protocol.suite}'s own" if perturbed else
                      ", which are not held out from demos recorded from the first init states"))
    journal = os.path.join(out_dir, JOURNAL)
    header = journal_header(protocol, policy_id)
    done = read_journal(journal, header)
    report = SuiteReport(protocol=protocol, task_names=names, unloadable=dict(no_states), instructions=catalogue.instructions())
    for t, e in sorted(no_states.items()):
        tqdm.write(f"[libero-eval] task {t} ({names[t]}) skipped: {e}")
    report.episodes = [done[(ep.task_id, ep.episode)] for ep in plan if (ep.task_id, ep.episode) in done]
    todo = [ep for ep in plan if (ep.task_id, ep.episode) not in done]
    if not os.path.exists(journal) or not done:
        with open(journal, "w") as f:
            f.write(json.dumps({"header": header}) + "\n")
    record_keys = {(ep.task_id, ep.episode) for ep in todo if ep.episode == 0}
    record_keys = set(sorted(record_keys)[:videos])
    units = [(protocol, policy_factory, u, record_keys) for u in _work_units(todo, episodes_per_unit)]
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    bar = tqdm(total=len(plan), initial=len(report.episodes), unit="episode",
               desc=f"{protocol.suite} ({workers} workers)", dynamic_ncols=True)

    def consume(results):
        if isinstance(results, UnloadableTask):
            if results.task_id not in report.unloadable:
                report.unloadable[results.task_id] = results.error
                tqdm.write(f"[libero-eval] task {results.task_id} ({names[results.task_id]}) skipped: {results.error}")
            bar.update(results.episodes)
            return
        with open(journal, "a") as f:
            for result, _ in results:
                f.write(json.dumps(asdict(result)) + "\n")
        for result, frames in results:
            report.episodes.append(result)
            if frames:
                stem = os.path.join(out_dir, "videos", f"task{result.task_id:02d}_ep{result.episode:03d}")
                save_gif(frames, stem + ".gif")
                save_contact_sheet(frames, stem + ".png")
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
    payload = {**report.summary(), "episodes": [asdict(e) for e in report.episodes]}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(report.to_markdown(title))
    return report
