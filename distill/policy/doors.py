"""Closing a hinged door (libero_10 task 9's microwave): push its outer face around the hinge.

The door is a body on a hinge about world z (``articulated.joint_info``): its points turn about the
axis as ``qpos`` changes, so a point at radius ``r`` from the axis lies along ``e(q)`` from it and
moves along ``v(q)`` (perpendicular, the way ``qpos`` goes toward the goal) when the door turns. The
closed hand, pointing down, goes to the door's outer face (the side ``-v``) at ``r`` and pushes it
along the arc, aiming a little ahead of the door each step, until LIBERO's predicate holds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from distill.policy.articulated import joint_goal_reached, joint_info
from distill.policy.experts import (
    GRIPPER_CLOSE,
    OscScale,
    PhaseClock,
    SceneView,
    UnsupportedTask,
    hand_pose,
    idle,
    pose_action,
    yaw_down,
)


class DoorPhase(enum.Enum):
    RISE = "rise"
    APPROACH = "approach"
    DESCEND = "descend"
    PUSH = "push"
    RETREAT = "retreat"
    DONE = "done"


PUSH_RADIUS = 0.6
"""Where along the door (a fraction of its width from the hinge) the hand pushes: near the free edge the
hand must follow a wide arc out to the end of the arm's reach; near the hinge the door needs more force."""
PUSH_LEAD = 0.25  # radians: the hand aims this far ahead of the door along the arc
HAND_HALF_THICKNESS = 0.012  # m: the closed fingers' half-thickness across the push


@dataclass(frozen=True)
class DoorGeometry:
    """A hinged door's shape about its axis, measured from its collision geoms at one ``qpos``.

    ``width``: the farthest any of it reaches from the axis (m). ``outer``: how far its outer face
    (the side away from the closing motion) lies behind the axis along the motion (m, > 0 behind).
    ``bottom`` / ``top``: its lowest and highest points (world z, m).
    """

    width: float
    outer: float
    bottom: float
    top: float


def door_frame(q: float, q_at: float, e_at: np.ndarray, closing: float) -> tuple[np.ndarray, np.ndarray]:
    """``(e, v)`` ([2] unit, world xy) at hinge angle ``q`` (rad): ``e`` the door's direction from the
    axis, ``v`` the way a point of it moves when it turns toward the goal (``closing`` = +1 or -1, the
    sign of ``q_goal - q``); ``e_at`` is ``e`` measured at ``q_at``. For a hinge about world +z."""
    a = q - q_at
    c, s = np.cos(a), np.sin(a)
    e = np.array([c * e_at[0] - s * e_at[1], s * e_at[0] + c * e_at[1]])
    v = closing * np.array([-e[1], e[0]])
    return e, v


def door_geometry(points: np.ndarray, anchor: np.ndarray, e: np.ndarray, v: np.ndarray) -> DoorGeometry:
    """``DoorGeometry`` from the door's collision-geom corner points ``[N, 3]`` (world), the axis
    ``anchor [3]`` and the door's frame ``e, v`` ([2], ``door_frame``) now."""
    rel = np.asarray(points, np.float64)[:, :2] - np.asarray(anchor, np.float64)[:2]
    return DoorGeometry(width=float(np.max(np.linalg.norm(rel, axis=1))), outer=float(-np.min(rel @ v)),
                        bottom=float(np.min(points[:, 2])), top=float(np.max(points[:, 2])))


@dataclass
class HingeDoorExpert(PhaseClock):
    """Turn a hinged door (a hinge about world z) to ``q_goal`` by pushing it, e.g. ``Close``.

    Args:
        joint: the door's hinge joint.
        q_goal: the joint position to reach (radians): the middle of ``default_close_ranges``.
        predicate: the BDDL predicate that ends the push (``['close', 'microwave_1']``).
        scale: the controller's action scaling.
    """

    joint: str
    q_goal: float
    predicate: list[str] | None = None
    scale: OscScale = field(default_factory=OscScale)
    phase: DoorPhase = DoorPhase.RISE
    grasp_label: str | None = None  # demos record the rim grasp of pick-and-place; a door has none
    _count: int = 0
    _trail: list = field(default_factory=list)
    _geom: DoorGeometry | None = None
    _q_at: float = 0.0
    _e_at: np.ndarray | None = None
    _closing: float = 1.0
    _R: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.phase == DoorPhase.DONE

    def start(self, obs: dict, view: SceneView) -> None:
        import mujoco

        info = joint_info(view, self.joint)
        if info.kind != "hinge" or abs(abs(info.axis[2]) - 1.0) > 1e-3:
            raise UnsupportedTask(f"joint {self.joint!r} is no hinge about the vertical")
        m, d = view.env.sim.model._model, view.env.sim.data._data
        pts = []
        for g in range(m.ngeom):
            if int(m.geom_bodyid[g]) != info.body or (m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0):
                continue
            c, R, size = d.geom_xpos[g], d.geom_xmat[g].reshape(3, 3), m.geom_size[g]
            if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
                pts.extend(c + np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * size @ R.T)
            else:
                pts.append(c)
        if not pts:
            raise UnsupportedTask(f"the body of hinge {self.joint!r} has no collision geometry")
        pts = np.asarray(pts)
        rel = pts[:, :2] - info.anchor[:2]
        self._q_at = info.qpos * float(np.sign(info.axis[2]))  # turning about +z
        self._e_at = rel[int(np.argmax(np.linalg.norm(rel, axis=1)))] / np.max(np.linalg.norm(rel, axis=1))
        self._closing = float(np.sign(self.q_goal - info.qpos) * np.sign(info.axis[2])) or 1.0
        e, v = door_frame(self._q_at, self._q_at, self._e_at, self._closing)
        self._geom = door_geometry(pts, info.anchor, e, v)
        yaw = float(np.arctan2(e[1], e[0])) - np.pi / 2  # the fingers close along e: their flat side on the door
        self._R = yaw_down((yaw + np.pi / 2) % np.pi - np.pi / 2)
        self._next(DoorPhase.RISE)

    def contact_point(self, view: SceneView, lead: float = 0.0) -> np.ndarray:
        """Where the hand's grip site goes ``[3]`` (world, m): on the door's outer face at
        ``PUSH_RADIUS`` of its width, mid-height, with the door turned ``lead`` radians further."""
        info = joint_info(view, self.joint)
        q = info.qpos * float(np.sign(info.axis[2]))
        e, v = door_frame(q + self._closing * lead, self._q_at, self._e_at, self._closing)
        g = self._geom
        xy = info.anchor[:2] + PUSH_RADIUS * g.width * e - (g.outer + HAND_HALF_THICKNESS) * v
        return np.array([*xy, (g.bottom + g.top) / 2])

    def reached(self, view: SceneView) -> bool:
        return joint_goal_reached(view, self.joint, self.q_goal, self.predicate)

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        if self._geom is None:
            self.start(obs, view)
        eef, quat = hand_pose(obs)
        self._count += 1
        stalled = self._stalled(eef)
        g = self._geom
        safe_z = g.top + 0.06  # the closed fingertips pass over the door's top

        def act(p, grip, speed=1.0):
            return pose_action(self.scale, eef, quat, p, self._R, grip, speed)

        # Behind the contact point, so the hand comes down clear of the face it will push.
        info = joint_info(view, self.joint)
        _, v = door_frame(info.qpos * float(np.sign(info.axis[2])), self._q_at, self._e_at, self._closing)
        start = self.contact_point(view) - np.array([*(0.03 * v), 0.0])
        if self.phase == DoorPhase.RISE:
            if eef[2] > safe_z - 0.01 or self._count > 30:
                self._next(DoorPhase.APPROACH)
            return act(np.array([*eef[:2], max(safe_z, eef[2])]), GRIPPER_CLOSE)
        if self.phase == DoorPhase.APPROACH:
            goal = np.array([*start[:2], max(safe_z, eef[2] - 0.02)])
            if np.linalg.norm(goal[:2] - eef[:2]) < 0.01 or self._count > 70:
                self._next(DoorPhase.DESCEND)
            return act(goal, GRIPPER_CLOSE)
        if self.phase == DoorPhase.DESCEND:
            if np.linalg.norm(start - eef) < 0.01 or (stalled and self._count > 6) or self._count > 40:
                self._next(DoorPhase.PUSH)
            return act(start, GRIPPER_CLOSE, 0.7)
        if self.phase == DoorPhase.PUSH:
            if self.reached(view) or (stalled and self._count > 10) or self._count > 120:
                self._next(DoorPhase.RETREAT)
            return act(self.contact_point(view, PUSH_LEAD), GRIPPER_CLOSE, 0.6)
        if self.phase == DoorPhase.RETREAT:
            if self._count >= 12:
                self._next(DoorPhase.DONE)  # ``SequenceExpert`` starts it again if the predicate fails
            return act(eef - np.array([*(0.03 * v), -0.05]), GRIPPER_CLOSE, 0.8)
        return idle()
