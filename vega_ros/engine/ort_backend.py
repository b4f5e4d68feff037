"""ONNX Runtime backend (CPU or CUDA execution provider)."""

from __future__ import annotations

import numpy as np

from vega_ros.artifact import Artifact
from vega_ros.contract import ENCODER_INPUT, HEADS_INPUT, TOKENS
from vega_ros.engine.base import Backend, Engine, EngineError, HeadsOutput


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OrtEngine(Engine):
    """Two ``onnxruntime.InferenceSession`` s, one per graph.

    Args:
        cuda: use the CUDA execution provider (raises :class:`EngineError` if it is missing).
        intra_op_threads / inter_op_threads: 0 lets ONNX Runtime choose.
        allow_spinning: let idle ORT threads spin (faster on dedicated cores, slower on busy ones).
        device_id: CUDA device.
    """

    def __init__(self, artifact: Artifact, cuda: bool = False, intra_op_threads: int = 0, inter_op_threads: int = 0,
                 device_id: int = 0, allow_spinning: bool = False):
        super().__init__(artifact)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise EngineError(f"onnxruntime is not installed ({e})") from e
        if cuda and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EngineError(f"onnxruntime has no CUDAExecutionProvider (available: {ort.get_available_providers()})")
        self.backend = Backend.ORT_CUDA if cuda else Backend.ORT_CPU
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.inter_op_num_threads = int(inter_op_threads)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Spinning worker threads help on dedicated cores and hurt badly on shared ones (here).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if allow_spinning else "0")
        providers: list = [("CUDAExecutionProvider", {"device_id": int(device_id)}), "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        try:
            self._enc = ort.InferenceSession(artifact.encoder_path, sess_options=opts, providers=providers)
            self._heads = ort.InferenceSession(artifact.heads_path, sess_options=opts, providers=providers)
        except Exception as e:
            raise EngineError(f"onnxruntime could not load {artifact.path}: {e}") from e
        if cuda and "CUDAExecutionProvider" not in self._enc.get_providers():
            raise EngineError("onnxruntime fell back to CPU: the CUDA provider failed to initialise (CUDA / cuDNN libraries?)")
        self.threads = (int(intra_op_threads), int(inter_op_threads))

    def _encode(self, image: np.ndarray) -> np.ndarray:
        return self._enc.run([TOKENS], {ENCODER_INPUT: image})[0]

    def _run_heads(self, tokens: np.ndarray) -> HeadsOutput:
        outs = self._heads.run(list(HeadsOutput.NAMES), {HEADS_INPUT: tokens})
        return HeadsOutput(*outs)

    def describe(self) -> str:
        return f"{self.backend.value} ({self.card.name}, providers {self._enc.get_providers()}, threads intra={self.threads[0]} inter={self.threads[1]})"
