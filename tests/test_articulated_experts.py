"""Articulated primitives and goal sequencing (distill/policy/articulated.py, sequence.py): the pure
geometry and the step logic here; real MuJoCo episodes of LIBERO's drawer and stove tasks below."""

import numpy as np
import pytest

from distill.policy.articulated import (
    R_into,
    farthest_along,
    farthest_from_axis,
    grip_yaw,
    hand_yaw,
    pull_direction,
    range_middle,
)
from distill.policy.doors import door_frame, door_geometry
from distill.policy.experts import R_DOWN, UnsupportedTask, escape_shift, yaw_down
from distill.policy.insert import wrap_angle
from distill.policy.sequence import SHARED_PLACE_SPACING, SequenceExpert, Step, order_steps, shared_place_offsets, with_implied_opens
from vega_ros.geometry import axis_angle_to_matrix, matrix_to_quat


def test_a_wooden_cabinet_drawer_opens_toward_plus_y():
    """LIBERO's wooden cabinet: slide axis -y (world), open below qpos -0.14, closed above 0."""
    q_open = range_middle([-0.16, -0.14])
    q_close = range_middle([0.0, 0.005])
    assert q_open == pytest.approx(-0.15) and q_close == pytest.approx(0.0025)
    np.testing.assert_allclose(pull_direction(np.array([0.0, -1.0, 0.0]), q_close, q_open), [0, 1, 0], atol=1e-12)
    # Closing goes back the other way; an axis that is not unit length is normalised.
    np.testing.assert_allclose(pull_direction(np.array([0.0, -2.0, 0.0]), q_open, q_close), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(pull_direction(np.array([1.0, 0.0, 0.0]), 0.0, 0.12), [1, 0, 0], atol=1e-12)
    with pytest.raises(ValueError):
        pull_direction(np.zeros(3), 0.0, 0.1)
    with pytest.raises(ValueError):
        range_middle([0.1])


def test_the_hand_points_into_the_drawer_with_fingers_closing_vertically():
    R = R_into(np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R[:, 2], [0, -1, 0], atol=1e-12)  # approach axis: into the cabinet
    np.testing.assert_allclose(R[:, 1], [0, 0, 1], atol=1e-12)  # finger axis: vertical, across a horizontal bar
    # That is the home orientation (pointing down) turned -90 degrees about world x.
    np.testing.assert_allclose(R, axis_angle_to_matrix(np.array([1.0, 0, 0]), -np.pi / 2) @ R_DOWN, atol=1e-12)
    # A vertical component of the direction is ignored: the hand stays horizontal.
    np.testing.assert_allclose(R_into(np.array([0.0, -1.0, 0.3]))[:, 2], [0, -1, 0], atol=1e-12)


def test_the_knob_grip_yaw_puts_the_fingers_across_the_bar_nearest_the_hand():
    for bar_angle in (0.0, 0.4, np.pi / 2, -1.2, 3.0):
        bar = np.array([np.cos(bar_angle), np.sin(bar_angle)])
        for current in (0.0, 1.0, -2.0):
            yaw = grip_yaw(bar, current)
            fingers = (yaw_down(yaw) @ np.array([0.0, 1.0, 0.0]))[:2]
            assert abs(fingers @ bar) < 1e-9  # across the bar
            assert abs(yaw - current) <= np.pi / 2 + 1e-9  # the nearer of the two grips
    assert grip_yaw(np.array([1.0, 0.0]), 0.1) == pytest.approx(0.0)  # flat_stove's bar lies along x: no turn
    assert hand_yaw(matrix_to_quat(yaw_down(0.3))) == pytest.approx(0.3)


def test_handle_and_pointer_are_the_geoms_sticking_out_farthest():
    pts = np.array([[0.0, -0.16, 1.0], [0.04, -0.13, 1.0], [0.01, -0.15, 1.0], [0.0, -0.32, 1.0]])
    assert farthest_along(pts, np.array([0.0, -0.24, 1.0]), np.array([0.0, 1.0, 0.0])) == 1
    knob = np.array([[-0.42, 0.20, 0.93], [-0.37, 0.20, 0.92], [-0.40, 0.19, 0.99]])
    # Height along the axis does not count, only the distance from it.
    assert farthest_from_axis(knob, np.array([-0.404, 0.202, 0.9]), np.array([0.0, 0.0, 1.0])) == 1


def test_the_escape_is_the_shortest_shift_that_clears_the_overhang():
    """A footprint spanning y in [0, 0.1] under a drawer whose front edge is at y = 0.025."""
    ys = np.linspace(0.0, 0.1, 5)
    overhung = lambda shift: bool(np.any(ys + shift[1] < 0.025))  # noqa: E731
    dirs = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(escape_shift(overhung, dirs, np.arange(0.01, 0.151, 0.01)), [0, 0.03], atol=1e-12)
    # Nothing overhead: no shift. No direction clears it: no shift either.
    np.testing.assert_array_equal(escape_shift(lambda s: False, dirs, np.arange(0.01, 0.05, 0.01)), np.zeros(2))
    np.testing.assert_array_equal(escape_shift(lambda s: True, dirs, np.arange(0.01, 0.05, 0.01)), np.zeros(2))


def test_goal_predicates_are_ordered_open_then_place_then_close():
    goal = [["close", "white_cabinet_1_bottom_region"], ["in", "bowl_1", "white_cabinet_1_bottom_region"],
            ["turnon", "stove_1"], ["open", "cabinet_1_top_region"], ["on", "pot_1", "stove_1_cook_region"]]
    assert [p[0] for p in order_steps(goal)] == ["open", "in", "turnon", "on", "close"]
    with pytest.raises(UnsupportedTask, match="turnoff"):
        order_steps([["on", "a", "b"], ["turnoff", "flat_stove_1"]])


def test_putting_something_into_a_drawer_opens_it_first():
    """libero_goal 'open the top drawer and put the bowl inside' states only the In."""
    drawers = {"wooden_cabinet_1_top_region", "wooden_cabinet_1_middle_region"}
    preds = with_implied_opens([["in", "bowl_1", "wooden_cabinet_1_top_region"]], drawers)
    assert preds == [(["in", "bowl_1", "wooden_cabinet_1_top_region"], False), (["open", "wooden_cabinet_1_top_region"], True)]
    assert [p[0] for p in order_steps([p for p, _ in preds])] == ["open", "in"]
    # An explicit Open is not doubled; a region outside a drawer implies nothing.
    explicit = [["open", "wooden_cabinet_1_top_region"], ["in", "bowl_1", "wooden_cabinet_1_top_region"]]
    assert len(with_implied_opens(explicit, drawers)) == 2
    assert len(with_implied_opens([["on", "bowl_1", "plate_1"]], drawers)) == 1


class _Primitive:
    """A primitive that is done after ``steps`` actions and then makes its predicate true (or not)."""

    def __init__(self, world: dict, key: str, steps: int, succeeds: bool = True):
        self.world, self.key, self.left, self.succeeds, self.phase = world, key, steps, succeeds, "move"

    @property
    def done(self):
        return self.left <= 0

    def act(self, obs, view):
        self.left -= 1
        if self.left <= 0 and self.succeeds:
            self.world[self.key] = True
        return np.full(7, float(len(self.key)))


class _World:
    """Predicate truth kept in a dict (the sequencing logic only asks ``holds``)."""

    def __init__(self, world: dict):
        self.world = world

    def holds(self, predicate):
        return self.world.get(predicate[1], False)


def test_the_sequence_runs_each_primitive_until_done_and_its_predicate_holds():
    world = {"drawer": False, "bowl": False}
    made = []

    def make(key, steps, succeeds=True):
        def f(ran):
            made.append(key)
            return _Primitive(world, key, steps, succeeds)
        return f

    seq = SequenceExpert([Step(["open", "drawer"], make("drawer", 3)), Step(["in", "bowl"], make("bowl", 2))])
    view = _World(world)
    for _ in range(3):
        seq.act({}, view)
    assert world["drawer"] and seq.index == 0  # done and holding, but it advances on the next call
    seq.act({}, view)
    assert seq.index == 1 and made == ["drawer", "bowl"]
    seq.act({}, view)
    assert seq.done is False and world["bowl"]
    np.testing.assert_array_equal(seq.act({}, view), [0, 0, 0, 0, 0, 0, -1])  # finished: idle, gripper open
    assert seq.done and [e for _, e in seq.log] == ["started", "holds", "started", "holds"]


def test_the_sequence_skips_what_holds_and_retries_a_failed_primitive_once():
    world = {"drawer": True, "bowl": False}
    tries = []

    def flaky(ran):
        assert ("open", "drawer") not in ran  # the skipped Open did not run
        tries.append(1)
        return _Primitive(world, "bowl", 1, succeeds=len(tries) > 1)  # the second attempt works

    seq = SequenceExpert([Step(["open", "drawer"], lambda ran: pytest.fail("already open")), Step(["in", "bowl"], flaky)])
    view = _World(world)
    for _ in range(4):
        seq.act({}, view)
    assert seq.done and len(tries) == 2
    assert [e for _, e in seq.log] == ["skipped", "started", "retried", "holds"]
    # A primitive that never makes its predicate true is given up after the retries.
    world2 = {"x": False}
    seq = SequenceExpert([Step(["open", "x"], lambda ran: _Primitive(world2, "x", 1, succeeds=False))], retries=1)
    for _ in range(4):
        seq.act({}, _World(world2))
    assert seq.done and [e for _, e in seq.log] == ["started", "retried", "gave up"]


def test_objects_put_on_one_region_get_places_apart_in_the_order_they_stand():
    """Two moka pots on a 15 cm cook region (libero_10 task 8): 9 cm apart along the region's longer axis,
    the pot on the left to the left place; an object with a target of its own keeps no offset."""

    class _Site:
        size = np.array([0.05, 0.075, 0.0025])  # longer along its y axis

    class _Data:
        def get_site_xmat(self, name):
            return axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), np.pi / 2)  # site y = world -x

    class _View:
        class env:  # noqa: N801 - stands in for the LIBERO env
            object_sites_dict = {"stove_cook_region": _Site(), "plate_region": _Site()}

            class sim:  # noqa: N801
                data = _Data()

        def position(self, name):
            return {"pot_1": np.array([0.2, 0.3, 0.9]), "pot_2": np.array([-0.1, 0.2, 0.9]), "mug_1": np.zeros(3)}[name]

    goal = [["on", "pot_1", "stove_cook_region"], ["on", "pot_2", "stove_cook_region"], ["on", "mug_1", "plate_region"], ["turnon", "stove"]]
    off = shared_place_offsets(_View(), goal)
    assert set(off) == {tuple(goal[0]), tuple(goal[1])}
    a, b = off[tuple(goal[0])], off[tuple(goal[1])]
    np.testing.assert_allclose(np.linalg.norm(a - b), SHARED_PLACE_SPACING, atol=1e-9)
    np.testing.assert_allclose(a[1:], 0.0, atol=1e-9)  # along world x (the site's longer axis)
    assert a[0] > b[0]  # pot_1 stands at larger x now, so it goes to the larger-x place


def test_a_door_turning_toward_its_goal_moves_its_points_along_v():
    """A door 0.26 m wide, open along -y from its hinge at q = -pi/2, closes toward q = 0 (about +z)."""
    e_at = np.array([0.0, -1.0])
    e, v = door_frame(-np.pi / 2, -np.pi / 2, e_at, closing=1.0)
    np.testing.assert_allclose(e, [0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(v, [1.0, 0.0], atol=1e-12)  # its points move toward +x first
    e0, v0 = door_frame(0.0, -np.pi / 2, e_at, closing=1.0)
    np.testing.assert_allclose(e0, [1.0, 0.0], atol=1e-12)  # shut: along +x from the hinge
    np.testing.assert_allclose(v0, [0.0, 1.0], atol=1e-12)
    # A small turn moves a point at radius r by r * dq along v.
    r, dq = 0.2, 1e-6
    ea, _ = door_frame(-1.0, -np.pi / 2, e_at, 1.0)
    eb, vb = door_frame(-1.0 + dq, -np.pi / 2, e_at, 1.0)
    np.testing.assert_allclose((eb - ea) * r / dq, r * vb, atol=1e-6)
    # The slab 0.02-0.046 m behind the axis along v: its outer face is 0.046 behind.
    corners = np.array([[x, y, z] for x in (-0.046, -0.02) for y in (0.0, -0.26) for z in (0.92, 1.1)])
    g = door_geometry(corners, np.zeros(3), e, v)
    assert np.isclose(g.outer, 0.046) and np.isclose(g.width, np.hypot(0.046, 0.26))
    assert (g.bottom, g.top) == (0.92, 1.1)


def test_wrap_angle_takes_the_short_way_round():
    assert np.isclose(wrap_angle(3 * np.pi / 2), -np.pi / 2) and np.isclose(wrap_angle(-3 * np.pi / 2), np.pi / 2)
    assert np.isclose(wrap_angle(0.3), 0.3) and -np.pi <= wrap_angle(np.pi) < np.pi


# ----------------------------------------------------------------------------- real MuJoCo (LIBERO)


def _goal_env(suite: str, task_index: int):
    from distill.data.scenes import suite_tasks
    from distill.policy.demos import DemoConfig, make_env

    cfg = DemoConfig(suite=suite, record=False)
    task = suite_tasks(suite)[task_index]
    return make_env(task, cfg), cfg, task


@pytest.mark.parametrize("task_index, predicate", [(0, "open"), (7, "turnon")])
def test_the_expert_opens_the_drawer_and_turns_on_the_stove_in_libero_goal(task_index, predicate):
    """libero_goal task 0 (open the middle drawer) and 7 (turn on the stove), init state 0, real MuJoCo:
    LIBERO's own check says the goal holds within the protocol's 300 steps."""
    from distill.data.scenes import load_init_states
    from distill.policy.articulated import DrawerExpert, KnobExpert, joint_info
    from distill.policy.demos import run_expert
    from distill.policy.experts import SceneView, expert_for

    env, cfg, task = _goal_env("libero_goal", task_index)
    try:
        inits = load_init_states(task)
        r = run_expert(env, inits[0], cfg, seed=0)
        assert r.success and r.success_step < cfg.step_limit, (r.success, r.steps)
        view = SceneView(env)
        (goal,) = view.goal()
        assert goal[0] == predicate and view.holds(goal)
        seq = expert_for(env)
        primitive = seq.steps[0].make(set())
        assert isinstance(primitive, DrawerExpert if predicate == "open" else KnobExpert)
        q = joint_info(view, primitive.joint).qpos
        assert (q < -0.14) if predicate == "open" else (q >= 0.5)  # LIBERO's thresholds for the wooden cabinet / flat stove
    finally:
        env.close()


@pytest.mark.parametrize("task_index", [3, 8, 9])
def test_libero_10_drawer_close_moka_pots_and_microwave(task_index):
    """libero_10 task 3 (bowl in the bottom drawer, then shut it: the push leans so the forearm clears the
    cabinet), task 8 (two moka pots by their handles, side by side on the stove) and task 9 (a mug slid into
    the microwave by its handle, then the door pushed shut), init state 0, real MuJoCo: LIBERO's own check
    says the goal holds within the protocol's 520 steps."""
    from distill.data.scenes import load_init_states
    from distill.policy.demos import run_expert
    from distill.policy.experts import SceneView

    env, cfg, task = _goal_env("libero_10", task_index)
    try:
        r = run_expert(env, load_init_states(task)[0], cfg, seed=0)
        assert r.success and r.success_step < cfg.step_limit, (r.success, r.steps)
        view = SceneView(env)
        assert all(view.holds(p) for p in view.goal())
    finally:
        env.close()


def test_a_pick_place_into_a_drawer_that_was_already_open_is_the_lone_expert_of_earlier_demos():
    """libero_spatial task 4 (the drawer starts open): no place offset, no overhang handling, as recorded
    before sequences existed; after the sequence opened the drawer itself, both apply."""
    from distill.policy.sequence import _pick_place

    calls = []
    make = lambda obj, target, offset, avoid_overhang: calls.append((obj, target, tuple(offset), avoid_overhang))  # noqa: E731
    p, forward = ["in", "bowl_1", "cabinet_1_top_region"], np.array([0.0, 0.015, 0.0])
    _pick_place(make, p, forward, ran=set())
    _pick_place(make, p, forward, ran={("open", "cabinet_1_top_region")})
    _pick_place(make, ["on", "mug_1", "plate_1"], None, ran=set())  # not into a drawer, in a sequence
    assert calls == [("bowl_1", "cabinet_1_top_region", (0.0, 0.0, 0.0), False),
                     ("bowl_1", "cabinet_1_top_region", (0.0, 0.015, 0.0), True),
                     ("mug_1", "plate_1", (0.0, 0.0, 0.0), True)]


def test_only_a_measured_handle_goes_in_through_a_side_opening():
    from distill.policy.insert import MUG_HANDLE, insert_grasp_for

    assert insert_grasp_for("white_yellow_mug_1") is MUG_HANDLE
    with pytest.raises(UnsupportedTask, match="porcelain_mug_1"):
        insert_grasp_for("porcelain_mug_1")
