"""Model artifacts: ``models/<name>/{encoder.onnx, heads.onnx, card.json}`` and their checks.

The contract (shared/DESIGN.md §3) lives in :mod:`vega_ros.contract`: ``encoder.onnx``
(``image`` -> ``tokens``), ``heads.onnx`` (``tokens`` -> ``depth``, ``depth_conf``, ``points``,
``pose_enc``, ``features``; ``pose_enc`` is VGGT's absT_quaR_FoV, see
:func:`vega_ros.geometry.encoding_to_pose`), and ``card.json``: what the graphs are, how they were
trained and measured, sha256 of each file.

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
    DTYPE,
    ENCODER_FILE,
    HEADS_FILE,
    POSE_ENCODING,
    resolved_signatures,
)

DEFAULT_MODEL = "vega-sim-vit-ti"  # under models/; $VEGA_MODEL picks another (e.g. vega-random-tiny)


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
    """The parsed ``card.json``."""

    name: str
    format_version: int
    input: InputSpec
    tokens_n: int
    tokens_c: int
    frames_per_clip: int
    features_dim: int
    depth_scale: DepthScale
    pose_encoding: str
    files: dict[str, str]  # file name -> sha256 hex
    training: dict[str, Any] = field(default_factory=dict)  # data, loss_terms, wan_teacher, random_init, ...
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers + "command"
    export: dict[str, Any] = field(default_factory=dict)  # opset, parity error, tool versions

    @property
    def random_init(self) -> bool:
        return bool(self.training.get("random_init", False))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["depth_scale"] = self.depth_scale.value
        d["input"]["value_range"] = list(self.input.value_range)
        d["tokens"] = {"n": d.pop("tokens_n"), "c": d.pop("tokens_c")}
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
    if version != CARD_FORMAT_VERSION:
        raise ArtifactError(f"{where}: format_version {version} is not supported (this loader reads {CARD_FORMAT_VERSION})")
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
    s = _require(data, "frames_per_clip", int, where)
    if s < 2:
        raise ArtifactError(f"{where}: frames_per_clip must be >= 2, got {s}")
    try:
        depth_scale = DepthScale(_require(data, "depth_scale", str, where))
    except ValueError as e:
        raise ArtifactError(f"{where}: depth_scale must be 'metric' or 'relative', got {data['depth_scale']!r}") from e
    pose_encoding = _require(data, "pose_encoding", str, where)
    if pose_encoding != POSE_ENCODING:
        raise ArtifactError(f"{where}: pose_encoding must be '{POSE_ENCODING}', got '{pose_encoding}'")
    files = _require(data, "files", dict, where)
    for needed in (ENCODER_FILE, HEADS_FILE):
        if needed not in files or not isinstance(files[needed], str) or len(files[needed]) != 64:
            raise ArtifactError(f"{where}: files must give the sha256 (64 hex digits) of '{needed}'")
    return ModelCard(
        name=_require(data, "name", str, where),
        format_version=version,
        input=InputSpec(height=height, width=width, layout=layout, channels=channels,
                        value_range=value_range, normalization=dict(inp.get("normalization", {}))),
        tokens_n=n,
        tokens_c=c,
        frames_per_clip=s,
        features_dim=_require(data, "features_dim", int, where),
        depth_scale=depth_scale,
        pose_encoding=pose_encoding,
        files=dict(files),
        training=dict(data.get("training", {})),
        metrics=dict(data.get("metrics", {})),
        export=dict(data.get("export", {})),
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
    """Per file: (inputs, outputs) as name -> shape, where None marks a free (batch) dimension."""
    return resolved_signatures({"H": card.input.height, "W": card.input.width, "N": card.tokens_n,
                                "C": card.tokens_c, "S": card.frames_per_clip, "F": card.features_dim})


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
        for file_name in (ENCODER_FILE, HEADS_FILE):
            check_signature(file_name, read_onnx_signature(os.path.join(model_dir, file_name)), card)
    return Artifact(path=model_dir, card=card)


def default_model_dir() -> str:
    """The directory of the default artifact, ``vega-sim-vit-ti`` (``$VEGA_MODEL`` names another).

    The name is looked up in the model catalog (``models/catalog.json``, next to the source tree,
    in ``<prefix>/share/vega_ros`` for pip or in the ament share for colcon): see
    :func:`vega_ros.catalog.resolve_model_dir`. A name that left the tree raises an error saying
    which git commit holds it and how to restore it.
    """
    from vega_ros.catalog import resolve_model_dir  # the catalog imports this module

    return resolve_model_dir(os.environ.get("VEGA_MODEL", DEFAULT_MODEL))
