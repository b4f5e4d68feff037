"""Proprioception: the raw robot state a policy receives and the encodings policies are trained on.

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

import numpy as np

from vega_ros import geometry

ROBOT_STATE_LAYOUT = ("ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_quat_x", "ee_quat_y", "ee_quat_z", "ee_quat_w", "gripper_q0", "gripper_q1")
ROBOT_STATE_DIM = len(ROBOT_STATE_LAYOUT)
GRIPPER_DIM = 2
PROPRIO_LAYOUT = ("ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_rotvec_x", "ee_rotvec_y", "ee_rotvec_z", "gripper_q0", "gripper_q1")
PROPRIO_LAYOUT_ROT6D = ("ee_pos_x", "ee_pos_y", "ee_pos_z", *(f"ee_rot6d_{i}" for i in range(6)), "gripper_q0", "gripper_q1")
PROPRIO_LAYOUTS: dict[str, tuple[str, ...]] = {"rotvec": PROPRIO_LAYOUT, "rot6d": PROPRIO_LAYOUT_ROT6D}


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
