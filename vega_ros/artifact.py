"""Model artifacts: ``models/<name>/{encoder.onnx, heads.onnx, card.json}`` (format version 1) or
``models/<name>/{frame.onnx, [heads.onnx], card.json}`` (format version 2) and their checks.

The contract (shared/DESIGN.md §3) lives in :mod:`vega_ros.contract`: ``encoder.onnx``
(``image`` -> ``tokens``), ``heads.onnx`` (``tokens`` -> ``depth``, ``depth_conf``, ``points``,
``pose_enc``, ``features``; ``pose_enc`` is VGGT's absT_quaR_FoV, see
:func:`vega_ros.geometry.encoding_to_pose`), and ``card.json``: what the graphs are, how they were
trained and measured, sha256 of each file. Format version 2 replaces the encoder with the per-frame
graph ``frame.onnx`` (``image``, ``focal_px`` -> ``depth``, ``depth_conf``, ``tokens``); its card
records ``canonical_focal_px`` (the focal the net predicts depth for; the graph rescales by
``focal_px / canonical_focal_px``); ``heads.onnx`` is optional there, and ``frames_per_clip``,
``features_dim`` and ``pose_encoding`` are required only with it.

:func:`load_artifact` reads the card, verifies each file's sha256 and compares the ONNX graphs'
inputs and outputs (names, ranks, static sizes, dtypes) with what the card promises. Any
mismatch raises :class:`ArtifactError` whose message names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from vega_ros.contract import (  # noqa: F401 - the file names and version are re-exported for callers
    CARD_FILE,
    CARD_FORMAT_VERSION,
    CARD_FORMAT_VERSION_V2,
    CARD_FORMAT_VERSIONS,
    DTYPE,
    ENCODER_FILE,
    FRAME_FILE,
    HEADS_FILE,
    POSE_ENCODING,
    graphs_for_version,
    required_graphs,
    resolved_signatures,
)

DEFAULT_MODEL = "vega-frame-v2"  # under models/; $VEGA_MODEL picks another (e.g. vega-sim-vit-ti, vega-random-tiny)


class ArtifactError(ValueError):
    """An artifact is missing a file, its card is malformed, or a graph does not match the card."""


class DepthScale(str, Enum):
    METRIC = "metric"
    RELATIVE = "relative"


@dataclass(frozen=True)
class InputSpec:
    """How the encoder wants its image: ``[B, 3, height, width]`` float32, RGB, values in [0, 1]."""

    height: int
    width: int
    layout: str = "NCHW"
    channels: str = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    normalization: dict[str, Any] = field(default_factory=dict)  # {"mean": [...], "std": [...], "in_graph": true}


@dataclass(frozen=True)
class ModelCard:
    """The parsed ``card.json``.

    ``frames_per_clip``, ``features_dim`` and ``pose_encoding`` describe heads.onnx: always set in
    format version 1, None in a version 2 card without heads. ``canonical_focal_px`` (version 2
    only) is the focal length in pixels of the input image (H x W) that the per-frame net predicts
    depth for.
    """

    name: str
    format_version: int
    input: InputSpec
    tokens_n: int
    tokens_c: int
    frames_per_clip: int | None
    features_dim: int | None
    depth_scale: DepthScale
    pose_encoding: str | None
    files: dict[str, str]  # file name -> sha256 hex
    training: dict[str, Any] = field(default_factory=dict)  # data, loss_terms, wan_teacher, random_init, ...
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers + "command"
    export: dict[str, Any] = field(default_factory=dict)  # opset, parity error, tool versions
    canonical_focal_px: float | None = None
    eval: dict[str, Any] = field(default_factory=dict)  # held-out depth per set + "command" (distill.eval_depth)

    @property
    def random_init(self) -> bool:
        return bool(self.training.get("random_init", False))

    @property
    def has_heads(self) -> bool:
        """Whether the artifact ships heads.onnx (always in version 1, optional in version 2)."""
        return HEADS_FILE in self.files

    @property
    def graphs(self) -> tuple[str, ...]:
        """The graph files this card lists, in contract order."""
        return tuple(f for f in graphs_for_version(self.format_version) if f in self.files)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["depth_scale"] = self.depth_scale.value
        d["input"]["value_range"] = list(self.input.value_range)
        d["tokens"] = {"n": d.pop("tokens_n"), "c": d.pop("tokens_c")}
        for key in ("canonical_focal_px", "frames_per_clip", "features_dim", "pose_encoding"):
            if d[key] is None:
                del d[key]
        if not d["eval"]:
            del d["eval"]
        return d


@dataclass(frozen=True)
class Artifact:
    """A validated artifact on disk."""

    path: str
    card: ModelCard

    @property
    def encoder_path(self) -> str:
        return os.path.join(self.path, ENCODER_FILE)

    @property
    def heads_path(self) -> str:
        return os.path.join(self.path, HEADS_FILE)

    @property
    def frame_path(self) -> str:
        """The per-frame graph of a format version 2 artifact."""
        return os.path.join(self.path, FRAME_FILE)

    def sha256(self, file_name: str) -> str:
        return self.card.files[file_name]


# ----------------------------------------------------------------------------- card


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _require(d: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ArtifactError(f"{where}: missing field '{key}'")
    value = d[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ArtifactError(f"{where}: field '{key}' must be {kind}, got {type(value).__name__} {value!r}")
    return value


def parse_card(data: dict[str, Any], where: str = CARD_FILE) -> ModelCard:
    """Validate a card dict (as read from JSON) and return a :class:`ModelCard`."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{where}: top level must be an object")
    version = _require(data, "format_version", int, where)
    if version not in CARD_FORMAT_VERSIONS:
        raise ArtifactError(f"{where}: format_version {version} is not supported (this loader reads {list(CARD_FORMAT_VERSIONS)})")
    inp = _require(data, "input", dict, where)
    height = _require(inp, "height", int, f"{where} input")
    width = _require(inp, "width", int, f"{where} input")
    if height <= 0 or width <= 0:
        raise ArtifactError(f"{where}: input size must be positive, got {width}x{height}")
    layout = inp.get("layout", "NCHW")
    channels = inp.get("channels", "RGB")
    value_range = tuple(inp.get("value_range", (0.0, 1.0)))
    if layout != "NCHW" or channels != "RGB" or value_range != (0.0, 1.0):
        raise ArtifactError(
            f"{where}: input must be NCHW RGB in [0, 1] (got layout={layout}, channels={channels}, range={list(value_range)})"
        )
    tokens = _require(data, "tokens", dict, where)
    n = _require(tokens, "n", int, f"{where} tokens")
    c = _require(tokens, "c", int, f"{where} tokens")
    try:
        depth_scale = DepthScale(_require(data, "depth_scale", str, where))
    except ValueError as e:
        raise ArtifactError(f"{where}: depth_scale must be 'metric' or 'relative', got {data['depth_scale']!r}") from e
    files = _require(data, "files", dict, where)
    graphs = graphs_for_version(version)
    for needed in required_graphs(version):
        if needed not in files:
            raise ArtifactError(f"{where}: files must give the sha256 (64 hex digits) of '{needed}'")
    for name, digest in files.items():
        if name in graphs and (not isinstance(digest, str) or len(digest) != 64):
            raise ArtifactError(f"{where}: files must give the sha256 (64 hex digits) of '{name}'")
    extra = sorted(f for f in files if f.endswith(".onnx") and f not in graphs)
    if extra:
        raise ArtifactError(f"{where}: files {extra} are not graphs of format_version {version} (it has {sorted(graphs)})")
    s = features_dim = pose_encoding = None
    if HEADS_FILE in files:  # always in version 1
        s = _require(data, "frames_per_clip", int, where)
        if s < 2:
            raise ArtifactError(f"{where}: frames_per_clip must be >= 2, got {s}")
        features_dim = _require(data, "features_dim", int, where)
        pose_encoding = _require(data, "pose_encoding", str, where)
        if pose_encoding != POSE_ENCODING:
            raise ArtifactError(f"{where}: pose_encoding must be '{POSE_ENCODING}', got '{pose_encoding}'")
    canonical_focal_px = None
    if version == CARD_FORMAT_VERSION_V2:
        canonical_focal_px = _require(data, "canonical_focal_px", (int, float), where)
        if isinstance(canonical_focal_px, bool) or not canonical_focal_px > 0:
            raise ArtifactError(f"{where}: canonical_focal_px must be a positive number of pixels, got {canonical_focal_px!r}")
        canonical_focal_px = float(canonical_focal_px)
    return ModelCard(
        name=_require(data, "name", str, where),
        format_version=version,
        input=InputSpec(height=height, width=width, layout=layout, channels=channels,
                        value_range=value_range, normalization=dict(inp.get("normalization", {}))),
        tokens_n=n,
        tokens_c=c,
        frames_per_clip=s,
        features_dim=features_dim,
        depth_scale=depth_scale,
        pose_encoding=pose_encoding,
        files=dict(files),
        training=dict(data.get("training", {})),
        metrics=dict(data.get("metrics", {})),
        export=dict(data.get("export", {})),
        canonical_focal_px=canonical_focal_px,
        eval=dict(_require(data, "eval", dict, where)) if "eval" in data else {},
    )


def read_card(model_dir: str) -> ModelCard:
    path = os.path.join(model_dir, CARD_FILE)
    if not os.path.isfile(path):
        raise ArtifactError(f"{model_dir}: no {CARD_FILE} (is this a model artifact directory?)")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from e
    return parse_card(data, path)


def write_card(model_dir: str, card: ModelCard) -> str:
    """Write ``card.json`` atomically (temp file + rename); returns its path."""
    path = os.path.join(model_dir, CARD_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(card.to_json(), f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- ONNX signatures

# One dimension of a tensor signature: an int (static), or a str / None (dynamic).
Dim = int | str | None


@dataclass(frozen=True)
class TensorSig:
    name: str
    shape: tuple[Dim, ...]
    dtype: str  # "float32", "float16", ...


def read_onnx_signature(path: str) -> tuple[list[TensorSig], list[TensorSig]]:
    """(inputs, outputs) of an ONNX graph, read with ``onnx`` if installed, else onnxruntime."""
    try:
        import onnx

        model = onnx.load(path, load_external_data=False)
        initializers = {i.name for i in model.graph.initializer}

        def sig(v) -> TensorSig:
            t = v.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
            return TensorSig(v.name, dims, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name)

        inputs = [sig(v) for v in model.graph.input if v.name not in initializers]
        return inputs, [sig(v) for v in model.graph.output]
    except ImportError:
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        dt = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}

        def sig2(a) -> TensorSig:
            return TensorSig(a.name, tuple(a.shape), dt.get(a.type, a.type))

        return [sig2(a) for a in sess.get_inputs()], [sig2(a) for a in sess.get_outputs()]


def expected_signatures(card: ModelCard) -> dict[str, tuple[dict[str, tuple], dict[str, tuple]]]:
    """Per graph file the card lists: (inputs, outputs) as name -> shape, where None marks a free
    (batch) dimension."""
    sizes = {"H": card.input.height, "W": card.input.width, "N": card.tokens_n, "C": card.tokens_c}
    if card.has_heads:
        sizes.update(S=card.frames_per_clip, F=card.features_dim)
    sigs = resolved_signatures(sizes, card.format_version)
    return {f: sigs[f] for f in card.graphs}


def check_signature(file_name: str, actual: tuple[list[TensorSig], list[TensorSig]], card: ModelCard) -> None:
    """Raise :class:`ArtifactError` if a graph's I/O differs from what the card promises.

    A dimension the card fixes must be that number or symbolic in the graph only where the card
    leaves it free (the batch); the S dimension may be symbolic too (graphs exported with a
    dynamic clip length still accept the card's S).
    """
    want_in, want_out = expected_signatures(card)[file_name]
    for kind, want, got in (("input", want_in, actual[0]), ("output", want_out, actual[1])):
        got_by_name = {t.name: t for t in got}
        if set(got_by_name) != set(want):
            raise ArtifactError(
                f"{file_name}: {kind}s are {sorted(got_by_name)}, the card's contract needs {sorted(want)}"
            )
        for name, shape in want.items():
            t = got_by_name[name]
            if t.dtype != DTYPE:
                raise ArtifactError(f"{file_name}: {kind} '{name}' is {t.dtype}, expected {DTYPE}")
            if len(t.shape) != len(shape):
                raise ArtifactError(f"{file_name}: {kind} '{name}' has rank {len(t.shape)} {list(t.shape)}, expected {len(shape)} {list(shape)}")
            for axis, (g, e) in enumerate(zip(t.shape, shape)):
                if e is None or not isinstance(g, int) or g <= 0:
                    continue  # free in the card, or symbolic in the graph
                if g != e:
                    raise ArtifactError(
                        f"{file_name}: {kind} '{name}' axis {axis} is {g} in the graph but {e} by the card "
                        f"(graph shape {list(t.shape)}, card shape {['B' if d is None else d for d in shape]})"
                    )


def verify_checksums(model_dir: str, card: ModelCard) -> None:
    for file_name, want in card.files.items():
        path = os.path.join(model_dir, file_name)
        if not os.path.isfile(path):
            raise ArtifactError(f"{model_dir}: card lists '{file_name}' but the file is missing")
        got = sha256_file(path)
        if got != want:
            raise ArtifactError(f"{path}: sha256 {got[:12]}... does not match the card's {want[:12]}... (file changed or card stale)")


def load_artifact(model_dir: str, check_graphs: bool = True) -> Artifact:
    """Read and validate an artifact directory: card fields, sha256 of every file, ONNX I/O."""
    model_dir = os.path.abspath(model_dir)
    if not os.path.isdir(model_dir):
        from vega_ros.catalog import archived_hint  # the catalog imports this module

        raise ArtifactError(f"model directory '{model_dir}' does not exist{archived_hint(model_dir)}")
    card = read_card(model_dir)
    verify_checksums(model_dir, card)
    if check_graphs:
        for file_name in card.graphs:
            check_signature(file_name, read_onnx_signature(os.path.join(model_dir, file_name)), card)
    return Artifact(path=model_dir, card=card)


def default_model_dir() -> str:
    """The directory of the default artifact, ``vega-frame-v2`` (``$VEGA_MODEL`` names another).

    The name is looked up in the model catalog (``models/catalog.json``, next to the source tree,
    in ``<prefix>/share/vega_ros`` for pip or in the ament share for colcon): see
    :func:`vega_ros.catalog.resolve_model_dir`. A name that left the tree raises an error saying
    which git commit holds it and how to restore it.
    """
    from vega_ros.catalog import resolve_model_dir  # the catalog imports this module

    return resolve_model_dir(os.environ.get("VEGA_MODEL", DEFAULT_MODEL))
