"""Which rim grasp each demonstration used, per task: an expert with more than one is multi-modal.

A policy cloned with an L1 or L2 loss regresses the mean action. Where the expert grasps a task's
object from different sides in different episodes, the clone averages the approaches and hovers
between them. In session 13 this was task 7 of libero_spatial: the bowl on the stove was grasped
from three sides, chosen by millimetres of the stove's grate.

Demos recorded since session 13 carry the grasp in their attrs (``grasp``). For older files, and
for the official datasets, the side is measured: the recorded state at the first gripper-close
command is loaded into the task's env, and the hand's offset from the object names the side.

    MUJOCO_GL=egl python -m distill.policy.grasp_modes data/demos/libero_spatial data/demos_s2/libero_spatial
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections import Counter

import numpy as np

from distill.policy.experts import SceneView, UnsupportedTask, expert_for, side_label
from distill.policy.hdf5_io import Episode, load_demos


def first_close_step(actions: np.ndarray) -> int | None:
    """Index of the first action ``[T, 7]`` that commands the gripper closed (last entry > 0), or None."""
    closing = np.flatnonzero(np.asarray(actions)[:, 6] > 0)
    return int(closing[0]) if closing.size else None


def measured_grasp(env, obj: str, ep: Episode) -> str | None:
    """The side the hand is on at the first close command, from the episode's recorded state.

    ``ep`` must hold ``states`` (``load_demos(..., with_states=True)``). None if it never closes.
    """
    c = first_close_step(ep.actions)
    if c is None:
        return None
    env.sim.set_state_from_flattened(ep.states[c])
    env.sim.forward()
    offset = np.asarray(ep.proprio["ee_pos"][c], np.float64) - SceneView(env).position(obj)
    return side_label(offset[:2])


def task_grasps(paths: list[str], env) -> Counter:
    """Grasps of every demo in the files ``paths`` (all of one task, whose env is ``env``)."""
    obj = None
    counts: Counter = Counter()
    for path in paths:
        for ep in load_demos(path, with_states=True):
            label = ep.attrs.get("grasp")
            label = label.decode() if isinstance(label, bytes) else label
            if not label:
                if obj is None:
                    obj = expert_for(env).obj
                label = measured_grasp(env, obj, ep)
            counts[label or "never closes"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", help="folders of one suite's demo files (<task name>_demo.hdf5)")
    p.add_argument("--suite", default="libero_spatial")
    args = p.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vega_eval.rollout import SuiteEnvs

    envs = SuiteEnvs(args.suite, 128)
    print("| task | demos | grasps (side of the object the hand is on) |")
    print("|---|---|---|")
    try:
        for task, name in enumerate(envs.task_names()):
            paths = [f for d in args.dirs for f in glob.glob(os.path.join(d, name.replace(" ", "_") + "_demo.hdf5"))]
            if not paths:
                continue
            try:
                counts = task_grasps(paths, envs.env(task))
            except UnsupportedTask as e:
                print(f"| {task}: {name} | | no expert to name the object ({e}) |")
                continue
            modes = ", ".join(f"{g} {n}" for g, n in counts.most_common())
            print(f"| {task}: {name} | {sum(counts.values())} | {modes} |", flush=True)
    finally:
        envs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
