"""The engine interface every backend implements, and the graphs' output records.

A format version 1 artifact runs ``encode`` + ``run_heads`` per frame; a version 2 artifact runs
``run_frame`` per frame and ``run_heads`` (where it ships heads.onnx) at keyframes.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import Enum

import numpy as np

from vega_ros.artifact import Artifact, ModelCard
from vega_ros.contract import CARD_FORMAT_VERSION_V2, ENCODER_FILE, FRAME_FILE, FRAME_OUTPUTS, HEADS_OUTPUTS


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


@dataclass
class FrameOutput:
    """Outputs of ``frame.onnx`` (format version 2) for one batch of images."""

    depth: np.ndarray  # [B, H, W] float32 metres (z-depth for the focal it was given)
    depth_conf: np.ndarray  # [B, H, W] float32, > 0, larger = more confident
    tokens: np.ndarray  # [B, N, C] float32

    NAMES = FRAME_OUTPUTS


class Engine(abc.ABC):
    """Runs the graphs of an artifact. One caller at a time per graph: the per-frame graph and the
    heads may run on two threads at once (they are separate sessions / execution contexts)."""

    backend: Backend

    def __init__(self, artifact: Artifact):
        self.artifact = artifact

    @property
    def card(self) -> ModelCard:
        return self.artifact.card

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.card.input.height, self.card.input.width

    @property
    def per_frame(self) -> bool:
        """Whether the artifact has a per-frame graph (format version 2: ``run_frame``)."""
        return self.card.format_version == CARD_FORMAT_VERSION_V2

    @property
    def has_heads(self) -> bool:
        return self.card.has_heads

    def _check_image(self, image: np.ndarray, what: str) -> np.ndarray:
        image = np.ascontiguousarray(image, dtype=np.float32)
        h, w = self.input_hw
        if image.ndim != 4 or image.shape[1:] != (3, h, w):
            raise EngineError(f"{what} input must be [B, 3, {h}, {w}], got {list(image.shape)}")
        return image

    def encode(self, image: np.ndarray) -> np.ndarray:
        """``image [B, 3, H, W]`` float32 RGB in [0, 1] -> ``tokens [B, N, C]`` float32 (format version 1)."""
        if self.per_frame:
            raise EngineError(f"{self.card.name} is a format version 2 artifact: it has no encoder.onnx, use run_frame")
        return self._encode(self._check_image(image, "encoder"))

    def run_frame(self, image: np.ndarray, focal_px: np.ndarray) -> FrameOutput:
        """``image [B, 3, H, W]`` float32 RGB in [0, 1], ``focal_px [B]`` (fy in pixels at H x W) -> :class:`FrameOutput`."""
        if not self.per_frame:
            raise EngineError(f"{self.card.name} is a format version 1 artifact: it has no frame.onnx, use encode + run_heads")
        image = self._check_image(image, "frame")
        focal = np.ascontiguousarray(focal_px, dtype=np.float32).reshape(-1)
        if focal.shape != (image.shape[0],) or not np.all(np.isfinite(focal)) or not np.all(focal > 0):
            raise EngineError(f"focal_px must be [B = {image.shape[0]}] positive finite pixels, got {focal.tolist()}")
        return self._run_frame(image, focal)

    @property
    def token_graph(self) -> str:
        """The graph file whose output is a frame's tokens: ``frame.onnx`` (version 2) or ``encoder.onnx``."""
        return FRAME_FILE if self.per_frame else ENCODER_FILE

    def tokens(self, image: np.ndarray) -> np.ndarray:
        """``image [B, 3, H, W]`` float32 RGB in [0, 1] -> ``tokens [B, N, C]`` float32, in either format:
        version 1 ``encode``; version 2 ``run_frame`` at the card's ``canonical_focal_px`` (the tokens
        do not depend on the focal; the depth computed with them is dropped). What a policy reads as
        its 3D tokens, in training and on the robot alike."""
        if not self.per_frame:
            return self.encode(image)
        return self.run_frame(image, np.full(len(image), self.card.canonical_focal_px, np.float32)).tokens

    def run_heads(self, tokens: np.ndarray) -> HeadsOutput:
        """``tokens [B, S, N, C]`` (frame 0 the reference) -> :class:`HeadsOutput`."""
        if not self.has_heads:
            raise EngineError(f"{self.card.name} ships no heads.onnx")
        tokens = np.ascontiguousarray(tokens, dtype=np.float32)
        c = self.card
        want = (c.frames_per_clip, c.tokens_n, c.tokens_c)
        if tokens.ndim != 4 or tokens.shape[1:] != want:
            raise EngineError(f"heads input must be [B, {want[0]}, {want[1]}, {want[2]}], got {list(tokens.shape)}")
        return self._run_heads(tokens)

    def _encode(self, image: np.ndarray) -> np.ndarray:
        raise EngineError(f"{self.backend.value} does not run encoder.onnx")

    def _run_frame(self, image: np.ndarray, focal_px: np.ndarray) -> FrameOutput:
        raise EngineError(f"{self.backend.value} does not run frame.onnx")

    @abc.abstractmethod
    def _run_heads(self, tokens: np.ndarray) -> HeadsOutput: ...

    def describe(self) -> str:
        return f"{self.backend.value} ({self.card.name})"

    def cancel(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Make runs in progress (and later ones) stop early with an error, e.g. at shutdown (no-op by default)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release device resources (no-op by default)."""
