"""The LIBERO demonstration reader/writer (distill/policy/hdf5_io.py): round trips and refusals."""

import json

import h5py
import numpy as np
import pytest

from distill.policy.hdf5_io import DemoFileError, Episode, FileMeta, load_demos, read_file_meta, write_demo_file


def _episode(T: int, seed: int, H: int = 8, W: int = 6) -> Episode:
    rng = np.random.default_rng(seed)
    # Row index written into the red channel, so row order is checkable after a round trip.
    rows = np.broadcast_to(np.arange(H, dtype=np.uint8)[None, :, None], (T, H, W)).copy()
    agent = rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    agent[..., 0] = rows
    return Episode(
        agentview=agent,
        wrist=rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8),
        proprio={
            "ee_pos": rng.normal(size=(T, 3)),
            "ee_ori": rng.normal(size=(T, 3)),
            "gripper_states": rng.normal(size=(T, 2)),
            "joint_states": rng.normal(size=(T, 7)),
            "ee_quat": rng.normal(size=(T, 4)),
        },
        actions=rng.uniform(-1, 1, (T, 7)),
        language="put the bowl on the plate",
        rewards=np.eye(1, T, T - 1, dtype=np.uint8)[0],
        dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
        states=rng.normal(size=(T, 11)),
        attrs={"init_state_index": seed},
    )


META = FileMeta(
    problem_name="libero_tabletop_manipulation",
    language_instruction="put the bowl on the plate",
    bddl_file_name="/nonexistent/task.bddl",
    env_kwargs={"controller": "OSC_POSE"},
)


def test_round_trip_keeps_every_array_and_the_language(tmp_path):
    eps = [_episode(5, 0), _episode(3, 1)]
    path = tmp_path / "task_demo.hdf5"
    write_demo_file(path, eps, META)
    back = list(load_demos(path, with_states=True))
    assert [e.name for e in back] == ["demo_0", "demo_1"]
    for src, got in zip(eps, back):
        assert len(got) == len(src)
        np.testing.assert_array_equal(got.agentview, src.agentview)
        np.testing.assert_array_equal(got.wrist, src.wrist)
        np.testing.assert_allclose(got.actions, src.actions.astype(np.float32))
        for k in ("ee_pos", "ee_ori", "gripper_states", "joint_states"):
            np.testing.assert_allclose(got.proprio[k], src.proprio[k].astype(np.float32))
        assert got.proprio_vector.shape == (len(src), 15)
        np.testing.assert_array_equal(got.states, src.states)
        np.testing.assert_array_equal(got.dones, src.dones)
        assert got.language == "put the bowl on the plate"
        assert int(got.attrs["init_state_index"]) == int(src.attrs["init_state_index"])
    meta = read_file_meta(path)
    assert meta["num_demos"] == 2 and meta["image_convention"] == "opencv"


def test_file_has_the_official_libero_layout(tmp_path):
    path = tmp_path / "task_demo.hdf5"
    write_demo_file(path, [_episode(4, 0)], META)
    with h5py.File(path, "r") as f:
        data = f["data"]
        assert json.loads(data.attrs["problem_info"])["language_instruction"] == META.language_instruction
        assert json.loads(data.attrs["env_args"])["env_kwargs"] == META.env_kwargs
        assert int(data.attrs["num_demos"]) == 1 and int(data.attrs["total"]) == 4
        d = data["demo_0"]
        assert int(d.attrs["num_samples"]) == 4
        for key, shape in {
            "actions": (4, 7),
            "states": (4, 11),
            "rewards": (4,),
            "dones": (4,),
            "robot_states": (4, 9),
            "obs/agentview_rgb": (4, 8, 6, 3),
            "obs/eye_in_hand_rgb": (4, 8, 6, 3),
            "obs/ee_pos": (4, 3),
            "obs/ee_ori": (4, 3),
            "obs/ee_states": (4, 6),
            "obs/gripper_states": (4, 2),
            "obs/joint_states": (4, 7),
        }.items():
            assert d[key].shape == shape, key


def _official_file(path, T=4, H=8, W=6):
    """A file as LIBERO's create_dataset.py writes it: images bottom row first, no 'opencv' tag."""
    ep = _episode(T, 3, H, W)
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        g.attrs["problem_info"] = json.dumps({"problem_name": "p", "domain_name": "robosuite", "language_instruction": ["pick", "it", "up"]})
        g.attrs["env_args"] = json.dumps({"type": 1, "env_kwargs": {}})
        g.attrs["macros_image_convention"] = "opengl"
        d = g.create_group("demo_0")
        d.create_dataset("actions", data=ep.actions)
        d.create_dataset("states", data=ep.states)
        d.attrs["num_samples"] = T
        o = d.create_group("obs")
        o.create_dataset("agentview_rgb", data=ep.agentview[:, ::-1])
        o.create_dataset("eye_in_hand_rgb", data=ep.wrist[:, ::-1])
        for k in ("ee_pos", "ee_ori", "gripper_states", "joint_states"):
            o.create_dataset(k, data=ep.proprio[k])
    return ep


def test_official_opengl_file_is_flipped_to_top_row_first(tmp_path):
    path = tmp_path / "official_demo.hdf5"
    src = _official_file(path)
    (got,) = list(load_demos(path))
    np.testing.assert_array_equal(got.agentview, src.agentview)
    assert got.agentview[0, 0, 0, 0] == 0 and got.agentview[0, -1, 0, 0] == 7  # row 0 is the top
    assert got.language == "pick it up"


def test_reader_refuses_a_truncated_file_and_names_it(tmp_path):
    path = tmp_path / "broken_demo.hdf5"
    write_demo_file(path, [_episode(6, 0)], META, compression=None)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DemoFileError, match="broken_demo.hdf5"):
        list(load_demos(path))


def test_reader_refuses_wrong_shapes_and_names_file_and_key(tmp_path):
    path = tmp_path / "bad_demo.hdf5"
    write_demo_file(path, [_episode(5, 0)], META)
    with h5py.File(path, "a") as f:
        del f["data/demo_0/obs/joint_states"]
        f["data/demo_0/obs"].create_dataset("joint_states", data=np.zeros((5, 6)))
    with pytest.raises(DemoFileError, match=r"bad_demo\.hdf5.*joint_states"):
        list(load_demos(path))


def test_reader_refuses_a_non_libero_file(tmp_path):
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(DemoFileError, match=r"other\.hdf5.*'data'"):
        load_demos(path)
    with pytest.raises(DemoFileError, match="missing.hdf5"):
        load_demos(tmp_path / "missing.hdf5")


def test_writer_leaves_no_file_when_an_episode_is_malformed(tmp_path):
    path = tmp_path / "task_demo.hdf5"
    bad = _episode(4, 0)
    bad.actions = bad.actions[:, :6]
    with pytest.raises(DemoFileError):
        write_demo_file(path, [_episode(4, 1), bad], META)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_robot_state_takes_ee_quat_or_derives_it_from_ee_ori():
    """Our demos carry ee_quat; official LIBERO files only ee_ori (axis-angle). Both give the same rotation."""
    from vega_ros import geometry

    rng = np.random.default_rng(4)
    quat = rng.normal(size=(5, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    proprio = {"ee_pos": rng.normal(size=(5, 3)), "ee_ori": geometry.quat_to_axis_angle(quat),
               "gripper_states": rng.normal(size=(5, 2)), "joint_states": np.zeros((5, 7))}
    ours = Episode(agentview=None, wrist=None, proprio={**proprio, "ee_quat": quat}, actions=np.zeros((5, 7)), language="")
    official = Episode(agentview=None, wrist=None, proprio=proprio, actions=np.zeros((5, 7)), language="")
    a, b = ours.robot_state(), official.robot_state()
    assert a.shape == b.shape == (5, 9) and a.dtype == np.float32
    np.testing.assert_allclose(a[:, :3], proprio["ee_pos"], atol=1e-6)
    np.testing.assert_allclose(a[:, 7:], proprio["gripper_states"], atol=1e-6)
    np.testing.assert_allclose(geometry.quat_to_matrix(a[:, 3:7]), geometry.quat_to_matrix(b[:, 3:7]), atol=1e-5)


def test_drift_check_starts_from_a_fixed_init_state_or_the_recorded_settled_state(tmp_path):
    """distill.policy.drift.demo_start: a demo from a fixed init state restarts there and settles;
    a file of sampled placements restarts its first demo from the recorded state without settling."""
    from distill.policy.drift import demo_start

    fixed = np.arange(5 * 11, dtype=np.float64).reshape(5, 11)
    sampled_a, sampled_b, from_fixed = _episode(4, 0), _episode(4, 1), _episode(4, 3)
    sampled_a.attrs = sampled_b.attrs = {"init_state_index": -1}
    mixed = tmp_path / "mixed.hdf5"
    write_demo_file(mixed, [sampled_a, from_fixed], META)
    ep, start, settle, label = demo_start(str(mixed), fixed, settle_steps=10)
    assert (ep.name, label, settle) == ("demo_1", "demo_1 (3)", 10)
    np.testing.assert_array_equal(start, fixed[3])

    only_sampled = tmp_path / "sampled.hdf5"
    write_demo_file(only_sampled, [sampled_a, sampled_b], META)
    ep, start, settle, label = demo_start(str(only_sampled), fixed, settle_steps=10)
    assert (ep.name, label, settle) == ("demo_0", "demo_0 (sampled)", 0)
    np.testing.assert_array_equal(start, sampled_a.states[0])

    no_states = tmp_path / "no_states.hdf5"
    sampled_a.states = None
    write_demo_file(no_states, [sampled_a], META)
    assert demo_start(str(no_states), fixed, settle_steps=10) is None
