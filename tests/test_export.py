"""distill.export: ONNX graphs with a dynamic batch that agree with PyTorch, or no artifact at all."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill.export import ExportParityError, export_artifact
from tests.fixtures.artifacts import export_small
from tests.fixtures.tiny_nets import build
from vega_ros import contract


def test_export_matches_torch_on_a_new_batch_size(tmp_path):
    a = export_small(tmp_path / "m", seed=3)
    enc, heads, _ = build(seed=3, height=56, width=84, patch=14, dim=32, frames=4, features_dim=16)
    assert a.card.export["opset"] >= 17 and max(a.card.export["parity_max_abs_error"].values()) < 1e-3
    x = torch.rand(3, 3, 56, 84, generator=torch.Generator().manual_seed(1))  # batch 3: never seen at export
    sess = ort.InferenceSession(a.encoder_path, providers=["CPUExecutionProvider"])
    got = sess.run([contract.TOKENS], {contract.ENCODER_INPUT: x.numpy()})[0]
    with torch.no_grad():
        want = enc(x).numpy()
        tokens = torch.stack([enc(x), enc(x.flip(0)), enc(x), enc(x.flip(0))], 1)
        want_heads = heads(tokens)
    np.testing.assert_allclose(got, want, atol=1e-4)
    hs = ort.InferenceSession(a.heads_path, providers=["CPUExecutionProvider"])
    outs = hs.run(list(contract.HEADS_OUTPUTS), {contract.HEADS_INPUT: tokens.numpy()})
    for o, w in zip(outs, want_heads):
        np.testing.assert_allclose(o, w.numpy(), atol=1e-4)
    # the reference frame's pose is the identity with the contract's 9-value encoding
    np.testing.assert_allclose(outs[3][:, 0, :7], np.tile([0, 0, 0, 0, 0, 0, 1], (3, 1)), atol=1e-6)


class _Noisy(torch.nn.Module):
    """An encoder whose ONNX graph cannot agree with PyTorch (fresh noise on every run)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, image):
        t = self.inner(image)
        return t + torch.rand_like(t)


def test_parity_failure_refuses_to_write(tmp_path):
    enc, heads, fields = build(height=28, width=28, patch=14, dim=16, frames=4, features_dim=8)
    with pytest.raises(ExportParityError, match="encoder/tokens"):
        export_artifact(_Noisy(enc), heads, str(tmp_path / "bad"), name="bad", card_fields=fields)
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]  # temp dir cleaned up


def test_existing_directory_needs_overwrite(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("1")
    enc, heads, fields = build(height=28, width=28, patch=14, dim=16, frames=4, features_dim=8)
    with pytest.raises(FileExistsError):
        export_artifact(enc, heads, str(tmp_path / "x"), name="x", card_fields=fields)
    with pytest.raises(ValueError, match="opset"):
        export_artifact(enc, heads, str(tmp_path / "y"), name="y", card_fields=fields, opset=13)


def test_float16_weight_storage_halves_the_files_and_matches_the_rounded_model(tmp_path):
    import onnx

    enc, heads, fields = build(seed=5, height=56, width=56, patch=14, dim=64, frames=4, features_dim=16)
    full = export_artifact(enc, heads, str(tmp_path / "fp32"), name="fp32", card_fields=fields)
    half = export_artifact(enc, heads, str(tmp_path / "fp16"), name="fp16", card_fields=fields, weights="float16")
    assert half.card.export["weights_storage"].startswith("float16")
    assert max(half.card.export["parity_max_abs_error"].values()) < 1e-3
    for f in ("encoder.onnx", "heads.onnx"):
        a, b = (tmp_path / "fp32" / f).stat().st_size, (tmp_path / "fp16" / f).stat().st_size
        assert b < 0.7 * a, (f, a, b)
        graph = onnx.load(str(tmp_path / "fp16" / f)).graph
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
        assert graph.node[0].op_type == "Cast"
    # the original float32 modules are untouched, and the two artifacts agree to float16 rounding
    x = torch.rand(2, 3, 56, 56, generator=torch.Generator().manual_seed(2)).numpy()
    t32 = ort.InferenceSession(full.encoder_path, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    t16 = ort.InferenceSession(half.encoder_path, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(enc(torch.from_numpy(x)).numpy(), t32, atol=1e-4)
    assert 0 < np.abs(t16 - t32).max() < 5e-2
    with pytest.raises(ValueError, match="weights"):
        export_artifact(enc, heads, str(tmp_path / "bad"), name="bad", card_fields=fields, weights="int8")


def test_v2_export_applies_the_focal_transform_in_the_graph(tmp_path):
    from tests.fixtures.artifacts import export_small_v2

    a = export_small_v2(tmp_path / "v2", seed=2, with_heads=False)
    f_c = a.card.canonical_focal_px
    assert a.card.export["opset"] >= 17 and max(a.card.export["parity_max_abs_error"].values()) < 1e-3
    sess = ort.InferenceSession(a.frame_path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 56, 84), dtype=np.float32).repeat(3, 0)  # batch 3, same image
    depth, conf, tokens = sess.run(list(contract.FRAME_OUTPUTS), {contract.FRAME_IMAGE: x,
                                                                  contract.FRAME_FOCAL: np.array([f_c, 2 * f_c, 0.5 * f_c], np.float32)})
    np.testing.assert_allclose(depth[1], 2 * depth[0], rtol=1e-5)  # twice the focal: twice as far
    np.testing.assert_allclose(depth[2], 0.5 * depth[0], rtol=1e-5)
    np.testing.assert_allclose(conf[1], conf[0], rtol=1e-5)  # confidence and tokens do not depend on focal
    np.testing.assert_allclose(tokens[2], tokens[0], rtol=1e-5, atol=1e-6)
    assert (conf > 0).all() and depth.shape == (3, 56, 84)


class _Gathers(torch.nn.Module):
    """A frame graph whose ONNX uses NonZero, an op outside the TensorRT-buildable set."""

    def forward(self, image, focal_px):
        depth = image[:, 0] * focal_px.view(-1, 1, 1)
        tokens = image.flatten(2).transpose(1, 2)
        n = torch.nonzero(image[0, 0] > 2.0).shape[0]  # NonZero in the graph; n is 0 for images in [0, 1]
        return depth + n, depth.exp(), tokens


def test_v2_export_refuses_ops_tensorrt_does_not_build(tmp_path):
    from distill.export import ExportOpsError, export_artifact_v2

    fields = {"height": 8, "width": 8, "tokens_n": 64, "tokens_c": 3, "canonical_focal_px": 10.0, "depth_scale": "metric"}
    with pytest.raises(ExportOpsError, match="NonZero"):
        export_artifact_v2(_Gathers(), str(tmp_path / "bad"), name="bad", card_fields=fields)
    assert not (tmp_path / "bad").exists()
