"""Student encoder, probe and verifier: shapes, contracts, checkpoints, ONNX export parity."""

import numpy as np
import pytest
import torch

from distill.nets.heads import activate_conf, activate_depth, activate_points
from distill.nets.layers import sincos_pos_embed_2d
from distill.nets.models import (
    OUTPUT_NAMES,
    Probe,
    ProbeConfig,
    StudentConfig,
    Verifier,
    VerifierConfig,
    build_student,
    load_student,
    save_student,
)
from vega_ros import contract

# ONNX operators the exported graphs may use: all have TensorRT importers (no Loop/If/NonZero/...)
TRT_OPS = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Relu", "Neg", "Abs", "Sign",
    "MatMul", "Gemm", "Conv", "ConvTranspose", "Softmax", "ReduceMean", "ReduceSum", "LayerNormalization",
    "Reshape", "Transpose", "Concat", "Slice", "Gather", "Unsqueeze", "Squeeze", "Flatten", "Shape", "Expand",
    "Constant", "ConstantOfShape", "Cast", "Resize", "Clip", "Max", "Min", "Where", "Equal", "Range", "Identity",
    "BatchNormalization", "Split", "Cos", "Sin", "Less", "Greater", "Not", "And", "Trilu", "Tile",
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_student_presets_and_token_shapes():
    assert StudentConfig.preset("vit-ti").embed_dim == 192 and StudentConfig.preset("vit-s").embed_dim == 384
    assert StudentConfig.preset("vit-ti").depth == 12
    st = build_student("vit-ti", seed=0, depth=2)
    x = torch.rand(2, 3, 3, 64, 48)
    tokens = st(x)
    assert tokens.shape == (2, 3, (64 // 16) * (48 // 16), 192)
    # a clip is exactly its frames encoded one by one
    assert torch.allclose(tokens[1, 2], st(x[1, 2:3])[0], atol=1e-5)
    cnn = build_student("cnn", seed=0)
    assert cnn(x).shape == (2, 3, 12, 192)
    with pytest.raises(ValueError):
        st(torch.rand(1, 3, 50, 64))  # not a multiple of the patch size


def test_student_normalises_inside_and_is_seeded():
    a, b = build_student("vit-ti", seed=3, depth=1), build_student("vit-ti", seed=3, depth=1)
    c = build_student("vit-ti", seed=4, depth=1)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(a(x), b(x)) and not torch.allclose(a(x), c(x))
    assert torch.allclose(a.mean.view(-1), torch.tensor([0.485, 0.456, 0.406]))


def test_student_checkpoint_roundtrip(tmp_path):
    st = build_student("vit-ti", seed=0, depth=2, embed_dim=64, num_heads=2)
    save_student(st, tmp_path / "ckpt")
    back = load_student(tmp_path / "ckpt")
    x = torch.rand(1, 3, 32, 32)
    assert back.cfg == st.cfg and torch.equal(back(x), st(x))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        (tmp_path / "ckpt" / "model.safetensors").unlink()
        load_student(tmp_path / "ckpt")


def test_config_roundtrip_and_unknown_keys():
    cfg = ProbeConfig.preset("paper", in_dim=768)
    assert cfg.dim == 1024 and cfg.dpt_features == 256 and cfg.depth == 4
    assert ProbeConfig.from_dict(cfg.to_dict()) == cfg
    assert 256 <= ProbeConfig.preset("cpu").dim <= 384
    with pytest.raises(ValueError, match="unknown keys"):
        ProbeConfig.from_dict({"dimm": 3})
    s = StudentConfig.preset("cnn")
    assert StudentConfig.from_dict(s.to_dict()) == s


def _tiny_probe(h=32, w=48, in_dim=32, depth=2):
    torch.manual_seed(0)
    cfg = ProbeConfig.preset("tiny", in_dim=in_dim, depth=depth, image_size=(h, w), grid_size=(h // 16, w // 16))
    return Probe(cfg).eval()


def test_probe_outputs_follow_the_heads_contract():
    probe = _tiny_probe()
    tokens = torch.randn(2, 3, 6, 32)
    out = probe(tokens)
    assert out["depth"].shape == (2, 3, 32, 48) and out["depth_conf"].shape == (2, 3, 32, 48)
    assert out["points"].shape == (2, 3, 32, 48, 3) and out["points_conf"].shape == (2, 3, 32, 48)
    assert out["pose_enc"].shape == (2, 3, 9) and out["features"].shape == (2, 3, 128)
    assert (out["depth"] > 0).all() and (out["depth_conf"] > 1).all() and (out["points_conf"] > 1).all()
    assert len(Probe.export_outputs(out)) == len(OUTPUT_NAMES)
    # the camera head starts at the identity with a ~60 degree field of view
    q = out["pose_enc"][..., 3:7]
    assert torch.allclose(q / q.norm(dim=-1, keepdim=True), torch.tensor([0.0, 0, 0, 1]), atol=0.05)


def test_probe_reference_frame_is_special_and_frames_interact():
    probe = _tiny_probe()
    torch.manual_seed(1)
    same = torch.randn(1, 1, 6, 32).repeat(1, 3, 1, 1)  # three identical frames
    with torch.no_grad():
        last = probe.aggregate(same, (2, 3))[-1]  # [1, S, 1 + N, 2 * dim]
        # frame 0 carries the reference embedding and camera token: it differs from the others
        assert (last[0, 0] - last[0, 1]).abs().max() > 1e-3
        assert torch.allclose(last[0, 1], last[0, 2], atol=1e-5)
        # global attention: changing frame 2 changes frame 1's tokens
        other = same.clone()
        other[0, 2] = torch.randn(6, 32)
        assert (probe.aggregate(other, (2, 3))[-1][0, 1] - last[0, 1]).abs().max() > 1e-4


def test_verifier_shapes_and_positive_uncertainty():
    v = Verifier(VerifierConfig(in_dim=32, image_size=(32, 48), grid_size=(2, 3)))
    out = v(torch.randn(2, 2, 6, 32))
    assert out["depth"].shape == (2, 2, 32, 48) and out["sigma"].shape == (2, 2, 32, 48)
    assert (out["depth"] > 0).all() and (out["sigma"] > 0).all()


def test_head_activations():
    x = torch.tensor([-2.0, 0.0, 3.0, 1e4])
    assert torch.allclose(activate_points(x)[:3], torch.tensor([-(np.e**2 - 1), 0.0, np.e**3 - 1]), rtol=1e-5)
    assert torch.isfinite(activate_points(x)).all() and torch.isfinite(activate_depth(x)).all()
    assert (activate_depth(x) > 0).all() and (activate_conf(x) > 1).all()


def test_sincos_pos_embed_is_distinct_per_position():
    pe = sincos_pos_embed_2d(3, 4, 16)
    assert pe.shape == (12, 16)
    assert torch.cdist(pe, pe).add(torch.eye(12) * 10).min() > 0.1


def _ops(path):
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_student_and_probe_export_to_onnx_with_parity(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    st = build_student("vit-ti", seed=0, depth=2, image_size=(32, 48)).eval()
    probe = _tiny_probe(in_dim=192)
    img = torch.rand(1, 3, 32, 48)
    torch.onnx.export(st, (img,), str(tmp_path / "encoder.onnx"), opset_version=17, dynamo=False,
                      input_names=[contract.ENCODER_INPUT], output_names=[contract.TOKENS])

    class Heads(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, tokens):
            return Probe.export_outputs(self.p(tokens))

    tokens = st(torch.rand(3, 3, 32, 48))[None]  # [1, S=3, N, C]
    torch.onnx.export(Heads(probe), (tokens,), str(tmp_path / "heads.onnx"), opset_version=17, dynamo=False,
                      input_names=[contract.HEADS_INPUT], output_names=list(OUTPUT_NAMES))
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    got = enc.run(None, {contract.ENCODER_INPUT: img.numpy()})[0]
    assert np.abs(got - st(img).detach().numpy()).max() < 1e-4
    heads = ort.InferenceSession(str(tmp_path / "heads.onnx"), providers=["CPUExecutionProvider"])
    outs = heads.run(None, {contract.HEADS_INPUT: tokens.detach().numpy()})
    with torch.no_grad():
        ref = Probe.export_outputs(probe(tokens))
    for name, a, b in zip(OUTPUT_NAMES, outs, ref):
        assert a.shape == tuple(b.shape), name
        assert np.abs(a - b.numpy()).max() < 1e-3 * max(1.0, float(b.abs().max())), name
    for path in ("encoder.onnx", "heads.onnx"):
        extra = _ops(tmp_path / path) - TRT_OPS
        assert not extra, f"{path} uses operators outside the TensorRT-safe list: {sorted(extra)}"
