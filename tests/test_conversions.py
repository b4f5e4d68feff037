"""vega_ros.conversions: round trips, RViz's packed-rgb layout, and typed errors on bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from vega_ros import conversions as c
from vega_ros import geometry as g

RNG = np.random.default_rng(0)
SAMPLES = {
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "mono16": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.uniform(0, 10, (5, 7)).astype(np.float32),
}


@pytest.mark.parametrize("encoding", sorted(SAMPLES))
def test_image_roundtrip(encoding):
    arr = SAMPLES[encoding]
    msg = c.numpy_to_image(arr, encoding, c.make_header(12.5, "cam"))
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * arr.itemsize * (1 if arr.ndim == 2 else arr.shape[2])
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 500_000_000
    out = c.image_to_numpy(msg)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def _padded_big_endian(arr: np.ndarray, encoding: str, pad: int) -> Image:
    """An Image as a big-endian camera driver with row padding would send it."""
    be = arr.astype(arr.dtype.newbyteorder(">"))
    rows = be.reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((arr.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=1,
                 step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1", "rgb8"])
def test_image_with_row_padding_and_big_endian(encoding):
    arr = SAMPLES[encoding]
    out = c.image_to_numpy(_padded_big_endian(arr, encoding, pad=6))
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative


def test_colour_conversions_to_rgb():
    rgb = SAMPLES["rgb8"]
    assert np.array_equal(c.image_to_rgb(c.numpy_to_image(rgb[..., ::-1].copy(), "bgr8")), rgb)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], -1)
    assert np.array_equal(c.image_to_rgb(c.numpy_to_image(rgba, "rgba8")), rgb)
    bgra = np.concatenate([rgb[..., ::-1], np.full(rgb.shape[:2] + (1,), 7, np.uint8)], -1)
    assert np.array_equal(c.image_to_rgb(c.numpy_to_image(bgra, "bgra8")), rgb)
    mono = c.image_to_rgb(c.numpy_to_image(SAMPLES["mono8"], "mono8"))
    assert mono.shape == (5, 7, 3) and np.array_equal(mono[..., 1], SAMPLES["mono8"])
    with pytest.raises(c.ConversionError, match="not a colour image"):
        c.image_to_rgb(c.numpy_to_image(SAMPLES["32FC1"], "32FC1"))


RGB_PATTERN = {"rggb": "RGGB", "bggr": "BGGR", "gbrg": "GBRG", "grbg": "GRBG"}  # rows 0 and 1, columns 0 and 1


@pytest.mark.parametrize("pattern", sorted(RGB_PATTERN))
def test_bayer_images_demosaic_to_the_colour_they_sampled(pattern):
    """A flat orange (200, 100, 50) sampled through each ROS Bayer pattern comes back orange: a swapped
    pattern would give blue (50, 100, 200) or a green cast."""
    colour = {"R": 200, "G": 100, "B": 50}
    letters = RGB_PATTERN[pattern]
    mosaic = np.zeros((16, 20), np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            mosaic[dy::2, dx::2] = colour[letters[2 * dy + dx]]
    rgb = c.image_to_rgb(c.numpy_to_image(mosaic, f"bayer_{pattern}8"))
    assert rgb.shape == (16, 20, 3)
    np.testing.assert_allclose(rgb[4:-4, 4:-4].reshape(-1, 3).mean(0), (200, 100, 50), atol=2)


@pytest.mark.parametrize("encoding, order", [("yuv422", "UYVY"), ("uyvy", "UYVY"), ("yuv422_yuy2", "YUYV"), ("yuyv", "YUYV")])
def test_yuv422_images_decode_with_their_byte_order(encoding, order):
    """Two pixels share U and V: grey stays grey, and a strong V (red) stays red, not blue, in either order."""
    for (y, u, v), check in (((128, 128, 128), lambda px: np.allclose(px, 128, atol=2)),
                             ((90, 110, 220), lambda px: px[0] > 150 and px[2] < 80)):
        bytes_of = {"Y": y, "U": u, "V": v}
        pair = [bytes_of[ch] for ch in order]  # U Y0 V Y1 / Y0 U Y1 V, both Y the same
        packed = np.tile(np.array(pair, np.uint8), (6, 4)).reshape(6, 8, 2)  # 6 x 8 pixels, 2 bytes each
        rgb = c.image_to_rgb(c.numpy_to_image(packed, encoding))
        assert rgb.shape == (6, 8, 3) and check(rgb[2, 3].astype(int)), (encoding, (y, u, v), rgb[2, 3])
    with pytest.raises(c.ConversionError, match="even width"):
        c.image_to_rgb(c.numpy_to_image(np.zeros((4, 5, 2), np.uint8), encoding))


def test_depth_units_and_invalid_values():
    depth = np.array([[0.0, 1.2345, np.nan], [np.inf, -1.0, 65.6]], np.float32)
    mm = c.depth_m_to_image(depth, encoding="16UC1")
    assert mm.encoding == "16UC1"
    np.testing.assert_array_equal(c.image_to_numpy(mm), [[0, 1234, 0], [0, 0, 65535]])  # 1234.5 rounds to even
    back = c.image_to_depth_m(mm)
    np.testing.assert_allclose(back, [[0, 1.234, 0], [0, 0, 65.535]], atol=1e-6)
    metres = c.image_to_depth_m(c.depth_m_to_image(depth))
    np.testing.assert_array_equal(metres, np.array([[0, 1.2345, 0], [0, 0, 65.6]], np.float32))
    with pytest.raises(c.ConversionError, match="16UC1"):
        c.image_to_depth_m(c.numpy_to_image(SAMPLES["rgb8"], "rgb8"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: setattr(m, "encoding", "nv21"), "unsupported image encoding 'nv21'"),
        (lambda m: setattr(m, "step", 20), "step 20 is smaller than one row"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "data length 104 does not match"),
        (lambda m: setattr(m, "height", 0), "zero size"),
        (lambda m: setattr(m, "width", 0), "zero size"),
    ],
)
def test_bad_images_raise_typed_errors(mutate, message):
    msg = c.numpy_to_image(SAMPLES["rgb8"], "rgb8")
    mutate(msg)
    with pytest.raises(c.ConversionError, match=message):
        c.image_to_numpy(msg)


def test_encoder_rejects_wrong_shape_or_dtype():
    with pytest.raises(c.ConversionError, match=r"\[H, W, 3\]"):
        c.numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(c.ConversionError, match="dtype float32"):
        c.numpy_to_image(np.zeros((4, 4), np.float64), "32FC1")
    with pytest.raises(c.ConversionError, match="zero size"):
        c.numpy_to_image(np.zeros((0, 4), np.uint8), "mono8")


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), pad=st.integers(0, 5), big=st.booleans())
def test_mono16_roundtrip_any_size_padding_endianness(h, w, pad, big):
    arr = np.arange(h * w, dtype=np.uint16).reshape(h, w) * 257
    wire = arr.astype(">u2" if big else "<u2").view(np.uint8).reshape(h, -1)
    data = np.concatenate([wire, np.zeros((h, pad), np.uint8)], 1)
    msg = Image(height=h, width=w, encoding="mono16", is_bigendian=int(big), step=2 * w + pad, data=data.tobytes())
    np.testing.assert_array_equal(c.image_to_numpy(msg), arr)


def test_camera_info_roundtrip_and_errors():
    K = g.intrinsics_from_fov(640, 480, 55.0)
    D = np.array([0.1, -0.05, 0.001, 0.002, 0.0])
    info = c.intrinsics_to_camera_info(c.CameraIntrinsics(K=K, width=640, height=480, D=D), c.make_header(1.0, "cam"))
    assert info.distortion_model == "plumb_bob"
    np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3], K)
    intr = c.camera_info_to_intrinsics(info)
    np.testing.assert_allclose(intr.K, K)
    np.testing.assert_allclose(intr.D, D)
    assert (intr.width, intr.height) == (640, 480)
    with pytest.raises(c.ConversionError, match="uncalibrated"):
        c.camera_info_to_intrinsics(CameraInfo(width=640, height=480))
    with pytest.raises(c.ConversionError, match="zero size"):
        c.camera_info_to_intrinsics(CameraInfo(k=K.ravel().tolist()))
    info.d = [0.1, float("nan"), 0.0, 0.0, 0.0]
    with pytest.raises(c.ConversionError, match="non-finite"):
        c.camera_info_to_intrinsics(info)


def test_pointcloud_xyz_and_rgb_roundtrip():
    pts = RNG.normal(size=(50, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, (50, 3), dtype=np.uint8)
    msg = c.points_to_pointcloud2(pts, rgb, c.make_header(0.0, "camera_optical"))
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"]
    assert msg.point_step == 16 and msg.row_step == 800 and len(msg.data) == 800 and msg.is_dense
    p2, c2 = c.pointcloud2_to_numpy(msg)
    np.testing.assert_array_equal(p2, pts)
    np.testing.assert_array_equal(c2, rgb)
    p3, c3 = c.pointcloud2_to_numpy(c.points_to_pointcloud2(pts))
    np.testing.assert_array_equal(p3, pts)
    assert c3 is None


def test_packed_rgb_is_the_bit_pattern_rviz_reads():
    msg = c.points_to_pointcloud2(np.zeros((1, 3), np.float32), np.array([[0x12, 0x34, 0x56]], np.uint8))
    rgb_bytes = bytes(msg.data)[12:16]
    assert rgb_bytes == bytes([0x56, 0x34, 0x12, 0x00])  # little-endian uint32 0x00123456
    assert msg.fields[3].datatype == PointField.FLOAT32  # RViz reads the packed value through a float32 field


def test_pointcloud_reader_handles_organised_padded_big_endian_clouds():
    h, w = 2, 3
    pts = np.arange(h * w * 3, dtype=np.float32).reshape(h * w, 3)
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": [">f4"] * 3, "offsets": [4, 8, 12], "itemsize": 20})
    cloud = np.zeros(h * w, dtype)
    for i, a in enumerate("xyz"):
        cloud[a] = pts[:, i]
    rows = cloud.view(np.uint8).reshape(h, w * 20)
    data = np.concatenate([rows, np.zeros((h, 4), np.uint8)], 1).tobytes()
    fields = [PointField(name=a, offset=4 + 4 * i, datatype=PointField.FLOAT32, count=1) for i, a in enumerate("xyz")]
    msg = PointCloud2(height=h, width=w, fields=fields, is_bigendian=True, point_step=20, row_step=w * 20 + 4, data=data)
    out, rgb = c.pointcloud2_to_numpy(msg)
    np.testing.assert_array_equal(out, pts)
    assert rgb is None


def test_bad_pointclouds_raise_typed_errors():
    with pytest.raises(c.ConversionError, match=r"\[N, 3\]"):
        c.points_to_pointcloud2(np.zeros((4, 2), np.float32))
    with pytest.raises(c.ConversionError, match="rgb must be"):
        c.points_to_pointcloud2(np.zeros((4, 3), np.float32), np.zeros((3, 3), np.uint8))
    msg = c.points_to_pointcloud2(np.zeros((4, 3), np.float32))
    msg.data = bytes(msg.data)[:-2]
    with pytest.raises(c.ConversionError, match="data length"):
        c.pointcloud2_to_numpy(msg)
    msg.fields = msg.fields[:2]
    with pytest.raises(c.ConversionError, match="lacks fields"):
        c.pointcloud2_to_numpy(msg)


def test_pose_stamped_and_odometry_roundtrip():
    T = g.make_transform(g.axis_angle_to_matrix([1, 2, 3], 0.7), [0.5, -1.0, 2.0])
    header = c.make_header(3.25, "odom")
    ps = c.matrix_to_pose_stamped(T, header)
    assert ps.header.frame_id == "odom"
    assert ps.pose.orientation.w >= 0
    np.testing.assert_allclose(c.pose_stamped_to_matrix(ps), T, atol=1e-12)
    odom = c.matrix_to_odometry(T, header, "camera_optical", covariance_diag=0.01)
    assert odom.child_frame_id == "camera_optical" and odom.pose.covariance[0] == 0.01
    np.testing.assert_allclose(c.odometry_to_matrix(odom), T, atol=1e-12)
    with pytest.raises(c.ConversionError, match="finite 4x4"):
        c.matrix_to_pose(np.full((4, 4), np.nan))
    ps.pose.orientation.w = 0.0
    ps.pose.orientation.x = ps.pose.orientation.y = ps.pose.orientation.z = 0.0
    with pytest.raises(c.ConversionError, match="zero-norm"):
        c.pose_stamped_to_matrix(ps)
