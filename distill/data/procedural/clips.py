"""Camera paths and arm motions of procedural clips: render one clip of a :class:`ProceduralScene`.

Path kinds (``path_kind`` in the index; ``static`` says whether anything moves):

- ``orbit`` / ``arc`` / ``random_walk``  free third-person paths (:mod:`distill.data.camera_paths`), 0.5-2 m, elevation 5-75 deg
- ``top_down``   a slow orbit looking almost straight down (elevation 75-88 deg) from 0.4-1.5 m
- ``close_up``   a random walk 0.15-0.4 m from an object
- ``handheld``   a random walk with hand shake and roll, from slightly below the table to above it (sideways views)
- ``head``       a head camera 1.2-1.7 m above an arm's base, panning over the table while the arms move
- ``fixed``      a fixed third-person camera while the arms move
- ``wrist``      an arm's ``eye_in_hand`` camera (its fov drawn per clip), aimed at the table or an object 0.15-1.2 m away, while the arms move

Every fov is drawn from ``cfg.fov_y_deg`` (35-90 deg by default). Free paths are pulled towards their
target when geometry sits between target and eye (the rule of :mod:`distill.data.clips`). A frame with
less than ``cfg.min_valid_fraction`` valid depth, or non-finite depth, raises ``RenderError``.
"""

from __future__ import annotations

import numpy as np

from distill.data.camera_paths import PathKind, PathRanges, _smooth_knots, make_free_path
from distill.data.clips import Clip, _clear_path
from distill.data.offscreen import RenderError
from distill.data.procedural.config import PATH_KINDS, STATIC_KINDS, ProceduralConfig
from distill.data.procedural.scene import MAX_PENETRATION_M, ProceduralScene
from vega_ros.geometry import look_at

ARM_JITTER_RAD = 0.5
ARM_MOTION_RAD = 0.4
WRIST_MOTION_RAD = 0.2
"""Smaller joint motion for wrist clips, so the camera stays on the table it was aimed at."""
WRIST_SEARCH_RAD = 0.9


def choose_kind(cfg: ProceduralConfig, rng: np.random.Generator, has_robot: bool) -> str:
    """A path kind drawn from ``cfg.path_weights`` (arm kinds only where the scene has an arm)."""
    names = [k for k in PATH_KINDS if cfg.path_weights.get(k, 0) > 0 and (has_robot or k not in ("wrist", "head"))]
    w = np.array([cfg.path_weights[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _pose_arms(scene: ProceduralScene, rng: np.random.Generator) -> None:
    """A random pose around the ready pose; halved towards it until no arm penetrates anything."""
    if not len(scene.ready):
        return
    offset = rng.uniform(-ARM_JITTER_RAD, ARM_JITTER_RAD, scene.ready.shape)
    for _ in range(5):
        scene.set_arm_qpos(scene.ready + offset)
        if scene.robot_penetration() <= MAX_PENETRATION_M:
            return
        offset *= 0.5
    scene.set_arm_qpos(scene.ready)


def _aim_wrist(scene: ProceduralScene, rng: np.random.Generator, cam: int, tries: int = 48) -> None:
    """Pose the arms so the wrist camera ``cam`` looks at the table, the counter or an object 0.15-1.2 m away,
    choosing among ``tries`` collision-free poses around the ready pose the one nearest 0.45 m."""
    best, best_q = np.inf, scene.arm_qpos
    skip = 0.12  # start the ray past the gripper's own fingers
    for _ in range(tries):
        q = scene.ready + rng.uniform(-1.0, 1.0, scene.ready.shape) * WRIST_SEARCH_RAD
        scene.set_arm_qpos(q)
        if scene.robot_penetration() > MAX_PENETRATION_M:
            continue
        _, T_wc = scene.camera_pose(cam)
        d, geom = scene.first_hit(T_wc[:3, 3] + skip * T_wc[:3, 2], T_wc[:3, 2])
        d += skip
        score = abs(d - 0.45) if 0.15 < d < 1.2 and scene.is_workspace_geom(geom) else np.inf
        if score < best:
            best, best_q = score, q
    scene.set_arm_qpos(best_q)


def _arm_trajectory(scene: ProceduralScene, rng: np.random.Generator, n: int, amplitude: float = ARM_MOTION_RAD) -> np.ndarray:
    """Joint trajectory ``[T, J]`` of smooth sinusoids from the current pose (shrunk until collision-free)."""
    q0 = scene.arm_qpos
    amp = rng.uniform(0.3, 1.0, q0.shape) * amplitude * rng.choice([-1.0, 1.0], q0.shape)
    freq, phase = rng.uniform(0.3, 1.0, q0.shape), rng.uniform(0, 2 * np.pi, q0.shape)
    t = np.linspace(0.0, 1.0, n)[:, None]
    for _ in range(4):
        traj = q0 + amp * (np.sin(2 * np.pi * freq * t + phase) - np.sin(phase))
        ok = True
        for q in traj[:: max(1, n // 6)]:
            scene.set_arm_qpos(q)
            if scene.robot_penetration() > MAX_PENETRATION_M:
                ok = False
                break
        if ok:
            return traj
        amp *= 0.5
    return np.repeat(q0[None], n, 0)


def _roll(T_wc: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = T_wc.copy()
    out[:3, :3] = T_wc[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return out


def _free_poses(scene: ProceduralScene, kind: str, rng: np.random.Generator, cfg: ProceduralConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """``T_wc [T, 4, 4]``, fov ``[T]`` and meta of a free-camera path of ``kind``."""
    T = cfg.frames
    points = scene.object_points()
    target = points[int(rng.integers(len(points)))] if kind == "close_up" or rng.uniform() < 0.5 else points.mean(0)
    fov = cfg.fov_y_deg
    ranges = {
        "orbit": (PathKind.ORBIT, PathRanges((0.5, 2.0), (5.0, 75.0), fov, 0.1)),
        "arc": (PathKind.ARC, PathRanges((0.5, 2.0), (5.0, 75.0), fov, 0.1)),
        "random_walk": (PathKind.RANDOM_WALK, PathRanges((0.5, 2.0), (5.0, 75.0), fov, 0.1)),
        "top_down": (PathKind.ORBIT, PathRanges((0.4, 1.5), (75.0, 88.0), fov, 0.1)),
        "close_up": (PathKind.RANDOM_WALK, PathRanges((0.15, 0.4), (10.0, 70.0), fov, 0.03)),
        "handheld": (PathKind.RANDOM_WALK, PathRanges((0.4, 1.2), (-10.0, 45.0), fov, 0.08)),
    }
    path_kind, pr = ranges[kind]
    best = None
    for _ in range(6):
        cand = _clear_path(scene, make_free_path(path_kind, rng, target, T, pr))
        if best is None or cand[1] > best[1]:
            best = cand
        if best[1] >= 0.75:
            break
    path, ratio = best
    poses = path.poses()
    meta = {"clearance_ratio": round(ratio, 4)}
    if kind == "handheld":
        shake = rng.normal(0.0, 0.004, (T, 3))
        roll = np.deg2rad(_smooth_knots(rng, T, 3, np.array([-15.0]), np.array([15.0]))[:, 0])
        poses = np.stack([_roll(look_at(path.eye[k] + shake[k], path.target[k]), roll[k]) for k in range(T)])
    return poses, path.fov_y_deg, meta


def _fixed_pose(scene: ProceduralScene, kind: str, rng: np.random.Generator, cfg: ProceduralConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``T_wc`` and fov of a ``fixed`` (third-person) or ``head`` camera."""
    T = cfg.frames
    target = scene.object_points().mean(0)
    if kind == "head":
        base = scene.data.xpos[scene.model.body(scene.info.robots[int(rng.integers(len(scene.info.robots)))]["prefix"] + "base").id]
        eye = np.array([base[0], base[1], rng.uniform(1.2, 1.7)]) + np.append(rng.normal(0, 0.05, 2), 0.0)
        eye = eye + 0.15 * np.append((base - target)[:2] / max(np.linalg.norm((base - target)[:2]), 1e-6), 0.0)
        pan = _smooth_knots(rng, T, 3, np.array([-0.15, -0.15, -0.05]), np.array([0.15, 0.15, 0.05]))
        targets = target + pan
        eyes = np.repeat(eye[None], T, 0)
    else:
        path, _ = _clear_path(scene, make_free_path(PathKind.ORBIT, rng, target, 2, PathRanges((1.0, 2.2), (10.0, 55.0), cfg.fov_y_deg, 0.1)))
        eyes, targets = np.repeat(path.eye[:1], T, 0), np.repeat(path.target[:1], T, 0)
    fov = np.full(T, rng.uniform(*cfg.fov_y_deg))
    return np.stack([look_at(e, t) for e, t in zip(eyes, targets)]), fov


def _check_frame(depth: np.ndarray, cfg: ProceduralConfig, k: int) -> None:
    if not np.all(np.isfinite(depth)):
        raise RenderError(f"frame {k}: non-finite depth")
    valid = float(np.mean(depth > 0))
    if valid < cfg.min_valid_fraction:
        raise RenderError(f"frame {k}: only {valid:.1%} valid depth (< {cfg.min_valid_fraction:.0%})")


def render_clip(scene: ProceduralScene, kind: str, seed: int, cfg: ProceduralConfig) -> Clip:
    """Render one clip of ``kind`` (deterministic given the scene, the seed and the config)."""
    if kind not in PATH_KINDS:
        raise ValueError(f"unknown procedural path kind {kind!r}; known: {PATH_KINDS}")
    rng = np.random.default_rng(seed)
    _pose_arms(scene, rng)
    T = cfg.frames
    meta: dict = {"path_kind": kind, "static": kind in STATIC_KINDS}
    frames = []
    if kind in STATIC_KINDS:
        poses, fov, extra = _free_poses(scene, kind, rng, cfg)
        meta.update(camera=f"{kind} (free)", **extra)
        for k in range(T):
            scene.pose_free_camera(poses[k], float(fov[k]))
            frames.append(scene.render(scene.free_camera_id))
            _check_frame(frames[-1][1], cfg, k)
    else:
        if kind == "wrist":
            cam = scene.camera_id(scene.info.robots[int(rng.integers(len(scene.info.robots)))]["camera"])
            scene.model.cam_fovy[cam] = rng.uniform(*cfg.fov_y_deg)
            meta.update(camera=scene.model.camera(cam).name)
            _aim_wrist(scene, rng, cam)
            traj = _arm_trajectory(scene, rng, T, WRIST_MOTION_RAD)
        else:
            traj = _arm_trajectory(scene, rng, T)
            poses, fov = _fixed_pose(scene, kind, rng, cfg)
            cam = scene.free_camera_id
            meta.update(camera=f"{kind} (free)")
        for k in range(T):
            scene.set_arm_qpos(traj[k])
            if kind != "wrist":
                scene.pose_free_camera(poses[k], float(fov[k]))
            frames.append(scene.render(cam))
            _check_frame(frames[-1][1], cfg, k)
    rgb, depth, K, T_wc = (np.stack(x) for x in zip(*frames))
    return Clip(rgb=rgb, depth=depth, K=K, T_wc=T_wc, meta=meta)
