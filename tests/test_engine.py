"""Engines: ONNX Runtime runs the artifact like the exporter promised; auto selection says why; streaming clips."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.artifacts import export_small
from vega_ros import geometry
from vega_ros.artifact import default_model_dir, load_artifact
from vega_ros.engine import Backend, EngineError, create_engine
from vega_ros.engine.ort_backend import OrtEngine
from vega_ros.engine.stream import (
    StreamConfig,
    StreamingPerception,
    estimate_overlap,
    preprocess,
)
from vega_ros.engine.trt_backend import TrtBuildOptions, engine_cache_key


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return export_small(tmp_path_factory.mktemp("eng") / "small")


def test_ort_engine_shapes_and_dynamic_batch(small):
    e = OrtEngine(small, intra_op_threads=1)
    c = small.card
    tokens = e.encode(np.random.default_rng(0).random((3, 3, 56, 84), dtype=np.float32))
    assert tokens.shape == (3, c.tokens_n, c.tokens_c) and tokens.dtype == np.float32
    out = e.run_heads(np.stack([tokens[:2]] * 4, axis=1))
    assert out.depth.shape == (2, 4, 56, 84) and out.points.shape == (2, 4, 56, 84, 3)
    assert out.pose_enc.shape == (2, 4, 9) and out.features.shape == (2, 4, c.features_dim)
    assert np.all(out.depth > 0) and np.all(np.isfinite(out.depth_conf))


def test_engine_refuses_wrong_input_shapes(small):
    e = OrtEngine(small)
    with pytest.raises(EngineError, match=r"\[B, 3, 56, 84\]"):
        e.encode(np.zeros((1, 3, 56, 56), np.float32))
    with pytest.raises(EngineError, match="heads input"):
        e.run_heads(np.zeros((1, 3, small.card.tokens_n, small.card.tokens_c), np.float32))


def test_auto_falls_back_to_cpu_and_says_why(small):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        has_trt = True
    except ImportError:
        has_trt = False
    engine, choice = create_engine(small, "auto")
    if not has_trt:
        assert choice.chosen in (Backend.ORT_CUDA, Backend.ORT_CPU)
        assert "tensorrt unavailable" in choice.message() and "TensorRT is not importable" in choice.message()
    assert choice.requested == Backend.AUTO and engine.backend == choice.chosen


def test_explicit_backend_that_is_missing_raises(small):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    with pytest.raises(EngineError, match="TensorRT is not importable"):
        create_engine(small, "tensorrt")
    with pytest.raises(ValueError, match="unknown backend"):
        Backend.parse("openvino")
    assert Backend.parse("ORT") == Backend.ORT_CPU and Backend.parse("onnxruntime-cuda") == Backend.ORT_CUDA


def test_trt_engine_cache_key_depends_on_gpu_version_model_and_build():
    o = TrtBuildOptions()
    base = engine_cache_key("NVIDIA H100", "10.3.0", "a" * 64, o)
    assert base == engine_cache_key("NVIDIA H100", "10.3.0", "a" * 64, o)
    others = {engine_cache_key("NVIDIA A100", "10.3.0", "a" * 64, o), engine_cache_key("NVIDIA H100", "10.4.0", "a" * 64, o),
              engine_cache_key("NVIDIA H100", "10.3.0", "b" * 64, o), engine_cache_key("NVIDIA H100", "10.3.0", "a" * 64, TrtBuildOptions(fp16=False))}
    assert base not in others and len(others) == 4


def test_tensorrt_matches_onnxruntime(small, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installable on this machine")
    from vega_ros.engine.trt_backend import TrtEngine

    trt_engine = TrtEngine(small, TrtBuildOptions(cache_dir=str(tmp_path)))
    ort_engine = OrtEngine(small)
    x = np.random.default_rng(0).random((1, 3, 56, 84), dtype=np.float32)
    np.testing.assert_allclose(trt_engine.encode(x), ort_engine.encode(x), atol=2e-2)
    assert trt_engine.built["encoder.onnx"] == "built"
    assert TrtEngine(small, TrtBuildOptions(cache_dir=str(tmp_path))).built["encoder.onnx"] == "cache"


def test_stream_clip_frames_follow_the_stride_and_keyframe_rules(small):
    e = OrtEngine(small, intra_op_threads=1)
    s = StreamingPerception(e, StreamConfig(clip_stride=2, keyframe_max_frames=7, keyframe_min_overlap=0.0,
                                            keyframe_max_translation_m=1e9, keyframe_max_rotation_deg=180))
    K = geometry.intrinsics_from_fov(84, 56, 50.0)
    rng = np.random.default_rng(0)
    results = [s.process(rng.integers(0, 256, (112, 168, 3), dtype=np.uint8), K) for _ in range(10)]
    r0 = results[0]
    assert r0.new_keyframe and r0.keyframe_reason == "first"
    np.testing.assert_allclose(r0.T_odom_cam, np.eye(4))
    assert results[5].clip_frame_indices == (0, 1, 3, 5)  # keyframe, current - 2 * stride, current - stride, current
    assert results[7].new_keyframe and results[7].keyframe_reason == "max_frames"
    assert results[8].clip_frame_indices[0] == 7 and results[8].keyframe_index == 7
    # odometry chains: frame 8's pose = keyframe 7's pose @ its pose relative to frame 7
    np.testing.assert_allclose(results[8].T_odom_cam, results[7].T_odom_cam @ results[8].T_kf_cam, atol=1e-9)
    assert r0.depth.shape == (56, 84) and r0.features.shape == (4, small.card.features_dim)
    s.reset()
    assert s.process(rng.integers(0, 256, (56, 84, 3), dtype=np.uint8), K).keyframe_reason == "first"


def test_overlap_estimate():
    K = geometry.intrinsics_from_fov(64, 48, 60.0)
    depth = np.full((48, 64), 2.0, np.float32)
    assert estimate_overlap(depth, K, np.eye(4)) == 1.0
    T = np.eye(4)
    T[0, 3] = 1.15  # half the view width at 2 m (tan(0.5 fov_x) * 2 ~ 1.54, 1.15 shifts about 37 %)
    half = estimate_overlap(depth, K, T)
    assert 0.5 < half < 0.75
    T[0, 3] = 10.0
    assert estimate_overlap(depth, K, T) == 0.0
    assert estimate_overlap(np.zeros((48, 64), np.float32), K, np.eye(4)) == 0.0


def test_preprocess_layout_and_range():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = 255
    x = preprocess(rgb, 5, 10)
    assert x.shape == (1, 3, 5, 10) and x.dtype == np.float32
    assert np.all(x[0, 0] == 1.0) and np.all(x[0, 1:] == 0.0)


def test_shipped_model_runs_on_cpu():
    from vega_ros.engine.frame_stream import FrameStream

    engine, choice = create_engine(load_artifact(default_model_dir()), "onnxruntime-cpu", intra_op_threads=1)
    stream = FrameStream(engine) if engine.per_frame else StreamingPerception(engine)
    out = stream.process(np.zeros((224, 224, 3), np.uint8), geometry.intrinsics_from_fov(224, 224, 50))
    assert out.depth.shape == (224, 224) and choice.chosen == Backend.ORT_CPU
    assert np.isfinite(out.depth).all() and (out.depth > 0).mean() > 0.5


def test_motion_scale_recovers_a_known_scale():
    from vega_ros.engine.stream import MotionScale

    rng = np.random.default_rng(0)
    m = MotionScale(window=10, min_step_m=0.001)
    assert m.update(np.zeros(3), np.zeros(3)) is None  # one frame: no motion yet
    p_ref = np.zeros(3)
    for _ in range(20):
        p_ref = p_ref + rng.normal(scale=0.05, size=3)
        est = m.update(p_ref / 2.5, p_ref)  # the model sees the world 2.5x too small
    assert abs(est - 2.5) < 1e-9
    m.update(p_ref / 2.5 + 1e-5, p_ref + 1e-5)  # a tiny reference step carries no information: skipped
    assert abs(m.estimate() - 2.5) < 1e-9
    m.reset()
    assert m.estimate() is None
