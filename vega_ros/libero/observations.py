"""LIBERO observations -> policy inputs, shared by the demonstrations, training and evaluation.

LIBERO (robosuite) renders images bottom-row first; every image leaves here top-row first.
Proprioception is ``[ee_pos (3, m, robot base/world frame), ee_axis_angle (3, rad), gripper_qpos (2, m)]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vega_ros import geometry

PROPRIO_DIM = 8
PROPRIO_LAYOUT = ("ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_rotvec_x", "ee_rotvec_y", "ee_rotvec_z", "gripper_q0", "gripper_q1")
AGENTVIEW_KEY = "agentview_image"
WRIST_KEY = "robot0_eye_in_hand_image"


@dataclass
class PolicyInputs:
    """What a policy sees at one step."""

    agentview: np.ndarray  # [H, W, 3] uint8 RGB, top row first
    wrist: np.ndarray  # [H, W, 3] uint8 RGB, top row first
    proprio: np.ndarray  # [PROPRIO_DIM] float32, layout PROPRIO_LAYOUT


def flip_rows(image: np.ndarray) -> np.ndarray:
    """Bottom-row-first (OpenGL) to top-row-first (image) order; ``[H, W, C]``."""
    return np.ascontiguousarray(image[::-1])


def proprio_from_obs(obs: dict) -> np.ndarray:
    """``[PROPRIO_DIM]`` float32 from robosuite's ``robot0_eef_pos``, ``robot0_eef_quat`` (x, y, z, w), ``robot0_gripper_qpos``."""
    return np.concatenate([
        np.asarray(obs["robot0_eef_pos"], np.float64),
        geometry.quat_to_axis_angle(np.asarray(obs["robot0_eef_quat"], np.float64)),
        np.asarray(obs["robot0_gripper_qpos"], np.float64),
    ]).astype(np.float32)


def observation_to_inputs(obs: dict) -> PolicyInputs:
    """A LIBERO observation dict to :class:`PolicyInputs`; a missing key raises KeyError naming it."""
    for key in (AGENTVIEW_KEY, WRIST_KEY, "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"):
        if key not in obs:
            raise KeyError(f"LIBERO observation lacks '{key}' (has {sorted(obs)[:8]}...)")
    return PolicyInputs(agentview=flip_rows(obs[AGENTVIEW_KEY]), wrist=flip_rows(obs[WRIST_KEY]), proprio=proprio_from_obs(obs))
