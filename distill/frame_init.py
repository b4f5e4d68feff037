"""Start a per-frame student's training from a shipped artifact (``models/<name>``: card.json + frame.onnx).

Runs (``runs/``) do not outlive a machine; the shipped artifact does, and its ``frame.onnx`` holds
every trained weight. :func:`student_from_artifact` rebuilds the :class:`FrameStudent` of the card's
``training.architecture`` from the graph's initializers:

- parameters by name (``s4.1.body.0.0.weight``, ``blocks.0.norm1.bias``, ...); float16-stored ones
  (``NAME__fp16`` + ``Cast``, :func:`distill.export._store_weights_fp16`) back to float32;
- the transformer's linear weights, which the exporter stores transposed under ``onnx::MatMul_*``
  names, by the node that reads them (``/blocks.0/attn/qkv/MatMul`` -> ``blocks.0.attn.qkv.weight``);
- each conv whose BatchNorm was folded into it (:func:`distill.export.fold_batchnorm`:
  ``W' = W g / s``, ``b' = beta - g m / s``) as the conv weight ``W'``, its BatchNorm as the identity
  plus ``b'`` (weight 1, bias ``b'``, running mean 0, running var ``1 - eps``): exact in eval mode.

The rebuilt student is compared with ONNX Runtime on the artifact's own graph; a difference over
the tolerance is an :class:`ArtifactInitError` naming the artifact.

Training runs BatchNorm on batch statistics, which would re-normalise every folded channel to unit
scale at step 0. :func:`recalibrate_batchnorm` therefore re-expresses each BatchNorm around the
per-channel mean ``m`` and variance ``v`` of its input on a batch of real training images: running
mean ``m``, running var ``v - eps``, weight ``a sqrt(v)``, bias ``c + a m`` for the layer's eval-mode
affine map ``a x + c``. The eval-mode function is unchanged, and on batches like that one the
train-mode function equals it.

``frame_recipe.train`` does both when ``trainer.init_from`` names an artifact and the run has no
checkpoint yet, and writes the result as ``RUN/init_from_artifact/model.safetensors``, an ordinary
``init_from`` source for the trainer.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.nets.models.config import FrameStudentConfig
from distill.nets.models.frame_student import FrameStudent
from vega_ros.contract import CARD_FORMAT_VERSION_V2, FRAME_FILE, FRAME_FOCAL, FRAME_IMAGE

FP16_SUFFIX = "__fp16"
PARITY_TOLERANCE = 1e-3
"""Largest absolute difference (metres, confidence units, token units) allowed between the rebuilt
student and ONNX Runtime on the artifact's graph."""


class ArtifactInitError(RuntimeError):
    """An artifact cannot start a run: not a per-frame artifact, weights that do not fit, or no parity."""


def is_frame_artifact(path: str) -> bool:
    """Whether ``path`` is a format-2 artifact directory (a card and ``frame.onnx``)."""
    card = os.path.join(path, "card.json")
    if not (os.path.isfile(card) and os.path.isfile(os.path.join(path, FRAME_FILE))):
        return False
    try:
        with open(card) as f:
            return json.load(f).get("format_version") == CARD_FORMAT_VERSION_V2
    except (OSError, ValueError):
        return False


_ROLES = {("Conv", 1): "weight", ("Conv", 2): "bias", ("LayerNormalization", 1): "weight",
          ("LayerNormalization", 2): "bias", ("MatMul", 1): "weight", ("Add", 0): "bias", ("Add", 1): "bias"}
"""(op, input index) -> the parameter of the node's module an initializer there is."""


def onnx_weights(path: str, wanted: set[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """``(weights, unused)``: the arrays in ``frame.onnx`` at ``path`` for the parameter names in
    ``wanted``, and the graph's named initializers that no wanted name took.

    A parameter is found by its own name, else by the node that reads it (``/blocks.0/attn/qkv/MatMul``
    input 1 is ``blocks.0.attn.qkv.weight``): the exporter names linear weights ``onnx::MatMul_*``
    and stores identical tensors once, the other names as ``Identity`` nodes of it. MatMul weights
    come back transposed to ``nn.Linear``'s ``[out, in]``; folded convolutions keep their folded
    ``weight`` and ``bias`` (module docstring). Arrays are float32."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    values = {}
    for init in model.graph.initializer:
        name = init.name[: -len(FP16_SUFFIX)] if init.name.endswith(FP16_SUFFIX) else init.name
        values[name] = numpy_helper.to_array(init).astype(np.float32)
    for node in model.graph.node:  # a tensor stored once for several parameters: Identity(kept) -> other name
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    weights = {k: values[k] for k in wanted if k in values}
    for node in model.graph.node:
        module = node.name.strip("/").rsplit("/", 1)[0].replace("/", ".")  # /blocks.0/attn/qkv/MatMul
        for i, name in enumerate(node.input):
            key = f"{module}.{_ROLES.get((node.op_type, i), '')}"
            if name in values and key in wanted and key not in weights:
                weights[key] = values[name].T.copy() if node.op_type == "MatMul" else values[name]
    taken = set(weights)
    unused = sorted(k for k in values if not k.startswith("onnx::") and k not in taken)
    return weights, unused


def _folded_pairs(module: nn.Module) -> list[tuple[str, nn.Conv2d, str, nn.BatchNorm2d]]:
    """``(conv name, conv, bn name, bn)`` for every conv directly followed by a BatchNorm in a
    Sequential: the pairs :func:`distill.export.fold_batchnorm` folds."""
    pairs = []
    for name, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                prefix = f"{name}." if name else ""
                pairs.append((f"{prefix}{i}", seq[i], f"{prefix}{i + 1}", seq[i + 1]))
    return pairs


def load_folded_weights(student: FrameStudent, path: str) -> None:
    """Fill ``student`` from the graph ``frame.onnx`` at ``path`` (:func:`onnx_weights`); every
    parameter must be found and every named initializer used.

    Raises :class:`ArtifactInitError` naming ``path`` and the keys that do not fit."""
    state = student.state_dict()
    pairs = _folded_pairs(student)
    if any(conv.bias is not None for _, conv, _, _ in pairs):
        raise ArtifactInitError(f"{path}: a conv followed by a BatchNorm has its own bias; it cannot be unfolded")
    wanted = {k for k in state if not k.endswith("num_batches_tracked")}
    for conv_name, _, bn_name, _ in pairs:  # a folded pair is a conv weight and bias in the graph
        wanted -= {f"{bn_name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")}
        wanted.add(f"{conv_name}.bias")
    weights, unused = onnx_weights(path, wanted)
    new: dict[str, torch.Tensor] = {}
    for conv_name, _, bn_name, bn in pairs:
        bias = weights.pop(f"{conv_name}.bias", None)
        if bias is None:
            continue  # reported as missing below
        new[f"{bn_name}.weight"] = torch.ones(bn.num_features)
        new[f"{bn_name}.bias"] = torch.from_numpy(bias)
        new[f"{bn_name}.running_mean"] = torch.zeros(bn.num_features)
        new[f"{bn_name}.running_var"] = torch.full((bn.num_features,), 1.0 - bn.eps)
        new[f"{bn_name}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    new.update({k: torch.from_numpy(v) for k, v in weights.items()})
    new.update({k: v.clone() for k, v in state.items() if k.endswith("num_batches_tracked") and k not in new})
    missing = [k for k in state if k not in new]
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(state[k].shape)}" for k, v in new.items() if v.shape != state[k].shape]
    if missing or unused or wrong:
        raise ArtifactInitError(f"{path} does not fit the card's architecture: missing {missing[:5]}, "
                                f"unused {unused[:5]}, other shapes {wrong[:5]}")
    student.load_state_dict(new, strict=True)


def check_parity(student: FrameStudent, path: str, tolerance: float = PARITY_TOLERANCE, seed: int = 0) -> float:
    """Largest absolute difference between ``student`` (eval) and ONNX Runtime on ``frame.onnx`` at
    ``path``, over a batch of two random images at the graph's size and two focal lengths;
    raises :class:`ArtifactInitError` when it exceeds ``tolerance``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    h, w = student.cfg.image_size
    rng = np.random.default_rng(seed)
    image = rng.random((2, 3, h, w), dtype=np.float32)
    focal = np.array([0.6, 1.3], np.float32) * student.canonical_focal_px
    want = session.run(None, {FRAME_IMAGE: image, FRAME_FOCAL: focal})
    was_training = student.training
    with torch.no_grad():
        got = student.eval()(torch.from_numpy(image), torch.from_numpy(focal))
    student.train(was_training)
    err = max(float(np.abs(g.numpy() - np.asarray(x)).max()) for g, x in zip(got, want))
    if not err <= tolerance:
        raise ArtifactInitError(f"{path}: the rebuilt student differs from ONNX Runtime by {err:.3g} (> {tolerance})")
    return err


def student_from_artifact(model_dir: str) -> tuple[FrameStudent, dict[str, Any]]:
    """``(student, card)``: the trained :class:`FrameStudent` of a format-2 artifact, parity-checked.

    The architecture is the card's ``training.architecture``; sha256 sums are verified first
    (:func:`vega_ros.artifact.load_artifact`)."""
    from vega_ros.artifact import ArtifactError, load_artifact

    if not is_frame_artifact(model_dir):
        raise ArtifactInitError(f"{model_dir} is not a per-frame artifact (card.json with format_version "
                                f"{CARD_FORMAT_VERSION_V2} and {FRAME_FILE})")
    try:
        load_artifact(model_dir)
    except ArtifactError as e:
        raise ArtifactInitError(str(e)) from e
    with open(os.path.join(model_dir, "card.json")) as f:
        card = json.load(f)
    arch = dict((card.get("training") or {}).get("architecture") or {})
    if arch.pop("class", "FrameStudent") != "FrameStudent" or not arch:
        raise ArtifactInitError(f"{model_dir}: card.json names no FrameStudent architecture (training.architecture)")
    student = FrameStudent(FrameStudentConfig.from_dict(arch))
    path = os.path.join(model_dir, FRAME_FILE)
    load_folded_weights(student, path)
    check_parity(student, path)
    return student, card


def recalibrate_batchnorm(student: FrameStudent, image: torch.Tensor, focal_px: torch.Tensor) -> int:
    """Re-express every BatchNorm of ``student`` around its input statistics on one batch, leaving the
    eval-mode function unchanged (module docstring). ``image [B, 3, H, W]`` in [0, 1], ``focal_px [B]``
    pixels. Returns the number of BatchNorm layers set."""
    norms = [m for m in student.modules() if isinstance(m, nn.BatchNorm2d)]
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().float()
        stats[id(module)] = (x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False))

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    was_training = student.training
    try:
        with torch.no_grad():
            student.eval().maps(image, focal_px)
    finally:
        for h in hooks:
            h.remove()
        student.train(was_training)
    with torch.no_grad():
        for bn in norms:
            mean, var = stats[id(bn)]
            var = var.clamp_min(bn.eps * 2)  # a dead channel keeps a positive running variance
            a = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # eval-mode map a x + c
            c = bn.bias - a * bn.running_mean
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var - bn.eps)
            bn.weight.copy_(a * torch.sqrt(var))
            bn.bias.copy_(c + a * mean)
    return len(norms)


def _architecture(cfg: FrameStudentConfig) -> dict[str, Any]:
    """The fields that shape the weights (all but ``image_size``, which only sizes the positions)."""
    d = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()}
    d.pop("image_size", None)
    return d


def write_init_weights(model_dir: str, model: nn.Module, dataset: torch.utils.data.Dataset,
                       collate_fn: Any, run_dir: str, batch_size: int) -> str:
    """Load the artifact at ``model_dir`` into ``model.student`` (a ``FrameModel``), recalibrate its
    BatchNorms on ``batch_size`` images spread evenly over ``dataset`` (items with ``image [3, H, W]``
    and ``focal_px``), write the whole model to ``RUN/init_from_artifact/model.safetensors`` and
    return that folder (a ``trainer.init_from`` source). Other modules of ``model`` (a teacher
    projection) keep their fresh weights."""
    from tqdm import tqdm

    from distill.training.checkpoint import save_model_weights

    trained, card = student_from_artifact(model_dir)
    want, have = _architecture(model.student.cfg), _architecture(trained.cfg)
    if want != have:
        diff = {k: (have.get(k), want.get(k)) for k in set(want) | set(have) if want.get(k) != have.get(k)}
        raise ArtifactInitError(f"{model_dir} is another architecture than the config's model.student "
                                f"(field: (artifact, config)): {diff}")
    model.student.load_state_dict(trained.state_dict())
    n = max(1, min(batch_size, len(dataset)))
    items = [dataset[int(i)] for i in np.linspace(0, len(dataset) - 1, n).round()]
    batch = collate_fn(items)
    layers = recalibrate_batchnorm(model.student, batch["image"], batch["focal_px"])
    folder = os.path.join(run_dir, "init_from_artifact")
    os.makedirs(folder, exist_ok=True)
    save_model_weights(folder, model)
    tqdm.write(f"[train] {card.get('name', model_dir)} ({model_dir}, trained {card['training'].get('step')} steps "
               f"in {card['training'].get('run')}): weights rebuilt from {FRAME_FILE}, parity-checked, "
               f"{layers} BatchNorms recalibrated on {n} training images -> {folder}")
    return folder
