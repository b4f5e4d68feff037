"""numpy <-> ROS 2 messages: Image, CompressedImage, CameraInfo, PointCloud2, PoseStamped, Odometry.

Every decoder validates what it reads and raises :class:`ConversionError` with a message that
names the problem (unknown encoding, step too small, data length mismatch, zero size, ...), so
a node can count and log a bad message instead of crashing or publishing garbage.

Encodings (sensor_msgs/image_encodings):
  rgb8, bgr8          [H, W, 3] uint8      rgba8, bgra8   [H, W, 4] uint8
  mono8               [H, W] uint8         mono16         [H, W] uint16
  bayer_{rggb,bggr,gbrg,grbg}8  [H, W] uint8  yuv422 / uyvy, yuv422_yuy2 / yuyv  [H, W, 2] uint8
  16UC1               [H, W] uint16, depth in millimetres (0 = invalid)
  32FC1               [H, W] float32, depth in metres (0 or NaN = invalid)
Images written here are tightly packed (step = W * pixel bytes) and little-endian on
little-endian hosts; images read here may carry row padding and either byte order.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from vega_ros import geometry


class ConversionError(ValueError):
    """A message could not be converted: the text says which field is wrong and how."""


# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    # what camera drivers publish raw (usb_cam, v4l2_camera, machine-vision cameras): colour after demosaicing / YUV
    "bayer_rggb8": (np.dtype(np.uint8), 1),
    "bayer_bggr8": (np.dtype(np.uint8), 1),
    "bayer_gbrg8": (np.dtype(np.uint8), 1),
    "bayer_grbg8": (np.dtype(np.uint8), 1),
    "yuv422": (np.dtype(np.uint8), 2),  # UYVY (sensor_msgs image_encodings)
    "uyvy": (np.dtype(np.uint8), 2),
    "yuv422_yuy2": (np.dtype(np.uint8), 2),  # YUYV
    "yuyv": (np.dtype(np.uint8), 2),
}
DEPTH_ENCODINGS = ("16UC1", "32FC1")
_HOST_BIG_ENDIAN = sys.byteorder == "big"


def _to_uint8_array(buf: np.ndarray) -> array.array:
    """One copy of a contiguous numpy buffer into the ``array('B')`` that rosidl fields hold."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(buf).data.cast("B"))
    return out


def make_header(stamp: Time | float | None = None, frame_id: str = "") -> Header:
    """A ``std_msgs/Header``; ``stamp`` is a ``Time`` or seconds as a float."""
    header = Header(frame_id=frame_id)
    if isinstance(stamp, Time):
        header.stamp = stamp
    elif stamp is not None:
        sec = int(np.floor(stamp))
        header.stamp = Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9)) % 1_000_000_000)
    return header


def stamp_to_seconds(stamp: Time) -> float:
    """``builtin_interfaces/Time`` to float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


# ----------------------------------------------------------------------------- Image


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode an Image into an array in the message's own encoding and channel order.

    Returns ``[H, W]`` for one-channel encodings and ``[H, W, C]`` otherwise, native byte order.
    Raises :class:`ConversionError` for an unknown encoding, zero size, a step smaller than a
    row, or data whose length is not ``step * height``.
    """
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise ConversionError(f"unsupported image encoding '{enc}' (supported: {', '.join(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ConversionError(f"image has zero size ({w}x{h})")
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ConversionError(f"step {step} is smaller than one row of {w} {enc} pixels ({row_bytes} bytes)")
    n = len(msg.data)
    if n != step * h:
        raise ConversionError(f"data length {n} does not match step * height = {step} * {h} = {step * h}")
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, step)[:, :row_bytes]
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ascontiguousarray(raw).view(wire).reshape((h, w) if channels == 1 else (h, w, channels))
    return arr.astype(dtype, copy=False)


def numpy_to_image(arr: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Encode ``arr`` (shape and dtype as in the module table) as a tightly packed Image."""
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(f"unsupported image encoding '{encoding}'")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(arr)
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ConversionError(f"{encoding} needs an array of shape {'[H, W]' if channels == 1 else f'[H, W, {channels}]'}, got {arr.shape}")
    if arr.dtype != dtype:
        raise ConversionError(f"{encoding} needs dtype {dtype}, got {arr.dtype}")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise ConversionError(f"image has zero size ({w}x{h})")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = h, w, encoding
    msg.is_bigendian = _HOST_BIG_ENDIAN
    msg.step = w * channels * dtype.itemsize
    msg.data = _to_uint8_array(arr)
    return msg


def image_to_rgb(msg: Image) -> np.ndarray:
    """Decode a colour or mono8 Image to ``[H, W, 3]`` uint8 RGB."""
    arr = image_to_numpy(msg)
    enc = msg.encoding
    if enc == "rgb8":
        return arr
    if enc == "bgr8":
        return np.ascontiguousarray(arr[..., ::-1])
    if enc == "rgba8":
        return np.ascontiguousarray(arr[..., :3])
    if enc == "bgra8":
        return np.ascontiguousarray(arr[..., 2::-1])
    if enc in ("mono8", "8UC1"):
        return np.repeat(arr[..., None], 3, axis=2)
    if enc in _OPENCV_TO_RGB:
        import cv2

        if enc.startswith(("yuv", "uyvy", "yuyv")) and arr.shape[1] % 2:
            raise ConversionError(f"{enc} needs an even width (two pixels share U and V), got {arr.shape[1]}")
        return cv2.cvtColor(np.ascontiguousarray(arr), getattr(cv2, _OPENCV_TO_RGB[enc]))
    raise ConversionError(f"encoding '{enc}' is not a colour image")


# Raw driver encodings -> the OpenCV conversion to RGB (cv_bridge's table: OpenCV names a Bayer pattern
# by its second row's first two pixels, so ROS' rggb is OpenCV's BG).
_OPENCV_TO_RGB = {
    "bayer_rggb8": "COLOR_BayerBG2RGB", "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB", "bayer_grbg8": "COLOR_BayerGB2RGB",
    "yuv422": "COLOR_YUV2RGB_UYVY", "uyvy": "COLOR_YUV2RGB_UYVY",
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2", "yuyv": "COLOR_YUV2RGB_YUY2",
}


def compressed_image_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a CompressedImage (JPEG, PNG, ... whatever OpenCV reads) to ``[H, W, 3]`` uint8 RGB.

    Raises :class:`ConversionError` for empty data or data OpenCV cannot decode.
    """
    import cv2

    data = np.frombuffer(msg.data, dtype=np.uint8) if len(msg.data) else np.zeros(0, np.uint8)
    if data.size == 0:
        raise ConversionError(f"compressed image (format '{msg.format}') has no data")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ConversionError(f"compressed image (format '{msg.format}', {data.size} bytes) could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_compressed_image(rgb: np.ndarray, header: Header | None = None, fmt: str = "jpeg", quality: int = 90) -> CompressedImage:
    """Encode ``rgb [H, W, 3]`` uint8 as a CompressedImage (``fmt`` 'jpeg' or 'png')."""
    import cv2

    ext = {"jpeg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise ConversionError(f"compressed format must be 'jpeg' or 'png', got '{fmt}'")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ConversionError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    msg = CompressedImage(format=fmt)
    if header is not None:
        msg.header = header
    msg.data = _to_uint8_array(buf)
    return msg


def image_to_depth_m(msg: Image) -> np.ndarray:
    """Decode a depth Image to ``[H, W]`` float32 metres with 0 = invalid (NaN / inf / <= 0 become 0)."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ConversionError(f"depth image must be 16UC1 (mm) or 32FC1 (m), got '{msg.encoding}'")
    arr = image_to_numpy(msg)
    depth = arr.astype(np.float32) * np.float32(0.001) if msg.encoding == "16UC1" else arr.astype(np.float32, copy=True)
    depth[~geometry.valid_depth_mask(depth)] = 0.0
    return depth


def depth_m_to_image(depth: np.ndarray, header: Header | None = None, encoding: str = "32FC1") -> Image:
    """Encode ``depth [H, W]`` metres (0 = invalid) as 32FC1 (m) or 16UC1 (mm, saturating at 65.535 m)."""
    depth = np.asarray(depth, dtype=np.float32)
    if encoding == "32FC1":
        return numpy_to_image(depth, "32FC1", header)
    if encoding == "16UC1":
        mm = np.where(geometry.valid_depth_mask(depth), np.round(depth * 1000.0), 0.0)
        return numpy_to_image(np.clip(mm, 0, 65535).astype(np.uint16), "16UC1", header)
    raise ConversionError(f"depth encoding must be 32FC1 or 16UC1, got '{encoding}'")


# ----------------------------------------------------------------------------- CameraInfo


@dataclass
class CameraIntrinsics:
    """What a CameraInfo says about the camera: ``K [3, 3]`` pixels, distortion ``D [n]``."""

    K: np.ndarray
    width: int
    height: int
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))
    distortion_model: str = "plumb_bob"


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """Read K, D, size and distortion model; an uncalibrated (all-zero K) or sizeless info raises."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if msg.width == 0 or msg.height == 0:
        raise ConversionError(f"camera_info has zero size ({msg.width}x{msg.height})")
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ConversionError(f"camera_info K is uncalibrated or invalid (fx={K[0, 0]}, fy={K[1, 1]})")
    D = np.asarray(msg.d, dtype=np.float64)
    if not np.all(np.isfinite(D)):
        raise ConversionError(f"camera_info D has non-finite coefficients {D.tolist()}")
    return CameraIntrinsics(
        K=K,
        width=int(msg.width),
        height=int(msg.height),
        D=D,
        distortion_model=msg.distortion_model or "plumb_bob",
    )


def intrinsics_to_camera_info(intr: CameraIntrinsics, header: Header | None = None) -> CameraInfo:
    """A CameraInfo with K, D, R = I and P = [K | 0] (a monocular, rectified camera)."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = intr.distortion_model
    msg.d = [float(x) for x in np.asarray(intr.D).ravel()]
    K = np.asarray(intr.K, dtype=np.float64).reshape(3, 3)
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    return msg


# ----------------------------------------------------------------------------- PointCloud2

_XYZ_FIELDS = [
    PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
    PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
    PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
]
_RGB_FIELD = PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1)
_XYZ_DTYPE = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
_XYZRGB_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4", "<f4", "<f4", "<u4"], "offsets": [0, 4, 8, 12], "itemsize": 16})
_POINTFIELD_DTYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` uint8 RGB to ``[...]`` uint32 0x00RRGGBB, the bit pattern RViz reads from an 'rgb' float32 field."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: ``[...]`` uint32 to ``[..., 3]`` uint8."""
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], -1).astype(np.uint8)


def points_to_pointcloud2(points: np.ndarray, rgb: np.ndarray | None = None, header: Header | None = None) -> PointCloud2:
    """Build an unorganised (height 1) PointCloud2.

    Args:
        points: ``[N, 3]`` float32 metres (in ``header.frame_id``).
        rgb: optional ``[N, 3]`` uint8; packed into a float32 field ``rgb`` (RViz's convention).
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ConversionError(f"points must be [N, 3], got {points.shape}")
    n = points.shape[0]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != (n, 3):
            raise ConversionError(f"rgb must be [N, 3] matching {n} points, got {rgb.shape}")
    cloud = np.empty(n, dtype=_XYZ_DTYPE if rgb is None else _XYZRGB_DTYPE)
    for i, axis in enumerate("xyz"):
        cloud[axis] = points[:, i]
    if rgb is not None:
        cloud["rgb"] = pack_rgb(rgb)
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, n
    msg.fields = list(_XYZ_FIELDS) + ([] if rgb is None else [_RGB_FIELD])
    msg.is_bigendian = False
    msg.point_step = cloud.dtype.itemsize
    msg.row_step = msg.point_step * n
    msg.is_dense = bool(np.all(np.isfinite(points)))
    msg.data = _to_uint8_array(cloud.view(np.uint8))
    return msg


def pointcloud2_to_numpy(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``(points [N, 3] float32, rgb [N, 3] uint8 or None)`` from any PointCloud2 with x, y, z fields.

    Organised clouds are flattened row-major (N = height * width).
    """
    by_name = {f.name: f for f in msg.fields}
    missing = [a for a in "xyz" if a not in by_name]
    if missing:
        raise ConversionError(f"PointCloud2 lacks fields {missing}")
    step = int(msg.point_step)
    if int(msg.row_step) < int(msg.width) * step:
        raise ConversionError(f"PointCloud2 row_step {msg.row_step} is smaller than width * point_step = {msg.width} * {step}")
    if len(msg.data) != int(msg.row_step) * int(msg.height):
        raise ConversionError(f"PointCloud2 data length {len(msg.data)} does not match row_step * height = {msg.row_step} * {msg.height}")
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z", "rgb"):
        f = by_name.get(name)
        if f is None:
            continue
        if f.datatype not in _POINTFIELD_DTYPES:
            raise ConversionError(f"PointCloud2 field '{name}' has unknown datatype {f.datatype}")
        code = "u4" if name == "rgb" else _POINTFIELD_DTYPES[f.datatype]
        names.append(name)
        formats.append(order + code)
        offsets.append(f.offset)
        if f.offset + np.dtype(code).itemsize > step:
            raise ConversionError(f"PointCloud2 field '{name}' at offset {f.offset} overruns point_step {step}")
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if int(msg.row_step) == int(msg.width) * step:
        packed = raw
    else:  # rows padded beyond width * point_step
        packed = raw.reshape(msg.height, msg.row_step)[:, : msg.width * step]
    cloud = np.ascontiguousarray(packed).reshape(-1).view(dtype)
    points = np.stack([cloud["x"], cloud["y"], cloud["z"]], -1).astype(np.float32)
    rgb = unpack_rgb(cloud["rgb"]) if "rgb" in names else None
    return points, rgb


# ----------------------------------------------------------------------------- poses


def matrix_to_pose(T: np.ndarray) -> Pose:
    """4x4 rigid transform to ``geometry_msgs/Pose`` (quaternion x, y, z, w)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ConversionError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    q = geometry.matrix_to_quat(T[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """``geometry_msgs/Pose`` to a 4x4 transform; a zero quaternion raises."""
    q = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
    try:
        R = geometry.quat_to_matrix(q)
    except ValueError as e:
        raise ConversionError(f"pose orientation: {e}") from e
    return geometry.make_transform(R, [pose.position.x, pose.position.y, pose.position.z])


def matrix_to_pose_stamped(T: np.ndarray, header: Header) -> PoseStamped:
    """4x4 transform (pose of the camera in ``header.frame_id``) to PoseStamped."""
    return PoseStamped(header=header, pose=matrix_to_pose(T))


def pose_stamped_to_matrix(msg: PoseStamped) -> np.ndarray:
    """PoseStamped to a 4x4 transform."""
    return pose_to_matrix(msg.pose)


def matrix_to_odometry(T: np.ndarray, header: Header, child_frame_id: str, covariance_diag: float | None = None,
                       covariance: np.ndarray | None = None) -> Odometry:
    """Odometry of ``child_frame_id`` in ``header.frame_id`` from a 4x4 transform (twist left zero).

    ``covariance [6, 6]`` (x, y, z, rot x, rot y, rot z) or ``covariance_diag`` (a diagonal) set the
    pose covariance; neither leaves it zero (unknown).
    """
    msg = Odometry(header=header, child_frame_id=child_frame_id)
    msg.pose.pose = matrix_to_pose(T)
    if covariance is not None:
        cov = np.asarray(covariance, dtype=np.float64)
        if cov.shape != (6, 6) or not np.all(np.isfinite(cov)):
            raise ConversionError(f"pose covariance must be a finite 6x6 matrix, got shape {cov.shape}")
        msg.pose.covariance = cov.ravel().tolist()
    elif covariance_diag is not None:
        msg.pose.covariance = (np.eye(6) * covariance_diag).ravel().tolist()
    return msg


def odometry_to_matrix(msg: Odometry) -> np.ndarray:
    """Odometry pose to a 4x4 transform."""
    return pose_to_matrix(msg.pose.pose)
