"""Weight variants of a model artifact for the perception benchmark: float16-stored weights and int8 (ONNX Runtime).

Each variant is a full artifact directory (graphs + a card whose checksums match), so the node loads
it like any other:

- ``fp16w``: large float32 initializers stored as float16 with a ``Cast`` back to float32 (half the
  file; compute stays float32, so the depth changes by the rounding of the weights only);
- ``int8``: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, activations quantized per
  run) on MatMul / Gemm.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np

VARIANTS = ("fp32", "fp16w", "int8")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def store_weights_fp16(src: str, dst: str, min_elements: int = 1024) -> int:
    """Write ``src`` (ONNX) to ``dst`` with float32 initializers of >= ``min_elements`` stored as float16; returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(src)
    graph = model.graph
    converted, keep, casts = 0, [], []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "__cast"))
            converted += 1
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, dst)
    return converted


def quantize_int8(src: str, dst: str) -> None:
    """Dynamic int8 quantization of MatMul / Gemm weights with ONNX Runtime."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def write_variant(artifact_dir: str, out_dir: str, kind: str) -> str:
    """Copy the artifact at ``artifact_dir`` to ``out_dir`` with its graphs turned into ``kind`` (see VARIANTS)."""
    if kind not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got '{kind}'")
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    shutil.copytree(artifact_dir, out_dir)
    if kind == "fp32":
        return out_dir
    card_path = os.path.join(out_dir, "card.json")
    card = json.load(open(card_path))
    for name in [n for n in card["files"] if n.endswith(".onnx")]:
        src, dst = os.path.join(artifact_dir, name), os.path.join(out_dir, name)
        if kind == "fp16w":
            store_weights_fp16(src, dst)
        else:
            quantize_int8(src, dst)
        card["files"][name] = _sha256(dst)
    card["name"] = f"{card['name']}-{kind}"
    card.setdefault("export", {})["weights_storage"] = {"fp16w": "float16", "int8": "int8 (onnxruntime quantize_dynamic)"}[kind]
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
    return out_dir
