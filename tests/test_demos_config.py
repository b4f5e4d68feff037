"""The demonstration config: the shipped YAML loads, and bad values are refused before any sim starts."""

import json

import pytest

from distill.config import ConfigError
from distill.policy.demos import MAX_STEPS, DemoConfig, load_config, summary_markdown


def test_shipped_demo_config_loads_and_flags_and_sets_override_it():
    cfg = load_config("config/policy/demos.yaml", episodes_per_task=3, post_success_steps=20)
    assert cfg.episodes_per_task == 3 and cfg.post_success_steps == 20
    assert cfg.step_limit == MAX_STEPS["libero_spatial"]
    brisk = load_config("config/policy/demos.yaml", ["pace=brisk", "tasks=[0, 4]", "episodes_per_task=5"], episodes_per_task=3)
    assert brisk.pace == "brisk" and brisk.tasks == (0, 4) and brisk.episodes_per_task == 5  # --set wins over flags
    assert load_config(None, tasks=[1]).tasks == (1,)  # no file: the defaults, then the flags


BAD_VALUES = [{"post_success_steps": -1}, {"settle_steps": -1}, {"episodes_per_task": 0}, {"suite": "libero_99"},
              {"init_states": "random"}, {"action_noise": -0.1}, {"action_noise_corr": 1.0},
              {"grasp_order": "left-first"}, {"grasp_clear_cost": -0.01},
              {"grasp_side": "per-robot"}, {"pace": "fast"}]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bad_demo_config_values_are_refused(bad):
    with pytest.raises(ValueError):
        DemoConfig(**bad)


def test_unknown_demo_config_keys_and_bad_values_are_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "demos.yaml"
    path.write_text("suite: libero_spatial\npost_succes_steps: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: post_succes_steps: unknown field of DemoConfig; did you mean 'post_success_steps'?"
    path.write_text("action_noise: loud\n")
    with pytest.raises(ConfigError, match=r"demos.yaml: action_noise: expected float, got str 'loud'$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"demos.yaml: init_states must be one of"):  # DemoConfig's own check
        load_config(path, ["action_noise=0.1", "init_states=random"])


def test_sampled_demo_summary_names_seeds_not_init_states():
    summary = {"suite": "libero_spatial", "succeeded": 1, "attempted": 2, "success_rate": 0.5, "workers": 1, "wall_s": 3.0,
               "config": {"init_states": "sampled", "init_state_offset": 0, "episodes_per_task": 2, "seed": 5, "max_steps": None},
               "tasks": []}
    assert "sampled placements" in summary_markdown(summary) and "init states" not in summary_markdown(summary)


def test_dagger_config_checks_beta_and_takes_the_suite_step_limit():
    from distill.policy.dagger import DaggerConfig

    assert DaggerConfig(policy="models/x").step_limit == 220
    assert DaggerConfig(policy="models/x", suite="libero_object", max_steps=30).step_limit == 30
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="beta"):
            DaggerConfig(policy="models/x", beta=bad)
    with pytest.raises(ValueError, match="episodes_per_task"):
        DaggerConfig(policy="models/x", episodes_per_task=0)
    with pytest.raises(ValueError, match="step limit"):
        DaggerConfig(policy="models/x", suite="libero_unknown")
    with pytest.raises(ValueError, match="grasp_order"):
        DaggerConfig(policy="models/x", grasp_order="left-first")
    with pytest.raises(ValueError, match="grasp_side"):
        DaggerConfig(policy="models/x", grasp_side="left")
    with pytest.raises(ValueError, match="pace"):
        DaggerConfig(policy="models/x", pace="fast")


def test_a_recording_resumes_only_tasks_finished_with_the_same_settings(tmp_path):
    from distill.policy.demos import save_task_result, saved_task_result, task_result_path

    cfg = DemoConfig(episodes_per_task=2, tasks=(0,))
    demo_file = tmp_path / "libero_spatial" / "t_demo.hdf5"
    result = {"task_index": 0, "task": "t", "attempted": 2, "succeeded": 2, "file": str(demo_file)}
    save_task_result(tmp_path, cfg, result)
    assert saved_task_result(tmp_path, cfg, "t") is None  # its demo file is gone
    demo_file.write_bytes(b"")
    assert saved_task_result(tmp_path, cfg, "t") == result
    assert saved_task_result(tmp_path, DemoConfig(episodes_per_task=2, tasks=(0, 1)), "t") == result  # another selection
    assert saved_task_result(tmp_path, DemoConfig(episodes_per_task=2, seed=1), "t") is None  # other settings
    assert saved_task_result(tmp_path, cfg, "other") is None
    # A result saved before a setting existed counts as recorded with its default (session 13: grasp_clear_cost).
    path = task_result_path(tmp_path, cfg.suite, "t")
    saved = json.loads(path.read_text())
    del saved["config"]["grasp_clear_cost"]
    path.write_text(json.dumps(saved))
    assert saved_task_result(tmp_path, cfg, "t") == result
    assert saved_task_result(tmp_path, DemoConfig(episodes_per_task=2, grasp_clear_cost=0.02), "t") is None
    path.write_text("{not json")
    assert saved_task_result(tmp_path, cfg, "t") is None


def test_demo_summary_shows_the_grasps_of_each_task():
    summary = {"suite": "libero_spatial", "succeeded": 3, "attempted": 3, "success_rate": 1.0, "workers": 1, "wall_s": 3.0,
               "config": {"init_state_offset": 0, "episodes_per_task": 3, "seed": 0, "max_steps": None},
               "tasks": [{"task_index": 7, "task": "t", "attempted": 3, "succeeded": 3, "grasps": {"+y": 2, "-x": 1}}]}
    assert "| 7: t | 3/3 |  | +y 2, -x 1 |" in summary_markdown(summary)
