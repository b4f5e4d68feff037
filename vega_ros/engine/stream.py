"""Streaming clip inference: one encoder run + one heads run per frame over [keyframe, 2 buffered, current].

The heads see S = 4 frames (the papers' clip): frame 0 is the current *keyframe* (its encoder
tokens are kept), frames 1 and 2 are earlier frames ``2 * stride`` and ``stride`` frames back
(their tokens are kept in a short ring buffer), frame 3 is the new one. So each frame costs one
encoder run and one heads run, whatever S is. Until the buffer has filled, missing slots repeat
the nearest frame that exists.

The heads give the pose of every clip frame relative to the keyframe; the odometry pose of the
current frame is ``T_odom_kf @ T_kf_cam``, chained in model units and scaled to metres on output
(``scale``: 1 for a metric model, or fixed, or estimated from known motion by :class:`MotionScale`). A new keyframe starts when the predicted motion from
the keyframe exceeds a translation or rotation threshold, when the predicted overlap (the share
of the current frame's back-projected depth that lands inside the keyframe's image) falls below
a minimum, or after a maximum number of frames; its odometry pose is the chained pose, so the
trajectory stays continuous across keyframes.

This object knows nothing of ROS: the perception node (and the tests) drive it with arrays.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from vega_ros import geometry
from vega_ros.engine.base import Engine, EngineError
from vega_ros.image_fit import resize_to_model


@dataclass(frozen=True)
class StreamConfig:
    clip_stride: int = 5  # frames between the buffered clip frames (>= 1; the papers use >= 5)
    keyframe_max_translation_m: float = 0.25
    keyframe_max_rotation_deg: float = 15.0
    keyframe_min_overlap: float = 0.6  # 0..1
    keyframe_max_frames: int = 90
    overlap_grid_step: int = 8  # pixels between the depth samples used for the overlap estimate
    depth_scale: float = 1.0  # multiplies depth and translation (scale fix; 1 = trust the model)

    def __post_init__(self):
        if self.clip_stride < 1:
            raise ValueError(f"clip_stride must be >= 1, got {self.clip_stride}")
        if not 0.0 <= self.keyframe_min_overlap <= 1.0:
            raise ValueError(f"keyframe_min_overlap must be in [0, 1], got {self.keyframe_min_overlap}")
        if self.depth_scale <= 0:
            raise ValueError(f"depth_scale must be > 0, got {self.depth_scale}")


@dataclass
class FrameResult:
    depth: np.ndarray  # [H, W] float32 metres at the model's input size, 0 = invalid
    depth_conf: np.ndarray  # [H, W] float32
    K: np.ndarray  # [3, 3] intrinsics at the model's input size
    T_odom_cam: np.ndarray  # [4, 4] pose of the current camera in the odometry frame
    T_kf_cam: np.ndarray  # [4, 4] pose of the current camera in the keyframe's frame
    T_odom_cam_units: np.ndarray  # [4, 4] T_odom_cam with the translation in model units (before scaling)
    features: np.ndarray  # [S, C'] pooled features of the clip frames (keyframe, buffered, buffered, current)
    clip_frame_indices: tuple[int, ...]  # stream indices of the S clip frames
    frame_index: int
    keyframe_index: int  # stream index of the keyframe this result is relative to
    new_keyframe: bool  # the current frame became the next keyframe
    keyframe_reason: str  # "first" | "translation" | "rotation" | "overlap" | "max_frames" | ""
    overlap: float
    encoder_ms: float  # wall time, preprocessing included
    heads_ms: float
    model_cpu_ms: float  # CPU time of the calling thread for encoder + heads (all of it with 1 ORT thread)
    tokens: np.ndarray | None = None  # [N, C] the current frame's tokens (format version 2; None in v1)

    @property
    def model_ms(self) -> float:
        return self.encoder_ms + self.heads_ms


def preprocess(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """``rgb [h, w, 3]`` uint8 -> ``[1, 3, height, width]`` float32 in [0, 1] (:func:`resize_to_model` first)."""
    rgb = resize_to_model(rgb, height, width)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)


def estimate_overlap(depth: np.ndarray, K: np.ndarray, T_kf_cam: np.ndarray, step: int = 8) -> float:
    """Share of the current frame's valid depth samples that project inside the keyframe image."""
    h, w = depth.shape
    sub = depth[step // 2 :: step, step // 2 :: step]
    u, v = geometry.pixel_grid(h, w)
    u, v = u[step // 2 :: step, step // 2 :: step], v[step // 2 :: step, step // 2 :: step]
    valid = geometry.valid_depth_mask(sub)
    if not np.any(valid):
        return 0.0
    z = sub[valid].astype(np.float64)
    x = (u[valid] - K[0, 2]) / K[0, 0] * z
    y = (v[valid] - K[1, 2]) / K[1, 1] * z
    p_kf = geometry.transform_points(T_kf_cam, np.stack([x, y, z], -1))
    uv, zk = geometry.project_points(p_kf, K)
    inside = (zk > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    return float(np.mean(inside))


class StreamingPerception:
    """Keeps the keyframe's tokens and a ring of recent tokens; turns frames into depth + poses."""

    def __init__(self, engine: Engine, config: StreamConfig | None = None):
        self.engine = engine
        self.config = config or StreamConfig()
        card = engine.card
        self.height, self.width = card.input.height, card.input.width
        self.frames_per_clip = card.frames_per_clip
        self.scale = float(self.config.depth_scale)  # metres per model unit; the node may update it (motion scale)
        if self.frames_per_clip < 2:
            raise EngineError(f"frames_per_clip must be >= 2, got {self.frames_per_clip}")
        self.reset()

    def reset(self) -> None:
        """Forget the keyframe and the buffer (a new stream starts at the odometry origin)."""
        self._history: deque[tuple[int, np.ndarray]] = deque(maxlen=(self.frames_per_clip - 2) * self.config.clip_stride + 1)
        self._kf_tokens: np.ndarray | None = None
        self._kf_index = -1
        self._T_odom_kf = np.eye(4)
        self._T_odom_last = np.eye(4)
        self._index = 0
        self.keyframes = 0

    @property
    def T_odom_last(self) -> np.ndarray:
        """The last odometry pose, translation in metres (the current scale applied)."""
        T = self._T_odom_last.copy()
        T[:3, 3] *= self.scale
        return T

    def _clip_slots(self) -> list[tuple[int, np.ndarray]]:
        """(index, tokens) of the buffered frames, oldest first: current - k * stride, k = S-2..1."""
        by_index = dict(self._history)
        slots = []
        for k in range(self.frames_per_clip - 2, 0, -1):
            want = self._index - k * self.config.clip_stride
            if want in by_index:
                slots.append((want, by_index[want]))
            else:  # not yet buffered: the oldest frame we have (or the keyframe)
                oldest = self._history[0] if self._history else (self._kf_index, self._kf_tokens)
                slots.append(oldest)
        return slots

    def process(self, rgb: np.ndarray, K_model: np.ndarray) -> FrameResult:
        """Run one frame. ``rgb [h, w, 3]`` uint8 (resized to the model size here), ``K_model`` at the model size."""
        cfg = self.config
        t0, c0 = time.perf_counter(), time.thread_time()
        tokens = self.engine.encode(preprocess(rgb, self.height, self.width))[0]  # [N, C]
        t1 = time.perf_counter()
        first = self._kf_tokens is None
        if first:
            self._kf_tokens, self._kf_index, self._T_odom_kf = tokens, self._index, self._T_odom_last.copy()
        slots = self._clip_slots()
        clip = np.stack([self._kf_tokens] + [t for _, t in slots] + [tokens])[None]  # [1, S, N, C]
        out = self.engine.run_heads(clip)
        t2, c2 = time.perf_counter(), time.thread_time()

        depth = out.depth[0, -1].astype(np.float32) * np.float32(self.scale)
        depth[~geometry.valid_depth_mask(depth)] = 0.0
        T_kf_cam_units, _ = geometry.encoding_to_pose(out.pose_enc[0, -1], self.height, self.width)
        if first:
            T_kf_cam_units = np.eye(4)
        if not np.all(np.isfinite(T_kf_cam_units)):
            raise EngineError("heads returned a non-finite pose")
        # the chain is kept in model units; outputs are scaled by the current scale (which may change)
        T_odom_cam_units = self._T_odom_kf @ T_kf_cam_units
        T_kf_cam, T_odom_cam = T_kf_cam_units.copy(), T_odom_cam_units.copy()
        T_kf_cam[:3, 3] *= self.scale
        T_odom_cam[:3, 3] *= self.scale
        overlap = estimate_overlap(depth, K_model, T_kf_cam, cfg.overlap_grid_step)
        result = FrameResult(
            depth=depth,
            depth_conf=out.depth_conf[0, -1].astype(np.float32),
            K=np.asarray(K_model, dtype=np.float64),
            T_odom_cam=T_odom_cam,
            T_kf_cam=T_kf_cam,
            T_odom_cam_units=T_odom_cam_units,
            features=out.features[0].astype(np.float32),
            clip_frame_indices=(self._kf_index, *(i for i, _ in slots), self._index),
            frame_index=self._index,
            keyframe_index=self._kf_index,
            new_keyframe=False,
            keyframe_reason="",
            overlap=overlap,
            encoder_ms=(t1 - t0) * 1e3,
            heads_ms=(t2 - t1) * 1e3,
            model_cpu_ms=(c2 - c0) * 1e3,
        )
        reason = "first" if first else self._keyframe_reason(T_kf_cam, overlap)
        if reason:
            self._kf_tokens, self._kf_index, self._T_odom_kf = tokens, self._index, T_odom_cam_units.copy()
            self.keyframes += 1
            result.new_keyframe, result.keyframe_reason = True, reason
        self._T_odom_last = T_odom_cam_units
        self._history.append((self._index, tokens))
        self._index += 1
        return result

    def _keyframe_reason(self, T_kf_cam: np.ndarray, overlap: float) -> str:
        cfg = self.config
        if np.linalg.norm(T_kf_cam[:3, 3]) > cfg.keyframe_max_translation_m:
            return "translation"
        if geometry.rotation_angle_deg(np.eye(3), T_kf_cam[:3, :3]) > cfg.keyframe_max_rotation_deg:
            return "rotation"
        if overlap < cfg.keyframe_min_overlap:
            return "overlap"
        if self._index - self._kf_index >= cfg.keyframe_max_frames:
            return "max_frames"
        return ""


class MotionScale:
    """Metric scale from known camera motion: ``scale = sum |reference step| / sum |predicted step|``.

    Feed it, per processed frame, the predicted camera position in *model units* (the odometry
    position divided by the scale in use) and the reference position of the same instant (robot
    kinematics through TF, or a pose topic). Steps shorter than ``min_step_m`` in the reference
    carry no scale information and are skipped; the estimate uses the last ``window`` steps.
    """

    def __init__(self, window: int = 30, min_step_m: float = 0.002):
        self.window, self.min_step = int(window), float(min_step_m)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._steps: deque[tuple[float, float]] = deque(maxlen=self.window)

    def reset(self) -> None:
        self._prev = None
        self._steps.clear()

    def update(self, p_pred_model_units: np.ndarray, p_ref_m: np.ndarray) -> float | None:
        """Add one frame; returns the current scale estimate (None until there is one)."""
        p_pred, p_ref = np.asarray(p_pred_model_units, dtype=np.float64), np.asarray(p_ref_m, dtype=np.float64)
        if self._prev is not None:
            d_ref = float(np.linalg.norm(p_ref - self._prev[1]))
            d_pred = float(np.linalg.norm(p_pred - self._prev[0]))
            if d_ref >= self.min_step and d_pred > 1e-9:
                self._steps.append((d_ref, d_pred))
        self._prev = (p_pred, p_ref)
        return self.estimate()

    def estimate(self) -> float | None:
        if not self._steps:
            return None
        ref, pred = np.sum(np.asarray(self._steps), axis=0)
        return float(ref / pred)
