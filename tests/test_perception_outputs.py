"""The perception node's array work without ROS: cloud back-projection, compressed images, the v2 frame stream."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from vega_ros import conversions, geometry
from vega_ros.conversions import ConversionError
from vega_ros.perception_outputs import cloud_arrays, output_frame
from vega_ros.pose_source import LearnedPose, PoseInput


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_cloud_is_the_backprojected_subgrid_with_its_filters(stride):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.2, 3.0, (60, 80)).astype(np.float32)
    depth[::7, ::5] = 0
    depth[3, 3] = np.nan
    conf = rng.uniform(0, 1, (60, 80)).astype(np.float32)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    K = geometry.intrinsics_from_fov(80, 60, 50.0)
    K[0, 1] = 0.3  # skew too
    out = output_frame(depth, conf, K, rgb, K, "input")
    pts, cols = cloud_arrays(out, stride, 2.0, 0.3)
    ref = geometry.depth_to_points(depth, K)[::stride, ::stride].reshape(-1, 3)
    keep = (ref[:, 2] > 0) & (ref[:, 2] <= 2.0) & (conf[::stride, ::stride].reshape(-1) >= 0.3)
    assert 0 < keep.sum() < keep.size
    np.testing.assert_allclose(pts, ref[keep], atol=1e-6)
    np.testing.assert_array_equal(cols, rgb[::stride, ::stride].reshape(-1, 3)[keep])


def test_output_frame_at_model_resolution_resizes_the_image_not_the_depth():
    depth, conf = np.ones((28, 42), np.float32), np.ones((28, 42), np.float32)
    rgb = np.zeros((56, 84, 3), np.uint8)
    K_model, K_in = np.eye(3) * 2, np.eye(3)
    out = output_frame(depth, conf, K_model, rgb, K_in, "model")
    assert out.depth.shape == (28, 42) and out.rgb.shape == (28, 42, 3) and np.array_equal(out.K, K_model)
    out = output_frame(depth, conf, K_model, rgb, K_in, "input")
    assert out.depth.shape == (56, 84) and np.array_equal(out.K, K_in)
    with pytest.raises(ValueError, match="resolution"):
        output_frame(depth, conf, K_model, rgb, K_in, "half")


def test_compressed_image_round_trip_and_corrupt_data():
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:, :16] = (255, 0, 0)
    msg = conversions.rgb_to_compressed_image(rgb, fmt="png")
    np.testing.assert_array_equal(conversions.compressed_image_to_rgb(msg), rgb)  # png is lossless; RGB order kept
    bad = CompressedImage(format="jpeg")
    bad.data = b"\xff\xd8 not a jpeg"
    with pytest.raises(ConversionError, match="could not be decoded"):
        conversions.compressed_image_to_rgb(bad)
    with pytest.raises(ConversionError, match="no data"):
        conversions.compressed_image_to_rgb(CompressedImage(format="jpeg"))


def test_learned_pose_makes_every_nth_frame_a_keyframe():
    src = LearnedPose(keyframe_interval=3)
    flags = [src.track(PoseInput(None, None, None, 0.0, i, np.eye(4), False)).keyframe for i in range(7)]
    assert flags == [True, False, False, True, False, False, True]
    assert src.track(PoseInput(None, None, None, 0.0, 1, np.eye(4), True)).keyframe  # v1's stream decided


def test_v2_frame_stream_runs_the_heads_at_keyframes_off_the_frame_path(tmp_path):
    from tests.fixtures.artifacts import export_small_v2
    from vega_ros.engine import create_engine
    from vega_ros.engine.frame_stream import FrameStream

    engine, _ = create_engine(export_small_v2(tmp_path / "m").path, "onnxruntime-cpu", intra_op_threads=1, heads_intra_op_threads=1)
    stream = FrameStream(engine)
    rng = np.random.default_rng(1)
    K = geometry.intrinsics_from_fov(84, 56, 50.0)
    try:
        first = stream.process(rng.integers(0, 256, (56, 84, 3), dtype=np.uint8), K)
        assert first.depth.shape == (56, 84) and first.features.shape == (1, engine.card.tokens_c)
        np.testing.assert_array_equal(first.T_odom_cam, np.eye(4))
        stream.keyframe(first, "first")
        # latest keyframe wins: let the worker take the first one before the next is submitted (on a
        # loaded machine the thread may not have run yet, and "interval" would replace it)
        deadline = time.monotonic() + 20
        while stream.heads.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.heads.runs == 1 and stream.heads.dropped == 0
        for _ in range(3):
            r = stream.process(rng.integers(0, 256, (56, 84, 3), dtype=np.uint8), K)
        stream.keyframe(r, "interval")
        deadline = time.monotonic() + 20
        while stream.heads.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.heads.runs == 2 and stream.heads.errors == 0 and stream.heads.kf_index == 3
        later = stream.process(rng.integers(0, 256, (56, 84, 3), dtype=np.uint8), K)
        assert not np.allclose(later.T_odom_cam, np.eye(4))  # the second keyframe's learned pose, held
        assert stream.heads.features.shape == (engine.card.frames_per_clip, engine.card.features_dim)
    finally:
        stream.close()


def test_v2_engine_checks_its_inputs_and_cancel_stops_runs(tmp_path):
    from tests.fixtures.artifacts import export_small_v2
    from vega_ros.engine import EngineError, create_engine

    engine, _ = create_engine(export_small_v2(tmp_path / "m", with_heads=False).path, "onnxruntime-cpu", intra_op_threads=1)
    image = np.zeros((1, 3, 56, 84), np.float32)
    out = engine.run_frame(image, [60.0])
    assert out.depth.shape == (1, 56, 84) and out.tokens.shape == (1, engine.card.tokens_n, engine.card.tokens_c)
    with pytest.raises(EngineError, match="focal_px"):
        engine.run_frame(image, [0.0])
    with pytest.raises(EngineError, match="no encoder.onnx"):
        engine.encode(image)
    with pytest.raises(EngineError, match="no heads.onnx"):
        engine.run_heads(np.zeros((1, 2, engine.card.tokens_n, engine.card.tokens_c), np.float32))
    engine.cancel()
    with pytest.raises(Exception, match="(?i)terminate"):
        engine.run_frame(image, [60.0])


def test_the_soak_kinds_of_compressed_input_decode_as_they_are_counted():
    """The soak (bench/bench_soak.py) and the compressed fuzz test count on these: each 'undecodable' kind is
    rejected by the node's decoder; the mislabeled one (a valid JPEG under format 'h264' etc.) is decoded by
    content, as compressed_image_transport does, and is a good frame, not a malformed one (the soak once
    counted it as malformed and found 1,592 of 2,000 "malformed" CompressedImages rejected)."""
    from tests.fixtures.fuzz_peer import MISLABELED_COMPRESSED_KIND, UNDECODABLE_COMPRESSED_KINDS, H, W, compressed

    rng = np.random.default_rng(3)
    for kind in UNDECODABLE_COMPRESSED_KINDS:
        for _ in range(40):
            with pytest.raises(ConversionError):
                conversions.compressed_image_to_rgb(compressed(kind, rng, 1.0))
    for _ in range(40):
        msg = compressed(MISLABELED_COMPRESSED_KIND, rng, 1.0)
        assert "jpeg" not in msg.format and "png" not in msg.format
        assert conversions.compressed_image_to_rgb(msg).shape == (H, W, 3)
