"""The model artifact contract, v1 (shared/DESIGN.md §3), in one place: file names, the graphs'
input and output names, dtypes and symbolic shapes, and the card's format version.

Export (``distill.export``), artifact loading and validation (:mod:`vega_ros.artifact`), the engines
(:mod:`vega_ros.engine`), the probe network (``distill.nets.models.probe``) and the tests read it.
Plain Python: no numpy, no torch, so anything may import it.

Symbolic dimensions (the card fixes all but the batch)::

    B  batch (free)                 S  frames per clip, frame 0 the reference (card.frames_per_clip)
    H, W  image height, width (card.input)   N, C  tokens per frame, token width (card.tokens)
    F  pooled feature width (card.features_dim)

- ``encoder.onnx``: ``image [B, 3, H, W]`` float32 RGB in [0, 1] (normalisation inside the graph)
  -> ``tokens [B, N, C]``.
- ``heads.onnx``: ``tokens [B, S, N, C]`` -> ``depth [B, S, H, W]`` (metres if the card says
  metric), ``depth_conf [B, S, H, W]``, ``points [B, S, H, W, 3]`` (reference camera frame),
  ``pose_enc [B, S, 9]`` (absT_quaR_FoV relative to frame 0), ``features [B, S, F]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CARD_FILE = "card.json"
ENCODER_FILE = "encoder.onnx"
HEADS_FILE = "heads.onnx"
CARD_FORMAT_VERSION = 1
POSE_ENCODING = "absT_quaR_FoV"
POSE_ENC_DIM = 9
DTYPE = "float32"
"""Every graph input and output is float32 (weights may be stored as float16 inside the graph)."""

FREE_DIMS = ("B",)
"""Dimensions the card leaves free: the graphs are exported with a dynamic batch axis."""

Dim = int | str


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name, symbolic shape (ints are fixed sizes) and dtype."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = DTYPE

    def resolve(self, sizes: Mapping[str, int]) -> tuple[int | None, ...]:
        """The shape with each symbol replaced by ``sizes[symbol]``; free dimensions become None."""
        out: list[int | None] = []
        for d in self.shape:
            if isinstance(d, int):
                out.append(d)
            elif d in FREE_DIMS:
                out.append(None)
            elif d in sizes:
                out.append(int(sizes[d]))
            else:
                raise KeyError(f"{self.name}: no size for dimension '{d}' (given {sorted(sizes)})")
        return tuple(out)


ENCODER_INPUT = "image"
TOKENS = "tokens"
ENCODER_INPUTS = (TensorSpec(ENCODER_INPUT, ("B", 3, "H", "W")),)
ENCODER_OUTPUTS = (TensorSpec(TOKENS, ("B", "N", "C")),)
HEADS_INPUT = TOKENS
HEADS_INPUTS = (TensorSpec(HEADS_INPUT, ("B", "S", "N", "C")),)
HEADS_OUTPUT_SPECS = (
    TensorSpec("depth", ("B", "S", "H", "W")),
    TensorSpec("depth_conf", ("B", "S", "H", "W")),
    TensorSpec("points", ("B", "S", "H", "W", 3)),
    TensorSpec("pose_enc", ("B", "S", POSE_ENC_DIM)),
    TensorSpec("features", ("B", "S", "F")),
)
HEADS_OUTPUTS = tuple(t.name for t in HEADS_OUTPUT_SPECS)
"""``("depth", "depth_conf", "points", "pose_enc", "features")``: heads.onnx's outputs, in graph order."""

GRAPHS: dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]] = {
    ENCODER_FILE: (ENCODER_INPUTS, ENCODER_OUTPUTS),
    HEADS_FILE: (HEADS_INPUTS, HEADS_OUTPUT_SPECS),
}
"""Per graph file: (inputs, outputs)."""


def resolved_signatures(sizes: Mapping[str, int]) -> dict[str, tuple[dict[str, tuple], dict[str, tuple]]]:
    """Per graph file: (inputs, outputs) as name -> shape for concrete ``sizes`` (keys H, W, N, C,
    S, F); None marks a free dimension."""
    return {file: ({t.name: t.resolve(sizes) for t in ins}, {t.name: t.resolve(sizes) for t in outs})
            for file, (ins, outs) in GRAPHS.items()}
