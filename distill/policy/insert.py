"""Putting an object into a box with a ceiling through its side opening (libero_10 task 9's microwave).

A hand pointing down cannot lower anything into a microwave: its palm reaches 12.6 cm above the grip
and the opening is 14.4 cm tall. ``InsertExpert`` holds the object by its handle, turns it so the
handle points out of the opening, carries it in front of the opening with its bottom just above the
floor inside, slides it in until its origin is past the region's front face, sets it down, lets
go and backs out the way it came. The palm stays outside the opening all along: the handle is
what enters last.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from distill.policy.experts import (
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    Grasp,
    OscScale,
    PhaseClock,
    SceneView,
    UnsupportedTask,
    grasp_point,
    hand_pose,
    handle_candidate,
    idle,
    path_height,
    pose_action,
    yaw_down,
)
from vega_ros.geometry import axis_angle_to_matrix, quat_to_matrix

# LIBERO's white-and-yellow mug by the outer bar of its handle (its collision boxes: 6.0-6.9 cm from
# the origin, 2.7-8.5 cm above it, 1.7 cm thick across), pads 7.5 cm above the mug's bottom.
MUG_HANDLE = Grasp(radius=0.0, height=0.075, lift=0.0, release_height=0.0, handle=(0.062, 0.0, 0.075))

HANDLE_GRASPS: dict[str, Grasp] = {"white_yellow_mug": MUG_HANDLE}
"""The objects whose handle is measured, by category (the name without its ``_<n>`` suffix)."""


def insert_grasp_for(obj: str) -> Grasp:
    """The handle grasp ``InsertExpert`` holds ``obj`` by; ``UnsupportedTask`` naming it when none is measured."""
    category = obj.rsplit("_", 1)[0] if obj.rsplit("_", 1)[-1].isdigit() else obj
    if category not in HANDLE_GRASPS:
        raise UnsupportedTask(f"no handle grasp for {obj!r} to put it in through a side opening; "
                              f"measured: {sorted(HANDLE_GRASPS)}")
    return HANDLE_GRASPS[category]


INSIDE_MARGIN = 0.006
"""Metres past the region's front face that the object's origin is set down: the palm, 3.5 cm behind the
grip across it, then stays ~6 mm outside the microwave's opening (its ceiling is lower than the palm)."""
FLOOR_CLEARANCE = 0.015  # m: the object's bottom above the floor inside while it slides in
STANDOFF = 0.15  # m: in front of the place along the opening's normal, where the object lines up


class InsertPhase(enum.IntEnum):
    APPROACH = 0
    DESCEND = 1
    CLOSE = 2
    LIFT = 3
    LINE_UP = 4
    SLIDE_IN = 5
    SET_DOWN = 6
    RELEASE = 7
    BACK_OUT = 8
    DONE = 9


def _ray(view: SceneView, start: np.ndarray, direction: np.ndarray, skip: set[int]) -> float:
    """Distance (m) along ``direction`` from ``start`` to the first geom not on a body in ``skip``; inf if none."""
    import mujoco

    m, d = view.env.sim.model._model, view.env.sim.data._data
    geomid = np.zeros(1, np.int32)
    p, travelled = np.asarray(start, np.float64).copy(), 0.0
    for _ in range(8):
        dist = mujoco.mj_ray(m, d, p, np.asarray(direction, np.float64), None, 1, -1, geomid)
        if dist < 0:
            return np.inf
        travelled += dist
        if int(m.geom_bodyid[geomid[0]]) not in skip:
            return travelled
        p = p + (dist + 1e-4) * np.asarray(direction, np.float64)
        travelled += 1e-4
    return np.inf


def opening_direction(view: SceneView, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Unit horizontal direction ``[3]`` (world) out of the open side of a box, from a point inside it
    (``centre [3]``): of the box's four horizontal face normals (``±`` the first two columns of its
    frame ``axes [3, 3]``), the one whose ray travels farthest before it hits anything but the robot
    (inf out of the open side)."""
    skip = view.skipped_bodies()
    dirs = []
    for k in (0, 1):
        u = np.array([axes[0, k], axes[1, k], 0.0])
        u /= np.linalg.norm(u) or 1.0
        dirs += [u, -u]
    free = [_ray(view, centre, u, skip) for u in dirs]
    return dirs[int(np.argmax(free))]


def floor_below(view: SceneView, point: np.ndarray, ignore: tuple[str, ...] = ()) -> float:
    """Height (world z, m) of the first surface straight below ``point [3]``, looking through the robot
    and the bodies of the objects in ``ignore``; ``point``'s own height minus 2 m if none."""
    dist = _ray(view, point, np.array([0.0, 0.0, -1.0]), view.skipped_bodies(ignore))
    return float(point[2] - min(dist, 2.0))


def wrap_angle(a: float) -> float:
    """``a`` (radians) in [-pi, pi)."""
    return float((a + np.pi) % (2 * np.pi) - np.pi)


@dataclass
class InsertExpert(PhaseClock):
    """Put ``obj`` into the region site ``target`` of a box through its side opening (see the module docstring).

    Args:
        obj, target: names from the BDDL problem (``white_yellow_mug_1``, ``microwave_1_heating_region``).
        grasp: a handle grasp (``Grasp.handle`` set).
        scale: the controller's action scaling.
    """

    obj: str
    target: str
    grasp: Grasp = MUG_HANDLE
    scale: OscScale = field(default_factory=OscScale)
    phase: InsertPhase = InsertPhase.APPROACH
    _count: int = 0
    _trail: list = field(default_factory=list)
    _cand: object | None = None
    _R: np.ndarray | None = None
    _normal: np.ndarray | None = None  # [3] unit, world: out of the opening
    _place: np.ndarray | None = None  # [3] world: where the object's origin is set down
    _slide_z: float = 0.0  # the object origin's height while it slides in
    _travel_z: float = 0.0  # the object origin's height on the way to the opening
    _grasp_pos: np.ndarray | None = None
    _obj_start_z: float = 0.0
    _retries: int = 1

    @property
    def done(self) -> bool:
        return self.phase == InsertPhase.DONE

    @property
    def grasp_label(self) -> str:
        return "handle"

    def start(self, obs: dict, view: SceneView) -> None:
        """Plan from the settled scene: the grasp, the opening's normal and the place."""
        env = view.env
        centre = np.asarray(env.sim.data.get_site_xpos(self.target), np.float64)
        mat = np.asarray(env.sim.data.get_site_xmat(self.target), np.float64).reshape(3, 3)
        half = np.abs(mat @ np.asarray(env.object_sites_dict[self.target].size, np.float64))
        self._normal = opening_direction(view, centre, mat)
        depth = float(np.abs(self._normal) @ half)  # the region's half-depth along the normal
        place_xy = centre[:2] + self._normal[:2] * (depth - INSIDE_MARGIN)
        floor = floor_below(view, np.array([*place_xy, centre[2]]), ignore=(self.obj,))
        self._slide_z = floor + FLOOR_CLEARANCE
        self._place = np.array([*place_xy, floor])
        obj_pos = np.asarray(obs[f"{self.obj}_pos"], np.float64)
        # Carried with its bottom 1 cm over whatever lies under the way to the opening (another mug).
        line_up = place_xy + self._normal[:2] * STANDOFF
        self._cand = handle_candidate(self.grasp, np.asarray(obs[f"{self.obj}_quat"], np.float64))
        self._travel_z = max(self._slide_z, path_height(view, obj_pos[:2], line_up, ignore=(self.obj,)) + 0.01)
        self._obj_start_z = float(obj_pos[2])
        self._R = yaw_down(self._cand.yaw)
        self._next(InsertPhase.APPROACH)

    def _handle_direction(self, obs: dict) -> np.ndarray:
        """The handle's horizontal direction ``[2]`` (unit, world) from the object's origin now."""
        d = (quat_to_matrix(np.asarray(obs[f"{self.obj}_quat"], np.float64)) @ np.asarray(self.grasp.handle))[:2]
        return d / (np.linalg.norm(d) or 1.0)

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        """The next action ``[7]`` from the current observation."""
        if self._cand is None:
            self.start(obs, view)
        eef, quat = hand_pose(obs)
        obj = np.asarray(obs[f"{self.obj}_pos"], np.float64)
        self._count += 1
        stalled = self._stalled(eef)
        n = self._normal

        def act(p, grip, speed=1.0, R=None):
            return pose_action(self.scale, eef, quat, p, self._R if R is None else R, grip, speed)

        if self.phase in (InsertPhase.APPROACH, InsertPhase.DESCEND, InsertPhase.CLOSE):
            grasp_pos = grasp_point(self.grasp, self._cand, obj, np.asarray(obs[f"{self.obj}_quat"], np.float64))
            if self.phase == InsertPhase.APPROACH:
                above = grasp_pos + [0, 0, 0.08]
                if np.linalg.norm(above - eef) < 0.008 or self._count > 70:
                    self._grasp_pos = grasp_pos
                    self._next(InsertPhase.DESCEND)
                return act(above, GRIPPER_OPEN)
            if self.phase == InsertPhase.DESCEND:
                if np.linalg.norm(self._grasp_pos - eef) < 0.006 or (stalled and self._count > 6) or self._count > 40:
                    self._next(InsertPhase.CLOSE)
                return act(self._grasp_pos, GRIPPER_OPEN, 0.6)
            if self._count >= 10:
                self._next(InsertPhase.LIFT)
            return act(self._grasp_pos, GRIPPER_CLOSE)
        hand_from_obj = eef - obj
        # Turn the hand (and the held object with it) until the handle points out of the opening.
        turn = wrap_angle(float(np.arctan2(n[1], n[0]) - np.arctan2(*self._handle_direction(obs)[::-1])))
        R_turned = axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), turn) @ quat_to_matrix(quat)
        line_up = self._place + n * STANDOFF
        if self.phase == InsertPhase.LIFT:
            goal = np.array([*eef[:2], self._travel_z + hand_from_obj[2] + 0.03])
            if self._count == 12 and obj[2] < self._obj_start_z + 0.015 and self._retries > 0:
                self._retries -= 1  # the handle slipped out: try it again from above
                self._next(InsertPhase.APPROACH)
                return act(eef + [0, 0, 0.05], GRIPPER_OPEN)
            if eef[2] > goal[2] - 0.01 or self._count > 40:
                self._next(InsertPhase.LINE_UP)
            return act(goal, GRIPPER_CLOSE, 0.8)
        if self.phase == InsertPhase.LINE_UP:
            goal = np.array([*line_up[:2], self._slide_z]) + hand_from_obj
            if (np.linalg.norm(goal - eef) < 0.01 and abs(turn) < 0.05) or self._count > 100:
                self._next(InsertPhase.SLIDE_IN)
            return act(goal, GRIPPER_CLOSE, 0.8, R_turned)
        if self.phase == InsertPhase.SLIDE_IN:
            goal = np.array([*self._place[:2], self._slide_z]) + hand_from_obj
            if np.linalg.norm(self._place[:2] - obj[:2]) < 0.008 or (stalled and self._count > 8) or self._count > 60:
                self._next(InsertPhase.SET_DOWN)
            return act(goal, GRIPPER_CLOSE, 0.5, R_turned)
        if self.phase == InsertPhase.SET_DOWN:
            goal = np.array([*self._place[:2], self._place[2]]) + hand_from_obj
            if obj[2] < self._place[2] + 0.004 or (stalled and self._count > 6) or self._count > 30:
                self._next(InsertPhase.RELEASE)
            return act(goal, GRIPPER_CLOSE, 0.4, quat_to_matrix(quat))
        if self.phase == InsertPhase.RELEASE:
            if self._count >= 8:
                self._next(InsertPhase.BACK_OUT)
            return idle()
        if self.phase == InsertPhase.BACK_OUT:
            if self._count >= 20:
                self._next(InsertPhase.DONE)
            return act(eef + n * 0.05 + [0, 0, 0.01 if self._count > 8 else 0.0], GRIPPER_OPEN, 0.6, quat_to_matrix(quat))
        return idle()
