"""Render one clip of a LIBERO scene: choose the state, move the arm or the camera, render T frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distill.data.camera_paths import CameraPath, PathKind, make_free_path
from distill.data.config import RenderConfig
from distill.data.libero_scene import AGENT_CAMERA, WRIST_CAMERA, LiberoScene
from distill.data.plan import ClipSpec

MAX_PENETRATION_M = 0.005
"""A kinematic arm pose is rejected if the arm sinks deeper than this into anything."""
CAMERA_CLEARANCE_M = 0.08
"""Free cameras keep at least this much free space between them and the first geom towards the target."""

PATH_ATTEMPTS = 8
GOOD_CLEARANCE_RATIO = 0.75
"""A free path is resampled (up to ``PATH_ATTEMPTS`` times, keeping the best) unless its eyes move in by less than 25 %."""


@dataclass
class Clip:
    """A rendered clip. Shapes: T frames of H x W."""

    rgb: np.ndarray  # [T, H, W, 3] uint8
    depth: np.ndarray  # [T, H, W] float32, metres, z-depth, 0 = invalid
    K: np.ndarray  # [T, 3, 3] float64, pixels, half-pixel convention
    T_wc: np.ndarray  # [T, 4, 4] float64, world-from-camera, OpenCV axes
    meta: dict  # init_state, path_kind, static, camera, ...


def _jitter_arm(scene: LiberoScene, rng: np.random.Generator, amplitude: float) -> None:
    """Offset the arm joints by up to ``amplitude`` rad; halve until it penetrates nothing."""
    q0 = scene.arm_qpos
    offset = rng.uniform(-amplitude, amplitude, q0.shape)
    for _ in range(4):
        scene.set_arm_qpos(q0 + offset)
        if scene.robot_penetration() <= MAX_PENETRATION_M:
            return
        offset *= 0.5
    scene.set_arm_qpos(q0)


def _arm_trajectory(scene: LiberoScene, rng: np.random.Generator, n_frames: int, amplitude: float) -> np.ndarray:
    """Scripted joint trajectory ``[T, 7]``: smooth sinusoids from the current pose, collision-checked."""
    q0 = scene.arm_qpos
    amp = rng.uniform(0.3, 1.0, q0.shape) * amplitude * rng.choice([-1.0, 1.0], q0.shape)
    freq = rng.uniform(0.3, 1.0, q0.shape)
    phase = rng.uniform(0, 2 * np.pi, q0.shape)
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    for _ in range(5):
        traj = q0 + amp * (np.sin(2 * np.pi * freq * t + phase) - np.sin(phase))
        ok = True
        for q in traj:
            scene.set_arm_qpos(q)
            if scene.robot_penetration() > MAX_PENETRATION_M:
                ok = False
                break
        if ok:
            return traj
        amp *= 0.5
    return np.repeat(q0[None], n_frames, 0)


def _clear_path(scene: LiberoScene, path: CameraPath) -> tuple[CameraPath, float]:
    """Pull the eyes towards the targets (one common ratio, so the path stays smooth) until no geom sits in between."""
    ratio = 1.0
    for eye, target in zip(path.eye, path.target):
        offset = eye - target
        r = float(np.linalg.norm(offset))
        direction = offset / r
        skip = 0.25  # start the ray off the target point: it may lie inside an object, and low objects near it may hide it
        free = skip + scene.free_distance(target + skip * direction, direction)
        ratio = min(ratio, (free - CAMERA_CLEARANCE_M) / r)
    ratio = max(ratio, 0.2)
    return (path.scaled_towards_target(ratio) if ratio < 1.0 else path), ratio


def render_clip(scene: LiberoScene, init_states: np.ndarray, spec: ClipSpec, cfg: RenderConfig) -> Clip:
    """Render ``spec`` in ``scene`` (deterministic given the spec's seed and the config)."""
    rng = np.random.default_rng(spec.seed)
    init_id = int(rng.integers(len(init_states)))
    scene.set_state(init_states[init_id])
    _jitter_arm(scene, rng, cfg.arm_jitter_rad)
    T = cfg.frames
    frames = []
    meta: dict = {"init_state": init_id, "path_kind": spec.kind.value, "static": not spec.kind.moves_arm}
    if spec.kind.is_free_camera:
        centroid = scene.object_centroid()
        best = None
        for _ in range(PATH_ATTEMPTS):  # resample paths that would have to be pulled in much
            candidate = _clear_path(scene, make_free_path(spec.kind, rng, centroid, T, cfg.path_ranges))
            if best is None or candidate[1] > best[1]:
                best = candidate
            if best[1] >= GOOD_CLEARANCE_RATIO:
                break
        path, ratio = best
        poses = path.poses()
        meta.update(camera="galleryview (free)", clearance_ratio=round(ratio, 4))
        for k in range(T):
            scene.pose_free_camera(poses[k], float(path.fov_y_deg[k]))
            frames.append(scene.render(scene.free_camera_id))
    else:
        cam_name = WRIST_CAMERA if spec.kind == PathKind.WRIST else AGENT_CAMERA
        traj = _arm_trajectory(scene, rng, T, cfg.arm_motion_rad)
        cam = scene.camera_id(cam_name)
        meta.update(camera=cam_name)
        for q in traj:
            scene.set_arm_qpos(q)
            frames.append(scene.render(cam))
    rgb, depth, K, T_wc = (np.stack(x) for x in zip(*frames))
    return Clip(rgb=rgb, depth=depth, K=K, T_wc=T_wc, meta=meta)
