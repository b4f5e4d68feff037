"""Scripted experts for LIBERO's articulated goals: ``Open`` / ``Close`` a drawer, ``TurnOn`` a
stove knob.

Everything is read from the MuJoCo model and LIBERO's object properties, not from names:

- A **drawer** is a slide joint. Its body moves by ``qpos * axis`` (world, metres), so it opens
  toward ``sign(q_open - q_close) * axis`` (``pull_direction``), where ``q_open`` / ``q_close``
  are the middles of the object's ``default_open_ranges`` / ``default_close_ranges`` (LIBERO's
  ``is_open`` / ``is_close`` compare ``qpos`` with those ranges). The handle is the drawer body's
  collision geom that sticks out farthest along that direction. The hand points horizontally
  into the drawer (``R_into``), fingers closing vertically across the handle bar, closes, moves
  along the pull direction until the joint reaches its goal, releases and backs off.
- A **knob** is a hinge about world z with a raised grip bar (``KnobExpert``). The hand, pointing
  down, grasps the bar across at the axis (``grip_yaw``) and twists about the vertical until
  ``qpos`` passes the ``default_turnon_ranges`` minimum by ``KNOB_MARGIN`` (``TurnOn``). ``TurnOff`` appears in no goal of libero_goal or libero_10 and
  is not scripted: LIBERO's flat stove counts as off only below qpos 0, within 5 mrad of its limit.

Actions are ``experts.pose_action``'s OSC_POSE deltas (world frame; 0.05 m, 0.5 rad per unit).
Each expert's ``phase`` is an ``ArtPhase`` (a plain Enum: never in ``experts.FREE_SPACE_PHASES``,
so DART noise is not injected while the hand holds a handle).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from distill.policy.experts import (
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    R_DOWN,
    OscScale,
    PhaseClock,
    SceneView,
    UnsupportedTask,
    hand_pose,
    idle,
    pose_action,
    rotvec_from_matrix,
    yaw_down,
)
from vega_ros.geometry import axis_angle_to_matrix, quat_to_matrix

KNOB_MARGIN = 0.3  # radians past LIBERO's on / off threshold the knob is turned
DRAWER_MARGIN = 0.01  # metres past the middle of the open / close range the hand keeps pulling


class ArtPhase(enum.Enum):
    APPROACH = "approach"  # free space, to the pre-grasp / pre-push point
    INSERT = "insert"  # straight in (drawer) or down (knob)
    GRIP = "grip"
    MOVE = "move"  # pull / push the joint toward its goal
    RELEASE = "release"
    RETREAT = "retreat"
    DONE = "done"


@dataclass(frozen=True)
class JointInfo:
    """One articulation joint of a LIBERO object, in the world frame at the current state."""

    name: str
    kind: str  # "slide" or "hinge"
    axis: np.ndarray  # [3] unit, world; qpos > 0 moves (slide, m) or turns (hinge, rad, right hand) along it
    anchor: np.ndarray  # [3] world, metres: a point on the axis
    body: int  # MuJoCo body id the joint moves
    qpos: float  # metres (slide) or radians (hinge)


def joint_goal_reached(view: SceneView, joint: str, q_goal: float, predicate: list[str] | None) -> bool:
    """``joint`` is within ``DRAWER_MARGIN`` of ``q_goal`` (m or rad) and, if given, ``predicate`` holds.

    Both: a push that stopped within the margin of the close range's middle but 1 mm short of the
    range itself (libero_10 task 3: q = -0.0012 against a range from 0) left the predicate false."""
    close_enough = abs(joint_info(view, joint).qpos - q_goal) < DRAWER_MARGIN
    return close_enough and (predicate is None or view.holds(predicate))


def joint_info(view: SceneView, joint: str) -> JointInfo:
    """Read a slide or hinge joint from the model and the current data."""
    import mujoco

    m, d = view.env.sim.model._model, view.env.sim.data._data
    j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)
    if j < 0:
        raise KeyError(f"no joint {joint!r} in this scene")
    kinds = {int(mujoco.mjtJoint.mjJNT_SLIDE): "slide", int(mujoco.mjtJoint.mjJNT_HINGE): "hinge"}
    if int(m.jnt_type[j]) not in kinds:
        raise ValueError(f"joint {joint!r} is neither slide nor hinge")
    # xaxis / xanchor: the joint's axis and anchor in the world frame after the last forward pass.
    return JointInfo(name=joint, kind=kinds[int(m.jnt_type[j])], axis=np.array(d.xaxis[j], np.float64),
                     anchor=np.array(d.xanchor[j], np.float64), body=int(m.jnt_bodyid[j]),
                     qpos=float(d.qpos[m.jnt_qposadr[j]]))


def articulation_of(view: SceneView, name: str) -> tuple[list[str], dict]:
    """The joints a predicate argument drives and the owning LIBERO object's ``articulation`` properties.

    ``name``: a region site of an articulated fixture (``wooden_cabinet_1_middle_region``: the
    middle drawer's joint) or the fixture itself (``flat_stove_1``: all its joints).
    """
    env = view.env
    if name in env.object_sites_dict:
        site = env.object_sites_dict[name]
        joints, owner = list(site.joints), env.get_object(site.parent_name)
    else:
        owner = env.get_object(name)
        if owner is None:
            raise UnsupportedTask(f"{name!r} is no object, fixture or region of this scene")
        joints = list(getattr(owner, "joints", []) or [])
    props = getattr(owner, "object_properties", {}).get("articulation", {})
    joints = [j for j in joints if _is_articulation(view, j)]
    if not joints:
        raise UnsupportedTask(f"{name!r} has no slide or hinge joint to articulate")
    return joints, props


def _is_articulation(view: SceneView, joint: str) -> bool:
    import mujoco

    m = view.env.sim.model._model
    j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)
    return j >= 0 and int(m.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_SLIDE), int(mujoco.mjtJoint.mjJNT_HINGE))


def range_middle(r) -> float:
    """The middle of a LIBERO ``[lo, hi]`` range (``default_open_ranges`` etc.), in qpos units."""
    r = np.asarray(r, np.float64)
    if r.shape != (2,):
        raise ValueError(f"a range is [lo, hi], got {r!r}")
    return float(r.mean())


def pull_direction(axis: np.ndarray, q_from: float, q_to: float) -> np.ndarray:
    """World direction ``[3]`` (unit) a slide joint's body moves when ``qpos`` goes ``q_from`` -> ``q_to``.

    The body is displaced by ``qpos * axis``; e.g. LIBERO's wooden cabinet drawers have axis
    ``-y`` and open toward negative qpos, so they open toward ``+y``.
    """
    a = np.asarray(axis, np.float64)
    n = np.linalg.norm(a)
    if n < 1e-9 or q_to == q_from:
        raise ValueError("need a nonzero axis and q_to != q_from")
    return np.sign(q_to - q_from) * a / n


def R_into(direction: np.ndarray) -> np.ndarray:
    """Hand orientation ``[3, 3]`` pointing horizontally along ``direction`` (world), fingers
    closing along world z (a pinch across a horizontal handle bar).

    The hand's z axis is its approach axis and its y axis the finger axis (as in ``R_DOWN``).
    For ``direction = -y`` this is ``R_DOWN`` turned -90 degrees about world x.
    """
    z = np.array([direction[0], direction[1], 0.0], np.float64)
    z /= np.linalg.norm(z)
    y = np.array([0.0, 0.0, 1.0])
    return np.column_stack([np.cross(y, z), y, z])


def rotation_error(R_target: np.ndarray, eef_quat_xyzw: np.ndarray) -> float:
    """Angle (radians) between the hand's orientation and ``R_target``."""
    return float(np.linalg.norm(rotvec_from_matrix(R_target @ quat_to_matrix(eef_quat_xyzw).T)))


def _body_geoms(view: SceneView, body: int) -> list[tuple[np.ndarray, int]]:
    """World centres ``[3]`` and ids of the collision geoms of ``body``."""
    m, d = view.env.sim.model._model, view.env.sim.data._data
    return [(np.array(d.geom_xpos[g], np.float64), g) for g in range(m.ngeom)
            if int(m.geom_bodyid[g]) == body and not (m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0)]


def farthest_along(points: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> int:
    """Index of the point ``[N, 3]`` that lies farthest from ``origin`` along ``direction``."""
    return int(np.argmax((np.asarray(points) - origin) @ np.asarray(direction)))


def farthest_from_axis(points: np.ndarray, anchor: np.ndarray, axis: np.ndarray) -> int:
    """Index of the point ``[N, 3]`` farthest from the line through ``anchor`` along ``axis`` (unit)."""
    v = np.asarray(points) - anchor
    perp = v - np.outer(v @ axis, axis)
    return int(np.argmax(np.linalg.norm(perp, axis=1)))


# ----------------------------------------------------------------------------- drawers


@dataclass
class DrawerExpert(PhaseClock):
    """Open or close a drawer (a slide joint) to ``q_goal`` by its handle.

    Args:
        joint: the drawer's slide joint.
        q_goal: the joint position to reach (metres), e.g. the middle of ``default_open_ranges``.
        predicate: the BDDL predicate that ends the move (``['open', region]``), checked with
            LIBERO's own evaluation; None: only ``q_goal`` counts.
        scale: the controller's action scaling.
        standoff: how far in front of the handle (m, along the pull direction) the hand lines up.
        push: push the drawer by its handle with the closed hand pointing down (``Close``: nothing
            to hold, and the hand need not point into a cabinet that may face away from the robot)
            instead of grasping the handle (``Open``: a pull needs a grip).
        push_gap: in push mode, the hand's grip site starts this far (m) behind the handle's centre.
        push_tilt: in push mode, the hand leans this far (radians) from pointing down, fingertips
            ahead (toward the push), so the wrist and forearm trail behind and above: pointing
            straight down, the forearm met the top of the cabinet before libero_10 task 3's bottom
            drawer was shut (5 cm short; the predicate failed in 10/10 episodes).
    """

    joint: str
    q_goal: float
    predicate: list[str] | None = None
    scale: OscScale = field(default_factory=OscScale)
    standoff: float = 0.06
    push: bool = False
    push_gap: float = 0.03
    push_tilt: float = np.radians(35.0)
    phase: ArtPhase = ArtPhase.APPROACH
    grasp_label: str | None = None  # demos record the rim grasp of pick-and-place; a drawer has none
    _count: int = 0
    _pull: np.ndarray | None = None  # [3] unit, world: the way the drawer opens
    _dir: np.ndarray | None = None  # [3] unit, world: the way the hand moves it now (toward q_goal)
    _R: np.ndarray | None = None
    _handle_offset: np.ndarray | None = None  # [3] world: handle centre minus the drawer body origin
    _trail: list = field(default_factory=list)
    _retries: int = 1
    _retreat_to: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.phase == ArtPhase.DONE

    def start(self, obs: dict, view: SceneView) -> None:
        info = joint_info(view, self.joint)
        if info.kind != "slide":
            raise UnsupportedTask(f"joint {self.joint!r} is a {info.kind}, not a drawer's slide")
        q_open, q_close = self._ends(view)
        self._pull = pull_direction(info.axis, q_close, q_open)
        if abs(self._pull[2]) > 0.3:
            raise UnsupportedTask(f"drawer joint {self.joint!r} slides along {np.round(self._pull, 2)}, not horizontally")
        self._dir = np.sign(self.q_goal - info.qpos) * info.axis if self.q_goal != info.qpos else self._pull
        geoms = _body_geoms(view, info.body)
        body_pos = np.array(view.env.sim.data._data.xpos[info.body], np.float64)
        handle = geoms[farthest_along(np.array([p for p, _ in geoms]), body_pos, self._pull)][0]
        self._handle_offset = handle - body_pos
        if self.push:  # pointing down, the hand's long (finger) axis across the push
            down = yaw_down(grip_yaw(self._dir[:2], hand_yaw(np.asarray(obs["robot0_eef_quat"], np.float64))))
            ahead = np.array([*self._dir[:2], 0.0]) / (np.linalg.norm(self._dir[:2]) or 1.0)
            lean = np.cross([0.0, 0.0, -1.0], ahead)  # turns the pointing axis (-z) toward the push
            self._R = axis_angle_to_matrix(lean, self.push_tilt) @ down
        else:
            self._R = R_into(-self._pull)
        self._next(ArtPhase.APPROACH)

    def _ends(self, view: SceneView) -> tuple[float, float]:
        """``(q_open, q_close)``: the middles of the drawer's open and close ranges."""
        owner = _owner_of_joint(view, self.joint)
        props = owner.object_properties["articulation"]
        return range_middle(props["default_open_ranges"]), range_middle(props["default_close_ranges"])

    def handle(self, view: SceneView) -> np.ndarray:
        """The handle's centre now (world, m): it moves with the drawer."""
        body = joint_info(view, self.joint).body
        return np.array(view.env.sim.data._data.xpos[body], np.float64) + self._handle_offset

    def reached(self, view: SceneView) -> bool:
        return joint_goal_reached(view, self.joint, self.q_goal, self.predicate)

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        if self._pull is None:
            self.start(obs, view)
        eef, quat = hand_pose(obs)
        self._count += 1
        stalled = self._stalled(eef)
        handle = self.handle(view)

        def act(p, grip, speed=1.0):
            return pose_action(self.scale, eef, quat, p, self._R, grip, speed)

        if self.push:
            return self._push_act(eef, handle, view, act, stalled)
        if self.phase == ArtPhase.APPROACH:
            front = handle + self._pull * self.standoff
            # Turn first, high and in front: a hand turning beside the cabinet knocks it.
            turned = rotation_error(self._R, quat) < 0.15
            target = front if turned else np.array([*front[:2], max(front[2], eef[2])])
            if (turned and np.linalg.norm(front - eef) < 0.01) or self._count > 80:
                self._next(ArtPhase.INSERT)
            return act(target, GRIPPER_OPEN)
        if self.phase == ArtPhase.INSERT:
            goal = handle - self._pull * 0.005
            if np.linalg.norm(goal - eef) < 0.006 or (stalled and self._count > 6) or self._count > 40:
                self._next(ArtPhase.GRIP)
            return act(goal, GRIPPER_OPEN, 0.7)
        if self.phase == ArtPhase.GRIP:
            if self._count >= 8:
                self._next(ArtPhase.MOVE)
            return act(handle, GRIPPER_CLOSE)
        if self.phase == ArtPhase.MOVE:
            q = joint_info(view, self.joint).qpos
            remaining = abs(self.q_goal - q) + DRAWER_MARGIN
            lost = np.linalg.norm(eef - handle) > 0.04  # the handle slipped out of the hand
            if self.reached(view) or (stalled and self._count > 10) or self._count > 80:
                self._next(ArtPhase.RELEASE)
            elif lost and self._retries > 0:
                self._retries -= 1
                self._next(ArtPhase.APPROACH)
            return act(handle + self._dir * remaining, GRIPPER_CLOSE, 0.6)
        if self.phase == ArtPhase.RELEASE:
            if self._count >= 6:
                self._next(ArtPhase.RETREAT)
            return idle()
        if self.phase == ArtPhase.RETREAT:
            # Back off along the pull direction and up, turning the hand back down (yaw 0): the next
            # primitive (a top-down grasp) descends without waiting for its orientation.
            if self._count == 1:
                self._retreat_to = eef + self._pull * 0.06 + [0, 0, 0.04]
            if (self._count >= 10 and rotation_error(R_DOWN, quat) < 0.1) or self._count >= 30:
                self._next(ArtPhase.DONE)
            return pose_action(self.scale, eef, quat, self._retreat_to, R_DOWN if self._count > 4 else self._R, GRIPPER_OPEN, 0.8)
        return idle()

    def _push_act(self, eef: np.ndarray, handle: np.ndarray, view: SceneView, act, stalled: bool) -> np.ndarray:
        """``DrawerExpert.act`` in push mode: above the spot behind the handle, down, push, back up."""
        behind = handle - self._dir * self.push_gap
        if self.phase == ArtPhase.APPROACH:
            above = behind + [0, 0, 0.08]
            if np.linalg.norm(above - eef) < 0.01 or self._count > 70:
                self._next(ArtPhase.INSERT)
            return act(above, GRIPPER_CLOSE)
        if self.phase == ArtPhase.INSERT:
            if np.linalg.norm(behind - eef) < 0.006 or (stalled and self._count > 6) or self._count > 40:
                self._next(ArtPhase.MOVE)
            return act(behind, GRIPPER_CLOSE, 0.6)
        if self.phase == ArtPhase.MOVE:
            q = joint_info(view, self.joint).qpos
            if self.reached(view) or (stalled and self._count > 10) or self._count > 80:
                self._next(ArtPhase.RETREAT)
            return act(behind + self._dir * (abs(self.q_goal - q) + DRAWER_MARGIN), GRIPPER_CLOSE, 0.6)
        if self.phase == ArtPhase.RETREAT:
            if self._count >= 10:
                self._next(ArtPhase.DONE)
            return act(eef - self._dir * 0.03 + [0, 0, 0.06], GRIPPER_OPEN, 0.8)
        return idle()


def drawer_front(view: SceneView, region: str) -> np.ndarray:
    """Unit direction ``[3]`` (world) from a drawer region's centre toward the drawer's front (its pull direction)."""
    (joint,), props = articulation_of(view, region)
    info = joint_info(view, joint)
    return pull_direction(info.axis, range_middle(props["default_close_ranges"]), range_middle(props["default_open_ranges"]))


def _owner_of_joint(view: SceneView, joint: str):
    """The LIBERO fixture or object whose ``joints`` (or whose region sites' joints) include ``joint``."""
    env = view.env
    for site in env.object_sites_dict.values():
        if joint in (getattr(site, "joints", None) or []):
            return env.get_object(site.parent_name)
    for obj in [*env.fixtures_dict.values(), *env.objects_dict.values()]:
        if joint in (getattr(obj, "joints", None) or []):
            return obj
    raise KeyError(f"no LIBERO object owns joint {joint!r}")


# ----------------------------------------------------------------------------- knobs


def grip_yaw(bar_dir: np.ndarray, current_yaw: float) -> float:
    """Hand yaw (radians, about world z; ``experts.yaw_down``) whose fingers close across a bar
    lying along ``bar_dir`` (world xy), the one of the two (pi apart) nearest ``current_yaw``.

    At yaw ``psi`` the fingers close along ``(sin psi, -cos psi)``, perpendicular to a bar at angle ``psi``.
    """
    beta = float(np.arctan2(bar_dir[1], bar_dir[0]))
    return float(current_yaw + (beta - current_yaw + np.pi / 2) % np.pi - np.pi / 2)


def hand_yaw(eef_quat_xyzw: np.ndarray) -> float:
    """The yaw (radians) of a hand pointing down: the angle of its x axis in world xy."""
    R = quat_to_matrix(eef_quat_xyzw)
    return float(np.arctan2(R[1, 0], R[0, 0]))


@dataclass
class KnobExpert(PhaseClock):
    """Turn a knob (a hinge about world z) until ``qpos`` passes ``q_goal``: grasp its grip bar from
    above and twist the hand about the vertical.

    The grip bar is the knob body's collision geoms that rise more than 1 cm above its lowest top
    (the base plate); its direction is the one from the axis to the farthest of them.

    Args:
        joint: the knob's hinge joint.
        q_goal: the joint angle to pass (radians).
        predicate: the BDDL predicate that ends the twist (``['turnon', 'flat_stove_1']``), checked
            with LIBERO's own evaluation, in addition to ``q_goal``.
        scale: the controller's action scaling.
        below_top: the hand's grip site goes this far (m) below the top of the grip bar.
        twist_rate: radians of yaw asked per step while twisting.
    """

    joint: str
    q_goal: float
    predicate: list[str] | None = None
    scale: OscScale = field(default_factory=OscScale)
    below_top: float = 0.015
    twist_rate: float = 0.12
    phase: ArtPhase = ArtPhase.APPROACH
    grasp_label: str | None = None
    _count: int = 0
    _turn: float = 0.0  # +1: qpos up (right-handed about the axis), -1 down
    _grip: np.ndarray | None = None  # [3] world: where the grip site holds the bar
    _R: np.ndarray | None = None
    _trail: list = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.phase == ArtPhase.DONE

    def start(self, obs: dict, view: SceneView) -> None:
        info = joint_info(view, self.joint)
        if info.kind != "hinge" or abs(info.axis[2]) < 0.9:
            raise UnsupportedTask(f"knob joint {self.joint!r}: only hinges about the vertical are scripted")
        self._turn = float(np.sign(self.q_goal - info.qpos) * np.sign(info.axis[2])) or 1.0
        tops = _geom_tops(view, info.body)
        bar = [(p, top) for p, top in tops if top > min(t for _, t in tops) + 0.01]
        if not bar:
            raise UnsupportedTask(f"knob joint {self.joint!r}: its body has no raised grip")
        pts = np.array([p for p, _ in bar])
        far = pts[farthest_from_axis(pts, info.anchor, info.axis)]
        yaw = grip_yaw((far - info.anchor)[:2], hand_yaw(np.asarray(obs["robot0_eef_quat"], np.float64)))
        self._R = yaw_down(yaw)
        self._grip = np.array([info.anchor[0], info.anchor[1], max(t for _, t in bar) - self.below_top])
        self._next(ArtPhase.APPROACH)

    def reached(self, view: SceneView) -> bool:
        q = joint_info(view, self.joint).qpos
        passed = self._turn * np.sign(joint_info(view, self.joint).axis[2]) * (q - self.q_goal) >= 0
        return bool(passed) and (self.predicate is None or view.holds(self.predicate))

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        if self._grip is None:
            self.start(obs, view)
        eef, quat = hand_pose(obs)
        self._count += 1

        def act(p, R, grip, speed=1.0):
            return pose_action(self.scale, eef, quat, p, R, grip, speed)

        if self.phase == ArtPhase.APPROACH:
            above = self._grip + [0, 0, 0.08]
            if (np.linalg.norm(above - eef) < 0.01 and rotation_error(self._R, quat) < 0.1) or self._count > 70:
                self._next(ArtPhase.INSERT)
            return act(above, self._R, GRIPPER_OPEN)
        if self.phase == ArtPhase.INSERT:
            stalled = self._stalled(eef, dist=0.002)
            if np.linalg.norm(self._grip - eef) < 0.006 or (stalled and self._count > 6) or self._count > 40:
                self._next(ArtPhase.GRIP)
            return act(self._grip, self._R, GRIPPER_OPEN, 0.6)
        if self.phase == ArtPhase.GRIP:
            if self._count >= 8:
                self._next(ArtPhase.MOVE)
            return act(self._grip, self._R, GRIPPER_CLOSE)
        if self.phase == ArtPhase.MOVE:
            if self.reached(view) or self._count > 60:
                self._next(ArtPhase.RELEASE)
            twist = axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), self._turn * self.twist_rate)
            return act(self._grip, twist @ quat_to_matrix(quat), GRIPPER_CLOSE)
        if self.phase == ArtPhase.RELEASE:
            if self._count >= 6:
                self._next(ArtPhase.RETREAT)
            return idle()
        if self.phase == ArtPhase.RETREAT:
            if self._count >= 10:
                self._next(ArtPhase.DONE)
            return act(eef + [0, 0, 0.05], quat_to_matrix(quat), GRIPPER_OPEN, 0.6)
        return idle()


def _geom_tops(view: SceneView, body: int) -> list[tuple[np.ndarray, float]]:
    """World centre ``[3]`` and top (world z, m) of each collision box of ``body`` (other shapes: bounding sphere)."""
    import mujoco

    m, d = view.env.sim.model._model, view.env.sim.data._data
    out = []
    for p, g in _body_geoms(view, body):
        if int(m.geom_type[g]) == int(mujoco.mjtGeom.mjGEOM_BOX):
            half_z = float(np.abs(d.geom_xmat[g].reshape(3, 3))[2] @ m.geom_size[g])
        else:
            half_z = float(m.geom_rbound[g])
        out.append((p, float(p[2] + half_z)))
    return out


# ----------------------------------------------------------------------------- dispatch


def articulated_expert(pred: list[str], view: SceneView, scale: OscScale):
    """The expert for one unary articulation predicate (``['open', region]``, ``['turnon', stove]``, ...).

    ``UnsupportedTask`` names the predicate when the object is not a drawer or a vertical knob.
    """
    name, arg = pred[0], pred[1]
    joints, props = articulation_of(view, arg)
    kinds = {joint_info(view, j).kind for j in joints}
    if name == "close" and kinds == {"hinge"} and len(joints) == 1 and props.get("default_close_ranges"):
        from distill.policy.doors import HingeDoorExpert

        info = joint_info(view, joints[0])
        if abs(abs(info.axis[2]) - 1.0) < 1e-3:  # a door on a vertical hinge (a microwave's)
            return HingeDoorExpert(joint=joints[0], q_goal=range_middle(props["default_close_ranges"]), predicate=pred, scale=scale)
    if name in ("open", "close"):
        key = "default_open_ranges" if name == "open" else "default_close_ranges"
        if kinds != {"slide"} or len(joints) != 1 or not props.get(key):
            raise UnsupportedTask(f"predicate {pred}: only a single drawer (slide joint) or, for 'close', a door on a "
                                  f"vertical hinge is scripted for {name!r}, "
                                  f"{arg!r} has {sorted(kinds)} joints")
        return DrawerExpert(joint=joints[0], q_goal=range_middle(props[key]), predicate=pred, scale=scale, push=name == "close")
    if name == "turnon":
        if kinds != {"hinge"} or len(joints) != 1 or not props.get("default_turnon_ranges"):
            raise UnsupportedTask(f"predicate {pred}: only a single knob (hinge joint) is scripted, {arg!r} has {len(joints)}")
        q_goal = float(min(props["default_turnon_ranges"])) + KNOB_MARGIN
        return KnobExpert(joint=joints[0], q_goal=q_goal, predicate=pred, scale=scale)
    raise UnsupportedTask(f"predicate {pred}: no articulated expert for {name!r}")
