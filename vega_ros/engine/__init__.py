"""Inference engines for model artifacts: one interface, several backends.

    from vega_ros.engine import create_engine
    engine, choice = create_engine("models/vega-random-tiny", backend="auto")
    tokens = engine.encode(image)          # v1: [B, 3, H, W] float32 in [0, 1] -> [B, N, C]
    frame = engine.run_frame(image, fy)    # v2: + focal_px [B] -> FrameOutput (depth, depth_conf, tokens)
    out = engine.run_heads(clip_tokens)    # [B, S, N, C] -> HeadsOutput

Backends: ``onnxruntime-cpu``, ``onnxruntime-cuda`` (:mod:`.ort_backend`) and ``tensorrt``
(:mod:`.trt_backend`); ``auto`` tries TensorRT, then ONNX Runtime CUDA, then CPU and says why
(:mod:`.selection`). :mod:`.stream` holds the streaming clip logic (keyframe + buffer) the
perception node drives.
"""

from vega_ros.engine.base import Backend, Engine, EngineError, FrameOutput, HeadsOutput
from vega_ros.engine.selection import BackendChoice, create_engine

__all__ = ["Backend", "BackendChoice", "Engine", "EngineError", "FrameOutput", "HeadsOutput", "create_engine"]
