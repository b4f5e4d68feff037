"""LIBERO observations -> policy inputs, shared by the demonstrations, training and evaluation.

LIBERO (robosuite) renders images bottom-row first; every image leaves here top-row first.
"""

from __future__ import annotations

import numpy as np

from vega_ros.policy_io import PolicyInputs

AGENTVIEW_KEY = "agentview_image"
WRIST_KEY = "robot0_eye_in_hand_image"


def flip_rows(image: np.ndarray) -> np.ndarray:
    """Bottom-row-first (OpenGL) to top-row-first (image) order; ``[H, W, C]``."""
    return np.ascontiguousarray(image[::-1])


def proprio_from_obs(obs: dict) -> np.ndarray:
    """``[ROBOT_STATE_DIM]`` float32 (``vega_ros.proprio.ROBOT_STATE_LAYOUT``) from robosuite's
    ``robot0_eef_pos``, ``robot0_eef_quat`` (x, y, z, w), ``robot0_gripper_qpos``."""
    return np.concatenate([
        np.asarray(obs["robot0_eef_pos"], np.float64),
        np.asarray(obs["robot0_eef_quat"], np.float64),
        np.asarray(obs["robot0_gripper_qpos"], np.float64),
    ]).astype(np.float32)


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
