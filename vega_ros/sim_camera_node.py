"""SimCameraNode: a simulated camera moving through a scene, with ground truth for evaluation.

Topics (relative to the node, remappable):

  image                   sensor_msgs/Image rgb8 (top row first)
  camera_info             sensor_msgs/CameraInfo (K with the principal point at (W/2, H/2))
  ground_truth/depth      sensor_msgs/Image 32FC1, z-depth in metres (0 = nothing / sky)
  ground_truth/pose       geometry_msgs/PoseStamped: T_wc (camera optical frame in ``world_frame``)

All four messages of one frame carry the same stamp (the node clock when the frame was rendered).

Sources (parameter ``source``):

- ``libero``: a LIBERO task's scene (robosuite 1.4 + MuJoCo, offscreen through ``MUJOCO_GL``):
  the ``camera_name`` camera is moved along the path (its model pose is set, then
  ``sim.forward()``), RGB and depth are rendered, rows flipped (MuJoCo images are bottom-row
  first), depth made metric with ``robosuite.utils.camera_utils.get_real_depth_map`` and the
  pose read back with ``get_camera_extrinsic_matrix`` (world-from-camera, OpenCV axes). The
  depth comes from robosuite's anti-aliased render, so it carries the ~1-3 mm median error
  described in shared/DESIGN.md §5: good enough to score a model, not for training.
- ``synthetic``: a ground plane with a checkerboard and a few coloured boxes, ray-cast exactly
  in numpy (no MuJoCo). Tests use it because its depth is known in closed form.

Neither source needs torch or the training code.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from vega_ros import conversions, geometry
from vega_ros.node_main import run_node
from vega_ros.settings import SimCameraSettings, declare_settings


@dataclass
class RenderedFrame:
    rgb: np.ndarray  # [H, W, 3] uint8, top row first
    depth: np.ndarray  # [H, W] float32 metres, 0 = invalid
    K: np.ndarray  # [3, 3]
    T_wc: np.ndarray  # [4, 4] world-from-camera, OpenCV axes


class CameraPath:
    """Camera poses over time: an orbit (or a dolly) around ``target``, always looking at it."""

    def __init__(self, target: np.ndarray, start_azimuth: float, kind: str = "orbit", radius: float = 1.1,
                 height: float = 0.55, period_s: float = 40.0, arc_deg: float = 60.0):
        self.target = np.asarray(target, dtype=np.float64)
        self.start_azimuth, self.kind = start_azimuth, kind
        self.radius, self.height, self.period, self.arc = radius, height, period_s, math.radians(arc_deg)

    def T_wc(self, t: float) -> np.ndarray:
        phase = math.sin(2.0 * math.pi * t / self.period)
        if self.kind == "orbit":
            az, r = self.start_azimuth + 0.5 * self.arc * phase, self.radius
        else:  # dolly: move in and out along the start direction
            az, r = self.start_azimuth, self.radius * (1.0 + 0.3 * phase)
        eye = self.target + np.array([r * math.cos(az), r * math.sin(az), self.height])
        return geometry.look_at(eye, self.target, up=(0.0, 0.0, 1.0))


class SyntheticScene:
    """Ray-cast ground plane (z = 0, checkerboard) + axis-aligned boxes; exact depth."""

    BOXES = (  # (min corner, max corner, rgb)
        ((-0.35, -0.25, 0.0), (-0.15, -0.05, 0.25), (200, 60, 50)),
        ((0.05, 0.10, 0.0), (0.30, 0.30, 0.12), (60, 170, 80)),
        ((0.10, -0.35, 0.0), (0.22, -0.20, 0.35), (60, 90, 200)),
        ((-0.20, 0.20, 0.0), (-0.05, 0.32, 0.18), (220, 200, 60)),
    )

    def __init__(self, width: int, height: int, fov_y_deg: float):
        self.width, self.height = width, height
        self.K = geometry.intrinsics_from_fov(width, height, fov_y_deg)
        self.target = np.array([0.0, 0.0, 0.1])
        self.start_azimuth = 0.0

    def render(self, T_wc: np.ndarray) -> RenderedFrame:
        h, w = self.height, self.width
        u, v = geometry.pixel_grid(h, w)
        K = self.K
        d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
        R, o = T_wc[:3, :3], T_wc[:3, 3]
        d = d_cam @ R.T  # world direction, scaled so that the camera z component is 1 -> t = z-depth
        t_best = np.full(d.shape[0], np.inf)
        color = np.zeros((d.shape[0], 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_plane = -o[2] / d[:, 2]
            hit = (t_plane > 0) & np.isfinite(t_plane)
            t_best[hit] = t_plane[hit]
            p = o + d * t_plane[:, None]
            checker = ((np.floor(p[:, 0] / 0.1) + np.floor(p[:, 1] / 0.1)) % 2).astype(np.float64)
            color[hit] = (np.array([170.0, 160.0, 150.0]) + 60.0 * checker[hit, None])
            for lo, hi, rgb in self.BOXES:
                lo, hi = np.asarray(lo), np.asarray(hi)
                t1, t2 = (lo - o) / d, (hi - o) / d
                tmin = np.nanmax(np.minimum(t1, t2), axis=1)
                tmax = np.nanmin(np.maximum(t1, t2), axis=1)
                box_hit = (tmax >= tmin) & (tmin > 0) & (tmin < t_best)
                t_best[box_hit] = tmin[box_hit]
                # shade by the face normal: which slab the entry point lies on
                q = o + d[box_hit] * tmin[box_hit, None]
                n_axis = np.argmin(np.minimum(np.abs(q - lo), np.abs(q - hi)), axis=1)
                shade = np.array([0.75, 0.9, 1.0])[n_axis]
                color[box_hit] = np.asarray(rgb, dtype=np.float64) * shade[:, None]
        depth = np.where(np.isfinite(t_best) & (t_best < 50.0), t_best, 0.0).reshape(h, w).astype(np.float32)
        color[depth.reshape(-1) == 0] = (120, 150, 200)
        rgb = np.clip(color, 0, 255).astype(np.uint8).reshape(h, w, 3)
        return RenderedFrame(rgb=rgb, depth=depth, K=K.copy(), T_wc=np.asarray(T_wc, dtype=np.float64))


class LiberoScene:
    """A LIBERO task's scene rendered through robosuite; the named camera is moved each frame."""

    def __init__(self, suite: str, task_index: int, camera_name: str, width: int, height: int, fov_y_deg: float, seed: int):
        import os

        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv
        from robosuite.utils import camera_utils

        from vega_eval.rollout import seeded_reset

        self.camera_utils = camera_utils
        task = benchmark.get_benchmark_dict()[suite]().get_task(task_index)
        bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
        self.task_name = task.name
        self.env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=height, camera_widths=width)
        obs = seeded_reset(self.env, seed)
        self.sim = self.env.env.sim
        self.width, self.height, self.camera_name = width, height, camera_name
        self.cam_id = self.sim.model.camera_name2id(camera_name)
        self.sim.model.cam_fovy[self.cam_id] = fov_y_deg
        objects = [np.asarray(v) for k, v in obs.items() if k.endswith("_pos") and not k.startswith("robot0") and "_to_" not in k]
        self.target = np.mean(objects, axis=0) if objects else np.array([0.0, 0.0, 0.9])
        agent = self.sim.data.cam_xpos[self.sim.model.camera_name2id("agentview")] - self.target
        self.start_azimuth = math.atan2(agent[1], agent[0])
        self.K = camera_utils.get_camera_intrinsic_matrix(self.sim, camera_name, height, width)

    def _set_camera(self, T_wc: np.ndarray) -> None:
        m = self.sim.model
        R_mj = T_wc[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # OpenCV -> MuJoCo camera axes (y up, looking along -z)
        T_w_mj = geometry.make_transform(R_mj, T_wc[:3, 3])
        body = int(m.cam_bodyid[self.cam_id])
        if body != 0:  # camera attached to a body: express the pose in the body's frame
            T_wb = geometry.make_transform(self.sim.data.body_xmat[body].reshape(3, 3), self.sim.data.body_xpos[body])
            T_w_mj = geometry.se3_inverse(T_wb) @ T_w_mj
        q_xyzw = geometry.matrix_to_quat(T_w_mj[:3, :3])
        m.cam_pos[self.cam_id] = T_w_mj[:3, 3]
        m.cam_quat[self.cam_id] = [q_xyzw[3], q_xyzw[0], q_xyzw[1], q_xyzw[2]]  # MuJoCo is w, x, y, z
        self.sim.forward()

    def render(self, T_wc: np.ndarray) -> RenderedFrame:
        self._set_camera(T_wc)
        rgb, zbuf = self.sim.render(width=self.width, height=self.height, camera_name=self.camera_name, depth=True)
        rgb = np.ascontiguousarray(rgb[::-1])
        depth = self.camera_utils.get_real_depth_map(self.sim, np.ascontiguousarray(zbuf[::-1])).astype(np.float32)
        if rgb.max() == 0:
            raise RuntimeError("MuJoCo returned an all-black frame (lost render context?)")
        far = self.sim.model.vis.map.zfar * self.sim.model.stat.extent
        depth[depth >= 0.99 * far] = 0.0
        T_true = self.camera_utils.get_camera_extrinsic_matrix(self.sim, self.camera_name)
        return RenderedFrame(rgb=rgb.astype(np.uint8), depth=depth, K=np.asarray(self.K, dtype=np.float64), T_wc=T_true)

    def close(self) -> None:
        try:
            self.env.close()
        except Exception as e:  # noqa: BLE001 - robosuite's EGL teardown can complain at exit
            print(f"sim_camera: env.close() raised {e!r} (ignored at shutdown)", file=sys.stderr)


def make_scene(s: SimCameraSettings):
    if s.source == "synthetic":
        return SyntheticScene(s.width, s.height, s.fov_y_deg)
    return LiberoScene(s.suite, s.task_index, s.camera_name, s.width, s.height, s.fov_y_deg, s.seed)


class SimCameraNode(Node):
    def __init__(self, node_name: str = "sim_camera", **kwargs):
        super().__init__(node_name, **kwargs)
        self.settings = s = declare_settings(self, SimCameraSettings)
        t0 = time.monotonic()
        self.scene = make_scene(s)
        self.path = CameraPath(self.scene.target, self.scene.start_azimuth, s.path, s.path_radius_m, s.path_height_m,
                               s.path_period_s, s.path_arc_deg)
        qos = s.qos.profile()
        self.pub_image = self.create_publisher(Image, "image", qos)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", qos)
        self.pub_gt_depth = self.create_publisher(Image, "ground_truth/depth", qos)
        self.pub_gt_pose = self.create_publisher(PoseStamped, "ground_truth/pose", qos)
        self.frames = 0
        self.render_ms: list[float] = []
        self._t_start: float | None = None
        self.timer = self.create_timer(1.0 / s.rate_hz, self._tick)
        self.get_logger().info(f"{s.source} scene ready in {time.monotonic() - t0:.1f} s; "
                               f"{s.width}x{s.height} at {s.rate_hz} Hz on {self.resolve_topic_name('image')}")

    def _tick(self) -> None:
        s = self.settings
        if s.max_frames and self.frames >= s.max_frames:
            self.timer.cancel()
            self.get_logger().info(f"published {self.frames} frames; stopping")
            return
        if self._t_start is None:
            self._t_start = time.monotonic()
        t = self.frames / s.rate_hz  # path time advances per frame: the path is the same however slow rendering is
        t0 = time.perf_counter()
        frame = self.scene.render(self.path.T_wc(t))
        self.render_ms.append((time.perf_counter() - t0) * 1e3)
        header = conversions.make_header(self.get_clock().now().to_msg(), s.frame_id)
        info = conversions.intrinsics_to_camera_info(conversions.CameraIntrinsics(K=frame.K, width=s.width, height=s.height), header)
        self.pub_info.publish(info)
        self.pub_gt_depth.publish(conversions.depth_m_to_image(frame.depth, header))
        self.pub_gt_pose.publish(conversions.matrix_to_pose_stamped(frame.T_wc, conversions.make_header(header.stamp, s.world_frame)))
        self.pub_image.publish(conversions.numpy_to_image(frame.rgb, "rgb8", header))
        self.frames += 1

    def destroy_node(self) -> None:
        close = getattr(self.scene, "close", None)
        if close:
            close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(SimCameraNode, args, name="sim_camera")


if __name__ == "__main__":
    main()
