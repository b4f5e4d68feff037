"""The render plan of the default config: counts, scene-disjoint splits, determinism, every task used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from distill.config import ConfigError
from distill.data.config import RenderConfig, load_config
from distill.data.plan import make_plan, tasks_by_split
from distill.data.scenes import all_tasks, scene_id_of, split_of_scene

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "config" / "data" / "libero_sim.yaml"


@pytest.fixture(scope="module")
def cfg() -> RenderConfig:
    return load_config(DEFAULT)


def test_default_config_sizes(cfg):
    plan = make_plan(cfg)
    counts = {s: sum(len(sh.clips) for sh in plan if sh.clips[0].split == s) for s in ("train", "val", "test")}
    assert counts["train"] >= 2000 and counts["val"] >= 200 and counts["test"] >= 200
    assert (cfg.width, cfg.height, cfg.frames) == (224, 224, 24)
    assert all(1 <= len(sh.clips) <= cfg.clips_per_shard for sh in plan)
    assert len({sh.relpath for sh in plan}) == len(plan)
    ids = [c.clip_id for sh in plan for c in sh.clips]
    assert len(set(ids)) == len(ids)


def test_splits_never_share_a_scene(cfg):
    plan = make_plan(cfg)
    scenes = {s: {sh.task.scene_id for sh in plan if sh.clips[0].split == s} for s in ("train", "val", "test")}
    assert all(scenes.values())
    assert not scenes["train"] & scenes["val"]
    assert not scenes["train"] & scenes["test"]
    assert not scenes["val"] & scenes["test"]
    for sh in plan:  # every shard is one task, and the task's scene belongs to the shard's split
        assert {c.split for c in sh.clips} == {split_of_scene(sh.task.scene_id, list(cfg.val_scenes), list(cfg.test_scenes))}


def test_every_task_of_every_suite_is_rendered(cfg):
    plan = make_plan(cfg)
    rendered = {(sh.task.suite, sh.task.task_index) for sh in plan}
    assert rendered == {(t.suite, t.task_index) for t in all_tasks(cfg.suites)}
    assert {t.suite for t in all_tasks(cfg.suites)} == {"libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"}


def test_scene_ids():
    assert scene_id_of("libero_90", "KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet") == "KITCHEN_SCENE10"
    assert scene_id_of("libero_10", "LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_and_the_tomato_sauce_in_the_basket") == "LIVING_ROOM_SCENE2"
    assert scene_id_of("libero_goal", "put_the_bowl_on_the_plate") == "libero_goal"
    # libero_10 reuses libero_90 layouts: they must land in the same split
    by_scene = {}
    for split, tasks in tasks_by_split(RenderConfig()).items():
        for t in tasks:
            assert by_scene.setdefault(t.scene_id, split) == split


def test_plan_is_deterministic_and_seeded(cfg):
    a, b = make_plan(cfg), make_plan(cfg)
    assert a == b
    c = make_plan(dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert [sh.relpath for sh in c] == [sh.relpath for sh in a]
    assert [x.seed for sh in c for x in sh.clips] != [x.seed for sh in a for x in sh.clips]


def test_overlapping_val_and_test_scenes_rejected():
    with pytest.raises(ValueError, match="overlap"):
        RenderConfig(val_scenes=("KITCHEN_SCENE1",), test_scenes=("KITCHEN_SCENE1",))


def test_unknown_config_key_rejected(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 1\nwidht: 3\n")
    with pytest.raises(ValueError, match="widht"):
        load_config(p)


def test_overrides_and_bad_values_name_the_file_and_key(tmp_path):
    small = load_config(DEFAULT, ["frames=2", "radius_m=[0.5, 0.7]", "clips.train=3"])
    assert small.frames == 2 and small.radius_m == (0.5, 0.7) and small.clips == {**load_config(DEFAULT).clips, "train": 3}
    p = tmp_path / "bad.yaml"
    p.write_text("base: " + str(DEFAULT) + "\nfov_y_deg: [40, wide]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: fov_y_deg\[1\]: expected float, got str 'wide'$"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"libero_sim.yaml: unknown suite 'libero_99'$"):  # RenderConfig's own check
        load_config(DEFAULT, ["suites=[libero_99]"])
