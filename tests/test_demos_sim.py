"""Scripted demonstrations in real MuJoCo (LIBERO): the expert solves a seeded init state, the file
it writes loads back, and replayed frames are robosuite's camera images with rows flipped."""

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
