"""Export any torch ``encoder`` + ``heads`` pair to a model artifact (ONNX + card.json), with a parity check.

The modules must honour the artifact contract (:mod:`vega_ros.contract`):

    encoder(image [B, 3, H, W] float32 RGB in [0, 1]) -> tokens [B, N, C]
    heads(tokens [B, S, N, C]) -> (depth, depth_conf, points, pose_enc, features)
                                  [B,S,H,W], [B,S,H,W], [B,S,H,W,3], [B,S,9], [B,S,C']

Each graph is exported with a dynamic batch axis (opset >= 17, TorchScript exporter by
default, ``--dynamo`` for the onnxscript one), then run with ONNX Runtime on a batch of 2 random
inputs and compared with PyTorch: the largest absolute difference per output goes into the card,
and the export fails (:class:`ExportParityError`, nothing left in place) if it exceeds the tolerance.
The card (with sha256 of each file) is written last, atomically, and then loaded back with
:func:`vega_ros.artifact.load_artifact` so a broken artifact never ships.

CLI: ``--run RUN_DIR`` exports a distillation run's newest checkpoint; ``--factory`` takes any
function returning ``(encoder, heads, card_fields)``::

    python -m distill.export --run runs/sim-cpu --name vega-sim-vit-ti --out models/vega-sim-vit-ti --weights float16

    python -m distill.export --factory tests.fixtures.tiny_nets:build --name vega-random-tiny \
        --out models/vega-random-tiny

Format version 2 (:func:`export_artifact_v2`: ``frame.onnx`` = image + focal_px -> depth, depth_conf,
tokens, and optionally ``heads.onnx``): ``--run-v2`` exports a per-frame run (``recipe: frame``),
``--random-v2`` the shipped per-frame architecture with random weights, for runtime speed tests::

    python -m distill.export --run-v2 runs/student-v2-cpu --name vega-frame-v2 --out models/vega-frame-v2
    python -m distill.export --random-v2 --out /tmp/floor
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import shutil
import sys
import tempfile
from typing import Any

import numpy as np
import torch

from vega_ros import artifact as art
from vega_ros.contract import (
    CARD_FORMAT_VERSION_V2,
    ENCODER_INPUT,
    FRAME_FILE,
    FRAME_FOCAL,
    FRAME_IMAGE,
    FRAME_OUTPUTS,
    HEADS_INPUT,
    HEADS_OUTPUTS,
    TOKENS,
)

TENSORRT_OPS = frozenset({
    "Abs", "Add", "And", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "DepthToSpace", "Div", "Einsum", "Equal", "Erf", "Exp",
    "Expand", "Flatten", "Floor", "Gather", "Gemm", "GlobalAveragePool", "Greater", "HardSigmoid", "HardSwish",
    "Identity", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Less", "Log", "MatMul", "Max", "Mod",
    "CumSum", "Elu", "GatherElements", "GlobalMaxPool", "PRelu", "ReduceL2", "ReduceProd", "ScatterND", "TopK", "Trilu",
    "MaxPool", "Min", "Mul", "Neg", "Not", "Or", "Pad", "Pow", "Range", "Reciprocal", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Sign", "Sin", "Slice", "Softmax",
    "Softplus", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "Transpose", "Unsqueeze", "Where",
})
"""ONNX ops the TensorRT ONNX parser (8.6 and later) builds; a v2 export refuses any other op."""


class ExportParityError(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


def _export(module: torch.nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], path: str,
            input_name: str | tuple[str, ...], output_names: list[str], opset: int, dynamo: bool) -> None:
    examples = example if isinstance(example, tuple) else (example,)
    input_names = list(input_name) if isinstance(input_name, tuple) else [input_name]
    dynamic_axes = {**{i: {0: "batch"} for i in input_names}, **{o: {0: "batch"} for o in output_names}}
    kwargs: dict[str, Any] = {"input_names": input_names, "output_names": output_names, "opset_version": opset}
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.onnx.export(module, examples, path, dynamo=True, dynamic_shapes=tuple({0: batch} for _ in examples), **kwargs)
    else:
        torch.onnx.export(module, examples, path, dynamo=False, dynamic_axes=dynamic_axes, do_constant_folding=True, **kwargs)


def _pin_output_shapes(path: str, example_outputs, names: list[str]) -> None:
    """Write the static output sizes (all but the batch axis) into the graph's signature.

    The TorchScript exporter leaves many output axes symbolic; the loader compares the card
    with the graph, so the graph should state every size it knows.
    """
    import onnx

    model = onnx.load(path)
    outs = {o.name: o for o in model.graph.output}
    for name, t in zip(names, example_outputs):
        dims = outs[name].type.tensor_type.shape.dim
        for axis, size in enumerate(t.shape):
            if axis == 0:
                dims[axis].dim_param = "batch"
            else:
                dims[axis].dim_value = int(size)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def fold_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of ``module`` with every ``Conv2d`` directly followed by a ``BatchNorm2d``
    inside an ``nn.Sequential`` folded into one conv (the BatchNorm becomes Identity).

    The same arithmetic as the exporter's constant folding, done before any float16 rounding, so a
    float16-weight graph and the rounded torch model round the same (folded) weights.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = copy.deepcopy(module).eval()
    for seq in [m for m in module.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], torch.nn.Conv2d) and isinstance(seq[i + 1], torch.nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = torch.nn.Identity()
    return module


def _round_weights_to_fp16(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` whose float32 parameters and buffers are rounded to float16 values (still float32)."""
    module = copy.deepcopy(module)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype == torch.float32:
                t.copy_(t.half().float())
    return module


def _store_weights_fp16(path: str, min_elements: int = 1024) -> int:
    """Store the graph's large float32 initializers as float16 with a ``Cast`` back to float32.

    Halves the file; the arithmetic stays float32 (ONNX Runtime and TensorRT fold the casts into
    constants when they load the graph). Exact only for weights already rounded to float16 values
    (:func:`_round_weights_to_fp16`). Returns the number of initializers converted.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    casts, kept, n = [], [], 0
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
            n += 1
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return n


def _parity(module: torch.nn.Module, path: str, x: torch.Tensor | tuple[torch.Tensor, ...], names: list[str]) -> dict[str, float]:
    import onnxruntime as ort

    xs = x if isinstance(x, tuple) else (x,)
    with torch.no_grad():
        ref = module(*xs)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(names, {i.name: t.numpy() for i, t in zip(sess.get_inputs(), xs)})
    errors = {}
    for name, r, g in zip(names, ref, got):
        r = r.detach().numpy()
        if r.shape != g.shape:
            raise ExportParityError(f"{os.path.basename(path)}: output '{name}' has shape {g.shape} in ONNX, {r.shape} in torch")
        errors[name] = float(np.max(np.abs(r.astype(np.float64) - g.astype(np.float64)))) if r.size else 0.0
    return errors


def _export_graph(module: torch.nn.Module, batch: torch.Tensor | tuple[torch.Tensor, ...], path: str,
                  input_name: str | tuple[str, ...], output_names: list[str], opset: int, dynamo: bool,
                  weights: str) -> dict[str, float]:
    """Export ``module`` to ``path`` from the first item of ``batch`` (output sizes pinned, weights
    stored as ``weights``) and return the largest ONNX Runtime vs PyTorch difference per output on all
    of ``batch``."""
    inputs = batch if isinstance(batch, tuple) else (batch,)
    first = tuple(x[:1] for x in inputs)
    _export(module, first if len(first) > 1 else first[0], path, input_name, output_names, opset, dynamo)
    with torch.no_grad():
        out = module(*first)
    _pin_output_shapes(path, out if isinstance(out, (tuple, list)) else [out], output_names)
    if weights == "float16":
        _store_weights_fp16(path)
    return _parity(module, path, batch, output_names)


def _check_parity(errors: dict[str, float], tolerance: float) -> None:
    worst = max(errors, key=errors.get)
    if errors[worst] > tolerance:
        raise ExportParityError(f"ONNX vs PyTorch: max abs error {errors[worst]:.3g} on '{worst}' exceeds tolerance {tolerance:g}")


def _export_record(opset: int, dynamo: bool, errors: dict[str, float], tolerance: float, weights: str,
                   batch_inputs: list[str], command: str | None, parity_focal_px: list[float] | None = None,
                   ops: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The card's ``export`` block: how the graphs were made and how closely they match PyTorch."""
    record: dict[str, Any] = {
        "opset": opset,
        "exporter": "torch.onnx (dynamo/onnxscript)" if dynamo else "torch.onnx (TorchScript)",
        "torch": torch.__version__,
        "parity_max_abs_error": errors,
        "parity_tolerance": tolerance,
    }
    if parity_focal_px is not None:
        record["parity_focal_px"] = parity_focal_px
    record["weights_storage"] = ("float32" if weights == "float32"
                                 else "float16 (weights rounded to float16, Cast to float32 in the graph)")
    record["dynamic_axes"] = {name: ["batch"] for name in batch_inputs}
    if ops is not None:
        record["ops"] = ops
    record["command"] = command
    return record


def _publish(tmp: str, out_dir: str, card: art.ModelCard) -> art.Artifact:
    """Write the card into the staging folder ``tmp``, load it as the runtime would (refusing to ship
    what it would refuse), then move it to ``out_dir`` in one rename; returns the loaded artifact."""
    art.write_card(tmp, card)
    os.chmod(tmp, 0o755)
    art.load_artifact(tmp)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return art.load_artifact(out_dir)


def export_artifact(
    encoder: torch.nn.Module,
    heads: torch.nn.Module,
    out_dir: str,
    *,
    name: str,
    card_fields: dict[str, Any],
    opset: int = 17,
    tolerance: float = 1e-3,
    dynamo: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    weights: str = "float32",
) -> art.Artifact:
    """Export ``encoder`` and ``heads`` to ``out_dir`` and return the loaded, validated artifact.

    ``card_fields`` needs ``height, width, tokens_n, tokens_c, frames_per_clip, features_dim,
    depth_scale``, and may carry ``normalization, training, metrics``. ``weights="float16"`` rounds
    the weights to float16 and stores them so (half the file size; compute stays float32); the
    parity check then compares with the rounded PyTorch modules, i.e. the model that ships.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    if weights not in ("float32", "float16"):
        raise ValueError(f"weights must be 'float32' or 'float16', got {weights!r}")
    f = card_fields
    h, w, s = int(f["height"]), int(f["width"]), int(f["frames_per_clip"])
    encoder, heads = encoder.eval(), heads.eval()
    if weights == "float16":
        encoder, heads = _round_weights_to_fp16(encoder), _round_weights_to_fp16(heads)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        gen = torch.Generator().manual_seed(0)
        image = torch.rand(2, 3, h, w, generator=gen)
        enc_path = os.path.join(tmp, art.ENCODER_FILE)
        heads_path = os.path.join(tmp, art.HEADS_FILE)
        enc_err = _export_graph(encoder, image, enc_path, ENCODER_INPUT, [TOKENS], opset, dynamo, weights)
        with torch.no_grad():
            tokens = torch.stack([encoder(torch.rand(2, 3, h, w, generator=gen)) for _ in range(s)], 1)  # [2, S, N, C]
        heads_err = _export_graph(heads, tokens, heads_path, HEADS_INPUT, list(HEADS_OUTPUTS), opset, dynamo, weights)
        errors = {**{f"encoder/{k}": v for k, v in enc_err.items()}, **{f"heads/{k}": v for k, v in heads_err.items()}}
        _check_parity(errors, tolerance)
        card = art.ModelCard(
            name=name,
            format_version=art.CARD_FORMAT_VERSION,
            input=art.InputSpec(height=h, width=w, normalization=dict(f.get("normalization", {}))),
            tokens_n=int(f["tokens_n"]),
            tokens_c=int(f["tokens_c"]),
            frames_per_clip=s,
            features_dim=int(f["features_dim"]),
            depth_scale=art.DepthScale(f["depth_scale"]),
            pose_encoding=art.POSE_ENCODING,
            files={art.ENCODER_FILE: art.sha256_file(enc_path), art.HEADS_FILE: art.sha256_file(heads_path)},
            training=dict(f.get("training", {})),
            metrics=dict(f.get("metrics", {})),
            export=_export_record(opset, dynamo, errors, tolerance, weights, [ENCODER_INPUT, HEADS_INPUT], command),
        )
        return _publish(tmp, out_dir, card)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class ExportOpsError(RuntimeError):
    """A graph uses an op outside :data:`TENSORRT_OPS`."""


def _check_ops(path: str) -> list[str]:
    """The sorted op types of a graph; raises :class:`ExportOpsError` naming any that TensorRT does not build."""
    import onnx

    ops = sorted({n.op_type for n in onnx.load(path, load_external_data=False).graph.node})
    bad = [o for o in ops if o not in TENSORRT_OPS]
    if bad:
        raise ExportOpsError(f"{os.path.basename(path)}: ops {bad} are not in the TensorRT-buildable set")
    return ops


def export_artifact_v2(
    frame: torch.nn.Module,
    out_dir: str,
    *,
    name: str,
    card_fields: dict[str, Any],
    heads: torch.nn.Module | None = None,
    opset: int = 17,
    tolerance: float = 1e-3,
    dynamo: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    weights: str = "float32",
) -> art.Artifact:
    """Export a format version 2 artifact (``frame.onnx`` and, if ``heads`` is given, ``heads.onnx``)
    to ``out_dir`` and return the loaded, validated artifact.

    ``frame(image [B, 3, H, W] in [0, 1], focal_px [B]) -> (depth [B, H, W] metres, depth_conf
    [B, H, W] > 0, tokens [B, N, C])``; ``heads`` takes tokens ``[B, S, N, C]`` as in version 1.
    ``card_fields`` needs ``height, width, tokens_n, tokens_c, canonical_focal_px, depth_scale``,
    with heads also ``frames_per_clip, features_dim``, and may carry ``normalization, training,
    metrics``. Parity is checked on a batch of 2 with focal lengths 0.7x and 1.3x the canonical
    one; ``weights="float16"`` as in :func:`export_artifact` (BatchNorm folded into the convs first,
    :func:`fold_batchnorm`). Every graph must use only :data:`TENSORRT_OPS`.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    if weights not in ("float32", "float16"):
        raise ValueError(f"weights must be 'float32' or 'float16', got {weights!r}")
    f = card_fields
    h, w, f_c = int(f["height"]), int(f["width"]), float(f["canonical_focal_px"])
    frame = fold_batchnorm(frame)
    heads = heads.eval() if heads is not None else None
    if weights == "float16":
        frame = _round_weights_to_fp16(frame)
        heads = _round_weights_to_fp16(heads) if heads is not None else None
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        gen = torch.Generator().manual_seed(0)
        image = torch.rand(2, 3, h, w, generator=gen)
        focal = torch.tensor([0.7 * f_c, 1.3 * f_c])
        paths = {FRAME_FILE: os.path.join(tmp, FRAME_FILE)}
        errors = {f"frame/{k}": v for k, v in _export_graph(frame, (image, focal), paths[FRAME_FILE], (FRAME_IMAGE, FRAME_FOCAL),
                                                             list(FRAME_OUTPUTS), opset, dynamo, weights).items()}
        if heads is not None:
            s = int(f["frames_per_clip"])
            paths[art.HEADS_FILE] = os.path.join(tmp, art.HEADS_FILE)
            with torch.no_grad():
                tokens = torch.stack([frame(torch.rand(2, 3, h, w, generator=gen), focal)[2] for _ in range(s)], 1)
            errors.update({f"heads/{k}": v for k, v in _export_graph(heads, tokens, paths[art.HEADS_FILE], HEADS_INPUT,
                                                                     list(HEADS_OUTPUTS), opset, dynamo, weights).items()})
        _check_parity(errors, tolerance)
        ops = {file: _check_ops(path) for file, path in paths.items()}
        card = art.ModelCard(
            name=name,
            format_version=CARD_FORMAT_VERSION_V2,
            input=art.InputSpec(height=h, width=w, normalization=dict(f.get("normalization", {}))),
            tokens_n=int(f["tokens_n"]),
            tokens_c=int(f["tokens_c"]),
            frames_per_clip=int(f["frames_per_clip"]) if heads is not None else None,
            features_dim=int(f["features_dim"]) if heads is not None else None,
            depth_scale=art.DepthScale(f["depth_scale"]),
            pose_encoding=art.POSE_ENCODING if heads is not None else None,
            files={file: art.sha256_file(path) for file, path in paths.items()},
            training=dict(f.get("training", {})),
            metrics=dict(f.get("metrics", {})),
            export=_export_record(opset, dynamo, errors, tolerance, weights,
                                  [FRAME_IMAGE, FRAME_FOCAL] + ([HEADS_INPUT] if heads is not None else []), command,
                                  parity_focal_px=focal.tolist(), ops=ops),
            canonical_focal_px=f_c,
        )
        return _publish(tmp, out_dir, card)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_factory(spec: str):
    module, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--factory must be 'module:function', got '{spec}'")
    return getattr(importlib.import_module(module), attr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.export", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a distill.train run directory: export its newest checkpoint")
    src.add_argument("--factory", help="module:function returning (encoder, heads, card_fields)")
    src.add_argument("--run-v2", help="a per-frame (recipe: frame) run directory: a format version 2 artifact")
    src.add_argument("--random-v2", action="store_true",
                     help="a random-init format version 2 artifact of the shipped per-frame architecture "
                          "(FrameStudentConfig preset 'cpu', 224 x 224), for runtime speed benchmarks")
    p.add_argument("--name", default=None, help="the card's name (default for --random-v2: vega-frame-v2-random)")
    p.add_argument("--out", required=True)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--dynamo", action="store_true", help="use the dynamo/onnxscript exporter")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--weights", choices=("float32", "float16"), default="float32",
                   help="storage of the weights: float16 halves the files (compute stays float32)")
    p.add_argument("--seed", type=int, default=0, help="--random-v2: the weights' seed")
    args = p.parse_args(argv)
    command = "python -m distill.export " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.name is None and not args.random_v2:
        p.error("--name is required")
    if args.run_v2 or args.random_v2:
        if args.run_v2:
            from distill.frame_recipe import export_frame_from_run  # noqa: PLC0415

            frame, fields = export_frame_from_run(args.run_v2)
        else:
            from distill.nets.models import build_frame_student, frame_card_fields  # noqa: PLC0415

            frame = build_frame_student("cpu", seed=args.seed)
            fields = frame_card_fields(frame)
            fields["training"] = {**fields["training"], "random_init": True, "seed": args.seed}
            fields["metrics"] = {"note": "not measured: random-init weights (for speed benchmarks only)"}
        fields.setdefault("metrics", {})
        a = export_artifact_v2(frame, args.out, name=args.name or "vega-frame-v2-random", card_fields=fields,
                               opset=args.opset, tolerance=args.tolerance, dynamo=args.dynamo, overwrite=args.overwrite,
                               command=command, weights=args.weights)
    else:
        if args.run:
            from distill.recipe import export_modules_from_run  # noqa: PLC0415

            encoder, heads, fields = export_modules_from_run(args.run)
        else:
            encoder, heads, fields = _load_factory(args.factory)()
        fields.setdefault("metrics", {})
        a = export_artifact(encoder, heads, args.out, name=args.name, card_fields=fields, opset=args.opset,
                            tolerance=args.tolerance, dynamo=args.dynamo, overwrite=args.overwrite, weights=args.weights,
                            command=command)
    sizes = {k: os.path.getsize(os.path.join(a.path, k)) for k in a.card.files}
    print(f"exported {a.card.name} -> {a.path}: {sizes}; parity {a.card.export['parity_max_abs_error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
