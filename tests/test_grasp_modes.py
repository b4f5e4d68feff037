"""distill.policy.grasp_modes: naming the side a demo grasped from, and counting a task's grasp modes."""

import numpy as np

from distill.policy.experts import side_label
from distill.policy.grasp_modes import first_close_step, task_grasps
from distill.policy.hdf5_io import Episode, FileMeta, write_demo_file


def test_side_label_names_the_larger_offset_component():
    assert [side_label(np.array(d)) for d in ([0.047, 0.0], [-0.047, 0.01], [0.01, 0.047], [0.0, -0.047])] == ["+x", "-x", "+y", "-y"]
    assert side_label(np.array([0.012, -0.005])) == "centre"  # within 2 cm of the object's origin
    assert side_label(np.array([0.012, -0.005]), centre_radius=0.01) == "+x"


def test_first_close_step_finds_the_first_closing_command():
    actions = np.zeros((6, 7))
    actions[:, 6] = [-1, -1, -1, 1, 1, -1]
    assert first_close_step(actions) == 3
    actions[:, 6] = -1
    assert first_close_step(actions) is None


def _demo(T, grasp, seed):
    rng = np.random.default_rng(seed)
    return Episode(agentview=np.zeros((T, 4, 4, 3), np.uint8), wrist=np.zeros((T, 4, 4, 3), np.uint8),
                   proprio={"ee_pos": rng.normal(size=(T, 3)), "ee_ori": rng.normal(size=(T, 3)),
                            "gripper_states": rng.normal(size=(T, 2)), "joint_states": rng.normal(size=(T, 7))},
                   actions=rng.uniform(-1, 1, (T, 7)), language="pick up the bowl", states=rng.normal(size=(T, 5)),
                   attrs={"grasp": grasp})


def test_recorded_grasps_are_counted_across_files_without_a_simulator(tmp_path):
    meta = FileMeta(problem_name="libero_tabletop_manipulation", language_instruction="pick up the bowl",
                    bddl_file_name="/nonexistent/task.bddl", env_kwargs={})
    write_demo_file(tmp_path / "a_demo.hdf5", [_demo(5, "+y", 0), _demo(6, "-x", 1)], meta)
    write_demo_file(tmp_path / "b_demo.hdf5", [_demo(4, "+y", 2)], meta)
    counts = task_grasps([str(tmp_path / "a_demo.hdf5"), str(tmp_path / "b_demo.hdf5")], env=None)
    assert counts == {"+y": 2, "-x": 1}
