"""A compiled procedural scene: object placement, kinematic arms, cameras, RGB + exact depth renders.

Objects are placed after compiling, from their true extents (mesh vertices or primitive sizes):
each sits on its surface at a free spot (discs in the plane do not overlap); one that finds no
spot is hidden (moved to the hidden geom group: neither drawn nor hit by rays). Arms are posed
kinematically around a ready pose; a pose where an arm penetrates the room, furniture or another
arm by more than ``MAX_PENETRATION_M`` is shrunk towards the ready pose. Cameras, intrinsics and
the OpenCV conventions are those of :mod:`distill.data.libero_scene` (``K``, ``T_wc`` read back
from what MuJoCo rendered; pixel centres at (j + 0.5, i + 0.5)).
"""

from __future__ import annotations

import mujoco
import numpy as np

from distill.data.libero_scene import HIDDEN_GROUP, _hide_transparent_geoms, _scene_option
from distill.data.offscreen import OffscreenRenderer
from distill.data.procedural.mjcf import FREE_CAMERA, SceneInfo
from distill.data.scene_camera import SceneCameras

MAX_PENETRATION_M = 0.005
NEAR_M, FAR_M = 0.01, 30.0
"""Clip planes (metres): close-up cameras see down to 1 cm; rooms are far smaller than 30 m."""


class ProceduralScene(SceneCameras):
    """A compiled scene with a renderer. ``rng`` places the objects (deterministic per seed)."""

    def __init__(self, spec: mujoco.MjSpec, info: SceneInfo, width: int, height: int, rgb_msaa: bool, rng: np.random.Generator):
        self.model: mujoco.MjModel = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.info = info
        m = self.model
        m.vis.map.znear = NEAR_M / m.stat.extent
        m.vis.map.zfar = FAR_M / m.stat.extent
        self.width, self.height = width, height
        self.n_hidden = _hide_transparent_geoms(m)
        self.arm_qpos_ids, self.arm_joint_ids, self.ready = [], [], []
        for r in info.robots:
            jids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in r["joints"]]
            self.arm_joint_ids += jids
            self.arm_qpos_ids += [int(m.jnt_qposadr[j]) for j in jids]
            self.ready += r["ready_qpos"]
        self.arm_qpos_ids = np.asarray(self.arm_qpos_ids, np.int64)
        self.arm_joint_ids = np.asarray(self.arm_joint_ids, np.int64)
        self.ready = np.asarray(self.ready, np.float64)
        robot_roots = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, r["prefix"] + "base") for r in info.robots]
        self._robot_of_body = np.full(m.nbody, -1)
        for k, root in enumerate(robot_roots):
            for b in range(m.nbody):
                if self._has_ancestor(b, root):
                    self._robot_of_body[b] = k
        self._pedestals = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, r["prefix"] + "pedestal") for r in info.robots}
        self._free_cam = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, FREE_CAMERA)
        self.set_arm_qpos(self.ready)
        self.n_dropped = self._place_objects(rng)
        mujoco.mj_forward(m, self.data)
        self.renderer = OffscreenRenderer(m, self.data, width, height, rgb_msaa, _scene_option(m))

    def _has_ancestor(self, body: int, ancestor: int) -> bool:
        while body > 0:
            if body == ancestor:
                return True
            body = int(self.model.body_parentid[body])
        return False

    # ------------------------------------------------------------ objects
    def _body_points(self, body: int) -> np.ndarray:
        """Corner / vertex points ``[N, 3]`` (world) of a body's drawn geoms."""
        m, d = self.model, self.data
        pts = []
        for g in np.nonzero((m.geom_bodyid == body) & (m.geom_group != HIDDEN_GROUP))[0]:
            if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
                mid = m.geom_dataid[g]
                local = m.mesh_vert[m.mesh_vertadr[mid]: m.mesh_vertadr[mid] + m.mesh_vertnum[mid]]
            else:
                c, h = m.geom_aabb[g, :3], m.geom_aabb[g, 3:]
                local = c + h * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
            pts.append(local @ d.geom_xmat[g].reshape(3, 3).T + d.geom_xpos[g])
        return np.concatenate(pts) if pts else np.zeros((0, 3))

    def _place_objects(self, rng: np.random.Generator) -> int:
        """Put every object on its surface at a free spot; returns how many found none (hidden)."""
        m, d = self.model, self.data
        mujoco.mj_kinematics(m, d)
        surfaces = {s.name: s for s in self.info.surfaces}
        placed: list[tuple[np.ndarray, float]] = []
        dropped = 0
        for obj in self.info.objects:
            body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, obj["body"])
            pts = self._body_points(body)
            if len(pts) == 0:
                continue
            s = surfaces[obj["surface"]]
            origin = d.xpos[body].copy()
            centre = 0.5 * (pts[:, :2].min(0) + pts[:, :2].max(0))
            radius = float(np.linalg.norm(pts[:, :2] - centre, axis=1).max())
            c, sn = np.cos(s.yaw), np.sin(s.yaw)
            spot = None
            for _ in range(30):
                free = np.maximum(np.array(s.half) - radius, 0.0)
                u = rng.uniform(-1, 1, 2) * free
                xy = np.array(s.xy) + [c * u[0] - sn * u[1], sn * u[0] + c * u[1]]
                if all(np.linalg.norm(xy - p) > radius + r for p, r in placed):
                    spot = xy
                    break
            if spot is None:
                m.geom_group[m.geom_bodyid == body] = HIDDEN_GROUP
                dropped += 1
                continue
            placed.append((spot, radius))
            shift = np.array([spot[0] - centre[0], spot[1] - centre[1], s.top_z - pts[:, 2].min()])
            m.body_pos[body] = origin + shift  # objects hang off the world body: body_pos is in world
        return dropped

    def object_points(self) -> np.ndarray:
        """Centres ``[N, 3]`` (world, m) of the visible objects (the things cameras look at)."""
        m = self.model
        out = []
        for obj in self.info.objects:
            b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, obj["body"])
            if np.any((m.geom_bodyid == b) & (m.geom_group != HIDDEN_GROUP)):
                out.append(self.data.xpos[b].copy())
        if not out:
            s = self.info.surfaces[0]
            out.append(np.array([s.xy[0], s.xy[1], s.top_z]))
        return np.asarray(out)

    # ------------------------------------------------------------ arms
    @property
    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[self.arm_qpos_ids].copy()

    def set_arm_qpos(self, q: np.ndarray) -> None:
        """Set all arms' joint angles (clipped to their ranges) kinematically and run ``mj_forward``."""
        if len(self.arm_qpos_ids):
            lo, hi = self.model.jnt_range[self.arm_joint_ids].T
            limited = self.model.jnt_limited[self.arm_joint_ids].astype(bool)
            self.data.qpos[self.arm_qpos_ids] = np.where(limited, np.clip(q, lo, hi), q)
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def robot_penetration(self) -> float:
        """Deepest penetration (m, >= 0) between an arm and anything not of the same arm (its pedestal aside)."""
        worst = 0.0
        for k in range(self.data.ncon):
            c = self.data.contact[k]
            r1 = self._robot_of_body[self.model.geom_bodyid[c.geom1]]
            r2 = self._robot_of_body[self.model.geom_bodyid[c.geom2]]
            if r1 != r2 and (r1 >= 0 or r2 >= 0) and c.geom1 not in self._pedestals and c.geom2 not in self._pedestals:
                worst = max(worst, -float(c.dist))
        return worst

    def first_hit(self, start: np.ndarray, direction: np.ndarray) -> tuple[float, int]:
        """``(distance m, geom id)`` of the first drawn geom along unit ``direction`` from ``start``; ``(inf, -1)`` if none."""
        groups = np.zeros(6, np.uint8)
        groups[[1, 2]] = 1
        geomid = np.zeros(1, np.int32)
        t = mujoco.mj_ray(self.model, self.data, np.asarray(start, np.float64), np.asarray(direction, np.float64), groups, 1, -1, geomid)
        return (float("inf"), -1) if t < 0 else (float(t), int(geomid[0]))

    def free_distance(self, start: np.ndarray, direction: np.ndarray) -> float:
        """Distance (m) along unit ``direction`` from ``start`` to the first drawn geom; inf if none."""
        return self.first_hit(start, direction)[0]

    def is_workspace_geom(self, geom: int) -> bool:
        """True for the table, the counter and the objects (what a wrist camera should look at)."""
        name = self.model.geom(geom).name
        body = self.model.body(int(self.model.geom_bodyid[geom])).name
        return name.startswith(("table", "counter")) or body.startswith("obj")

    # ------------------------------------------------------------ cameras
    def camera_id(self, name: str) -> int:
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            raise KeyError(f"camera {name!r} not in the procedural scene")
        return cid

    def close(self) -> None:
        self.renderer.close()
