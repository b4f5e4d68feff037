"""Demonstrations on disk in the layout of the official LIBERO datasets, and a validating reader.

One file per task (as LIBERO's ``scripts/create_dataset.py`` writes them)::

    data/                          attrs: problem_info (JSON: problem_name, domain_name,
    │                                      language_instruction), env_args (JSON), env_name,
    │                                      bddl_file_name, bddl_file_content, macros_image_convention,
    │                                      num_demos, total
    └── demo_<i>/                  attrs: num_samples, init_state, (ours: init_state_index, seed, success_step)
        ├── actions        [T, 7]  float64  OSC_POSE deltas in [-1, 1], last = gripper (-1 open, +1 close)
        ├── states         [T, D]  float64  flattened MuJoCo states (time, qpos, qvel)
        ├── robot_states   [T, 9]  float64  gripper qpos (2), eef pos (3), eef quat (4, x y z w)
        ├── rewards        [T]     uint8    1 where the goal holds
        ├── dones          [T]     uint8    1 on the last step
        └── obs/
            ├── agentview_rgb    [T, H, W, 3] uint8
            ├── eye_in_hand_rgb  [T, H, W, 3] uint8
            ├── ee_pos           [T, 3]  metres, world frame
            ├── ee_ori           [T, 3]  axis-angle (radians) of the eef orientation
            ├── ee_states        [T, 6]  ee_pos ‖ ee_ori
            ├── gripper_states   [T, 2]  finger joint positions (metres)
            └── joint_states     [T, 7]  arm joint angles (radians)

Row order of images: ``macros_image_convention`` says it. The official datasets store what
robosuite renders, ``"opengl"`` (bottom row first); files written here store ``"opencv"`` (top row
first). The reader always returns top-row-first images, flipping ``"opengl"`` files (and files
without the attribute, whose robosuite default is ``"opengl"``).

Step ``t`` pairs the observation and state *before* action ``t`` with that action; reward and done
describe the state after it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import h5py
import numpy as np

from vega_ros import geometry

PROPRIO_KEYS: tuple[str, ...] = ("ee_pos", "ee_ori", "gripper_states", "joint_states")
PROPRIO_DIMS: dict[str, int] = {"ee_pos": 3, "ee_ori": 3, "gripper_states": 2, "joint_states": 7}
IMAGE_KEYS: dict[str, str] = {"agentview": "agentview_rgb", "wrist": "eye_in_hand_rgb"}
ACTION_DIM = 7


class DemoFileError(ValueError):
    """A demonstration file that cannot be read or breaks the layout; the message names the file."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


@dataclass
class Episode:
    """One demonstration. Images are top row first.

    ``proprio`` holds ``PROPRIO_KEYS`` (float32): ee_pos [T, 3] m, ee_ori [T, 3] axis-angle rad,
    gripper_states [T, 2] m, joint_states [T, 7] rad.
    """

    agentview: np.ndarray  # [T, H, W, 3] uint8
    wrist: np.ndarray  # [T, H, W, 3] uint8
    proprio: dict[str, np.ndarray]
    actions: np.ndarray  # [T, 7] float32
    language: str
    rewards: np.ndarray | None = None  # [T]
    dones: np.ndarray | None = None  # [T]
    states: np.ndarray | None = None  # [T, D] float64 flattened MuJoCo states
    name: str = ""
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def proprio_vector(self) -> np.ndarray:
        """``[T, 15]`` float32: ee_pos (3), ee_ori (3), gripper_states (2), joint_states (7)."""
        return np.concatenate([self.proprio[k] for k in PROPRIO_KEYS], axis=1).astype(np.float32)

    def robot_state(self) -> np.ndarray:
        """``[T, 9]`` float32 in vega_ros.proprio.ROBOT_STATE_LAYOUT: ee_pos (3, m), ee_quat
        (4, x y z w), gripper_states (2, m). Files without ``ee_quat`` (the official LIBERO datasets)
        get it from ``ee_ori``, which loses nothing: both encode the same rotation."""
        quat = self.proprio.get("ee_quat")
        if quat is None:
            quat = geometry.axis_angle_to_quat(self.proprio["ee_ori"])
        return np.concatenate([self.proprio["ee_pos"], quat, self.proprio["gripper_states"]], axis=1).astype(np.float32)


@dataclass(frozen=True)
class FileMeta:
    """File-level attributes (the ``data`` group) of a LIBERO demonstration file."""

    problem_name: str
    language_instruction: str
    bddl_file_name: str
    env_kwargs: dict
    domain_name: str = "robosuite"
    extra: dict = field(default_factory=dict)  # written as JSON under ``vega_info``


def _language_of(problem_info: dict) -> str:
    lang = problem_info.get("language_instruction", "")
    if isinstance(lang, (list, tuple)):  # BDDL token list
        lang = " ".join(str(t) for t in lang)
    return str(lang).strip().strip('"')


# ----------------------------------------------------------------------------- writing


def write_demo_file(path: str | os.PathLike, episodes: list[Episode], meta: FileMeta, compression: str | None = "lzf") -> None:
    """Write ``episodes`` to ``path`` in the official layout, atomically (temp file, then rename)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            grp = f.create_group("data")
            grp.attrs["env_name"] = meta.problem_name
            grp.attrs["problem_info"] = json.dumps(
                {
                    "problem_name": meta.problem_name,
                    "domain_name": meta.domain_name,
                    "language_instruction": meta.language_instruction,
                }
            )
            grp.attrs["env_args"] = json.dumps(
                {
                    "type": 1,
                    "env_name": meta.problem_name,
                    "problem_name": meta.problem_name,
                    "bddl_file": meta.bddl_file_name,
                    "env_kwargs": meta.env_kwargs,
                }
            )
            grp.attrs["bddl_file_name"] = meta.bddl_file_name
            if os.path.exists(meta.bddl_file_name):
                with open(meta.bddl_file_name) as bf:
                    grp.attrs["bddl_file_content"] = bf.read()
            grp.attrs["macros_image_convention"] = "opencv"
            grp.attrs["vega_info"] = json.dumps(meta.extra)
            total = 0
            for i, ep in enumerate(episodes):
                _check_episode(ep, path)
                d = grp.create_group(f"demo_{i}")
                T = len(ep)
                o = d.create_group("obs")
                for attr, key in IMAGE_KEYS.items():
                    img = getattr(ep, attr)
                    o.create_dataset(key, data=img, compression=compression, chunks=(1, *img.shape[1:]))
                for k in PROPRIO_KEYS:
                    o.create_dataset(k, data=np.asarray(ep.proprio[k], np.float64))
                o.create_dataset("ee_states", data=np.concatenate([ep.proprio["ee_pos"], ep.proprio["ee_ori"]], 1).astype(np.float64))
                if "ee_quat" in ep.proprio:
                    o.create_dataset("ee_quat", data=np.asarray(ep.proprio["ee_quat"], np.float64))
                d.create_dataset("actions", data=np.asarray(ep.actions, np.float64))
                rewards = ep.rewards if ep.rewards is not None else np.zeros(T, np.uint8)
                dones = ep.dones if ep.dones is not None else np.eye(1, T, T - 1, dtype=np.uint8)[0]
                d.create_dataset("rewards", data=np.asarray(rewards, np.uint8))
                d.create_dataset("dones", data=np.asarray(dones, np.uint8))
                if ep.states is not None:
                    d.create_dataset("states", data=np.asarray(ep.states, np.float64))
                    d.attrs["init_state"] = np.asarray(ep.states[0], np.float64)
                if "ee_quat" in ep.proprio:
                    robot_states = np.concatenate([ep.proprio["gripper_states"], ep.proprio["ee_pos"], ep.proprio["ee_quat"]], 1)
                    d.create_dataset("robot_states", data=robot_states.astype(np.float64))
                d.attrs["num_samples"] = T
                for k, v in ep.attrs.items():
                    d.attrs[k] = v
                total += T
            grp.attrs["num_demos"] = len(episodes)
            grp.attrs["total"] = total
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_episode(ep: Episode, path: str) -> None:
    T = len(ep)
    if ep.actions.ndim != 2 or ep.actions.shape[1] != ACTION_DIM:
        raise DemoFileError(path, f"episode {ep.name or '?'}: actions {ep.actions.shape}, want [T, {ACTION_DIM}]")
    for attr in IMAGE_KEYS:
        img = getattr(ep, attr)
        if img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != T or img.shape[3] != 3:
            raise DemoFileError(path, f"episode {ep.name or '?'}: {attr} {img.shape} {img.dtype}, want [{T}, H, W, 3] uint8")
    for k, dim in PROPRIO_DIMS.items():
        v = ep.proprio.get(k)
        if v is None or np.shape(v) != (T, dim):
            raise DemoFileError(path, f"episode {ep.name or '?'}: proprio {k} {np.shape(v)}, want [{T}, {dim}]")


# ----------------------------------------------------------------------------- reading


def _open(path: str) -> h5py.File:
    if not os.path.isfile(path):
        raise DemoFileError(path, "no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DemoFileError(path, f"not a readable HDF5 file ({e})") from e


def _demo_names(f: h5py.File, path: str) -> list[str]:
    if "data" not in f or not isinstance(f["data"], h5py.Group):
        raise DemoFileError(path, "no 'data' group (not a LIBERO demonstration file)")
    names = [k for k in f["data"] if k.startswith("demo_")]
    try:
        return sorted(names, key=lambda k: int(k[5:]))
    except ValueError as e:
        raise DemoFileError(path, f"demo group with a non-numeric index: {names}") from e


def read_file_meta(path: str | os.PathLike) -> dict:
    """File-level metadata: ``language``, ``problem_info``, ``env_args``, ``num_demos``, ``image_convention``."""
    path = os.fspath(path)
    with _open(path) as f:
        names = _demo_names(f, path)
        return _meta(f, path) | {"num_demos": len(names)}


def _meta(f: h5py.File, path: str) -> dict:
    attrs = f["data"].attrs
    try:
        problem_info = json.loads(attrs["problem_info"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise DemoFileError(path, f"data.attrs['problem_info'] missing or not JSON ({e})") from e
    try:
        env_args = json.loads(attrs["env_args"]) if "env_args" in attrs else {}
    except json.JSONDecodeError as e:
        raise DemoFileError(path, f"data.attrs['env_args'] is not JSON ({e})") from e
    convention = attrs.get("macros_image_convention", "opengl")
    convention = convention.decode() if isinstance(convention, bytes) else str(convention)
    if convention not in ("opengl", "opencv"):
        raise DemoFileError(path, f"unknown macros_image_convention {convention!r}")
    return {
        "language": _language_of(problem_info),
        "problem_info": problem_info,
        "env_args": env_args,
        "image_convention": convention,
        "vega_info": json.loads(attrs["vega_info"]) if "vega_info" in attrs else {},
    }


def _read_episode(g: h5py.Group, name: str, meta: dict, path: str, with_states: bool) -> Episode:
    where = f"data/{name}"

    def need(key: str) -> np.ndarray:
        if key not in g:
            raise DemoFileError(path, f"{where}: missing '{key}'")
        try:
            return g[key][()]
        except OSError as e:  # truncated / corrupt chunk
            raise DemoFileError(path, f"{where}/{key}: unreadable ({e})") from e

    actions = need("actions")
    if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
        raise DemoFileError(path, f"{where}/actions: shape {actions.shape}, want [T, {ACTION_DIM}]")
    if not np.all(np.isfinite(actions)):
        raise DemoFileError(path, f"{where}/actions: non-finite values")
    T = actions.shape[0]
    if T == 0:
        raise DemoFileError(path, f"{where}: empty episode")
    if "num_samples" in g.attrs and int(g.attrs["num_samples"]) != T:
        raise DemoFileError(path, f"{where}: num_samples={int(g.attrs['num_samples'])} but {T} actions")
    images = {}
    for attr, key in IMAGE_KEYS.items():
        img = need(f"obs/{key}")
        if img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != T or img.shape[3] != 3:
            raise DemoFileError(path, f"{where}/obs/{key}: {img.shape} {img.dtype}, want [{T}, H, W, 3] uint8")
        images[attr] = np.ascontiguousarray(img[:, ::-1]) if meta["image_convention"] == "opengl" else img
    proprio = {}
    for k, dim in PROPRIO_DIMS.items():
        v = need(f"obs/{k}")
        if v.shape != (T, dim):
            raise DemoFileError(path, f"{where}/obs/{k}: shape {v.shape}, want [{T}, {dim}]")
        if not np.all(np.isfinite(v)):
            raise DemoFileError(path, f"{where}/obs/{k}: non-finite values")
        proprio[k] = v.astype(np.float32)
    if "obs/ee_quat" in g:
        proprio["ee_quat"] = g["obs/ee_quat"][()].astype(np.float32)
    rewards = g["rewards"][()] if "rewards" in g else None
    dones = g["dones"][()] if "dones" in g else None
    for key, v in (("rewards", rewards), ("dones", dones)):
        if v is not None and v.shape != (T,):
            raise DemoFileError(path, f"{where}/{key}: shape {v.shape}, want [{T}]")
    states = need("states") if with_states else None
    return Episode(
        agentview=images["agentview"],
        wrist=images["wrist"],
        proprio=proprio,
        actions=actions.astype(np.float32),
        language=meta["language"],
        rewards=rewards,
        dones=dones,
        states=states,
        name=name,
        attrs={k: g.attrs[k] for k in g.attrs if k not in ("model_file",)},
    )


def load_demos(path: str | os.PathLike, with_states: bool = False) -> Iterator[Episode]:
    """Episodes of a LIBERO demonstration file (ours or official), in ``demo_<i>`` order.

    Every episode is validated as it is read; a broken file raises ``DemoFileError`` naming it.
    The file is opened and its metadata checked before the first episode is yielded.
    """
    path = os.fspath(path)
    f = _open(path)
    try:
        names = _demo_names(f, path)
        if not names:
            raise DemoFileError(path, "no demo_<i> groups in 'data'")
        meta = _meta(f, path)
    except BaseException:
        f.close()
        raise

    def episodes() -> Iterator[Episode]:
        with f:
            for name in names:
                yield _read_episode(f["data"][name], name, meta, path, with_states)

    return episodes()
