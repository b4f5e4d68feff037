"""Per-frame inference for format version 2 artifacts, with the multi-frame heads off the frame path.

Every frame: ``frame.onnx`` (image + focal) -> depth, confidence, tokens; the features of the frame
are its tokens pooled over N (``[1, C]``). At keyframes (the pose source says which), the tokens of
the last ``S - 1`` keyframes and the new one go to a :class:`KeyframeHeads` worker thread that
runs ``heads.onnx`` over ``[oldest keyframe, ..., new keyframe]`` and chains the new keyframe's
learned pose onto the oldest one's. The frame path never waits for it: it reads the last learned
pose (held between keyframes) and counts keyframes the worker was too busy to take.

This object knows nothing of ROS: the perception node (and the tests) drive it with arrays.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from vega_ros import geometry
from vega_ros.engine.base import Engine, EngineError
from vega_ros.engine.stream import FrameResult, StreamConfig, preprocess


class KeyframeHeads:
    """A worker thread that runs the heads over recent keyframes; latest keyframe wins.

    ``submit`` never blocks: a keyframe that arrives while one waits replaces it (``dropped`` counts
    them). The learned odometry pose of the newest processed keyframe is ``T_odom_kf_units``
    (model units), its frame index ``kf_index``.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        card = engine.card
        self.frames = int(card.frames_per_clip)
        self.height, self.width = card.input.height, card.input.width
        self._cond = threading.Condition()
        self._pending: tuple[int, np.ndarray] | None = None
        self._stop = False
        self.dropped = 0
        self.runs = 0
        self.errors = 0
        self.last_error = ""
        self.heads_ms = float("nan")
        self.features: np.ndarray | None = None  # [S, F] pooled features of the last keyframe clip
        self.reset()
        self._thread = threading.Thread(target=self._loop, name="keyframe-heads", daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self._cond:
            self._pending = None
            self._keyframes: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.frames - 1)  # (tokens, T_odom_units)
            self.T_odom_kf_units = np.eye(4)
            self.kf_index = -1

    def submit(self, index: int, tokens: np.ndarray) -> None:
        """Queue keyframe ``index`` with its tokens ``[N, C]``."""
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = (index, tokens)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait(timeout=0.5)
                if self._stop:
                    return
                (index, tokens), self._pending = self._pending, None
                history = list(self._keyframes)
            try:
                self._run(index, tokens, history)
            except Exception as e:  # noqa: BLE001 - a failing keyframe must not end the worker
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"

    def _run(self, index: int, tokens: np.ndarray, history: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if not history:  # the first keyframe is the odometry origin
            T_odom_units = np.eye(4)
        else:
            slots = [history[0]] * (self.frames - 1 - len(history)) + history  # repeat the oldest until S - 1 exist
            clip = np.stack([t for t, _ in slots] + [tokens])[None]  # [1, S, N, C]
            t0 = time.perf_counter()
            out = self.engine.run_heads(clip)
            self.heads_ms = (time.perf_counter() - t0) * 1e3
            T_ref_cur, _ = geometry.encoding_to_pose(out.pose_enc[0, -1], self.height, self.width)
            if not np.all(np.isfinite(T_ref_cur)):
                raise EngineError("heads returned a non-finite pose")
            T_odom_units = slots[0][1] @ T_ref_cur
            self.features = out.features[0].astype(np.float32)
        with self._cond:
            if self._stop:
                return
            self._keyframes.append((tokens, T_odom_units))
            self.T_odom_kf_units, self.kf_index = T_odom_units, index
            self.runs += 1

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout)


class FrameStream:
    """Turns frames into depth, confidence, pooled features and the last learned pose (format version 2)."""

    def __init__(self, engine: Engine, config: StreamConfig | None = None):
        if not engine.per_frame:
            raise EngineError(f"{engine.card.name} is not a format version 2 artifact (no frame.onnx)")
        self.engine = engine
        self.config = config or StreamConfig()
        card = engine.card
        self.height, self.width = card.input.height, card.input.width
        self.scale = float(self.config.depth_scale)  # metres per model unit; the node may update it (motion scale)
        self.heads = KeyframeHeads(engine) if engine.has_heads else None
        self.reset()

    def reset(self) -> None:
        """Forget the keyframes (a new stream starts at the odometry origin)."""
        self._index = 0
        self.keyframes = 0
        if self.heads is not None:
            self.heads.reset()

    def process(self, rgb: np.ndarray, K_model: np.ndarray) -> FrameResult:
        """Run one frame. ``rgb [h, w, 3]`` uint8 (resized to the model size here), ``K_model`` at the model size.

        ``T_odom_cam`` of the result is the learned pose of the last keyframe the heads finished
        (identity without heads); ``new_keyframe`` is left False: :meth:`keyframe` makes one.
        """
        t0, c0 = time.perf_counter(), time.thread_time()
        out = self.engine.run_frame(preprocess(rgb, self.height, self.width), np.array([K_model[1, 1]], np.float32))
        t1, c1 = time.perf_counter(), time.thread_time()
        depth = out.depth[0].astype(np.float32) * np.float32(self.scale)
        depth[~geometry.valid_depth_mask(depth)] = 0.0
        tokens = out.tokens[0]
        T_units = self.heads.T_odom_kf_units.copy() if self.heads is not None else np.eye(4)
        T = T_units.copy()
        T[:3, 3] *= self.scale
        result = FrameResult(
            depth=depth, depth_conf=out.depth_conf[0].astype(np.float32), K=np.asarray(K_model, dtype=np.float64),
            T_odom_cam=T, T_kf_cam=np.eye(4), T_odom_cam_units=T_units,
            features=tokens.mean(axis=0, keepdims=True).astype(np.float32),
            clip_frame_indices=(self._index,), frame_index=self._index,
            keyframe_index=self.heads.kf_index if self.heads is not None else -1,
            new_keyframe=False, keyframe_reason="", overlap=float("nan"),
            encoder_ms=(t1 - t0) * 1e3, heads_ms=0.0, model_cpu_ms=(c1 - c0) * 1e3, tokens=tokens,
        )
        self._index += 1
        return result

    def keyframe(self, result: FrameResult, reason: str) -> None:
        """Make ``result``'s frame a keyframe: its tokens go to the heads worker (if the artifact has heads)."""
        result.new_keyframe, result.keyframe_reason = True, reason
        self.keyframes += 1
        if self.heads is not None:
            self.heads.submit(result.frame_index, result.tokens)

    def close(self) -> None:
        if self.heads is not None:
            self.heads.close()
