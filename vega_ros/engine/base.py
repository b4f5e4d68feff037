"""The engine interface every backend implements, and the heads' output record."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import Enum

import numpy as np

from vega_ros.artifact import Artifact, ModelCard
from vega_ros.contract import HEADS_OUTPUTS


class EngineError(RuntimeError):
    """A backend could not be created or failed to run (the message says which and why)."""


class Backend(str, Enum):
    """What ``backend:`` may say. ``auto`` = TensorRT, else ONNX Runtime CUDA, else CPU."""

    AUTO = "auto"
    TENSORRT = "tensorrt"
    ORT_CUDA = "onnxruntime-cuda"
    ORT_CPU = "onnxruntime-cpu"

    @classmethod
    def parse(cls, value: str) -> Backend:
        aliases = {"trt": cls.TENSORRT, "ort": cls.ORT_CPU, "cpu": cls.ORT_CPU, "cuda": cls.ORT_CUDA,
                   "onnxruntime": cls.ORT_CPU, "onnxruntime_cpu": cls.ORT_CPU, "onnxruntime_cuda": cls.ORT_CUDA}
        v = str(value).strip().lower()
        if v in aliases:
            return aliases[v]
        try:
            return cls(v)
        except ValueError:
            raise ValueError(f"unknown backend '{value}' (choose from {', '.join(b.value for b in cls)})") from None


@dataclass
class HeadsOutput:
    """Outputs of ``heads.onnx`` for one batch of clips (shapes as in the artifact contract)."""

    depth: np.ndarray  # [B, S, H, W] float32 (metres if the card says metric)
    depth_conf: np.ndarray  # [B, S, H, W] float32, larger = more confident
    points: np.ndarray  # [B, S, H, W, 3] float32, reference camera frame
    pose_enc: np.ndarray  # [B, S, 9] float32, absT_quaR_FoV relative to frame 0
    features: np.ndarray  # [B, S, C'] float32

    NAMES = HEADS_OUTPUTS


class Engine(abc.ABC):
    """Runs the two graphs of an artifact. Not thread-safe: one caller at a time."""

    backend: Backend

    def __init__(self, artifact: Artifact):
        self.artifact = artifact

    @property
    def card(self) -> ModelCard:
        return self.artifact.card

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.card.input.height, self.card.input.width

    def encode(self, image: np.ndarray) -> np.ndarray:
        """``image [B, 3, H, W]`` float32 RGB in [0, 1] -> ``tokens [B, N, C]`` float32."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        h, w = self.input_hw
        if image.ndim != 4 or image.shape[1:] != (3, h, w):
            raise EngineError(f"encoder input must be [B, 3, {h}, {w}], got {list(image.shape)}")
        return self._encode(image)

    def run_heads(self, tokens: np.ndarray) -> HeadsOutput:
        """``tokens [B, S, N, C]`` (frame 0 the reference) -> :class:`HeadsOutput`."""
        tokens = np.ascontiguousarray(tokens, dtype=np.float32)
        c = self.card
        want = (c.frames_per_clip, c.tokens_n, c.tokens_c)
        if tokens.ndim != 4 or tokens.shape[1:] != want:
            raise EngineError(f"heads input must be [B, {want[0]}, {want[1]}, {want[2]}], got {list(tokens.shape)}")
        return self._run_heads(tokens)

    @abc.abstractmethod
    def _encode(self, image: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _run_heads(self, tokens: np.ndarray) -> HeadsOutput: ...

    def describe(self) -> str:
        return f"{self.backend.value} ({self.card.name})"

    def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release device resources (no-op by default)."""
