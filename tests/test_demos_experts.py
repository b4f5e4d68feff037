"""Scripted-expert arithmetic (distill/policy/experts.py): OSC_POSE action scaling, rotations, grasp choice."""

import dataclasses

import numpy as np
import pytest

from distill.policy.experts import (
    BOWL_RIM,
    CENTRE,
    MOKA_HANDLE,
    R_DOWN,
    REGRASPS,
    OscScale,
    Pace,
    PickPlaceExpert,
    beyond_reach,
    choose_task_side,
    grasp_candidates,
    grasp_costs,
    grasp_point,
    hand_footprint,
    handle_candidate,
    pace_named,
    path_height,
    pose_action,
    rank_grasps,
    rotvec_from_matrix,
    side_label,
    top_grasp_shift,
    yaw_down,
)
from vega_ros.geometry import axis_angle_to_matrix, matrix_to_quat


def test_rotvec_inverts_axis_angle():
    rng = np.random.default_rng(0)
    for _ in range(20):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(0.01, 3.1)
        np.testing.assert_allclose(rotvec_from_matrix(axis_angle_to_matrix(axis, angle)), axis * angle, atol=1e-9)
    np.testing.assert_array_equal(rotvec_from_matrix(np.eye(3)), np.zeros(3))


def test_pose_action_scales_by_the_controller_output_range():
    scale = OscScale(pos=0.05, rot=0.5)
    q_down = matrix_to_quat(R_DOWN)
    # 2 cm forward, same orientation: 0.02 / 0.05 = 0.4 of full scale; gripper passes through.
    a = pose_action(scale, np.zeros(3), q_down, np.array([0.02, 0.0, 0.0]), R_DOWN, 1.0)
    np.testing.assert_allclose(a, [0.4, 0, 0, 0, 0, 0, 1.0], atol=1e-12)
    # A 0.25 rad yaw (about world z) is half of the 0.5 rad range.
    a = pose_action(scale, np.zeros(3), q_down, np.zeros(3), yaw_down(0.25), -1.0)
    np.testing.assert_allclose(a[3:6], [0, 0, 0.5], atol=1e-9)
    # Far targets: the translation is capped to max_speed in norm, then clipped per axis.
    a = pose_action(scale, np.zeros(3), q_down, np.array([0.3, 0.4, 0.0]), R_DOWN, 0.0, max_speed=0.5)
    np.testing.assert_allclose(a[:3], [0.3, 0.4, 0.0], atol=1e-12)


def test_pose_action_floors_the_speed_near_the_target_but_not_at_it():
    scale = OscScale(pos=0.05, rot=0.5)
    q_down = matrix_to_quat(R_DOWN)
    # 5 mm down is 0.1 of full scale; a floor of 0.3 keeps the direction and raises the norm.
    a = pose_action(scale, np.zeros(3), q_down, np.array([0.0, 0.0, -0.005]), R_DOWN, 1.0, min_speed=0.3)
    np.testing.assert_allclose(a[:3], [0, 0, -0.3], atol=1e-12)
    # Within 1 mm the target counts as reached: no floor, no dithering about it.
    a = pose_action(scale, np.zeros(3), q_down, np.array([0.0005, 0.0, 0.0]), R_DOWN, 1.0, min_speed=0.3)
    np.testing.assert_allclose(a[:3], [0.01, 0, 0], atol=1e-12)
    # Above the floor nothing changes, and the cap still applies.
    a = pose_action(scale, np.zeros(3), q_down, np.array([0.3, 0.4, 0.0]), R_DOWN, 0.0, max_speed=0.5, min_speed=0.3)
    np.testing.assert_allclose(a[:3], [0.3, 0.4, 0.0], atol=1e-12)


def test_paces_are_named_and_standard_is_the_expert_of_the_recorded_demos():
    assert PickPlaceExpert(obj="bowl", target="plate", grasp=BOWL_RIM).pace == Pace(carry_speed=0.8, lower_speed=0.5, min_speed=0.0)
    assert pace_named("brisk").lower_speed > pace_named("standard").lower_speed
    with pytest.raises(ValueError, match="brisk"):
        pace_named("fast")


def test_grasp_avoids_the_side_with_a_tall_obstacle():
    obj = np.array([0.0, 0.0, 0.9])
    # A 20 cm block occupies y > 0.07: the hand's outer half must not go there.
    blocked_plus_y = lambda xy: np.where(xy[:, 1] > 0.07, 1.1, 0.9)
    ranked = rank_grasps(BOWL_RIM, obj, blocked_plus_y)
    c = ranked[0]
    assert np.allclose(ranked[-1].direction, [0, 1])  # the blocked side is tried last
    assert not np.allclose(c.direction, [0, 1])
    footprint = hand_footprint(obj[:2] + c.direction * BOWL_RIM.radius, c.direction)
    assert np.all(blocked_plus_y(footprint) < 1.0)
    # Fingers close across the rim: the hand's yaw puts its finger axis (world y at yaw 0) along the offset.
    finger_axis = yaw_down(c.yaw) @ np.array([0.0, 1.0, 0.0])
    assert abs(abs(finger_axis[:2] @ c.direction) - 1.0) < 1e-9


def test_a_grasp_whose_hand_is_out_of_reach_at_the_place_goes_last():
    """libero_goal task 8: the plate lies where a hand on the bowl's -y rim stretches the arm to its
    straight-elbow singularity; the -x rim (the robot's side) keeps the wrist 5 cm nearer the shoulder."""
    shoulder = np.array([-0.66, 0.0, 1.245])
    place = np.array([0.062, -0.009, 0.965])
    assert beyond_reach(place + [0.0, -0.047, 0.0], shoulder) and not beyond_reach(place + [-0.047, 0.0, 0.0], shoulder)
    cands = grasp_candidates(BOWL_RIM)
    far = [beyond_reach(place + [*(c.direction * BOWL_RIM.radius), 0.0], shoulder) for c in cands]
    flat = lambda xy: np.full(len(xy), 0.9)
    ranked = rank_grasps(BOWL_RIM, np.array([-0.1, 0.0, 0.9]), flat, far=far)
    assert np.allclose(ranked[0].direction, [-1, 0])
    # the ones beyond reach keep their preference order behind it; without flags nothing changes
    assert [tuple(c.direction) for c in ranked[1:]] == [tuple(c.direction) for c, f in zip(cands, far) if f]
    assert np.allclose(rank_grasps(BOWL_RIM, np.array([-0.1, 0.0, 0.9]), flat)[0].direction, cands[0].direction)


def test_a_clearance_tolerance_keeps_the_preferred_grasp_over_millimetre_bumps():
    """Session 13: a stove's grate puts a few mm under some footprints, and with no tolerance the cheapest
    of four nearly clear grasps changes from one init state to the next (three modes in task 7's demos)."""
    obj = np.array([0.0, 0.0, 0.9])
    floor = obj[2] + BOWL_RIM.height - 0.03
    # 0.5 mm bumps under the +y hand only (their sum over the footprint stays under 2 cm); a 10 cm wall on -x.
    bumps = lambda xy: np.where(xy[:, 1] > 0.07, floor + 0.0005, np.where(xy[:, 0] < -0.07, floor + 0.1, 0.9))
    costs = grasp_costs(BOWL_RIM, grasp_candidates(BOWL_RIM), obj, bumps)
    assert 0 < costs[0] < 0.02 and costs[1] == 0 and costs[2] > 0.5 and costs[3] == 0  # +y, -y, -x, +x
    strict = rank_grasps(BOWL_RIM, obj, bumps)
    np.testing.assert_array_equal(strict[0].direction, [0, -1])  # the bumps flip it off the preferred +y
    tolerant = rank_grasps(BOWL_RIM, obj, bumps, clear_cost=0.02)
    assert [tuple(c.direction) for c in tolerant] == [(0, 1), (0, -1), (1, 0), (-1, 0)]  # the wall still goes last


def test_the_task_side_is_the_one_clear_in_most_scenes():
    cands = grasp_candidates(BOWL_RIM)  # +y, -y, -x, +x
    # Three scenes: +y is blocked in two, -y in two, -x and +x are clear in all three.
    costs = np.array([[0.3, 0.0, 0.0, 0.0], [0.2, 0.5, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    assert choose_task_side(costs, cands) == "-x"  # clear 3/3 like +x, tied mean cost, earlier in the order
    costs[2, 2] = 0.01  # a grate bump: -x is clear in only 2 scenes now
    assert choose_task_side(costs, cands) == "+x"
    assert choose_task_side(costs, cands, clear_cost=0.02) == "-x"  # within the tolerance it is clear again
    # No side clear anywhere: the lowest mean cost.
    assert choose_task_side(np.array([[0.3, 0.2, 0.5, 0.4], [0.3, 0.3, 0.5, 0.4]]), cands) == "-y"
    with pytest.raises(ValueError, match="costs"):
        choose_task_side(np.zeros((2, 3)), cands)


def test_the_expert_tries_the_task_side_first_and_keeps_the_others_for_retries():
    obj = np.array([0.0, 0.0, 0.9])
    blocked_plus_y = lambda xy: np.where(xy[:, 1] > 0.07, 1.1, 0.9)

    class View:
        def position(self, name):
            return np.array([0.2, 0.0, 0.9])

        def height_at(self, xy, ignore=()):
            return blocked_plus_y(xy)

        def shoulder(self):
            return np.array([-0.3, 0.0, 1.2])  # every grasp within reach at the place

    obs = {"bowl_1_pos": obj}
    own = PickPlaceExpert(obj="bowl_1", target="plate_1", grasp=BOWL_RIM)
    own.start(obs, View())
    assert own.grasp_label == "-y"  # ranked in this scene: +y is blocked
    fixed = PickPlaceExpert(obj="bowl_1", target="plate_1", grasp=BOWL_RIM, side="+y")
    fixed.start(obs, View())
    assert fixed.grasp_label == "+y" and fixed._R is not None and np.allclose(fixed._R, yaw_down(0.0))
    assert [side_label(c.direction) for c in fixed._spare] == ["-y", "-x", "+x"]  # still ranked
    with pytest.raises(ValueError, match="side"):
        PickPlaceExpert(obj="bowl_1", target="plate_1", grasp=BOWL_RIM, side="up").start(obs, View())


def test_grasp_point_follows_the_object_tilt():
    cand = rank_grasps(BOWL_RIM, np.zeros(3), lambda xy: np.zeros(len(xy)))[0]
    upright = grasp_point(BOWL_RIM, cand, np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))
    np.testing.assert_allclose(upright, [*(cand.direction * BOWL_RIM.radius), BOWL_RIM.height], atol=1e-12)
    # Tilted 30 degrees about the axis perpendicular to the grasp direction: the rim point rotates with it.
    axis = np.array([-cand.direction[1], cand.direction[0], 0.0])
    R = axis_angle_to_matrix(axis, np.deg2rad(30))
    follow = dataclasses.replace(BOWL_RIM, follow_tilt=True)
    tilted = grasp_point(follow, cand, np.zeros(3), matrix_to_quat(R))
    np.testing.assert_allclose(tilted, R @ upright, atol=1e-9)
    upright_only = dataclasses.replace(BOWL_RIM, follow_tilt=False)
    np.testing.assert_allclose(grasp_point(upright_only, cand, np.zeros(3), matrix_to_quat(R)), upright, atol=1e-12)


def test_on_a_clear_table_the_first_grasp_keeps_the_starting_yaw():
    """The hand starts at yaw 0; with nothing around, the first-ranked rim grasp needs no turn."""
    ranked = rank_grasps(BOWL_RIM, np.array([0.0, 0.0, 0.9]), lambda xy: np.full(len(xy), 0.9))
    assert ranked[0].yaw == 0.0 and abs(ranked[0].direction[1]) == 1.0
    assert [c.yaw for c in ranked].count(0.0) == 2


def test_robot_side_first_order_reproduces_the_turning_grasp_of_the_shipped_demos():
    """Before session 7 the expert preferred -x (the robot's side): a 90-degree turn on a clear table."""
    clear = lambda xy: np.full(len(xy), 0.9)
    ranked = rank_grasps(BOWL_RIM, np.array([0.0, 0.0, 0.9]), clear, order="robot-side-first")
    np.testing.assert_array_equal(ranked[0].direction, [-1, 0])
    assert ranked[0].yaw == np.pi / 2
    # The same four candidates in both orders; an obstacle on -x still wins over the preference.
    assert sorted(map(tuple, (c.direction for c in ranked))) == sorted(map(tuple, (c.direction for c in rank_grasps(BOWL_RIM, np.zeros(3), clear))))
    blocked_minus_x = lambda xy: np.where(xy[:, 0] < -0.07, 1.1, 0.9)
    assert not np.allclose(rank_grasps(BOWL_RIM, np.array([0.0, 0.0, 0.9]), blocked_minus_x, order="robot-side-first")[0].direction, [-1, 0])
    with pytest.raises(ValueError, match="grasp order"):
        grasp_candidates(BOWL_RIM, "left-first")


class _FixedView:
    """A SceneView stand-in for the resync rules: fixed target positions (no simulator needed)."""

    def __init__(self, positions: dict[str, np.ndarray]):
        self.positions = positions

    def position(self, name: str) -> np.ndarray:
        return self.positions[name]


def _resync_expert(phase, count: int = 0):
    from distill.policy.experts import GraspCandidate, PickPlaceExpert

    expert = PickPlaceExpert(obj="bowl_1", target="plate_1", grasp=BOWL_RIM)
    expert._cand, expert._R, expert._obj_start_z = GraspCandidate(np.array([0.0, 1.0]), 0.0), R_DOWN, 0.90
    expert._spare = [GraspCandidate(np.array([0.0, -1.0]), 0.0)]
    expert.phase, expert._count = phase, count
    return expert


def _obs(eef, obj) -> dict:
    return {"robot0_eef_pos": np.asarray(eef, float), "robot0_eef_quat": matrix_to_quat(R_DOWN),
            "bowl_1_pos": np.asarray(obj, float), "bowl_1_quat": np.array([0.0, 0.0, 0.0, 1.0])}


def test_resync_reads_the_phase_from_the_scene_after_a_policy_acted():
    from distill.policy.experts import Phase

    view = _FixedView({"plate_1": np.array([0.3, 0.0, 0.90])})
    # Carrying, but the bowl lies on the table 20 cm from the plate: dropped, so approach again (same side).
    e = _resync_expert(Phase.CARRY, 5)
    assert e.resync(_obs([0.0, 0.2, 1.1], [0.0, 0.0, 0.90]), view) == Phase.APPROACH
    assert e._cand.direction[1] == 1.0 and e._spare == [] and e._grasp_pos is None
    # Carrying with the bowl in the hand (up, 6 cm from it): nothing changes.
    e = _resync_expert(Phase.CARRY, 5)
    assert e.resync(_obs([0.0, 0.047, 1.01], [0.0, 0.0, 0.96]), view) == Phase.CARRY
    # Approaching while the policy already holds the bowl up: lift, past the lift check.
    e = _resync_expert(Phase.APPROACH, 3)
    assert e.resync(_obs([0.0, 0.047, 1.01], [0.0, 0.0, 0.96]), view) == Phase.LIFT and e._count == 12
    # Descending to a frozen grasp point the bowl has since been pushed 3 cm away from: approach again.
    e = _resync_expert(Phase.DESCEND, 4)
    e._grasp_pos = np.array([0.0, 0.047, 0.932])
    assert e.resync(_obs([0.0, 0.05, 1.0], [0.03, 0.0, 0.90]), view) == Phase.APPROACH
    # Released on the plate (within 4 cm of it): the retreat goes on.
    e = _resync_expert(Phase.RETREAT, 2)
    assert e.resync(_obs([0.3, 0.05, 1.0], [0.31, 0.0, 0.91]), view) == Phase.RETREAT
    # Released 10 cm short of the plate: approach again.
    e = _resync_expert(Phase.RETREAT, 2)
    assert e.resync(_obs([0.2, 0.05, 1.0], [0.2, 0.0, 0.90]), view) == Phase.APPROACH


def test_a_grasp_from_the_top_that_missed_is_tried_again_not_carried_empty_to_the_place():
    class View:
        def position(self, name):
            return np.array([0.2, 0.0, 0.9])

        def height_at(self, xy, ignore=()):
            return np.full(len(xy), 0.9)

        def extent(self, name):
            return np.array([-0.03, -0.02, 0.9]), np.array([0.03, 0.02, 0.94])

    obs = {"box_1_pos": np.array([0.0, 0.0, 0.91]), "box_1_quat": np.array([0.0, 0.0, 0.0, 1.0]),
           "robot0_eef_pos": np.array([0.0, 0.0, 1.05]), "robot0_eef_quat": matrix_to_quat(R_DOWN)}
    e = PickPlaceExpert(obj="box_1", target="basket_1", grasp=CENTRE)
    e.start(obs, View())
    assert not e._spare  # one grasp from the top
    for attempt in range(REGRASPS + 1):
        e.phase, e._count = e.phase.LIFT, 11  # the lift check comes with the next step; the box still rests
        e.act(obs, View())
        if attempt < REGRASPS:
            assert e.phase == e.phase.APPROACH  # the same grasp again
    assert e._regrasps == REGRASPS and e.phase != e.phase.APPROACH  # out of retries: on as before (the sequence above decides)


def test_a_box_beside_a_tall_carton_is_grasped_at_its_far_end():
    """libero_10 task 1: an 8 x 4.3 cm cream-cheese box 3 cm from a milk carton taller than the palm. At the
    box's centre the open hand lands on the carton; the shift slides the grasp along the box, away from it."""
    lo, hi = np.array([-0.04, -0.0215, 0.9]), np.array([0.04, 0.0215, 0.918])
    grip_z = 0.908
    table = lambda xy: np.full(len(xy), 0.9)  # noqa: E731
    np.testing.assert_array_equal(top_grasp_shift(np.zeros(2), lo, hi, 0.0, grip_z, table), [0.0, 0.0])
    # The carton: x <= -0.015, y in [0.05, 0.10], 12 cm tall.
    carton = lambda xy: np.where((xy[:, 0] <= -0.015) & (xy[:, 1] >= 0.05) & (xy[:, 1] <= 0.10), 1.02, 0.9)  # noqa: E731
    shift = top_grasp_shift(np.zeros(2), lo, hi, 0.0, grip_z, carton)
    assert shift[0] >= 0.02  # toward the box's far end (+x) from the carton
    assert abs(shift[0]) <= 0.04 - 0.012 and abs(shift[1]) <= 0.039 - 0.0215  # fingers on the box, box between them
    # From there the palm (0.035 m across the closing axis, world x at yaw 0) is clear of the carton.
    assert shift[0] - 0.035 > -0.015


def test_a_moka_pot_is_held_by_its_handle_with_the_fingers_across_it():
    # The pot turned 180 degrees about z (LIBERO's init states): the handle is on world -y.
    quat = np.array([0.0, 0.0, 1.0, 0.0])
    c = handle_candidate(MOKA_HANDLE, quat)
    np.testing.assert_allclose(c.direction, [0.0, -1.0], atol=1e-9)
    fingers = yaw_down(c.yaw) @ np.array([0.0, 1.0, 0.0])  # the closing axis (world y at yaw 0)
    assert abs(fingers[:2] @ c.direction) < 1e-9 and abs(c.yaw) <= np.pi / 2
    p = grasp_point(MOKA_HANDLE, c, np.array([0.03, -0.007, 0.966]), quat)
    np.testing.assert_allclose(p, [0.03, -0.007 - 0.072, 0.966 + 0.05], atol=1e-9)
    # Unturned, the handle is on +y and the hand turns the other way by the least angle.
    c0 = handle_candidate(MOKA_HANDLE, np.array([0.0, 0.0, 0.0, 1.0]))
    np.testing.assert_allclose(c0.direction, [0.0, 1.0], atol=1e-9)
    assert abs(c0.yaw) <= np.pi / 2 + 1e-9


def test_the_path_height_is_the_highest_surface_along_the_way():
    """A basket's rim (0.58 m high, y in [0.16, 0.18]) across the way from a mug to a basket: counted; a
    carton 10 cm beside the way is not."""

    class View:
        def height_at(self, xy, ignore=()):
            rim = (xy[:, 1] >= 0.16) & (xy[:, 1] <= 0.18)
            carton = xy[:, 0] > 0.1
            return np.where(rim, 0.58, np.where(carton, 0.7, 0.437))

    assert path_height(View(), np.array([0.0, 0.0]), np.array([0.0, 0.3])) == 0.58
    assert path_height(View(), np.array([0.0, 0.0]), np.array([0.0, 0.1])) == 0.437
