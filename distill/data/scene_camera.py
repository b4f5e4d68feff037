"""The cameras of a rendered MuJoCo scene in OpenCV conventions, shared by the LIBERO and procedural scenes.

MuJoCo cameras look down their -z axis with y up; OpenCV's look down +z with y down:
``R_cv = R_mujoco @ diag(1, -1, -1)``. ``K`` follows from the camera's vertical fov and the image
size, with pixel centres at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import mujoco
import numpy as np

from vega_ros.geometry import intrinsics_from_fov, make_transform, matrix_to_quat

MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


class SceneCameras:
    """Posing the free camera and reading any camera back, for a scene that sets ``model``, ``data``,
    ``renderer`` (an :class:`distill.data.offscreen.OffscreenRenderer`), ``width``, ``height`` and
    ``_free_cam`` (the id of its free camera)."""

    model: mujoco.MjModel
    data: mujoco.MjData
    width: int
    height: int
    _free_cam: int

    @property
    def free_camera_id(self) -> int:
        return self._free_cam

    def pose_free_camera(self, T_wc: np.ndarray, fov_y_deg: float) -> None:
        """Place the free camera at the OpenCV pose ``T_wc [4, 4]`` (world from camera, metres) with
        vertical fov ``fov_y_deg`` (degrees)."""
        R_mj = np.asarray(T_wc, np.float64)[:3, :3] @ MJ_TO_CV
        self.model.cam_pos[self._free_cam] = T_wc[:3, 3]
        self.model.cam_quat[self._free_cam] = np.roll(matrix_to_quat(R_mj), 1)  # MuJoCo order (w, x, y, z)
        self.model.cam_fovy[self._free_cam] = fov_y_deg
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def camera_pose(self, camera_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(K [3, 3], T_wc [4, 4])`` float64 of a model camera as MuJoCo renders it now (OpenCV axes)."""
        K = intrinsics_from_fov(self.width, self.height, float(self.model.cam_fovy[camera_id]))
        R = self.data.cam_xmat[camera_id].reshape(3, 3) @ MJ_TO_CV
        return K, make_transform(R, self.data.cam_xpos[camera_id])

    def render(self, camera_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``rgb [H, W, 3] uint8, depth [H, W] float32 m (0 = invalid), K [3, 3], T_wc [4, 4]`` of a camera."""
        rgb, depth = self.renderer.render(camera_id)
        K, T_wc = self.camera_pose(camera_id)
        return rgb, depth, K, T_wc
