"""A scripted push: slide a flat object over the table into a region instead of lifting it.

libero_goal task 5 ("push the plate to the front of the stove", ``(On plate_1 main_table_stove_front_region)``):
a plate's rim is 2 cm high and thin, and a rim pinch lifts it a few millimetres before it slips (0/10 as a
pick-and-place). ``PushExpert`` lowers the closed hand into the plate just inside its rim, on the side away
from the goal, with the hand's wide side (the finger axis) across the push, and moves it along the line from the object
to the goal, re-aimed every step from the object's position. A hand that falls off the line (the object
turned away) backs up and sets up again. Actions are ``experts.pose_action`` OSC_POSE deltas.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from distill.policy.experts import GRIPPER_CLOSE, OscScale, PhaseClock, SceneView, hand_pose, pose_action, yaw_down

FLAT_OBJECTS = ("plate",)
"""Categories pushed rather than lifted when their goal region lies on the surface they rest on."""


def pushable(view: SceneView, obj: str, target: str, obj_pos: np.ndarray) -> bool:
    """Whether ``(On obj target)`` is a push: ``obj`` is a flat category and ``target`` a region
    (not an object) within 3 cm of the object's height (the same surface)."""
    if not any(k in obj for k in FLAT_OBJECTS) or target in view.object_names():
        return False
    return abs(float(view.position(target)[2]) - float(obj_pos[2])) < 0.03


class PushPhase(enum.Enum):
    ABOVE = 0  # over the set-up point behind the object
    DOWN = 1  # lower to pushing height
    PUSH = 2  # along the object -> goal line
    BACK = 3  # off the line: lift, then set up again
    RETREAT = 4
    DONE = 5


@dataclass
class PushExpert(PhaseClock):
    """Push ``obj`` until its centre is within ``tolerance`` of ``target``'s (world xy, metres).

    Args:
        obj, target: names from the BDDL problem (``target`` a region on the object's surface).
        scale: the controller's action scaling.
        speed: translation action cap while pushing (units of ``scale.pos`` per step).
        tolerance: how close (m) the object's centre must come to the region's centre.
        inset: how far (m) inside the object's edge the hand's centre goes down: a plate is pushed by
            its rim from the inside, so the hand needs no room beyond the plate (where the arm is
            often out of reach).
    """

    obj: str
    target: str
    scale: OscScale = field(default_factory=OscScale)
    speed: float = 0.5
    tolerance: float = 0.015
    inset: float = 0.025
    phase: PushPhase = PushPhase.ABOVE
    _count: int = 0
    _trail: list = field(default_factory=list)
    _radius: float = 0.0
    _push_z: float = 0.0
    _R: np.ndarray | None = None
    _setup: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.phase == PushPhase.DONE

    @property
    def grasp_label(self) -> str | None:
        return None

    def start(self, obs: dict, view: SceneView) -> None:
        lo, hi = view.extent(self.obj)
        self._radius = float(np.max(hi[:2] - lo[:2]) / 2)
        self._push_z = float(lo[2]) + 0.015  # fingertips just over the plate's floor, against the rim
        self._plan(obs, view)

    def _plan(self, obs: dict, view: SceneView) -> None:
        """Set-up point and hand orientation from where the object is now."""
        obj = np.asarray(obs[f"{self.obj}_pos"], np.float64)
        u = self._direction(obj, view)
        self._setup = np.array([*(obj[:2] - u * (self._radius - self.inset)), self._push_z])
        self._R = yaw_down(float(np.arctan2(u[1], u[0])))  # finger axis (hand y) across the push
        self._next(PushPhase.ABOVE)

    def _direction(self, obj: np.ndarray, view: SceneView) -> np.ndarray:
        d = view.position(self.target)[:2] - obj[:2]
        n = np.linalg.norm(d)
        return d / n if n > 1e-6 else np.array([1.0, 0.0])

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        if self._R is None:
            self.start(obs, view)
        eef, quat = hand_pose(obs)
        obj = np.asarray(obs[f"{self.obj}_pos"], np.float64)
        goal = view.position(self.target)
        self._count += 1

        def act(p, speed=1.0):
            return pose_action(self.scale, eef, quat, p, self._R, GRIPPER_CLOSE, speed)

        left = np.linalg.norm(goal[:2] - obj[:2])
        arrived = left < self.tolerance or (self.phase == PushPhase.PUSH and view.holds(["on", self.obj, self.target]))
        if self.phase in (PushPhase.ABOVE, PushPhase.DOWN, PushPhase.PUSH) and arrived:
            self._next(PushPhase.RETREAT)
        if self.phase == PushPhase.ABOVE:
            above = self._setup + [0.0, 0.0, 0.08]
            if np.linalg.norm(above - eef) < 0.01 or self._count > 60:
                self._next(PushPhase.DOWN)
            return act(above)
        if self.phase == PushPhase.DOWN:
            if np.linalg.norm(self._setup - eef) < 0.008 or self._count > 40:
                self._next(PushPhase.PUSH)
            return act(self._setup, 0.7)
        if self.phase == PushPhase.PUSH:
            u = self._direction(obj, view)
            rel = eef[:2] - obj[:2]
            lateral = abs(rel @ np.array([-u[1], u[0]]))
            # Off the line (the object turned), or past the far rim (the hand rode over it and went on alone:
            # libero_goal task 5, init state 4, 60 cm past the plate): set up again.
            overtook = float(rel @ u) > self._radius + 0.02
            if lateral > 0.04 or overtook or self._count > 150:
                self._next(PushPhase.BACK)
                return act(eef + [0.0, 0.0, 0.05])
            # the hand's foot on the object -> goal line, a step farther toward the goal (this also
            # steers it back onto the line)
            on_line = obj[:2] + u * float(rel @ u)
            return act(np.array([*(on_line + u * min(left, 0.02)), self._push_z]), self.speed)
        if self.phase == PushPhase.BACK:
            if eef[2] > self._push_z + 0.06 or self._count > 20:
                self._plan(obs, view)
            return act(np.array([*eef[:2], self._push_z + 0.08]))
        if self.phase == PushPhase.RETREAT:
            if self._count >= 15:
                self._next(PushPhase.DONE)
            return act(eef + [0.0, 0.0, 0.05], 0.5)
        return np.concatenate([np.zeros(6), [GRIPPER_CLOSE]])
