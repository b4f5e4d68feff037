"""Proprioception encodings (vega_ros.proprio): known answers, the layouts' sizes, and
why rot6d exists: the axis-angle vector jumps where LIBERO's gripper points down, rot6d does not."""

import numpy as np
import pytest

from vega_ros.proprio import PROPRIO_LAYOUT, PROPRIO_LAYOUT_ROT6D, PROPRIO_LAYOUTS, encode_proprio


def _state(quat, pos=(0.1, -0.2, 1.0), grip=(0.03, -0.03)):
    return np.array([*pos, *quat, *grip], np.float32)


def test_encodings_known_answers():
    down = _state([1.0, 0.0, 0.0, 0.0])  # rotation by pi about x: the gripper pointing down
    rv = encode_proprio(down, PROPRIO_LAYOUT)
    r6 = encode_proprio(down, PROPRIO_LAYOUT_ROT6D)
    assert rv.shape == (8,) and r6.shape == (11,) and r6.dtype == np.float32
    np.testing.assert_allclose(rv, [0.1, -0.2, 1.0, np.pi, 0, 0, 0.03, -0.03], atol=1e-6)
    np.testing.assert_allclose(r6, [0.1, -0.2, 1.0, 1, 0, 0, 0, -1, 0, 0.03, -0.03], atol=1e-6)  # columns x, y of R
    batch = np.stack([down, _state([0, 0, 0, 1])])
    assert encode_proprio(batch, PROPRIO_LAYOUT_ROT6D).shape == (2, 11)


def test_rot6d_is_continuous_where_the_rotation_vector_jumps():
    eps = 1e-3
    a = _state([1.0, 0.0, 0.0, eps])  # just below pi about +x
    b = _state([1.0, 0.0, 0.0, -eps])  # just past it
    assert np.abs(encode_proprio(a, PROPRIO_LAYOUT) - encode_proprio(b, PROPRIO_LAYOUT)).max() > 6.0  # +pi -> -pi
    assert np.abs(encode_proprio(a, PROPRIO_LAYOUT_ROT6D) - encode_proprio(b, PROPRIO_LAYOUT_ROT6D)).max() < 1e-2
    # A quaternion's sign does not matter to either encoding.
    np.testing.assert_allclose(encode_proprio(_state([0.1, -0.3, 0.5, -0.8]), PROPRIO_LAYOUT_ROT6D),
                               encode_proprio(_state([-0.1, 0.3, -0.5, 0.8]), PROPRIO_LAYOUT_ROT6D), atol=1e-6)


def test_bad_layouts_and_states_are_refused():
    with pytest.raises(ValueError, match="unknown proprio layout"):
        encode_proprio(_state([0, 0, 0, 1]), ("ee_pos_x",))
    with pytest.raises(ValueError, match="9 values"):
        encode_proprio(np.zeros(8), PROPRIO_LAYOUT)
    assert set(PROPRIO_LAYOUTS) == {"rotvec", "rot6d"}

