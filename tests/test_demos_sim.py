"""Scripted demonstrations in real MuJoCo (LIBERO): the expert solves a seeded init state, the file
it writes loads back, and replayed frames are robosuite's camera images with rows flipped."""

import dataclasses

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spatial_task():
    from distill.data.scenes import suite_tasks

    return suite_tasks("libero_spatial")[0]


def test_expert_solves_a_seeded_spatial_init_state_and_the_demo_loads(spatial_task, tmp_path):
    from distill.policy.demos import DemoConfig, record_task
    from distill.policy.hdf5_io import load_demos

    cfg = DemoConfig(suite="libero_spatial", episodes_per_task=1, seed=0, init_state_offset=0)
    result = record_task(spatial_task, cfg, tmp_path)
    assert result["attempted"] == 1 and result["succeeded"] == 1, result
    (ep,) = list(load_demos(result["file"], with_states=True))
    T = len(ep)
    assert 20 < T <= cfg.step_limit
    assert ep.agentview.shape == (T, 128, 128, 3) and ep.wrist.shape == (T, 128, 128, 3)
    assert ep.rewards[-1] == 1 and ep.dones[-1] == 1 and ep.dones[:-1].sum() == 0
    assert np.all(np.abs(ep.actions) <= 1.0)
    assert ep.actions[:, 6].max() == 1.0 and ep.actions[:, 6].min() == -1.0  # it closed and opened the gripper
    assert "black bowl" in ep.language and "plate" in ep.language
    # The wrist camera moves with the hand: its frames change over the episode.
    assert np.abs(ep.wrist[0].astype(int) - ep.wrist[-1].astype(int)).mean() > 5
    # The grasp the expert recorded is the one measured from the state at its first close command.
    from distill.policy.demos import make_env
    from distill.policy.experts import expert_for
    from distill.policy.grasp_modes import measured_grasp

    assert result["grasps"] == {ep.attrs["grasp"]: 1} and ep.attrs["grasp"] in ("+x", "-x", "+y", "-y")
    env = make_env(spatial_task, cfg)
    try:
        env.reset()
        assert measured_grasp(env, expert_for(env).obj, ep) == ep.attrs["grasp"]
    finally:
        env.close()


def test_replayed_frames_equal_offscreen_env_images_flipped(spatial_task):
    from libero.libero.envs import OffScreenRenderEnv

    from distill.data.scenes import load_init_states
    from distill.policy.demos import DemoConfig, make_env, render_states

    state = load_init_states(spatial_task)[0]
    ref_env = OffScreenRenderEnv(bddl_file_name=spatial_task.bddl_path, camera_heights=128, camera_widths=128)
    try:
        ref_env.seed(0)
        ref_env.reset()
        obs = ref_env.set_init_state(state)
        flat = ref_env.sim.get_state().flatten()
    finally:
        ref_env.close()
    env = make_env(spatial_task, DemoConfig())
    try:
        env.seed(0)
        env.reset()  # a fresh env renders differently until its first reset (textures are applied there)
        frames = render_states(env, [flat], 128, 128)
    finally:
        env.close()
    np.testing.assert_array_equal(frames["agentview"][0], obs["agentview_image"][::-1])
    np.testing.assert_array_equal(frames["wrist"][0], obs["robot0_eye_in_hand_image"][::-1])


def test_expert_puts_a_libero_object_item_in_the_basket():
    from distill.data.scenes import load_init_states, suite_tasks
    from distill.policy.demos import DemoConfig, make_env, run_expert

    task = suite_tasks("libero_object")[2]  # salad dressing: a bottle, grasped from above
    cfg = DemoConfig(suite="libero_object")
    env = make_env(task, cfg)
    try:
        rollout = run_expert(env, load_init_states(task)[0], cfg, seed=0)
    finally:
        env.close()
    assert rollout.success and rollout.steps <= cfg.step_limit
    assert rollout.rewards[-1] > 0 and len(rollout.actions) == rollout.steps == len(rollout.states)


def test_post_success_steps_record_the_release_and_retreat(spatial_task):
    from distill.data.scenes import load_init_states
    from distill.policy.demos import DemoConfig, make_env, run_expert

    cfg = DemoConfig(suite="libero_spatial", post_success_steps=12, record=False)
    env = make_env(spatial_task, cfg)
    try:
        rollout = run_expert(env, load_init_states(spatial_task)[0], cfg, seed=0)
    finally:
        env.close()
    assert rollout.success and rollout.steps == rollout.success_step + 1 + 12
    assert len(rollout.actions) == len(rollout.states) == len(rollout.rewards) == rollout.steps
    after = np.stack(rollout.actions[rollout.success_step :])
    assert np.all(after[:, 6] == -1.0)  # the gripper stays open once the bowl is down
    assert after[:, 2].max() > 0  # and the hand rises (the expert's retreat)
    assert min(rollout.rewards[rollout.success_step :]) > 0  # the bowl stays on the plate


def test_sampled_placements_are_seeded_new_and_solved(spatial_task):
    """``init_states: sampled`` starts from the seeded reset's placement: the same seed gives the
    same scene, another seed another one, none is one of the 50 fixed (evaluated) init states, and
    the expert solves it."""
    import dataclasses

    from distill.data.scenes import load_init_states
    from distill.policy.demos import DemoConfig, make_env, run_expert

    cfg = DemoConfig(suite="libero_spatial", init_states="sampled", record=False)
    env = make_env(spatial_task, cfg)
    try:
        def placement(seed):
            env.seed(seed)
            env.reset()
            return env.sim.get_state().flatten()

        a, again, other = placement(3), placement(3), placement(4)
        full = run_expert(env, None, cfg, seed=3)
        short = run_expert(env, None, dataclasses.replace(cfg, max_steps=1), seed=3)
    finally:
        env.close()
    np.testing.assert_array_equal(a, again)
    assert np.abs(a - other).max() > 1e-3
    fixed = load_init_states(spatial_task)
    assert min(np.abs(s - a).max() for s in fixed) > 1e-3
    np.testing.assert_array_equal(full.states[0], short.states[0])  # the rollout starts from that placement
    assert full.success, "the expert failed on a sampled placement"




class _StepRecorder:
    """Wraps an env and keeps every action handed to ``step``."""

    def __init__(self, env):
        self._wrapped, self.executed = env, []

    def step(self, action):
        self.executed.append(np.array(action, np.float64))
        return self._wrapped.step(action)

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


def test_dart_noise_moves_the_hand_but_the_demo_records_the_experts_own_actions(spatial_task):
    """With ``action_noise`` the env executes noisy translations in the free-space phases while the
    demo keeps the expert's clean actions; rotation and gripper are never perturbed. The expert
    still solves the episode, from states its clean run never visits."""
    from distill.data.scenes import load_init_states
    from distill.policy.demos import DemoConfig, make_env, run_expert

    init = load_init_states(spatial_task)[0]
    cfg = DemoConfig(suite="libero_spatial", record=False, action_noise=0.3)
    env = make_env(spatial_task, cfg)
    try:
        clean = run_expert(env, init, dataclasses.replace(cfg, action_noise=0.0), seed=0)
        spy = _StepRecorder(env)
        noisy = run_expert(spy, init, cfg, seed=0)
    finally:
        env.close()
    assert clean.success and noisy.success
    recorded, executed = np.stack(noisy.actions), np.stack(spy.executed[cfg.settle_steps:])
    assert recorded.shape == executed.shape
    np.testing.assert_array_equal(executed[:, 3:], recorded[:, 3:])
    moved = np.abs(executed[:, :3] - recorded[:, :3]).max(1) > 1e-6
    assert 0.2 < moved.mean() < 1.0, moved.mean()  # perturbed in the free-space phases only
    assert np.all(np.abs(executed) <= 1.0)
    n = min(len(clean.states), len(noisy.states))
    assert np.abs(np.stack(noisy.states[:n])[:, 1:] - np.stack(clean.states[:n])[:, 1:]).max() > 1e-2


def test_drift_check_runs_an_exported_policy_against_a_recorded_demo(spatial_task, tmp_path, capsys):
    """distill.policy.drift on a freshly recorded demo and the shipped bc-fused-brisk-ft policy: one table row
    with the open-loop error, the closed-loop distances and the yaw commands."""
    from distill.policy import drift
    from distill.policy.demos import DemoConfig, record_task

    record_task(spatial_task, DemoConfig(suite="libero_spatial", episodes_per_task=1), tmp_path)
    drift.main(["--policy", "models/bc-fused-brisk-ft", "--demos", str(tmp_path / "libero_spatial"), "--tasks", "0",
                "--trace", "3", "--language-swap"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 |")]
    assert len(rows) == 1 + 3 + 1  # the summary, three traced steps, the language swap
    trace = [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:4]]
    assert [t[1] for t in trace] == ["0", "1", "2"] and float(trace[0][2]) < 1.0  # both start at the same hand
    assert all(len(t[3].split()) == 3 and len(t[4].split()) == 3 for t in trace)
    swap = [c.strip() for c in rows[4].strip("|").split("|")]
    assert swap[2].endswith("(9)")  # the other nine libero_spatial instructions
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "demo_0 (0)" and cells[-1] in ("True", "False")
    mae = [float(v) for v in cells[2].split("/")]
    assert len(mae) == 3 and all(0 <= v < 2 for v in mae)
    assert cells[3].count("/") == 3 and cells[4].count("/") == 1


def test_dagger_episode_labels_every_policy_step_with_the_expert_and_loads_as_a_demo(spatial_task, tmp_path):
    """distill.policy.dagger with the shipped bc-fused-brisk-ft policy driving (beta 0): one short episode of
    task 0 becomes a demo file whose actions are the expert's labels, not the policy's commands; the
    labeller's per-task side is surveyed from the episode's start, as the demos' is."""
    from distill.policy.dagger import DaggerConfig, collect_task
    from distill.policy.hdf5_io import load_demos

    cfg = DaggerConfig(policy="models/bc-fused-brisk-ft", tasks=(0,), episodes_per_task=1, beta=0.0, max_steps=24,
                       grasp_side="per-task")
    result = collect_task(0, cfg, tmp_path)
    assert result["grasp_side"] in ("+x", "-x", "+y", "-y")
    assert result["episodes"] == 1 and result["frames"] == 24 and result["policy_successes"] == 0
    (ep,) = list(load_demos(result["file"], with_states=True))
    assert len(ep) == 24 and ep.agentview.shape == (24, 128, 128, 3)
    assert ep.attrs["expert_fraction"] == 0.0 and ep.attrs["init_state_index"] == 0 and ep.attrs["success"] == 0
    assert "black bowl" in ep.language and "plate" in ep.language
    # The first label is the expert's approach from the settled start: toward the bowl, gripper open.
    assert ep.actions[0, 6] == -1.0 and np.abs(ep.actions[0, :3]).max() > 0.3
    # The hand moved (the policy drove) and the recorded states follow it.
    assert np.linalg.norm(ep.proprio["ee_pos"][-1] - ep.proprio["ee_pos"][0]) > 0.01
    assert np.abs(ep.states[-1] - ep.states[0]).max() > 1e-3

def test_a_per_task_side_is_surveyed_once_and_held_in_every_episode():
    """Task 6 (the bowl next to the cookie box): the expert ranking each scene alone split its demos
    between +y and -x (session 14); surveyed per task, every episode grasps the same side and succeeds."""
    from distill.data.scenes import load_init_states, suite_tasks
    from distill.policy.demos import DemoConfig, make_env, run_expert, survey_task_side

    task = suite_tasks("libero_spatial")[6]
    cfg = DemoConfig(suite="libero_spatial", grasp_clear_cost=0.02, grasp_side="per-task", record=False)
    inits = load_init_states(task)
    env = make_env(task, cfg)
    try:
        side = survey_task_side(env, [(inits[i], i) for i in range(3)], cfg)
        rollouts = [run_expert(env, inits[i], cfg, seed=i, side=side) for i in range(2)]
    finally:
        env.close()
    assert side in ("+x", "-x", "+y", "-y")
    assert all(r.success and r.grasp == side for r in rollouts), [(r.success, r.grasp) for r in rollouts]
