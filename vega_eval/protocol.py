"""The LIBERO evaluation protocol and the statistics of its results (pure Python / numpy).

The standard protocol: each task of a suite is run from the suite's fixed initial states, 50
episodes per task by default (episode k starts from init state k), after 10 no-op settle steps,
for at most 220 / 280 / 300 / 520 policy steps on libero_spatial / object / goal / 10
(libero_90: 400); LIBERO-PRO's perturbed suites (``libero_spatial_swap``, ...) take the limit of
the suite they perturb. An episode succeeds when the environment reports the BDDL goal satisfied.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
SETTLE_ACTION = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0)
"""A no-op OSC_POSE delta with the gripper open (-1), sent during the settle steps."""

FIXTURES_SEEDED = "seeded"
"""Fixtures placed from the episode's seed alone (``vega_eval.rollout.seeded_reset``)."""
FIXTURES_UNIT_ORDER = "unit-order"
"""How runs made before ``EvalProtocol.fixtures`` existed placed them: from the seed and the
episode's position among the resets of its worker's env, which the protocol did not record."""


@dataclass(frozen=True)
class EvalProtocol:
    """What an evaluation run does; every field is recorded in its results."""

    suite: str = "libero_spatial"
    episodes_per_task: int = 50
    settle_steps: int = 10
    max_steps: int | None = None  # None: the suite's standard limit (MAX_STEPS)
    seed: int = 7
    image_size: int = 128  # LIBERO's camera resolution (square)
    tasks: tuple[int, ...] | None = None  # None: every task of the suite
    init_state_offset: int = 0  # episode k uses init state (offset + k) mod the count; > 0 holds out demo states
    # Fixtures (cabinet, stove: bodies without joints) are not in the init states; the seeded reset
    # places them (6-19 mm apart between two seeds). FIXTURES_SEEDED: from the episode's seed alone.
    fixtures: str = FIXTURES_SEEDED

    @property
    def step_limit(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        base = base_suite(self.suite)
        if base is None:
            raise ValueError(f"no standard step limit for suite '{self.suite}'; pass max_steps (vega-ros libero-eval --max-steps)")
        return MAX_STEPS[base]


def base_suite(suite: str) -> str | None:
    """The standard suite a suite belongs to: itself, or for a LIBERO-PRO perturbation
    (``libero_spatial_swap``, ``libero_10_lan``, ...) the standard suite it perturbs; None if neither."""
    if suite in MAX_STEPS:
        return suite
    matches = [b for b in MAX_STEPS if suite.startswith(b + "_")]
    return max(matches, key=len) if matches else None


def is_perturbed(suite: str) -> bool:
    """A LIBERO-PRO perturbation of a standard suite (``libero_spatial_task``), not a standard suite itself."""
    return base_suite(suite) not in (None, suite)


@dataclass(frozen=True)
class Episode:
    """One planned episode: task index, episode index within the task, init-state index, seed."""

    task_id: int
    episode: int
    init_state: int
    seed: int


def plan_episodes(protocol: EvalProtocol, n_tasks: int, init_states_per_task: list[int],
                  skip: Collection[int] = ()) -> list[Episode]:
    """All episodes of a run in a fixed order; episode k of a task uses init state offset + k (mod the count).
    Tasks in ``skip`` (reported elsewhere, e.g. without init states) get none."""
    tasks = range(n_tasks) if protocol.tasks is None else protocol.tasks
    plan = []
    for t in tasks:
        if not 0 <= t < n_tasks:
            raise ValueError(f"task {t} is not in {protocol.suite} (0..{n_tasks - 1})")
        if t in skip:
            continue
        n_init = init_states_per_task[t]
        if n_init == 0:
            raise ValueError(f"task {t} of {protocol.suite} has no init states")
        for k in range(protocol.episodes_per_task):
            plan.append(Episode(task_id=t, episode=k, init_state=(protocol.init_state_offset + k) % n_init, seed=protocol.seed * 100_003 + t * 1_009 + k))
    return plan


def wrapped_init_states(protocol: EvalProtocol, plan: list[Episode]) -> list[int]:
    """The init states below ``init_state_offset`` that the plan wraps around to (sorted): a run that
    holds out the demos' first init states reuses them when offset + episodes per task exceeds the count."""
    return sorted({ep.init_state for ep in plan if ep.init_state < protocol.init_state_offset})


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate (well behaved at 0 and 1, unlike the normal one)."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EpisodeResult:
    task_id: int
    episode: int
    init_state: int
    success: bool
    steps: int  # policy steps taken (settle steps not counted)
    wall_s: float


@dataclass
class SuiteReport:
    """Per-task and mean success with 95 % intervals."""

    protocol: EvalProtocol
    task_names: list[str]
    episodes: list[EpisodeResult] = field(default_factory=list)
    unloadable: dict[int, str] = field(default_factory=dict)
    """Tasks that could not be evaluated (a BDDL that does not load, init states the package lacks):
    task id -> why. Their episodes are not run and not counted; the rest of the suite is."""
    instructions: list[str | None] | None = None
    """What the policy heard in each task (its BDDL's ``:language``), None where unknown."""

    def per_task(self) -> list[dict]:
        rows = []
        for t in sorted({e.task_id for e in self.episodes}):
            eps = [e for e in self.episodes if e.task_id == t]
            k = sum(e.success for e in eps)
            lo, hi = wilson_interval(k, len(eps))
            row = {"task_id": t, "task": self.task_names[t], "episodes": len(eps), "successes": k,
                   "success_rate": k / len(eps), "ci95": [lo, hi]}
            if self.instructions is not None and self.instructions[t] is not None:
                row["instruction"] = self.instructions[t]
            rows.append(row)
        return rows

    def mean_success(self) -> dict:
        rows = self.per_task()
        n = sum(r["episodes"] for r in rows)
        k = sum(r["successes"] for r in rows)
        lo, hi = wilson_interval(k, n)
        return {"episodes": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": [lo, hi],
                "mean_of_task_rates": sum(r["success_rate"] for r in rows) / len(rows) if rows else 0.0}

    def summary(self) -> dict:
        """What ``results.json`` holds besides the episodes: protocol, step limit, per-task and mean success."""
        return {"protocol": asdict(self.protocol), "step_limit": self.protocol.step_limit,
                "per_task": self.per_task(), "mean": self.mean_success(),
                "unloadable_tasks": [{"task_id": t, "task": self.task_names[t], "error": e}
                                     for t, e in sorted(self.unloadable.items())]}

    @property
    def heard_column(self) -> bool:
        """A LIBERO-PRO suite (it names its standard suite) with the instructions known: the table says
        what the policy heard, which ``_lan`` and ``_task`` suites change while the task names stay."""
        return self.instructions is not None and is_perturbed(self.protocol.suite)

    def to_markdown(self, title: str) -> str:
        lines = [f"# {title}", "", f"suite `{self.protocol.suite}`, {self.protocol.episodes_per_task} episodes per task, "
                 f"init states from {self.protocol.init_state_offset}, max {self.protocol.step_limit} steps, "
                 f"{self.protocol.settle_steps} settle steps, seed {self.protocol.seed}, fixtures {self.protocol.fixtures}", "",
                 "| task | success | 95 % interval |" + (" instruction heard |" if self.heard_column else ""),
                 "|---|---|---|" + ("---|" if self.heard_column else "")]
        for r in self.per_task():
            lines.append(f"| {r['task_id']}: {r['task']} | {r['successes']}/{r['episodes']} ({100 * r['success_rate']:.0f} %) "
                         f"| {100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f} % |"
                         + (f" {r.get('instruction', '?')} |" if self.heard_column else ""))
        m = self.mean_success()
        lines.append(f"| **all** | **{m['successes']}/{m['episodes']} ({100 * m['success_rate']:.1f} %)** "
                     f"| {100 * m['ci95'][0]:.1f}–{100 * m['ci95'][1]:.1f} % |" + (" |" if self.heard_column else ""))
        for t, e in sorted(self.unloadable.items()):
            lines.append(f"\nNot evaluated: task {t} ({self.task_names[t]}): {e}")
        return "\n".join(lines) + "\n"
