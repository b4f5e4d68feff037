"""LIBERO observations -> policy inputs, shared by the demonstrations, training and evaluation.

LIBERO (robosuite) renders images bottom-row first; every image leaves here top-row first.

Proprioception travels as the raw robot state ``ROBOT_STATE_LAYOUT``: ``[ee_pos (3, m, robot
base/world frame), ee_quat (4, x y z w), gripper_qpos (2, m)]``. Each policy encodes it into its
own layout (its card's ``proprio_layout``) with :func:`encode_proprio`:

- ``rot6d`` (``PROPRIO_LAYOUT_ROT6D``, 11 values): position, the first two columns of the rotation
  matrix (Zhou et al., CVPR 2019), gripper. Continuous in the orientation.
- ``rotvec`` (``PROPRIO_LAYOUT``, 8 values): position, axis-angle (angle in [0, pi]), gripper. The
  policies of sessions 3-6 used it. LIBERO's gripper points down, a rotation of about pi, where the
  axis-angle vector jumps between (+pi, ., .) and (-pi, ., .): 6.6 jumps per demo on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vega_ros import geometry

ROBOT_STATE_LAYOUT = ("ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_quat_x", "ee_quat_y", "ee_quat_z", "ee_quat_w", "gripper_q0", "gripper_q1")
ROBOT_STATE_DIM = len(ROBOT_STATE_LAYOUT)
GRIPPER_DIM = 2
PROPRIO_LAYOUT = ("ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_rotvec_x", "ee_rotvec_y", "ee_rotvec_z", "gripper_q0", "gripper_q1")
PROPRIO_LAYOUT_ROT6D = ("ee_pos_x", "ee_pos_y", "ee_pos_z", *(f"ee_rot6d_{i}" for i in range(6)), "gripper_q0", "gripper_q1")
PROPRIO_LAYOUTS: dict[str, tuple[str, ...]] = {"rotvec": PROPRIO_LAYOUT, "rot6d": PROPRIO_LAYOUT_ROT6D}
AGENTVIEW_KEY = "agentview_image"
WRIST_KEY = "robot0_eye_in_hand_image"


@dataclass
class PolicyInputs:
    """What a policy sees at one step."""

    agentview: np.ndarray | None  # [H, W, 3] uint8 RGB, top row first; None on a step the cameras were not rendered
    wrist: np.ndarray | None  # [H, W, 3] uint8 RGB, top row first; None likewise
    proprio: np.ndarray  # [ROBOT_STATE_DIM] float32, layout ROBOT_STATE_LAYOUT (raw; each policy encodes it)


def flip_rows(image: np.ndarray) -> np.ndarray:
    """Bottom-row-first (OpenGL) to top-row-first (image) order; ``[H, W, C]``."""
    return np.ascontiguousarray(image[::-1])


def proprio_from_obs(obs: dict) -> np.ndarray:
    """``[ROBOT_STATE_DIM]`` float32 from robosuite's ``robot0_eef_pos``, ``robot0_eef_quat`` (x, y, z, w), ``robot0_gripper_qpos``."""
    return np.concatenate([
        np.asarray(obs["robot0_eef_pos"], np.float64),
        np.asarray(obs["robot0_eef_quat"], np.float64),
        np.asarray(obs["robot0_gripper_qpos"], np.float64),
    ]).astype(np.float32)


def encode_proprio(state: np.ndarray, layout: Sequence[str]) -> np.ndarray:
    """Raw robot states ``[..., ROBOT_STATE_DIM]`` (``ROBOT_STATE_LAYOUT``) -> ``[..., len(layout)]``
    float32 in ``layout`` (one of ``PROPRIO_LAYOUTS``' values, e.g. a policy card's ``proprio_layout``).
    """
    state = np.asarray(state, np.float64)
    if state.shape[-1] != ROBOT_STATE_DIM:
        raise ValueError(f"robot state must have {ROBOT_STATE_DIM} values ({ROBOT_STATE_LAYOUT}), got shape {state.shape}")
    layout = tuple(layout)
    pos, quat, grip = state[..., :3], state[..., 3:7], state[..., 7:]
    if layout == PROPRIO_LAYOUT:
        ori = geometry.quat_to_axis_angle(quat)
    elif layout == PROPRIO_LAYOUT_ROT6D:
        r = geometry.quat_to_matrix(quat)
        ori = np.concatenate([r[..., :, 0], r[..., :, 1]], -1)
    else:
        raise ValueError(f"unknown proprio layout {list(layout)}; known: {sorted(PROPRIO_LAYOUTS)}")
    return np.concatenate([pos, ori, grip], -1).astype(np.float32)


def observation_to_inputs(obs: dict, images: bool = True) -> PolicyInputs:
    """A LIBERO observation dict to :class:`PolicyInputs`; a missing key raises KeyError naming it.

    ``images=False``: the observation of a step whose cameras were not rendered; the images are None."""
    keys = (AGENTVIEW_KEY, WRIST_KEY) if images else ()
    for key in (*keys, "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"):
        if key not in obs:
            raise KeyError(f"LIBERO observation lacks '{key}' (has {sorted(obs)[:8]}...)")
    if not images:
        return PolicyInputs(agentview=None, wrist=None, proprio=proprio_from_obs(obs))
    return PolicyInputs(agentview=flip_rows(obs[AGENTVIEW_KEY]), wrist=flip_rows(obs[WRIST_KEY]), proprio=proprio_from_obs(obs))
