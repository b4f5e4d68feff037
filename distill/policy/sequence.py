"""A scripted expert for multi-predicate BDDL goals: primitives run one after another.

``plan_goal`` turns a goal (``SceneView.goal()``: ``[['open', region], ['in', bowl, region]]``) into
``Step`` s in the order they can be done:

1. ``Open`` steps first, including an implied one for every drawer region a pick-and-place puts
   something into (libero_goal's "open the top drawer and put the bowl inside" states only the
   ``In``): a closed drawer has to open before anything goes in;
2. pick-and-places (``On`` / ``In``) and ``TurnOn`` in the goal's order;
3. ``Close`` steps last (libero_10's "put the bowl in the drawer and close it").

A pick-and-place ``In`` a region behind a hinged door (a microwave) is ``insert.InsertExpert``; a ``Close``
of such a door is ``doors.HingeDoorExpert``; objects put ``On`` one region get places apart
(``shared_place_offsets``).

``SequenceExpert`` runs them in that order. A step is skipped when its predicate already holds,
and it ends once its primitive is done (released and backed off) and its predicate holds,
evaluated by LIBERO itself (``SceneView.holds``). A primitive done without its predicate holding
is started once more from the current scene, then the sequence moves on. Unsupported predicates
raise ``UnsupportedTask`` naming them when the plan is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from distill.policy.experts import IDLE, OscScale, SceneView, UnsupportedTask

ORDER = {"open": 0, "on": 1, "in": 1, "turnon": 1, "close": 2}
"""Stage of each supported predicate: earlier stages run first, the goal's order within a stage."""


@dataclass
class Step:
    """One primitive of a plan: the predicate it makes true and how to build its expert."""

    predicate: list[str]
    make: Callable[[set], object]
    """``make(ran)`` -> an expert with ``act(obs, view)``, ``done`` and ``phase``; ``ran``: the
    predicates (tuples) of the steps whose primitives ran before it (skipped steps are not in it)."""
    implied: bool = False  # not in the goal itself (an ``Open`` a pick-and-place needs first)


def order_steps(predicates: list[list[str]]) -> list[list[str]]:
    """The predicates in execution order (``ORDER``; stable within a stage).

    ``UnsupportedTask`` names the first predicate no primitive handles.
    """
    for p in predicates:
        if p[0] not in ORDER:
            raise UnsupportedTask(f"goal predicate {p}: no scripted expert for {p[0]!r}")
    return sorted(predicates, key=lambda p: ORDER[p[0]])


def with_implied_opens(predicates: list[list[str]], drawer_regions: set[str]) -> list[tuple[list[str], bool]]:
    """The goal's predicates plus an ``Open`` of each drawer region something is put ``In`` / ``On``
    (if the goal does not open it already), each flagged implied or not."""
    out = [(p, False) for p in predicates]
    opened = {p[1] for p in predicates if p[0] == "open"}
    for p in predicates:
        if p[0] in ("in", "on") and p[2] in drawer_regions and p[2] not in opened:
            out.append((["open", p[2]], True))
            opened.add(p[2])
    return out


def drawer_regions(view: SceneView) -> set[str]:
    """Region sites of the scene that lie in a drawer (a site with a slide joint)."""
    from distill.policy.articulated import joint_info

    out = set()
    for name, site in view.env.object_sites_dict.items():
        joints = list(getattr(site, "joints", None) or [])
        try:
            if joints and all(joint_info(view, j).kind == "slide" for j in joints):
                out.add(name)
        except (KeyError, ValueError):
            continue
    return out


DRAWER_PLACE_FORWARD = 0.015
"""Metres toward a drawer's front that an object put in it is placed: a bowl dropped at the region's
centre can rest on the back wall's edge and jam under the cabinet's frame when the drawer closes."""


SHARED_PLACE_SPACING = 0.09
"""Metres between the places of objects put ``On`` one region (libero_10 task 8's two moka pots, 8.2 cm
across, on a 15 cm cook region): put at its centre, the second knocked the first off it."""


def shared_place_offsets(view: SceneView, predicates: list[list[str]]) -> dict[tuple[str, ...], np.ndarray]:
    """Place offsets ``[3]`` (world, m) for objects put ``On`` the same region site: spread along the
    site's longer horizontal axis ``SHARED_PLACE_SPACING`` apart (capped so each stays inside its half
    size), in the order of the objects' positions along that axis now (their carries do not cross).
    Predicates with a target of their own are not in the result."""
    by_target: dict[str, list[list[str]]] = {}
    for p in predicates:
        if p[0] == "on" and len(p) == 3 and p[2] in view.env.object_sites_dict:
            by_target.setdefault(p[2], []).append(p)
    out = {}
    for target, preds in by_target.items():
        if len(preds) < 2:
            continue
        size = np.asarray(view.env.object_sites_dict[target].size, np.float64)
        mat = np.asarray(view.env.sim.data.get_site_xmat(target), np.float64).reshape(3, 3)
        k = int(np.argmax(size[:2]))
        axis = mat[:, k] * np.array([1.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis) or 1.0
        half = min(SHARED_PLACE_SPACING * (len(preds) - 1) / 2, max(size[k] - 0.03, 0.0))
        ticks = np.linspace(-half, half, len(preds))
        along = [float(view.position(p[1]) @ axis) for p in preds]
        for tick, i in zip(ticks, np.argsort(along, kind="stable")):
            out[tuple(preds[i])] = tick * axis
    return out


def behind_door(view: SceneView, region: str) -> bool:
    """Whether a region site lies in a fixture closed by a door on a hinge (a microwave): things go in
    through its side opening (``insert.InsertExpert``), not from above."""
    from distill.policy.articulated import joint_info

    site = view.env.object_sites_dict.get(region)
    owner = view.env.get_object(site.parent_name) if site is not None and getattr(site, "parent_name", None) else None
    for j in list(getattr(owner, "joints", None) or []):
        try:
            if joint_info(view, j).kind == "hinge":
                return True
        except (KeyError, ValueError):
            continue
    return False


def plan_goal(view: SceneView, scale: OscScale, make_pick_place: Callable[..., object]) -> list[Step]:
    """Steps that solve the env's goal (see the module docstring); ``UnsupportedTask`` if a
    predicate has no primitive. ``make_pick_place(obj, target, place_offset)`` builds a
    pick-and-place expert (``place_offset [3]``: world, metres, added to the target's position)."""
    from distill.policy.articulated import articulated_expert, drawer_front
    from distill.policy.insert import InsertExpert, insert_grasp_for

    goal = view.goal()
    objects = set(view.object_names())
    drawers = drawer_regions(view)
    preds = with_implied_opens(goal, drawers)
    order = order_steps([p for p, _ in preds])
    implied = {tuple(p) for p, imp in preds if imp}
    shared = shared_place_offsets(view, goal)
    steps = []
    for p in order:
        if p[0] in ("on", "in"):
            if len(p) != 3 or p[1] not in objects:
                raise UnsupportedTask(f"goal predicate {p}: {p[1]!r} is not a movable object")
            forward = DRAWER_PLACE_FORWARD * drawer_front(view, p[2]) if p[2] in drawers else None
            if p[0] == "in" and behind_door(view, p[2]):
                grasp = insert_grasp_for(p[1])  # raises UnsupportedTask now, not mid-episode
                steps.append(Step(p, lambda ran, p=p, g=grasp: InsertExpert(obj=p[1], target=p[2], grasp=g, scale=scale)))
                continue
            if tuple(p) in shared:
                steps.append(Step(p, lambda ran, p=p, off=shared[tuple(p)]: make_pick_place(p[1], p[2], off)))
                continue
            steps.append(Step(p, lambda ran, p=p, forward=forward: _pick_place(make_pick_place, p, forward, ran)))
        else:
            articulated_expert(p, view, scale)  # raises UnsupportedTask now, not mid-episode
            steps.append(Step(p, lambda ran, p=p: articulated_expert(p, view, scale), implied=tuple(p) in implied))
    return steps


def _pick_place(make_pick_place: Callable[..., object], p: list[str], forward: np.ndarray | None, ran: set):
    """The pick-and-place of ``p``. Into a drawer (``forward``: toward its front, m) that was already
    open (its ``Open`` skipped), it is the lone expert of every earlier demo set (libero_spatial
    task 4): no place offset, no overhang handling. Otherwise it lands ``forward`` and avoids overhangs."""
    if forward is not None and ("open", p[2]) not in ran:
        return make_pick_place(p[1], p[2], np.zeros(3), avoid_overhang=False)
    return make_pick_place(p[1], p[2], np.zeros(3) if forward is None else forward, avoid_overhang=True)




@dataclass
class SequenceExpert:
    """Run ``steps`` one after another (see the module docstring).

    Args:
        steps: the plan (``plan_goal``).
        retries: how many times a step whose primitive finished without its predicate holding is
            started again before the sequence moves on.
    """

    steps: list[Step]
    retries: int = 1
    index: int = 0
    _expert: object | None = None
    _tries: int = 0
    ran: set = field(default_factory=set)  # predicates (tuples) whose primitives were started
    log: list[tuple[int, str]] = field(default_factory=list)  # (step index, event) for debugging and tests

    @property
    def current(self) -> object | None:
        return self._expert

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    @property
    def phase(self):
        """The running primitive's phase (None between primitives and at the end)."""
        return getattr(self._expert, "phase", None)

    @property
    def grasp_label(self) -> str | None:
        """The grasp of the running (or last) pick-and-place, as ``PickPlaceExpert.grasp_label``."""
        return getattr(self._expert, "grasp_label", None)

    @property
    def obj(self) -> str | None:
        """The object of the first pick-and-place step (what ``grasp_modes`` measures the grasp of)."""
        return next((s.predicate[1] for s in self.steps if s.predicate[0] in ("on", "in")), None)

    def resync(self, obs: dict, view: SceneView):
        """``PickPlaceExpert.resync`` for the running pick-and-place (DAgger labelling); the phase otherwise."""
        self.advance(view)
        if hasattr(self._expert, "resync"):
            return self._expert.resync(obs, view)
        return self.phase

    def advance(self, view: SceneView) -> None:
        """Move past finished steps and steps whose predicate already holds; start the next primitive."""
        while self.index < len(self.steps):
            step = self.steps[self.index]
            if self._expert is None:
                if view.holds(step.predicate):
                    self.log.append((self.index, "skipped"))
                    self.index += 1
                    continue
                self._expert, self._tries = step.make(self.ran), 0
                self.ran.add(tuple(step.predicate))
                self.log.append((self.index, "started"))
                return
            if not self._expert.done:
                return
            if view.holds(step.predicate) or self._tries >= self.retries:
                self.log.append((self.index, "holds" if view.holds(step.predicate) else "gave up"))
                self.index, self._expert = self.index + 1, None
                continue
            self._tries += 1
            self._expert = step.make(self.ran)
            self.log.append((self.index, "retried"))
            return

    def act(self, obs: dict, view: SceneView) -> np.ndarray:
        self.advance(view)
        if self._expert is None:
            return IDLE.copy()
        return self._expert.act(obs, view)
