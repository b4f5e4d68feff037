"""distill.nets.policy: the VEGA-3D token gate, the ablation variants, and a real overfitting test."""

import numpy as np
import pytest
import torch

from distill.nets.policy import Fusion, GatedFusionPolicy, PolicyConfig, TokenGate

SMALL = dict(token_dim_3d=16, tokens_3d=16, grid=2, dim=32, depth=1, heads=2, chunk=4, dropout=0.0)


def _batch(b=2, size=32, n=16, c=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, size, size, generator=g), torch.rand(b, 3, size, size, generator=g),
            torch.randn(b, 2, n, c, generator=g), torch.randn(b, 8, generator=g), torch.randn(b, 384, generator=g))


def test_token_gate_matches_the_formula():
    gate = TokenGate(3)
    with torch.no_grad():
        gate.linear.weight.zero_()
        gate.linear.bias.copy_(torch.tensor([0.0, 2.0, -2.0]))
    f_sem = torch.tensor([[[1.0, 1.0, 1.0]]])
    f_3d = torch.tensor([[[3.0, 3.0, 3.0]]])
    fused, g = gate(f_sem, f_3d)
    s = torch.sigmoid(torch.tensor([0.0, 2.0, -2.0]))
    torch.testing.assert_close(g[0, 0], s)
    torch.testing.assert_close(fused[0, 0], s * 3 + (1 - s) * 1)


@pytest.mark.parametrize("fusion", list(Fusion))
def test_variants_shapes_and_which_inputs_matter(fusion):
    torch.manual_seed(0)
    model = GatedFusionPolicy(PolicyConfig(fusion=fusion, **SMALL)).eval()
    av, wr, tok, prop, lang = _batch()
    out = model(av, wr, tok, prop, lang)
    assert out.shape == (2, 4, 7) and out.abs().max() <= 1
    changed_tokens = model(av, wr, tok + 1.0, prop, lang)
    changed_images = model(av.flip(-1), wr, tok, prop, lang)
    # a stream that is dropped must not influence the output; one that is used must
    assert torch.allclose(out, changed_tokens) == (fusion == Fusion.SEMANTIC_ONLY)
    assert torch.allclose(out, changed_images) == (fusion == Fusion.THREE_D_ONLY)
    assert hasattr(model, "gate") == (fusion == Fusion.FUSED)


def test_policy_overfits_a_handful_of_demos():
    torch.manual_seed(0)
    model = GatedFusionPolicy(PolicyConfig(**SMALL))
    inputs = _batch(b=4, size=16, seed=1)
    target = torch.rand(4, 4, 7) * 1.6 - 0.8
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    first = None
    for _ in range(150):
        loss = (model(*inputs) - target).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.3 and loss.item() < 0.05, (first, loss.item())


@pytest.mark.parametrize("size", [(16, 16), (14, 14), (7, 9), (128, 96)])
def test_matrix_adaptive_pool_equals_torchs(size):
    import torch.nn.functional as F

    from distill.nets.policy import adaptive_avg_pool2d

    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(adaptive_avg_pool2d(x, 7), F.adaptive_avg_pool2d(x, 7), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_semantic_stem_exports_at_libero_resolution(tmp_path):
    """128² images give a 16x16 stem map pooled to 7x7: torch's adaptive-pool export refuses that size."""
    import onnxruntime as ort

    from distill.nets.policy import SemanticStem

    stem = SemanticStem(dim=32, grid=7).eval()
    x = torch.rand(1, 3, 128, 128)
    torch.onnx.export(stem, (x,), str(tmp_path / "stem.onnx"), dynamo=False, opset_version=17, input_names=["image"])
    got = ort.InferenceSession(str(tmp_path / "stem.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, stem(x).numpy(), atol=1e-4)
