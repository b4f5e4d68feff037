"""PerceptionNode: camera image -> depth, confidence, point cloud, camera pose / odometry, features.

Topics (relative to the node's namespace, all remappable):

  in   image              sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, bayer_*8, yuv422 / yuyv)
                          best effort, depth 5 by default; any size: the model sees the centred window
                          of its aspect ratio (image_fit: crop) or all of it resized per axis (stretch)
    or image/compressed   sensor_msgs/CompressedImage (image_transport: compressed; decoded with OpenCV)
       camera_info        sensor_msgs/CameraInfo (K of a rectified camera; D is not applied, warned about once)
  out  depth/image        sensor_msgs/Image 32FC1 metres (or 16UC1 millimetres: depth_encoding), 0 = invalid,
                          same header as the image
       depth/camera_info  sensor_msgs/CameraInfo of depth/image: same stamp and frame, K at the depth's size
       depth/confidence   sensor_msgs/Image 32FC1, the model's depth confidence
       points             sensor_msgs/PointCloud2 x, y, z float32 + packed rgb, camera optical frame
       pose               geometry_msgs/PoseStamped: the camera in ``odom_frame``
       odometry           nav_msgs/Odometry: same pose, child_frame_id = camera frame
       path               nav_msgs/Path: the recent poses (for RViz)
       features           std_msgs/Float32MultiArray, layout dim[0] = "frame" (v1: S clip frames in
                          order keyframe, buffered (older), buffered (newer), current; v2: one, the
                          current frame's tokens pooled over N), dim[1] =
                          "channel" (C' pooled feature channels); row-major, data_offset 0
       /diagnostics       diagnostic_msgs/DiagnosticArray: counters (received, processed,
                          dropped_busy, dropped_no_subscribers, rejected.<reason>, poses_published,
                          dropped_pose_busy, pose_errors), rate_hz, percentiles of latency_ms (image
                          stamp -> cloud), model_ms, overhead_ms (depth stage minus model), pose_ms,
                          pose_latency_ms (image stamp -> pose)
  tf   odom_frame -> camera frame, when ``tf2_ros`` is importable (else said once at start-up)

Every name but /diagnostics and /tf is relative, so nodes in namespaces ``front`` and ``back`` do
not collide. QoS: subscriptions best effort, publishers reliable (depth 5, volatile); each one is
overridable with the standard ``qos_overrides.<topic>.<publisher|subscription>.<policy>``
parameters. Parameters marked "changeable at run time" apply on ``ros2 param set``; others are
refused with the reason.

Processing is a multi-rate pipeline of latest-wins stages (:class:`vega_ros.latest_worker.LatestWorker`),
so a slow stage never blocks DDS or the stage before it, and every drop is counted, not silent:

  callbacks   validate and decode only
  depth       the newest frame: the model (v1: encoder + heads over the clip; v2: frame.onnx), then
              depth/image, depth/camera_info, depth/confidence, points, features; a frame that
              arrives while one is waiting replaces it (``dropped_busy``)
  pose        the newest depth result: the pose source (:mod:`vega_ros.pose_source`; visual
              odometry with its keyframes and window refinement), then pose, odometry, path, TF;
              a result replaced before the pose stage took it counts as ``dropped_pose_busy``
  heads       at keyframes, a v2 artifact's multi-frame heads, on their own thread

While no output has a subscriber, frames are validated but not run (``dropped_no_subscribers``).
A bad message is counted by reason and logged at a throttled rate; an engine failure is counted
as ``rejected.engine_error`` (a pose-stage failure as ``pose_errors``) and the node goes on with
the next frame. A reset (camera size change, stamps jumping back) starts a new epoch: the stages
reset their state when the first frame of it reaches them, and frames of the old one still
waiting are dropped (``dropped_reset``, ``dropped_pose_reset``). Ctrl-C ends the node with exit
code 0: the stages stop before the context goes, and nothing that fails during shutdown counts
as an error.
"""

from __future__ import annotations

import array
import dataclasses
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from vega_ros import conversions
from vega_ros.artifact import default_model_dir
from vega_ros.conversions import CameraIntrinsics, ConversionError
from vega_ros.diagnostics import NodeStats, RejectReason, to_diagnostic_array
from vega_ros.engine import create_engine
from vega_ros.engine.frame_stream import FrameStream
from vega_ros.engine.stream import (
    FrameResult,
    MotionScale,
    StreamConfig,
    StreamingPerception,
)
from vega_ros.image_fit import Window, fit_to_model
from vega_ros.latest_worker import LatestWorker
from vega_ros.node_main import run_node
from vega_ros.odometry.settings import PARAMETER_PREFIX as ODOMETRY_PREFIX
from vega_ros.odometry.settings import OdometrySettings
from vega_ros.perception_outputs import cloud_arrays, output_frame
from vega_ros.pose_source import PoseEstimate, PoseInput, PoseSource, make_pose_source
from vega_ros.settings import PerceptionSettings, check_choice, declare_settings, dynamic_parameters

COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1")


def diagnostic_status_name(node_name: str) -> str:
    """The name of this node's status in /diagnostics."""
    return f"vega_ros/{node_name}"

PATH_MAX_POSES = 1000
PATH_PERIOD_S = 0.5
REFERENCE_WAIT_S = 2.0  # scale_source motion: how long a frame waits for its reference pose
COUNTERS = ("frames_received", "frames_accepted", "frames_processed", "dropped_busy", "dropped_no_subscribers", "dropped_reset",
            "camera_info_received", "scale_updates", "scale_reference_missing", "camera_info_size_changes", "stream_resets",
            "keyframes", "parameter_changes", "poses_published", "dropped_pose_busy", "dropped_pose_reset", "pose_errors")
INPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class _Frame:
    """A decoded camera frame on its way to the depth stage."""

    header: object  # std_msgs/Header of the image
    rgb: np.ndarray  # [H, W, 3] uint8, camera resolution
    intr: CameraIntrinsics  # of rgb
    received: float  # time.monotonic() when the callback got it
    epoch: int  # the stream epoch it belongs to (a reset starts a new one)


@dataclass
class _PoseJob:
    """A depth result on its way to the pose stage."""

    header: object  # the image's header, frame_id = the camera frame
    rgb: np.ndarray  # [h, w, 3] uint8 at the model's size (the pixels the depth belongs to)
    result: FrameResult
    epoch: int


class PerceptionNode(Node):
    def __init__(self, node_name: str = "perception", **kwargs):
        super().__init__(node_name, **kwargs)
        self.settings = s = declare_settings(self, PerceptionSettings)
        self.stats = NodeStats(window=s.latency_window, counters=COUNTERS)
        self._last_warn: dict[str, float] = {}

        model_dir = s.model_dir or default_model_dir()
        self.engine, choice = create_engine(
            model_dir, s.backend, intra_op_threads=s.intra_op_threads, inter_op_threads=s.inter_op_threads,
            heads_intra_op_threads=s.heads_intra_op_threads,
            trt_cache_dir=s.trt_cache_dir or None, trt_fp16=s.trt_fp16,
        )
        self.backend_message = choice.message()
        card = self.engine.card
        self.get_logger().info(f"model {card.name} (format {card.format_version}) from {model_dir}: {self.backend_message}; {self.engine.describe()}")
        if card.random_init:
            self.get_logger().warning(f"model {card.name} is RANDOM-INIT: its depth and poses carry no information")
        scale = s.depth_scale if s.scale_source in ("fixed", "motion") else 1.0
        if card.depth_scale.value != "metric" and s.scale_source == "model":
            self.get_logger().warning("the model's depth is relative (card); set scale_source: fixed and depth_scale to get metres")
        config = StreamConfig(
            clip_stride=s.clip_stride,
            keyframe_max_translation_m=s.keyframe_max_translation_m,
            keyframe_max_rotation_deg=s.keyframe_max_rotation_deg,
            keyframe_min_overlap=s.keyframe_min_overlap,
            keyframe_max_frames=s.keyframe_max_frames,
            depth_scale=scale,
        )
        self.stream = FrameStream(self.engine, config) if self.engine.per_frame else StreamingPerception(self.engine, config)
        # the one place the pose comes from: visual odometry on the predicted depth, or the learned pose head
        self.odometry_settings = declare_settings(self, OdometrySettings, prefix=ODOMETRY_PREFIX)
        self.pose_source: PoseSource = make_pose_source(s.pose_source, keyframe_interval=s.clip_stride, odometry=self.odometry_settings)

        overrides = QoSOverridingOptions.with_default_policies()
        self.pub_depth = self.create_publisher(Image, "depth/image", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_depth_info = self.create_publisher(CameraInfo, "depth/camera_info", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_conf = self.create_publisher(Image, "depth/confidence", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_points = self.create_publisher(PointCloud2, "points", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_pose = self.create_publisher(PoseStamped, "pose", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_odom = self.create_publisher(Odometry, "odometry", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_path = self.create_publisher(Path, "path", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_features = self.create_publisher(Float32MultiArray, "features", OUTPUT_QOS, qos_overriding_options=overrides)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10, qos_overriding_options=overrides)
        self._outputs = (self.pub_depth, self.pub_depth_info, self.pub_conf, self.pub_points, self.pub_pose, self.pub_odom,
                         self.pub_path, self.pub_features)
        if s.image_transport == "compressed":
            self.create_subscription(CompressedImage, "image/compressed", self._on_compressed, INPUT_QOS, qos_overriding_options=overrides)
        else:
            self.create_subscription(Image, "image", self._on_image, INPUT_QOS, qos_overriding_options=overrides)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, INPUT_QOS, qos_overriding_options=overrides)
        in_qos = INPUT_QOS

        self.tf_broadcaster = None
        try:
            from tf2_ros import TransformBroadcaster

            self.tf_broadcaster = TransformBroadcaster(self)
        except ImportError:
            self.get_logger().info("tf2_ros is not importable here: no odom -> camera TF broadcast (pose / odometry topics carry it)")

        self.motion_scale: MotionScale | None = None
        self._scale_queue: deque = deque()
        self._reference: dict[int, np.ndarray] = {}  # stamp (ns) -> reference camera position (m)
        self.tf_buffer = None
        if s.scale_source == "motion":
            self.motion_scale = MotionScale(window=s.scale_window)
            if s.scale_reference_frame and self.tf_broadcaster is not None:
                from tf2_ros import Buffer, TransformListener

                self.tf_buffer = Buffer()
                self._tf_listener = TransformListener(self.tf_buffer, self)
                self.get_logger().info(f"scale from known motion: TF {s.scale_reference_frame} -> camera frame")
            else:
                if s.scale_reference_frame:
                    self.get_logger().warning("scale_reference_frame is set but tf2_ros is not importable: using the reference_pose topic")
                self.create_subscription(PoseStamped, "reference_pose", self._on_reference_pose, in_qos, qos_overriding_options=overrides)
                self.get_logger().info(f"scale from known motion: {self.resolve_topic_name('reference_pose')}")

        self._intr: CameraIntrinsics | None = None
        self._last_stamp: float | None = None
        self._path = Path()
        self._path_published = 0.0
        self._stopping = False
        self._epoch = 0  # bumped by every reset request (callback thread); frames and pose jobs carry it
        self._depth_epoch = self._pose_epoch = 0  # the epoch each stage's state belongs to
        self._depth_stage: LatestWorker[_Frame] = LatestWorker(self._on_frame, "perception-depth")
        self._pose_stage: LatestWorker[_PoseJob] = LatestWorker(self._on_pose_job, "perception-pose")
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        image_topic = "image/compressed" if s.image_transport == "compressed" else "image"
        path = "v2: frame.onnx per frame, heads at keyframes" if self.engine.per_frame else "v1: encoder + heads per frame"
        self.get_logger().info(
            f"listening on {self.resolve_topic_name(image_topic)} + {self.resolve_topic_name('camera_info')}; "
            f"model input {card.input.width}x{card.input.height} ({path}), pose from {self.pose_source.name}"
        )

    # -- run-time parameters ------------------------------------------------------------------

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Apply changes of the parameters declared dynamic; refuse the others with the reason."""
        fields = {f.name for f in dataclasses.fields(PerceptionSettings)}
        dynamic = dynamic_parameters(PerceptionSettings)
        changes = {}
        for p in params:
            if p.name.startswith(ODOMETRY_PREFIX):
                return SetParametersResult(successful=False, reason=f"'{p.name}' is read at start-up only: the odometry keeps its settings "
                                                                     "for the whole stream; restart the node to change it")
            if p.name not in fields:
                continue  # use_sim_time, qos_overrides.* (rclpy keeps those read-only itself)
            if p.name not in dynamic:
                return SetParametersResult(successful=False, reason=f"'{p.name}' is read at start-up only: restart the node to change it "
                                                                     f"(changeable at run time: {', '.join(sorted(dynamic))})")
            why = check_choice(PerceptionSettings, p.name, p.value)
            if why:
                return SetParametersResult(successful=False, reason=why)
            changes[p.name] = p.value
        if changes:
            self.settings = dataclasses.replace(self.settings, **changes)  # one attribute swap: the worker sees old or new
            self.stats.count("parameter_changes", len(changes))
            self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    # -- input validation ---------------------------------------------------------------------

    def _warn_throttled(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e18) >= self.settings.log_throttle_s:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    def _reject(self, reason: RejectReason, detail: str) -> None:
        n = self.stats.reject(reason)
        self._warn_throttled(reason.value, f"rejected input ({reason.value}, {n} so far): {detail}")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.stats.count("camera_info_received")
        try:
            intr = conversions.camera_info_to_intrinsics(msg)
            if not np.all(np.isfinite(intr.D)):
                raise ConversionError("camera_info D has non-finite values")
        except ConversionError as e:
            self._reject(RejectReason.BAD_CAMERA_INFO, str(e))
            return
        prev = self._intr
        if np.any(intr.D != 0) and (prev is None or not np.any(prev.D != 0)):
            self.get_logger().warning(
                f"camera_info has lens distortion ({intr.distortion_model}, D = {np.round(intr.D, 4).tolist()}); it is not "
                f"undone here: give the rectified image (image_proc's image_rect) and its camera_info for exact clouds")
        if prev is not None and (prev.width, prev.height) != (intr.width, intr.height):
            self.stats.count("camera_info_size_changes")
            self.get_logger().info(f"camera size changed {prev.width}x{prev.height} -> {intr.width}x{intr.height}: restarting the stream")
            self._request_reset()
        self._intr = intr

    def _on_reference_pose(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._reference[_stamp_ns(msg.header.stamp)] = np.array([p.x, p.y, p.z])
        if len(self._reference) > 500:
            for k in sorted(self._reference)[:100]:
                del self._reference[k]

    def _reference_position(self, header) -> np.ndarray | None:
        if self.tf_buffer is not None:
            try:
                t = self.tf_buffer.lookup_transform(self.settings.scale_reference_frame, header.frame_id, header.stamp)
            except Exception:  # noqa: BLE001 - tf2 raises several lookup exception types
                return None
            tr = t.transform.translation
            return np.array([tr.x, tr.y, tr.z])
        return self._reference.get(_stamp_ns(header.stamp))

    def _update_scale(self, frame: _Frame, result: FrameResult) -> None:
        """Queue this frame's model-unit position; feed the estimator every queued frame whose reference has arrived.

        The reference pose of a frame may arrive after the frame (another topic), so frames wait
        up to ``REFERENCE_WAIT_S`` for it, in stamp order.
        """
        self._scale_queue.append((frame.header, result.T_odom_cam_units[:3, 3].copy(), time.monotonic()))
        while self._scale_queue:
            header, p_units, queued = self._scale_queue[0]
            ref = self._reference_position(header)
            if ref is None:
                if time.monotonic() - queued < REFERENCE_WAIT_S:
                    break
                self._scale_queue.popleft()
                self.stats.count("scale_reference_missing")
                continue
            self._scale_queue.popleft()
            estimate = self.motion_scale.update(p_units, ref)
            if estimate is not None and np.isfinite(estimate) and estimate > 0:
                self.stream.scale = estimate
                self.stats.count("scale_updates")

    def _on_image(self, msg: Image) -> None:
        received = time.monotonic()
        self.stats.count("frames_received")
        if msg.encoding not in COLOR_ENCODINGS:
            self._reject(RejectReason.UNSUPPORTED_ENCODING, f"encoding '{msg.encoding}' (need one of {', '.join(COLOR_ENCODINGS)})")
            return
        try:
            rgb = conversions.image_to_rgb(msg)
        except ConversionError as e:
            self._reject(RejectReason.BAD_LAYOUT, str(e))
            return
        self._accept(msg.header, rgb, received)

    def _on_compressed(self, msg: CompressedImage) -> None:
        received = time.monotonic()
        self.stats.count("frames_received")
        try:
            rgb = conversions.compressed_image_to_rgb(msg)
        except ConversionError as e:
            self._reject(RejectReason.BAD_COMPRESSED, str(e))
            return
        self._accept(msg.header, rgb, received)

    def _has_subscribers(self) -> bool:
        if any(p.get_subscription_count() > 0 for p in self._outputs):
            return True
        tf_pub = getattr(self.tf_broadcaster, "pub_tf", None)
        return tf_pub is not None and tf_pub.get_subscription_count() > 0

    def _accept(self, header, rgb: np.ndarray, received: float) -> None:
        """Check a decoded image ``rgb [H, W, 3]`` against camera_info and the stamp order; hand it to the worker."""
        intr = self._intr
        if intr is None:
            self._reject(RejectReason.NO_CAMERA_INFO, "no valid camera_info received yet")
            return
        h, w = rgb.shape[:2]
        if (w, h) != (intr.width, intr.height):
            self._reject(RejectReason.SIZE_MISMATCH, f"image {w}x{h} but camera_info {intr.width}x{intr.height}")
            return
        stamp = conversions.stamp_to_seconds(header.stamp)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            back = self._last_stamp - stamp
            if back > self.settings.stamp_reset_s:
                self.stats.count("stream_resets")
                self.get_logger().info(f"image stamps jumped back {back:.3f} s: treating it as a restarted camera")
                self._request_reset()
            else:
                self._reject(RejectReason.OUT_OF_ORDER, f"stamp {stamp:.6f} is not after the previous {self._last_stamp:.6f}")
                return
        self._last_stamp = stamp
        if self.settings.lazy and not self._has_subscribers():
            self.stats.count("dropped_no_subscribers")
            return
        self.stats.count("frames_accepted")
        if self._depth_stage.submit(_Frame(header, rgb, intr, received, self._epoch)):
            self.stats.count("dropped_busy")

    def _request_reset(self) -> None:
        """Start a new epoch (called from the callbacks): waiting frames and pose jobs of the old one are dropped."""
        self._epoch += 1
        if self._depth_stage.clear():
            self.stats.count("dropped_reset")
        if self._pose_stage.clear():
            self.stats.count("dropped_pose_reset")

    # -- depth stage ----------------------------------------------------------------------------

    def _shutting_down(self) -> bool:
        return self._stopping or not self.context.ok()

    def _on_frame(self, frame: _Frame) -> None:
        if frame.epoch != self._depth_epoch:
            self._depth_epoch = frame.epoch
            self.stream.reset()
            if self.motion_scale is not None:
                self.motion_scale.reset()
                self._scale_queue.clear()
        try:
            self._process(frame)
        except Exception as e:  # noqa: BLE001 - the node must outlive a failing frame
            if not self._shutting_down():  # publishing into a closing context fails, and that is no engine error
                self._reject(RejectReason.ENGINE_ERROR, f"{type(e).__name__}: {e}")

    def _process(self, frame: _Frame) -> None:
        card = self.engine.card
        t_start, cpu_start = time.monotonic(), time.thread_time()
        self.stats.sample("queue_ms", (t_start - frame.received) * 1e3)
        # once: the model and the pose source read the same pixels (the window of the image the model sees)
        rgb_model, K_model, window = fit_to_model(frame.rgb, frame.intr.K, (card.input.height, card.input.width),
                                                  self.settings.image_fit)
        result = self.stream.process(rgb_model, K_model)
        if self.motion_scale is not None:
            self._update_scale(frame, result)
        self.stats.sample("model_ms", result.model_ms)
        self.stats.sample("encoder_ms", result.encoder_ms)
        self.stats.sample("heads_ms", result.heads_ms)
        self._publish_depth(frame, result, window)
        if self._pose_stage.submit(_PoseJob(frame.header, rgb_model, result, frame.epoch)):
            self.stats.count("dropped_pose_busy")
        done, cpu_done = time.monotonic(), time.thread_time()
        self.stats.sample("process_ms", (done - t_start) * 1e3)
        self.stats.sample("overhead_ms", (done - t_start) * 1e3 - result.model_ms)
        # CPU time of this thread: immune to other processes taking the cores (wall times are not)
        self.stats.sample("model_cpu_ms", result.model_cpu_ms)
        self.stats.sample("process_cpu_ms", (cpu_done - cpu_start) * 1e3)
        self.stats.sample("overhead_cpu_ms", (cpu_done - cpu_start) * 1e3 - result.model_cpu_ms)
        self.stats.frame_done()
        self.stats.count("frames_processed")

    def _publish_depth(self, frame: _Frame, r: FrameResult, window: Window) -> None:
        """depth/image + depth/camera_info, depth/confidence, points, features (``frame.header`` gets the camera frame);
        ``window``: the part of the image the model saw."""
        s = self.settings
        header = frame.header
        if s.camera_frame:
            header.frame_id = s.camera_frame
        out = output_frame(r.depth, r.depth_conf, r.K, frame.rgb, frame.intr.K, s.output_resolution, window)
        h, w = out.depth.shape
        self.pub_depth.publish(conversions.depth_m_to_image(out.depth, header, s.depth_encoding))
        self.pub_depth_info.publish(conversions.intrinsics_to_camera_info(
            CameraIntrinsics(K=out.K, width=w, height=h, D=frame.intr.D, distortion_model=frame.intr.distortion_model), header))
        self.pub_conf.publish(conversions.numpy_to_image(np.ascontiguousarray(out.depth_conf, dtype=np.float32), "32FC1", header))
        pts, cols = cloud_arrays(out, s.cloud_stride, s.cloud_max_range_m, s.cloud_min_confidence)
        self.pub_points.publish(conversions.points_to_pointcloud2(pts, cols, header))
        self.stats.sample("latency_ms", self._age_ms(header))
        feats = np.ascontiguousarray(r.features, dtype=np.float32)
        fmsg = Float32MultiArray()
        fmsg.layout.dim = [
            MultiArrayDimension(label="frame", size=feats.shape[0], stride=feats.size),
            MultiArrayDimension(label="channel", size=feats.shape[1], stride=feats.shape[1]),
        ]
        fmsg.data = array.array("f", feats.ravel().tobytes())
        self.pub_features.publish(fmsg)

    def _age_ms(self, header) -> float:
        """Milliseconds from the image stamp in ``header`` to now (node clock)."""
        return (self.get_clock().now().nanoseconds * 1e-9 - conversions.stamp_to_seconds(header.stamp)) * 1e3

    # -- pose stage -----------------------------------------------------------------------------

    def _on_pose_job(self, job: _PoseJob) -> None:
        if job.epoch != self._epoch:  # a reset came after its frame: the stream it belongs to is gone
            self.stats.count("dropped_pose_reset")
            return
        if job.epoch != self._pose_epoch:
            self._pose_epoch = job.epoch
            self.pose_source.reset()
            self._path = Path()
        try:
            t0 = time.monotonic()
            r = job.result
            pose = self.pose_source.track(PoseInput(job.rgb, r.depth, r.K, conversions.stamp_to_seconds(job.header.stamp),
                                                    r.frame_index, r.T_odom_cam, r.new_keyframe))
            if pose.keyframe and isinstance(self.stream, FrameStream):
                self.stream.keyframe(r, "first" if r.frame_index == 0 else pose.status)
            if r.new_keyframe:
                self.stats.count("keyframes")
                self.stats.count(f"keyframes.{r.keyframe_reason}")
            self._publish_pose(job.header, pose)
            self.stats.sample("pose_ms", (time.monotonic() - t0) * 1e3)
            self.stats.sample("pose_latency_ms", self._age_ms(job.header))
            self.stats.count("poses_published")
        except Exception as e:  # noqa: BLE001 - the node must outlive a failing pose
            if not self._shutting_down():
                self.stats.count("pose_errors")
                self._warn_throttled("pose_error", f"pose stage failed: {type(e).__name__}: {e}")

    def _publish_pose(self, header, pose_estimate: PoseEstimate) -> None:
        """pose, odometry (with covariance), path (every PATH_PERIOD_S), TF odom -> camera."""
        s = self.settings
        camera_frame = header.frame_id
        odom_header = conversions.make_header(header.stamp, s.odom_frame)
        pose = conversions.matrix_to_pose_stamped(pose_estimate.T_odom_cam, odom_header)
        self.pub_pose.publish(pose)
        self.pub_odom.publish(conversions.matrix_to_odometry(pose_estimate.T_odom_cam, odom_header, camera_frame,
                                                             covariance=pose_estimate.covariance))
        self._path.header = odom_header
        self._path.poses.append(pose)
        if len(self._path.poses) > PATH_MAX_POSES:
            del self._path.poses[: len(self._path.poses) - PATH_MAX_POSES]
        now = time.monotonic()
        # a Path of PATH_MAX_POSES poses costs ~6 ms to publish; RViz needs a few Hz, and a stream that makes a
        # keyframe on most frames would otherwise publish it on most frames
        if now - self._path_published >= PATH_PERIOD_S:
            self._path_published = now
            self.pub_path.publish(self._path)

        if self.tf_broadcaster is not None:
            t = TransformStamped()
            t.header = odom_header
            t.child_frame_id = camera_frame
            p = pose.pose
            t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = p.position.x, p.position.y, p.position.z
            t.transform.rotation = p.orientation
            self.tf_broadcaster.sendTransform(t)

    # -- diagnostics ----------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        values: dict = self.stats.snapshot()
        values["backend"] = self.backend_message
        values["model"] = self.engine.card.name
        values["scale"] = float(self.stream.scale)
        values["scale_source"] = self.settings.scale_source
        values["pose_source"] = self.pose_source.name
        tracker = getattr(self.pose_source, "tracker", None)
        if tracker is not None:  # visual odometry: frames, keyframes, losses, recoveries, prior fallbacks, PnP failures
            values.update({f"odometry.{k}": float(v) for k, v in vars(tracker.counters).items()})
        heads = getattr(self.stream, "heads", None)
        if heads is not None:
            values["keyframes_dropped_busy"] = float(heads.dropped)
            values["keyframe_heads_runs"] = float(heads.runs)
            values["keyframe_heads_errors"] = float(heads.errors)
            values["keyframe_heads_ms"] = float(heads.heads_ms)
        errors = values.get("rejected.engine_error", 0.0)
        level = DiagnosticStatus.WARN if errors > 0 else DiagnosticStatus.OK
        msg = f"{values['rate_hz']:.1f} Hz, latency p50 {values.get('latency_ms.p50', float('nan')):.1f} ms"
        self.pub_diag.publish(to_diagnostic_array(self.get_clock().now().to_msg(), diagnostic_status_name(self.get_name()),
                                                  self.get_fully_qualified_name(), values, level, msg))

    def destroy_node(self) -> None:
        """Stop the stages (and the keyframe heads), then the engine, then the node.

        A model run in progress is cancelled (it would otherwise hold the exit for up to a frame, and
        tearing sessions down under it aborts the process). A second Ctrl-C meanwhile (a terminal
        and ``ros2 launch`` both send one) is ignored here instead of raising KeyboardInterrupt out
        of the join.
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._stopping = True
        self.engine.cancel()  # a model run in progress stops now instead of finishing its frame
        depth_done = self._depth_stage.stop(timeout=1.0)
        pose_done = self._pose_stage.stop(timeout=0.5)
        if isinstance(self.stream, FrameStream):
            self.stream.close()
        if depth_done and pose_done:  # never free sessions a thread is still inside (that aborts the process)
            self.engine.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(PerceptionNode, args, name="perception")


if __name__ == "__main__":
    main()
