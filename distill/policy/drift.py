"""How far an exported policy drifts from a demonstration it was trained on (a compounding-error check).

    python -m distill.policy.drift --policy models/bc-fused-brisk-ft --demos data/demos/libero_spatial --tasks 0 1 2

Per task, the first demo of the task's file that starts from one of the suite's fixed init states
(or, where all of its demos start from sampled placements, its first demo, restarted from the
recorded settled state ``init_state`` without settling again):

1. **open loop**: the policy's chunks on the demo's own frames (one chunk per ``execute_steps``),
   mean absolute error against the demo's actions, per action dimension (action units);
2. **closed loop**: from the same init state, settled as the evaluation does, the policy acts on
   its own observations; the distance of the hand to the demo's hand at the same step (cm), the
   largest yaw command (|rot z|, action units) over the first 40 steps against the demo's, and
   whether it succeeds within the demo's length plus 40 steps.

Two optional views: ``--trace N`` prints the first N closed-loop steps (hand offset, the demo's and
the policy's translation commands), which shows whether a drift is a bias or a spin;
``--language-swap`` repeats the open-loop error with every other instruction the policy knows,
which shows whether it reads the sentence at all (a policy that ignores it scores the same).

A small open-loop error with a closed-loop distance that grows step by step is covariate shift:
the policy meets states the demos never show and has no label for coming back (DAgger, DART).
Uses exported artifacts only (vega_ros.policy_runtime), like the evaluation.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

from distill.policy.hdf5_io import Episode, load_demos
from vega_eval.observations import observation_to_inputs
from vega_eval.protocol import SETTLE_ACTION, EvalProtocol
from vega_eval.rollout import seeded_reset
from vega_ros.policy_io import PolicyInputs
from vega_ros.policy_runtime import OnnxPolicy


def open_loop_error(policy: OnnxPolicy, ep: Episode) -> np.ndarray:
    """``[7]`` mean absolute error of the policy's chunks on the demo's frames, per action dimension
    (``policy.reset(instruction)`` first)."""
    k = policy.card.execute_steps
    state = ep.robot_state()
    errors = []
    for t in range(0, len(ep), k):
        chunk = policy.predict_chunk(PolicyInputs(agentview=ep.agentview[t], wrist=ep.wrist[t], proprio=state[t]))
        n = min(k, len(ep) - t)
        errors.append(np.abs(chunk[:n] - ep.actions[t:t + n]))
    return np.concatenate(errors).mean(0)


def language_swap_error(policy: OnnxPolicy, ep: Episode) -> tuple[float, np.ndarray]:
    """Open-loop translation error (mean over x, y, z; action units) with the demo's own instruction,
    and ``[n]`` with each of the policy's other ``n`` instructions."""
    own, others = np.nan, []
    for instruction in sorted(policy.embeddings):
        policy.reset(instruction)
        err = float(open_loop_error(policy, ep)[:3].mean())
        if instruction == ep.language:
            own = err
        else:
            others.append(err)
    return own, np.asarray(others)


def closed_loop_distance(policy: OnnxPolicy, env, init_state: np.ndarray, ep: Episode, instruction: str,
                         settle_steps: int, step_limit: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """``[T]`` distance (m) of the policy's hand to the demo's hand at the same step, the ``[T, 7]``
    actions the policy took, and success."""
    seeded_reset(env, 0)
    obs = env.set_init_state(init_state)
    for _ in range(settle_steps):
        obs, *_ = env.step(list(SETTLE_ACTION))
    policy.reset(instruction)
    demo_pos = ep.proprio["ee_pos"]
    distance, actions, done = [], [], False
    for t in range(step_limit):
        distance.append(np.linalg.norm(np.asarray(obs["robot0_eef_pos"]) - demo_pos[min(t, len(ep) - 1)]))
        actions.append(policy.act(observation_to_inputs(obs)))
        obs, _, done, _ = env.step(actions[-1].tolist())
        if done:
            break
    return np.asarray(distance), np.asarray(actions), bool(done)


def demo_start(path: str, fixed_init_states: np.ndarray, settle_steps: int) -> tuple[Episode, np.ndarray, int, str] | None:
    """The demo to check and where to start it: ``(episode, flattened MuJoCo state, settle steps, label)``.

    The first demo that starts from one of the suite's fixed init states (``fixed_init_states``
    ``[n, D]``) restarts from that state and settles like the evaluation; otherwise the file's first
    demo restarts from its recorded, already settled ``init_state`` with no settling. None if neither.
    """
    first = None
    for ep in load_demos(path):
        idx = int(ep.attrs.get("init_state_index", -1))
        if idx >= 0:
            return ep, np.asarray(fixed_init_states[idx]), settle_steps, f"{ep.name} ({idx})"
        if first is None:
            first = ep
    if first is not None and "init_state" in first.attrs:
        return first, np.asarray(first.attrs["init_state"]), 0, f"{first.name} (sampled)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True)
    p.add_argument("--models-root", default=None)
    p.add_argument("--demos", required=True, help="folder of the suite's demo files")
    p.add_argument("--suite", default="libero_spatial")
    p.add_argument("--tasks", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--trace", type=int, default=0, metavar="N", help="also print the first N closed-loop steps of each task")
    p.add_argument("--language-swap", action="store_true", help="also the open-loop error under every other instruction")
    args = p.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vega_eval.rollout import SuiteEnvs, scene_instruction

    protocol = EvalProtocol(suite=args.suite)
    policy = OnnxPolicy(args.policy, models_root=args.models_root)
    envs = SuiteEnvs(args.suite, policy.card.image_size)
    names = envs.task_names()
    print("| task | demo (init state) | open-loop MAE xyz / rot / gripper | hand off the demo's, cm, at step 10 / 20 / 40 / 80 "
          "| max yaw command, first 40 steps: policy / demo | success |")
    print("|---|---|---|---|---|---|")
    traces, swaps = [], []
    try:
        for task in args.tasks:
            path = os.path.join(args.demos, names[task].replace(" ", "_") + "_demo.hdf5")
            if not glob.glob(path):
                print(f"| {task} | no demo file {path} | | | | |")
                continue
            found = demo_start(path, envs.init_states(task), protocol.settle_steps)
            if found is None:
                print(f"| {task} | no demo with a known start | | | | |")
                continue
            ep, start, settle, label = found
            env = envs.env(task)
            instruction = scene_instruction(env)
            policy.reset(instruction)
            mae = open_loop_error(policy, ep)
            dist, actions, ok = closed_loop_distance(policy, env, start, ep, instruction, settle, len(ep) + 40)
            at = " / ".join(f"{100 * dist[s]:.1f}" if s < len(dist) else "-" for s in (10, 20, 40, 80))
            yaw = f"{np.abs(actions[:40, 5]).max():.2f} / {np.abs(ep.actions[:40, 5]).max():.2f}"
            print(f"| {task} | {label} | {mae[:3].mean():.3f} / {mae[3:6].mean():.3f} / {mae[6]:.3f} | {at} | {yaw} | {ok} |",
                  flush=True)
            traces += [f"| {task} | {t} | {1000 * dist[t]:.1f} | {_xyz(ep.actions[min(t, len(ep) - 1)])} | {_xyz(actions[t])} |"
                       for t in range(min(args.trace, len(actions)))]
            if args.language_swap:
                own, others = language_swap_error(policy, ep)
                swaps.append(f"| {task} | {own:.3f} | {others.mean():.3f} / {others.min():.3f} ({len(others)}) |")
    finally:
        envs.close()
    if traces:
        print("\n| task | step | hand off the demo's, mm | demo's x y z command | policy's x y z command |")
        print("|---|---|---|---|---|")
        print("\n".join(traces))
    if swaps:
        print("\n| task | open-loop xyz error, own instruction | other instructions: mean / min (n) |")
        print("|---|---|---|")
        print("\n".join(swaps))
    return 0


def _xyz(action: np.ndarray) -> str:
    return " ".join(f"{v:+.2f}" for v in action[:3])


if __name__ == "__main__":
    sys.exit(main())
