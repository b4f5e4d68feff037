"""vega_eval (LIBERO): the evaluation protocol, its statistics, and a real closed-loop run in MuJoCo."""

import json
import os

import numpy as np
import pytest

from vega_eval.protocol import EpisodeResult, EvalProtocol, SuiteReport, plan_episodes, wilson_interval, wrapped_init_states
from vega_ros.cli import main, worker_threads
from vega_ros.policy_io import NoOpPolicy, check_action


def test_standard_step_limits_and_episode_plan():
    assert [EvalProtocol(suite=s).step_limit for s in ("libero_spatial", "libero_object", "libero_goal", "libero_10")] == [220, 280, 300, 520]
    assert EvalProtocol().episodes_per_task == 50 and EvalProtocol().settle_steps == 10
    plan = plan_episodes(EvalProtocol(), 10, [50] * 10)
    assert len(plan) == 500
    assert [e.init_state for e in plan if e.task_id == 3] == list(range(50))
    assert len({e.seed for e in plan}) == 500  # every episode seeded differently, reproducibly
    assert plan == plan_episodes(EvalProtocol(), 10, [50] * 10)
    short = plan_episodes(EvalProtocol(episodes_per_task=7, tasks=(2,)), 10, [5] * 10)
    assert [e.init_state for e in short] == [0, 1, 2, 3, 4, 0, 1]
    held_out = plan_episodes(EvalProtocol(episodes_per_task=4, tasks=(2,), init_state_offset=48), 10, [50] * 10)
    assert [e.init_state for e in held_out] == [48, 49, 0, 1]
    assert wrapped_init_states(EvalProtocol(init_state_offset=48), held_out) == [0, 1]  # the evaluator warns
    assert wrapped_init_states(EvalProtocol(init_state_offset=20), plan_episodes(
        EvalProtocol(episodes_per_task=30, init_state_offset=20), 10, [50] * 10)) == []  # 20..49: all held out
    with pytest.raises(ValueError, match="not in"):
        plan_episodes(EvalProtocol(tasks=(12,)), 10, [50] * 10)
    with pytest.raises(ValueError, match="no standard step limit"):
        _ = EvalProtocol(suite="libero_mine").step_limit


def test_evaluation_workers_share_the_cores_without_oversubscribing():
    assert [worker_threads(w, cores=16) for w in (1, 2, 4, 16, 32)] == [16, 8, 4, 1, 1]
    assert worker_threads(2, cores=2) == 1 and worker_threads(3, cores=2) == 1
    assert main(["libero-eval", "--policy", "noop", "--threads", "0"]) == 2  # refused before any episode runs


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == pytest.approx(1.0)
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)


def test_report_aggregates_per_task_and_mean():
    report = SuiteReport(EvalProtocol(episodes_per_task=2), ["a", "b"])
    for t, successes in ((0, [True, True]), (1, [False, True])):
        for k, s in enumerate(successes):
            report.episodes.append(EpisodeResult(t, k, k, s, 10, 1.0))
    rows = report.per_task()
    assert [r["success_rate"] for r in rows] == [1.0, 0.5]
    assert report.mean_success()["success_rate"] == 0.75
    assert "| **all** | **3/4 (75.0 %)**" in report.to_markdown("t")
    assert "seed 7, fixtures seeded" in report.to_markdown("t")


def test_check_action_rejects_bad_actions():
    np.testing.assert_array_equal(check_action(np.array([2, 0, 0, 0, 0, 0, -3.0])), [1, 0, 0, 0, 0, 0, -1])
    with pytest.raises(ValueError, match="shape"):
        check_action(np.zeros(6))
    with pytest.raises(ValueError, match="non-finite"):
        check_action(np.array([np.nan] * 7))


def test_noop_policy_closed_loop_follows_the_protocol(tmp_path):
    from vega_eval.evaluate import evaluate

    protocol = EvalProtocol(suite="libero_spatial", episodes_per_task=2, max_steps=6, settle_steps=2, tasks=(0,))
    report = evaluate(protocol, NoOpPolicy, str(tmp_path), workers=1, videos=1)
    assert [(e.task_id, e.episode, e.init_state) for e in report.episodes] == [(0, 0, 0), (0, 1, 1)]
    assert all(e.steps == 6 and not e.success for e in report.episodes)  # holding still never solves a task
    results = json.load(open(tmp_path / "results.json"))
    assert results["step_limit"] == 6 and results["mean"]["episodes"] == 2 and results["mean"]["successes"] == 0
    assert results["per_task"][0]["task"].startswith("pick up the black bowl")
    assert os.path.getsize(tmp_path / "videos" / "task00_ep000.gif") > 0
    assert os.path.getsize(tmp_path / "videos" / "task00_ep000.png") > 0  # its contact sheet
    assert not os.path.exists(tmp_path / "videos" / "task00_ep001.gif")


class _CountingNoOp(NoOpPolicy):
    """Counts, across processes of one test, how many episodes asked it for actions (via a file)."""

    log = ""

    def reset(self, instruction: str) -> None:
        with open(self.log, "a") as f:
            f.write("x")
        with open(self.log + ".instruction", "w") as f:
            f.write(instruction)
        return super().reset(instruction)


def test_a_stopped_evaluation_resumes_and_can_grow(tmp_path):
    from vega_eval.evaluate import JOURNAL, evaluate

    _CountingNoOp.log = str(tmp_path / "resets")
    small = EvalProtocol(suite="libero_spatial", episodes_per_task=1, max_steps=3, settle_steps=1, tasks=(0,))
    evaluate(small, _CountingNoOp, str(tmp_path / "run"), workers=1, videos=0, policy_id="p1")
    grown = EvalProtocol(suite="libero_spatial", episodes_per_task=2, max_steps=3, settle_steps=1, tasks=(0,))
    report = evaluate(grown, _CountingNoOp, str(tmp_path / "run"), workers=1, videos=0, policy_id="p1")
    assert [(e.task_id, e.episode) for e in report.episodes] == [(0, 0), (0, 1)]
    assert open(tmp_path / "resets").read() == "xx"  # episode 0 ran once: the second run only ran episode 1
    # the policy hears the scene's BDDL sentence (what demos record), not the benchmark's task name
    assert open(tmp_path / "resets.instruction").read().lower() == report.task_names[0].replace(
        "pick up the", "pick the akita").lower()
    lines = (tmp_path / "run" / JOURNAL).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["header"]["policy"] == "p1"
    with pytest.raises(ValueError, match="another policy or protocol"):
        evaluate(grown, _CountingNoOp, str(tmp_path / "run"), workers=1, videos=0, policy_id="p2")


def test_a_scene_depends_on_its_seed_not_on_the_resets_before_it():
    """Fixtures (cabinet, stove) are outside the init states; ``seeded_reset`` places them from the
    seed alone, where LIBERO's own seeded reset moves them with every further reset of one env
    whose BDDL init opens a drawer (task 4)."""
    from vega_eval.rollout import SuiteEnvs, seeded_reset

    envs = SuiteEnvs("libero_spatial", 64)
    try:
        env = envs.env(4)  # the bowl in the cabinet's drawer; a stove beside it
        inner = env.env
        bodies = [inner.sim.model.body_name2id(f.root_body) for f in inner.fixtures_dict.values()]
        assert len(bodies) == 2

        def fixture_poses() -> np.ndarray:
            return np.concatenate([inner.sim.model.body_pos[bodies], inner.sim.model.body_quat[bodies]], axis=1)

        seeded_reset(env, 3)
        first = fixture_poses()
        seeded_reset(env, 5)
        other_seed = fixture_poses()
        seeded_reset(env, 3)
        again = fixture_poses()
        env.seed(3)
        env.reset()  # LIBERO's seeded reset, without emptying its list of property samplers
        plain = fixture_poses()
    finally:
        envs.close()
    np.testing.assert_array_equal(again, first)
    assert np.abs(other_seed - first).max() > 1e-3  # the seed does move them: the check can fail
    assert np.abs(plain - first).max() > 1e-3  # the behaviour seeded_reset works around


class _ReadsEveryThird(NoOpPolicy):
    """Moves the hand on a fixed path and reads the images on every third step, as a chunking policy does."""

    def reset(self, instruction: str) -> None:
        self.t, self.seen = 0, []

    def needs_images(self) -> bool:
        return self.t % 3 == 0

    def act(self, inputs) -> np.ndarray:
        self.seen.append((self.t, inputs.agentview, inputs.wrist, inputs.proprio.copy()))
        self.t += 1
        return np.array([0.6 * np.sin(0.5 * self.t), 0.5, -0.4, 0.0, 0.0, 0.2, -1.0 if self.t < 5 else 1.0], np.float32)


@pytest.mark.parametrize("settle_steps", [10, 0])
def test_skipped_renders_change_no_pixel_the_policy_reads(settle_steps):
    """The evaluator renders only the steps the policy reads; those frames, and the physics, are the
    same as in a run of the environment as LIBERO builds it (``record=True``: no camera gates)."""
    from vega_eval.protocol import Episode
    from vega_eval.rollout import SuiteEnvs, run_episode

    protocol = EvalProtocol(suite="libero_spatial", max_steps=24, settle_steps=settle_steps, tasks=(0,))
    episode = Episode(task_id=0, episode=0, init_state=0, seed=3)
    envs = SuiteEnvs(protocol.suite, 64)
    runs = []
    try:
        for record in (False, True):
            policy = _ReadsEveryThird()
            result, frames = run_episode(envs, policy, episode, protocol, record=record)
            assert result.steps == 24 and len(frames) == (24 if record else 0)
            runs.append(policy.seen)
    finally:
        envs.close()
    skipped, every = runs
    assert [t for t, *_ in skipped] == list(range(24))
    assert [t for t, a, w, _ in skipped if a is not None and w is not None] == list(range(0, 24, 3))  # only these were rendered
    assert all(a is not None for _, a, _, _ in every)
    for (_, a, w, p), (_, a_all, w_all, p_all) in zip(skipped, every):
        np.testing.assert_array_equal(p, p_all)  # the same physics
        if a is not None:
            np.testing.assert_array_equal(a, a_all)  # the same pixels where the policy looks
            np.testing.assert_array_equal(w, w_all)
    assert not np.array_equal(skipped[0][1], skipped[21][1])  # the hand moved in view: the check can fail


def test_perturbed_suites_take_the_step_limit_of_the_suite_they_perturb():
    from vega_eval.protocol import base_suite

    assert EvalProtocol(suite="libero_spatial_swap").step_limit == 220
    assert EvalProtocol(suite="libero_10_lan").step_limit == 520  # not libero_100's
    assert base_suite("libero_goal_with_red_box") == "libero_goal" and base_suite("libero_100") is None
    with pytest.raises(ValueError, match="--max-steps"):
        EvalProtocol(suite="libero_100").step_limit  # noqa: B018
    assert EvalProtocol(suite="libero_100", max_steps=600).step_limit == 600


def test_a_task_whose_bddl_does_not_load_is_named_and_the_rest_of_the_suite_runs(tmp_path, monkeypatch, capsys):
    """LIBERO's own loader reads a truncated BDDL file for task 1: the report names the task and the error,
    counts none of its episodes, and task 0 is evaluated as usual; a run of task 1 alone evaluates nothing
    and says so with exit 2 (a LIBERO-PRO suite whose assets the package lacks)."""
    from libero.libero.benchmark import Benchmark

    from vega_eval.evaluate import evaluate
    from vega_eval.rollout import installed_suites

    real = Benchmark.get_task_bddl_file_path
    broken = tmp_path / "broken.bddl"
    broken.write_text(open(real(installed_suites()["libero_spatial"](), 1)).read()[:400])  # cut inside (:objects ...)
    monkeypatch.setattr(Benchmark, "get_task_bddl_file_path", lambda self, i: str(broken) if i == 1 else real(self, i))
    protocol = EvalProtocol(suite="libero_spatial", episodes_per_task=1, max_steps=3, settle_steps=1, tasks=(0, 1))
    report = evaluate(protocol, NoOpPolicy, str(tmp_path / "run"), workers=1, videos=0)
    assert [e.task_id for e in report.episodes] == [0] and list(report.unloadable) == [1]
    results = json.load(open(tmp_path / "run" / "results.json"))
    assert results["mean"]["episodes"] == 1 and results["unloadable_tasks"][0]["task_id"] == 1
    assert results["unloadable_tasks"][0]["error"]
    assert "Not evaluated: task 1" in open(tmp_path / "run" / "results.md").read()
    from vega_ros.cli import main

    code = main(["libero-eval", "--suite", "libero_spatial", "--tasks", "1", "--policy", "noop", "--episodes", "1",
                 "--max-steps", "2", "--workers", "1", "--out", str(tmp_path / "none")])
    assert code == 2 and "no task of libero_spatial could be evaluated" in capsys.readouterr().err


def test_tasks_without_init_states_are_named_and_a_suite_without_any_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """LIBERO-PRO registers suites whose init-state files it does not ship (``libero_spatial_env``): a task
    without them is reported and skipped; a run none of whose tasks has them stops with one message, exit 2."""
    from libero.libero.benchmark import Benchmark

    from vega_eval.evaluate import evaluate
    from vega_ros.cli import main

    real = Benchmark.get_task_init_states

    def states(self, i):
        if i == 1:
            raise FileNotFoundError(f"Initialization states unavailable: task{i}.pruned_init.npz")
        return real(self, i)

    monkeypatch.setattr(Benchmark, "get_task_init_states", states)
    protocol = EvalProtocol(suite="libero_spatial", episodes_per_task=1, max_steps=2, settle_steps=1, tasks=(0, 1))
    report = evaluate(protocol, NoOpPolicy, str(tmp_path / "run"), workers=1, videos=0)
    assert [e.task_id for e in report.episodes] == [0] and "init states did not load" in report.unloadable[1]
    assert "Not evaluated: task 1" in open(tmp_path / "run" / "results.md").read()
    code = main(["libero-eval", "--suite", "libero_spatial", "--tasks", "1", "--policy", "noop", "--episodes", "1",
                 "--max-steps", "2", "--out", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "no init states for any task" in err and "pruned_init.npz" in err


def test_reports_of_perturbed_suites_say_what_the_policy_heard():
    """LIBERO-PRO's task perturbation keeps the benchmark's task names and changes the goal and the sentence in
    the BDDL file: the report shows that sentence beside the name; a standard suite's table stays as it was."""
    from vega_eval.protocol import EpisodeResult, SuiteReport
    from vega_eval.rollout import SuiteEnvs

    envs = SuiteEnvs("libero_spatial_task", 128)
    heard, names = envs.instructions(), envs.task_names()
    assert "not between" in heard[0] and "not between" not in names[0]
    episodes = [EpisodeResult(task_id=0, episode=0, init_state=20, success=True, steps=10, wall_s=1.0)]
    report = SuiteReport(EvalProtocol(suite="libero_spatial_task"), names, episodes, instructions=heard)
    assert report.per_task()[0]["instruction"] == heard[0]
    assert "instruction heard" in report.to_markdown("t") and heard[0] in report.to_markdown("t")
    standard = SuiteReport(EvalProtocol(suite="libero_spatial"), names, episodes, instructions=heard)
    assert "instruction heard" not in standard.to_markdown("t")
