"""distill.policy.push: when a goal is a push, and where the push expert puts and moves the hand."""

import numpy as np

from distill.policy.push import PushExpert, PushPhase, pushable


class FlatTable:
    """A plate of radius 0.07 m at the origin on a table at z 0.9; the goal region 0.2 m toward +y."""

    def __init__(self):
        self.plate = np.array([0.0, 0.0, 0.903])

    def object_names(self):
        return ["plate_1", "bowl_1"]

    def position(self, name):
        return {"plate_1": self.plate, "bowl_1": np.array([0.1, 0.0, 0.9]),
                "front_region": np.array([0.0, 0.2, 0.9]), "cabinet_top": np.array([0.0, 0.2, 1.1])}[name]

    def extent(self, name):
        return self.plate + [-0.07, -0.07, -0.003], self.plate + [0.07, 0.07, 0.016]

    def holds(self, predicate):
        return False


def test_a_plate_to_a_region_on_its_table_is_a_push_and_nothing_else_is():
    v = FlatTable()
    assert pushable(v, "plate_1", "front_region", v.plate)
    assert not pushable(v, "plate_1", "cabinet_top", v.plate)  # another surface: lift it
    assert not pushable(v, "plate_1", "bowl_1", v.plate)  # onto an object
    assert not pushable(v, "bowl_1", "front_region", v.position("bowl_1"))  # not flat


def test_the_hand_goes_down_inside_the_far_rim_then_moves_along_the_line_to_the_goal():
    v = FlatTable()
    e = PushExpert(obj="plate_1", target="front_region")
    obs = {"plate_1_pos": v.plate, "robot0_eef_pos": np.array([0.0, -0.3, 1.1]), "robot0_eef_quat": np.array([1.0, 0.0, 0.0, 0.0])}
    e.act(obs, v)
    # set-up: on the side away from the goal (-y), inside the rim (radius 0.07 - inset 0.025), just over the floor
    assert np.allclose(e._setup, [0.0, -0.045, 0.9 + 0.015])
    finger_axis = e._R @ np.array([0.0, 1.0, 0.0])
    assert abs(finger_axis[1]) < 1e-9  # the hand's wide side across the push direction (+y)
    e.phase = PushPhase.PUSH
    obs["robot0_eef_pos"] = np.array([0.01, -0.045, 0.915])  # 1 cm off the line
    a = e.act(obs, v)
    assert a[1] > 0 and a[0] < 0  # toward the goal, and back onto the line
    v.plate = np.array([0.0, 0.19, 0.903])  # 1 cm from the goal: done pushing
    e.act({**obs, "plate_1_pos": v.plate}, v)
    assert e.phase == PushPhase.RETREAT


def test_a_hand_that_rode_over_the_far_rim_sets_up_again_but_one_crossing_the_plate_pushes_on():
    v = FlatTable()
    e = PushExpert(obj="plate_1", target="front_region")
    obs = {"plate_1_pos": v.plate, "robot0_eef_pos": np.array([0.0, -0.3, 1.1]), "robot0_eef_quat": np.array([1.0, 0.0, 0.0, 0.0])}
    e.act(obs, v)
    e.phase = PushPhase.PUSH
    e.act({**obs, "robot0_eef_pos": np.array([0.0, 0.06, 0.915])}, v)  # inside the far rim (radius 0.07): pushing
    assert e.phase == PushPhase.PUSH
    e.act({**obs, "robot0_eef_pos": np.array([0.0, 0.10, 0.915])}, v)  # 3 cm past the far rim, the plate left behind
    assert e.phase == PushPhase.BACK
