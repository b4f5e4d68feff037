"""The model artifact contract, v1 and v2 (shared/DESIGN.md §3), in one place: file names, the
graphs' input and output names, dtypes and symbolic shapes, and the card's format version.

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

Format version 1: ``encoder.onnx`` + ``heads.onnx``, both required.

Format version 2 (a per-frame graph; multi-frame heads only at keyframes):

- ``frame.onnx`` (required): ``image [B, 3, H, W]`` float32 RGB in [0, 1] and ``focal_px [B]``
  float32 (fy in pixels of the image as given to the graph, H x W) -> ``depth [B, H, W]`` (metres,
  z-depth, for that focal: the graph applies the canonical-focal transform
  ``depth = depth_canonical * focal_px / card.canonical_focal_px``), ``depth_conf [B, H, W]``
  (> 0, higher = more confident) and ``tokens [B, N, C]`` (per-frame tokens for the policy, the
  features and the keyframe heads).
- ``heads.onnx`` (optional): the v1 multi-frame heads over ``tokens [B, S, N, C]`` stacked from
  ``frame.onnx``'s tokens, run at keyframes.
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

Graphs = dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]

GRAPHS: Graphs = {
    ENCODER_FILE: (ENCODER_INPUTS, ENCODER_OUTPUTS),
    HEADS_FILE: (HEADS_INPUTS, HEADS_OUTPUT_SPECS),
}
"""Format version 1, per graph file: (inputs, outputs). Both graphs are required."""

# ----------------------------------------------------------------------------- format version 2

CARD_FORMAT_VERSION_V2 = 2
CARD_FORMAT_VERSIONS = (CARD_FORMAT_VERSION, CARD_FORMAT_VERSION_V2)
"""The card format versions this contract describes."""

FRAME_FILE = "frame.onnx"
FRAME_IMAGE = "image"
"""``[B, 3, H, W]`` float32 RGB in [0, 1] (normalisation inside the graph)."""
FRAME_FOCAL = "focal_px"
"""``[B]`` float32: fy in pixels of the image as given to the graph (H x W)."""
FRAME_INPUTS = (TensorSpec(FRAME_IMAGE, ("B", 3, "H", "W")), TensorSpec(FRAME_FOCAL, ("B",)))
FRAME_OUTPUT_SPECS = (
    TensorSpec("depth", ("B", "H", "W")),  # metres, z-depth, for the given focal
    TensorSpec("depth_conf", ("B", "H", "W")),  # > 0, higher = more confident
    TensorSpec(TOKENS, ("B", "N", "C")),  # per-frame tokens (policy / features / keyframe heads)
)
FRAME_OUTPUTS = tuple(t.name for t in FRAME_OUTPUT_SPECS)
"""``("depth", "depth_conf", "tokens")``: frame.onnx's outputs, in graph order."""

GRAPHS_V2: Graphs = {
    FRAME_FILE: (FRAME_INPUTS, FRAME_OUTPUT_SPECS),
    HEADS_FILE: (HEADS_INPUTS, HEADS_OUTPUT_SPECS),
}
"""Format version 2, per graph file: (inputs, outputs). frame.onnx is required; heads.onnx (the v1
multi-frame heads over tokens ``[B, S, N, C]``) is optional and runs at keyframes."""

REQUIRED_GRAPHS: dict[int, tuple[str, ...]] = {
    CARD_FORMAT_VERSION: (ENCODER_FILE, HEADS_FILE),
    CARD_FORMAT_VERSION_V2: (FRAME_FILE,),
}
"""Per format version: the graph files an artifact must have."""


def graphs_for_version(version: int) -> Graphs:
    """The graphs (file -> (inputs, outputs)) a card of format ``version`` may list; raises
    ValueError naming the version for one this contract does not describe."""
    if version == CARD_FORMAT_VERSION:
        return GRAPHS
    if version == CARD_FORMAT_VERSION_V2:
        return GRAPHS_V2
    raise ValueError(f"format_version {version} is not supported (this contract knows {list(CARD_FORMAT_VERSIONS)})")


def required_graphs(version: int) -> tuple[str, ...]:
    """The graph files a card of format ``version`` must list (the rest of its graphs are optional)."""
    graphs_for_version(version)  # names an unknown version
    return REQUIRED_GRAPHS[version]


def resolved_signatures(sizes: Mapping[str, int], version: int = CARD_FORMAT_VERSION,
                        ) -> dict[str, tuple[dict[str, tuple], dict[str, tuple]]]:
    """Per graph file of format ``version``: (inputs, outputs) as name -> shape for concrete
    ``sizes`` (keys H, W, N, C, and S, F where heads.onnx is resolved); None marks a free
    dimension. A v2 graph whose sizes are missing (heads.onnx without S or F) is left out."""
    out = {}
    for file, (ins, outs) in graphs_for_version(version).items():
        try:
            out[file] = ({t.name: t.resolve(sizes) for t in ins}, {t.name: t.resolve(sizes) for t in outs})
        except KeyError:
            if version == CARD_FORMAT_VERSION or file in required_graphs(version):
                raise
    return out
