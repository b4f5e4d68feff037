"""ONNX Runtime backend (CPU or CUDA execution provider)."""

from __future__ import annotations

import numpy as np

from vega_ros.artifact import Artifact
from vega_ros.contract import ENCODER_FILE, ENCODER_INPUT, FRAME_FILE, FRAME_FOCAL, FRAME_IMAGE, HEADS_FILE, HEADS_INPUT, TOKENS
from vega_ros.engine.base import Backend, Engine, EngineError, FrameOutput, HeadsOutput


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OrtEngine(Engine):
    """One ``onnxruntime.InferenceSession`` per graph of the artifact (encoder + heads, or frame [+ heads]).

    Args:
        cuda: use the CUDA execution provider (raises :class:`EngineError` if it is missing).
        intra_op_threads / inter_op_threads: 0 lets ONNX Runtime choose.
        heads_intra_op_threads: intra-op threads of a version 2 artifact's heads, which run at
            keyframes beside the per-frame graph (-1 = the same as ``intra_op_threads``).
        allow_spinning: let idle ORT threads spin (faster on dedicated cores, slower on busy ones).
        device_id: CUDA device.
    """

    def __init__(self, artifact: Artifact, cuda: bool = False, intra_op_threads: int = 0, inter_op_threads: int = 0,
                 device_id: int = 0, allow_spinning: bool = False, heads_intra_op_threads: int = -1):
        super().__init__(artifact)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise EngineError(f"onnxruntime is not installed ({e})") from e
        if cuda and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EngineError(f"onnxruntime has no CUDAExecutionProvider (available: {ort.get_available_providers()})")
        self.backend = Backend.ORT_CUDA if cuda else Backend.ORT_CPU

        def options(intra: int):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(intra)
            opts.inter_op_num_threads = int(inter_op_threads)
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            # Spinning worker threads help on dedicated cores and hurt badly on shared ones (here).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if allow_spinning else "0")
            return opts

        heads_intra = intra_op_threads if heads_intra_op_threads < 0 or not self.per_frame else heads_intra_op_threads
        providers: list = [("CUDAExecutionProvider", {"device_id": int(device_id)}), "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        self._run_options = ort.RunOptions()  # shared by every run: cancel() sets its terminate flag
        self._sessions: dict = {}
        try:
            for file_name in artifact.card.graphs:
                intra = heads_intra if file_name == HEADS_FILE else intra_op_threads
                self._sessions[file_name] = ort.InferenceSession(f"{artifact.path}/{file_name}", sess_options=options(intra), providers=providers)
        except Exception as e:
            raise EngineError(f"onnxruntime could not load {artifact.path}: {e}") from e
        first = self._sessions[artifact.card.graphs[0]]
        if cuda and "CUDAExecutionProvider" not in first.get_providers():
            raise EngineError("onnxruntime fell back to CPU: the CUDA provider failed to initialise (CUDA / cuDNN libraries?)")
        self.threads = (int(intra_op_threads), int(inter_op_threads), int(heads_intra))

    def _encode(self, image: np.ndarray) -> np.ndarray:
        return self._sessions[ENCODER_FILE].run([TOKENS], {ENCODER_INPUT: image}, self._run_options)[0]

    def _run_frame(self, image: np.ndarray, focal_px: np.ndarray) -> FrameOutput:
        return FrameOutput(*self._sessions[FRAME_FILE].run(list(FrameOutput.NAMES), {FRAME_IMAGE: image, FRAME_FOCAL: focal_px},
                                                                self._run_options))

    def _run_heads(self, tokens: np.ndarray) -> HeadsOutput:
        return HeadsOutput(*self._sessions[HEADS_FILE].run(list(HeadsOutput.NAMES), {HEADS_INPUT: tokens}, self._run_options))

    def cancel(self) -> None:
        """Stop runs in progress on any thread (ONNX Runtime's terminate flag): they raise instead of finishing."""
        self._run_options.terminate = True

    def describe(self) -> str:
        providers = next(iter(self._sessions.values())).get_providers()
        return (f"{self.backend.value} ({self.card.name}, graphs {list(self._sessions)}, providers {providers}, "
                f"threads intra={self.threads[0]} inter={self.threads[1]} heads={self.threads[2]})")
