"""Typed node settings: every parameter declared once with a ParameterDescriptor, read into a dataclass.

Each settings class is a frozen dataclass whose fields carry their ROS description (and an
optional range) in ``field(metadata=...)`` (:func:`vega_ros.param_fields.param`);
:func:`declare_settings` declares them all on a node and returns a populated instance, :func:`settings_to_yaml_dict` writes the same defaults as a
params file. The YAML in ``config/`` and the launch file use exactly these names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from vega_ros.image_fit import IMAGE_FITS
from vega_ros.param_fields import RUNTIME_NOTE, check_choice, dynamic_parameters, param  # noqa: F401  (re-exported)

T = TypeVar("T")


@dataclass(frozen=True)
class QosSettings:
    reliability: str  # "reliable" | "best_effort"
    depth: int
    durability: str = "volatile"  # "volatile" | "transient_local"

    def profile(self) -> QoSProfile:
        rel = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}[self.reliability]
        dur = {"volatile": DurabilityPolicy.VOLATILE, "transient_local": DurabilityPolicy.TRANSIENT_LOCAL}[self.durability]
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(1, int(self.depth)), reliability=rel, durability=dur)


_RELIABILITY = ("reliable", "best_effort")
_DURABILITY = ("volatile", "transient_local")


@dataclass(frozen=True)
class PerceptionSettings:
    """Parameters of ``perception_node`` (see config/perception.yaml)."""

    model_dir: str = param("", "Model artifact directory (models/<name>); empty = the shipped default")
    backend: str = param("auto", "Inference backend", choices=("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"))
    intra_op_threads: int = param(0, "ONNX Runtime intra-op threads of the per-frame graph (0 = let ORT choose)", 0, 256)
    inter_op_threads: int = param(0, "ONNX Runtime inter-op threads (0 = let ORT choose)", 0, 256)
    heads_intra_op_threads: int = param(1, "ONNX Runtime intra-op threads of a format version 2 artifact's keyframe heads, "
                                           "which run on their own thread beside the per-frame graph (0 = let ORT choose)", 0, 256)
    trt_cache_dir: str = param("", "TensorRT engine cache directory (empty = ~/.cache/vega_ros/trt)")
    trt_fp16: bool = param(True, "Build TensorRT engines in FP16 where the GPU supports it")
    odom_frame: str = param("odom", "Frame of pose / odometry (and the parent of the TF broadcast)")
    camera_frame: str = param("", "Camera optical frame; empty = the image header's frame_id", dynamic=True)
    clip_stride: int = param(5, "Frames between buffered clip frames (v1); frames between keyframes of the learned pose (v2)", 1, 100)
    keyframe_max_translation_m: float = param(0.25, "New keyframe beyond this predicted translation (m)", 0.0, 100.0)
    keyframe_max_rotation_deg: float = param(15.0, "New keyframe beyond this predicted rotation (deg)", 0.0, 180.0)
    keyframe_min_overlap: float = param(0.6, "New keyframe below this predicted overlap with the keyframe", 0.0, 1.0)
    keyframe_max_frames: int = param(90, "New keyframe after this many frames at most", 1, 100000)
    pose_source: str = param("visual_odometry", "Camera pose: 'visual_odometry' (features tracked on the predicted metric depth, PnP + RANSAC against "
                                                "keyframes, a bundle-adjusted keyframe window, the learned pose as prior) or 'learned' "
                                                "(the model's pose head alone)",
                             choices=("visual_odometry", "learned"))
    scale_source: str = param("model", "Depth scale: 'model' (trust the card), 'fixed' (multiply by depth_scale), "
                                       "'motion' (from known camera motion: TF or the reference_pose topic)",
                              choices=("model", "fixed", "motion"))
    depth_scale: float = param(1.0, "Scale factor applied to depth and translation when scale_source is 'fixed' (and the start value for 'motion')", 1e-6, 1e6)
    scale_reference_frame: str = param("", "scale_source 'motion' with tf2_ros: fixed frame whose TF to the camera frame "
                                           "is the known motion; empty = the reference_pose topic (PoseStamped)")
    scale_window: int = param(30, "scale_source 'motion': frames of motion the scale estimate averages over", 1, 100000)
    image_transport: str = param("raw", "Image input: 'raw' subscribes to image (sensor_msgs/Image), 'compressed' to "
                                        "image/compressed (sensor_msgs/CompressedImage, decoded with OpenCV)", choices=("raw", "compressed"))
    image_fit: str = param("crop", "A camera image of another aspect ratio than the model's: 'crop' (its largest centred window of the "
                                   "model's aspect, undistorted; depth outside is 0 = no measurement) or 'stretch' (all of it, resized "
                                   "per axis: squashed, the depth scale drifts)", choices=IMAGE_FITS)
    depth_encoding: str = param("32FC1", "Encoding of depth/image: 32FC1 (metres) or 16UC1 (millimetres)", choices=("32FC1", "16UC1"),
                                dynamic=True)
    lazy: bool = param(True, "Run no inference while no output topic has a subscriber (diagnostics go on and count the skipped frames)")
    output_resolution: str = param("input", "Resolution of depth outputs: 'input' (the camera image) or 'model'", choices=("input", "model"),
                                   dynamic=True)
    cloud_stride: int = param(2, "Publish every n-th pixel (in both directions) in the point cloud", 1, 64, dynamic=True)
    cloud_max_range_m: float = param(10.0, "Drop cloud points farther than this (m); 0 = no limit", 0.0, 1000.0, dynamic=True)
    cloud_min_confidence: float = param(0.0, "Drop cloud points whose depth confidence is below this", 0.0, 1e9, dynamic=True)
    stamp_reset_s: float = param(2.0, "A stamp this far before the last one is a clock reset (stream restarts), smaller steps back are rejected", 0.0, 1e6)
    diagnostics_period_s: float = param(1.0, "Period of /diagnostics messages (s)", 0.05, 3600.0)
    log_throttle_s: float = param(5.0, "Minimum seconds between repeated warnings of one kind", 0.0, 3600.0, dynamic=True)
    latency_window: int = param(300, "Frames kept for latency / rate statistics", 10, 100000)


@dataclass(frozen=True)
class SimCameraSettings:
    """Parameters of ``sim_camera_node`` (see config/sim_camera.yaml)."""

    source: str = param("libero", "Scene: 'libero' (MuJoCo via robosuite) or 'synthetic' (analytic boxes; no MuJoCo)", choices=("libero", "synthetic"))
    suite: str = param("libero_spatial", "LIBERO benchmark suite")
    task_index: int = param(0, "Task of the suite whose scene is shown", 0, 1000)
    camera_name: str = param("galleryview", "MuJoCo camera that is moved along the path")
    width: int = param(224, "Image width (px)", 16, 4096)
    height: int = param(224, "Image height (px)", 16, 4096)
    fov_y_deg: float = param(50.0, "Vertical field of view of the moved camera (deg)", 1.0, 179.0)
    rate_hz: float = param(10.0, "Publishing rate (Hz); frames are late rather than skipped if rendering is slower", 0.1, 1000.0)
    path: str = param("orbit", "Camera path", choices=("orbit", "dolly"))
    path_radius_m: float = param(1.1, "Orbit radius around the table centre (m)", 0.05, 20.0)
    path_height_m: float = param(0.55, "Camera height above the look-at point (m)", -10.0, 10.0)
    path_period_s: float = param(40.0, "Seconds per full orbit / dolly cycle", 0.5, 3600.0)
    path_arc_deg: float = param(60.0, "Orbit sweeps +-arc/2 around its start (deg)", 0.0, 360.0)
    frame_id: str = param("camera_optical", "frame_id of images (OpenCV optical frame)")
    world_frame: str = param("world", "frame_id of the ground-truth pose")
    seed: int = param(0, "Scene seed", 0, 2**31 - 1)
    max_frames: int = param(0, "Stop publishing after this many frames (0 = no limit)", 0, 10**9)
    qos_reliability: str = param("reliable", "QoS reliability of published topics", choices=_RELIABILITY)
    qos_depth: int = param(10, "QoS queue depth", 1, 10000)

    @property
    def qos(self) -> QosSettings:
        return QosSettings(self.qos_reliability, self.qos_depth)


def _descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    desc = f.metadata.get("description", "")
    choices = f.metadata.get("choices", ())
    if choices:
        desc += f" (one of: {', '.join(choices)})"
    d = ParameterDescriptor(description=desc)
    lo, hi = f.metadata.get("range", (None, None))
    if lo is not None and hi is not None:
        if f.type in ("int", int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif f.type in ("float", float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def declare_settings(node, cls: type[T], prefix: str = "") -> T:
    """Declare every field of ``cls`` as a parameter ``prefix + name`` of ``node`` and return the values read once."""
    values = {}
    for f in dataclasses.fields(cls):
        p = node.declare_parameter(prefix + f.name, f.default, _descriptor(f))
        value = p.value
        why = check_choice(cls, f.name, value)
        if why:
            raise ValueError(why)
        values[f.name] = value
    return cls(**values)


def settings_to_yaml_dict(settings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
