"""LIBERO observations -> policy inputs (vega_eval.observations): the raw robot state, row order, refusals."""

import numpy as np
import pytest

from vega_eval.observations import AGENTVIEW_KEY, WRIST_KEY, observation_to_inputs, proprio_from_obs
from vega_ros.proprio import ROBOT_STATE_DIM

STATE = {"robot0_eef_pos": [0.1, 0.2, 0.3], "robot0_eef_quat": [1.0, 0.0, 0.0, 0.0], "robot0_gripper_qpos": [0.04, -0.04]}


def test_robot_state_from_a_libero_observation():
    state = proprio_from_obs(STATE)
    assert state.shape == (ROBOT_STATE_DIM,) and state.dtype == np.float32
    np.testing.assert_allclose(state, [0.1, 0.2, 0.3, 1, 0, 0, 0, 0.04, -0.04], atol=1e-7)


def test_images_leave_top_row_first_and_unrendered_steps_carry_none():
    agentview = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)  # bottom row first, as LIBERO renders
    obs = {**STATE, AGENTVIEW_KEY: agentview, WRIST_KEY: agentview + 1}
    inputs = observation_to_inputs(obs)
    np.testing.assert_array_equal(inputs.agentview[0], agentview[-1])
    np.testing.assert_array_equal(inputs.wrist[-1], agentview[0] + 1)
    assert inputs.agentview.flags.c_contiguous
    blind = observation_to_inputs(STATE, images=False)
    assert blind.agentview is None and blind.wrist is None
    np.testing.assert_array_equal(blind.proprio, inputs.proprio)


def test_a_missing_key_is_named():
    with pytest.raises(KeyError, match=WRIST_KEY):
        observation_to_inputs({**STATE, AGENTVIEW_KEY: np.zeros((2, 2, 3), np.uint8)})
    with pytest.raises(KeyError, match="robot0_gripper_qpos"):
        observation_to_inputs({"robot0_eef_pos": [0, 0, 0], "robot0_eef_quat": [0, 0, 0, 1]}, images=False)
