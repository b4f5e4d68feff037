"""LIBERO evaluation cost: episodes that render the cameras every step against episodes that render
only the steps the policy reads (what ``vega-ros libero-eval`` does).

    python bench/bench_libero_eval.py --policy models/bc-fused-brisk-ft --tasks 0 5 --episodes 2

Runs the same planned episodes (held-out init states from ``--init-state-offset``, the standard
step limit and seeds) in one process, each episode in both modes back to back, and prints the
median seconds per episode and per step, the speed-up, and whether both modes gave the same
success and step count in every episode (they must: the policy sees the same pixels). The
machine's other load changes the times; read the ratio from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from vega_eval.protocol import EvalProtocol, plan_episodes
from vega_eval.rollout import SuiteEnvs, run_episode
from vega_ros.policy_runtime import OnnxPolicy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="models/bc-fused-brisk-ft")
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--tasks", type=int, nargs="+", default=[0, 5])
    ap.add_argument("--episodes", type=int, default=2, help="per task")
    ap.add_argument("--init-state-offset", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the policy")
    args = ap.parse_args()
    policy = OnnxPolicy(args.policy, threads=args.threads)
    protocol = EvalProtocol(suite=args.suite, episodes_per_task=args.episodes, tasks=tuple(args.tasks),
                            init_state_offset=args.init_state_offset)
    envs = SuiteEnvs(protocol.suite, protocol.image_size)
    plan = plan_episodes(protocol, envs.n_tasks, [len(envs.init_states(t)) for t in range(envs.n_tasks)])
    modes = {"every step": True, "read steps": False}  # run_episode(record=...)
    times: dict[str, list[float]] = {m: [] for m in modes}
    per_step: dict[str, list[float]] = {m: [] for m in modes}
    same = []
    try:
        for ep in plan:
            outcome = {}
            for mode, record in modes.items():
                t0 = time.perf_counter()
                result, _ = run_episode(envs, policy, ep, protocol, record=record)
                dt = time.perf_counter() - t0
                times[mode].append(dt)
                per_step[mode].append(dt / result.steps)
                outcome[mode] = (result.success, result.steps)
                print(f"task {ep.task_id} init {ep.init_state} {mode:>10}: success={result.success} "
                      f"steps={result.steps} {dt:.1f} s", flush=True)
            same.append(len(set(outcome.values())) == 1)
    finally:
        envs.close()
    print(f"\n{args.policy} ({policy.execution}), {len(plan)} episodes, {protocol.image_size}² cameras")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other load skews wall times)")
    print(f"{'mode':>10} {'s/episode p50':>14} {'ms/step p50':>12}")
    for mode in modes:
        print(f"{mode:>10} {statistics.median(times[mode]):>14.2f} {1000 * statistics.median(per_step[mode]):>12.1f}")
    ratio = statistics.median(per_step["every step"]) / statistics.median(per_step["read steps"])
    print(f"speed-up per step (median): {ratio:.2f}x; same success and steps in {sum(same)}/{len(same)} episodes")


if __name__ == "__main__":
    main()
