"""One LIBERO scene in MuJoCo: its state, a kinematic arm, cameras, and RGB + exact depth renders.

The environment is built once per task (``hard_reset=False``, no robosuite renderer, no camera
observations); clips then only set states, joint angles and camera poses and call ``mj_forward``,
so nothing is re-compiled between clips. Free cameras reuse LIBERO's unused world-fixed camera
``galleryview``: its pose and fov are written into the model before each frame.

MuJoCo cameras look along their -z axis with y up; OpenCV cameras along +z with y down, so
``R_wc(OpenCV) = R_wc(MuJoCo) @ diag(1, -1, -1)``. Poses and intrinsics returned here are read
back from what MuJoCo rendered (``data.cam_xpos / cam_xmat``, ``model.cam_fovy``), not from what
was requested. Intrinsics use the half-pixel convention of ``vega_ros.geometry``
(pixel (i, j) has its centre at (j + 0.5, i + 0.5); principal point (W / 2, H / 2)).
"""

from __future__ import annotations

import contextlib
import io
import logging
import random

import mujoco
import numpy as np

from distill.data.offscreen import OffscreenRenderer
from distill.data.scene_camera import SceneCameras
from distill.data.scenes import LiberoTask

FREE_CAMERA = "galleryview"
WRIST_CAMERA = "robot0_eye_in_hand"
AGENT_CAMERA = "agentview"
HIDDEN_GROUP = 5
"""Geom group used to hide transparent geoms (they write no depth, DESIGN.md section 5)."""



def _scene_option(model: mujoco.MjModel) -> mujoco.MjvOption:
    """Visual geoms (robosuite groups 1, 2) only: no collision meshes, no sites, no hidden group."""
    opt = mujoco.MjvOption()
    opt.geomgroup[:] = 0
    opt.geomgroup[1] = 1
    opt.geomgroup[2] = 1
    opt.sitegroup[:] = 0
    return opt


def _hide_transparent_geoms(model: mujoco.MjModel) -> int:
    """Move visible geoms with alpha < 1 (own or material colour) to ``HIDDEN_GROUP``; returns the count."""
    mat = model.geom_matid
    alpha = np.where(mat >= 0, model.mat_rgba[np.maximum(mat, 0), 3], model.geom_rgba[:, 3])
    hide = (alpha < 1.0) & np.isin(model.geom_group, [1, 2])
    model.geom_group[hide] = HIDDEN_GROUP
    return int(hide.sum())


class LiberoScene(SceneCameras):
    """A LIBERO task's MuJoCo scene with a renderer of RGB, z-depth, ``K`` and ``T_wc``.

    Args:
        task: the LIBERO task (its BDDL file builds the scene).
        width, height: image size in pixels.
        rgb_msaa: 4x MSAA for RGB (depth always comes from a non-MSAA pass).
        layout_seed: seeds numpy's global RNG before the scene is built: LIBERO places fixtures
            (cabinets, stoves, ...) at random in their regions when it builds a scene, and init states
            only hold joint positions, so the same seed is needed for the same scene.
    """

    def __init__(self, task: LiberoTask, width: int, height: int, rgb_msaa: bool = False, layout_seed: int = 0):
        from libero.libero.envs.env_wrapper import ControlEnv

        logging.getLogger("robosuite").setLevel(logging.ERROR)
        np.random.seed(layout_seed % 2**32)
        random.seed(layout_seed)
        with contextlib.redirect_stdout(io.StringIO()):
            self.env = ControlEnv(
                bddl_file_name=task.bddl_path,
                has_offscreen_renderer=False,
                use_camera_obs=False,
                camera_names=[],
                hard_reset=False,
            )
        self.task = task
        self.sim = self.env.sim
        self.model: mujoco.MjModel = self.sim.model._model
        self.data: mujoco.MjData = self.sim.data._data
        self.n_hidden = _hide_transparent_geoms(self.model)
        self.renderer = OffscreenRenderer(self.model, self.data, width, height, rgb_msaa, _scene_option(self.model))
        self.width, self.height = width, height
        robot = self.env.robots[0]
        self.arm_qpos_ids = np.asarray(robot._ref_joint_pos_indexes, dtype=np.int64)
        self.arm_joint_ids = np.asarray([self.model.jnt_qposadr.tolist().index(i) for i in self.arm_qpos_ids])
        root = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, robot.robot_model.root_body)
        self._robot_bodies = {b for b in range(self.model.nbody) if self._has_ancestor(b, root)}
        self._free_cam = self.camera_id(FREE_CAMERA)

    # ------------------------------------------------------------------ state

    def _has_ancestor(self, body: int, ancestor: int) -> bool:
        while body > 0:
            if body == ancestor:
                return True
            body = int(self.model.body_parentid[body])
        return False

    def camera_id(self, name: str) -> int:
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            raise KeyError(f"camera {name!r} not in scene {self.task.name}")
        return cid

    def set_state(self, flat_state: np.ndarray) -> None:
        """Set a flattened MuJoCo state (a LIBERO init state: time, qpos, qvel) and run ``mj_forward``."""
        self.sim.set_state_from_flattened(np.asarray(flat_state, dtype=np.float64))
        mujoco.mj_forward(self.model, self.data)

    @property
    def arm_qpos(self) -> np.ndarray:
        """Arm joint angles ``[7]`` (radians)."""
        return self.data.qpos[self.arm_qpos_ids].copy()

    def set_arm_qpos(self, q: np.ndarray) -> None:
        """Set arm joint angles (clipped to the joint ranges) kinematically and run ``mj_forward``."""
        lo, hi = self.model.jnt_range[self.arm_joint_ids].T
        limited = self.model.jnt_limited[self.arm_joint_ids].astype(bool)
        q = np.where(limited, np.clip(q, lo, hi), q)
        self.data.qpos[self.arm_qpos_ids] = q
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def robot_penetration(self) -> float:
        """Deepest penetration (metres, >= 0) between a robot geom and a non-robot geom."""
        worst = 0.0
        for k in range(self.data.ncon):
            c = self.data.contact[k]
            b1 = int(self.model.geom_bodyid[c.geom1])
            b2 = int(self.model.geom_bodyid[c.geom2])
            if (b1 in self._robot_bodies) != (b2 in self._robot_bodies):
                worst = max(worst, -float(c.dist))
        return worst

    def object_centroid(self) -> np.ndarray:
        """Mean position ``[3]`` (world, metres) of the free-floating objects (the task's things).

        A scene without any falls back to the surface point at the centre of ``agentview``'s image.
        """
        free = np.nonzero(self.model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)[0]
        bodies = [int(self.model.jnt_bodyid[j]) for j in free if int(self.model.jnt_bodyid[j]) not in self._robot_bodies]
        if bodies:
            return self.data.xpos[bodies].mean(0)
        _, T_wc = self.camera_pose(self.camera_id(AGENT_CAMERA))
        axis = T_wc[:3, 2]
        return T_wc[:3, 3] + min(self.free_distance(T_wc[:3, 3], axis), 2.0) * axis

    def free_distance(self, start: np.ndarray, direction: np.ndarray) -> float:
        """Distance (metres) along the unit ``direction`` from ``start`` to the first geom; inf if none."""
        geomid = np.zeros(1, np.int32)
        d = mujoco.mj_ray(self.model, self.data, np.asarray(start, np.float64), np.asarray(direction, np.float64), None, 1, -1, geomid)
        return float("inf") if d < 0 else float(d)

    # ------------------------------------------------------------------ cameras: SceneCameras

    def close(self) -> None:
        """Free the renderer and the environment."""
        self.renderer.close()
        with contextlib.suppress(Exception):
            self.env.close()
