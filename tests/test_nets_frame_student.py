"""The per-frame student (format version 2): shapes, the canonical-focal transform, and an export
whose ONNX depth matches torch and loads as a v2 artifact."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill.export import TENSORRT_OPS, export_artifact_v2
from distill.nets.heads import canonical_to_metric, focal_ratio, log_focal_offset, metric_to_canonical
from distill.nets.models import FrameStudentConfig, build_frame_student, frame_card_fields
from vega_ros import contract


def test_focal_transform_hand_computed_and_round_trips():
    d = torch.full((2, 3, 4), 2.0)
    f = torch.tensor([100.0, 400.0])
    got = canonical_to_metric(d, f, 200.0)
    assert got[0].unique().tolist() == [1.0] and got[1].unique().tolist() == [4.0]
    torch.testing.assert_close(metric_to_canonical(got, f, 200.0), d)
    torch.testing.assert_close(log_focal_offset(f, 200.0).flatten(), torch.log(torch.tensor([0.5, 2.0])))
    with pytest.raises(ValueError, match=r"focal_px must be \[B\]"):
        focal_ratio(torch.ones(2, 1), 200.0)


def test_shapes_and_depth_scales_with_the_focal_length():
    m = build_frame_student("tiny", seed=0).eval()
    h, w = m.cfg.image_size
    x = torch.rand(1, 3, h, w).repeat(3, 1, 1, 1)
    f_c = m.canonical_focal_px
    with torch.no_grad():
        depth, conf, tokens = m(x, torch.tensor([f_c, 2 * f_c, 0.25 * f_c]))
    assert depth.shape == conf.shape == (3, h, w) and tokens.shape == (3, (h // 16) * (w // 16), m.embed_dim)
    assert (depth > 0).all() and (conf > 0).all()
    torch.testing.assert_close(depth[1], 2 * depth[0])  # twice the focal: the same picture is twice as far
    torch.testing.assert_close(depth[2], 0.25 * depth[0])
    torch.testing.assert_close(conf[1], conf[0])
    with pytest.raises(ValueError, match="multiple of 16"):
        m(torch.rand(1, 3, 30, 48), torch.ones(1))
    with pytest.raises(ValueError, match=r"focal_px must be \[B\] = \[2\]"):
        m(torch.rand(2, 3, h, w), torch.ones(1))


def test_training_maps_and_positions_at_another_size():
    m = build_frame_student("tiny", seed=1)
    out = m.maps(torch.rand(2, 3, 64, 64), torch.tensor([50.0, 60.0]))  # not the export size: positions recomputed
    assert out["log_depth"].shape == (2, 64, 64) and out["tokens"].shape == (2, 16, 32)
    torch.testing.assert_close(out["log_depth"] - out["log_depth_canonical"],
                               torch.log(torch.tensor([50.0, 60.0]) / m.canonical_focal_px).view(2, 1, 1).expand(2, 64, 64))
    out["log_depth"].mean().backward()
    assert all(p.grad is not None for p in m.decoder.parameters())


def test_export_matches_torch_loads_as_v2_and_uses_tensorrt_ops(tmp_path):
    m = build_frame_student("tiny", seed=2).eval()
    a = export_artifact_v2(m, str(tmp_path / "v2"), name="tiny-frame", card_fields=frame_card_fields(m))
    assert a.card.format_version == contract.CARD_FORMAT_VERSION_V2 and not a.card.has_heads
    assert a.card.canonical_focal_px == m.canonical_focal_px
    assert set(a.card.export["ops"]["frame.onnx"]) <= TENSORRT_OPS
    assert a.card.training["architecture"]["class"] == "FrameStudent"
    h, w = m.cfg.image_size
    x = torch.rand(3, 3, h, w, generator=torch.Generator().manual_seed(4))
    f = torch.tensor([80.0, 200.0, 333.0])
    sess = ort.InferenceSession(a.frame_path, providers=["CPUExecutionProvider"])
    got = sess.run(list(contract.FRAME_OUTPUTS), {contract.FRAME_IMAGE: x.numpy(), contract.FRAME_FOCAL: f.numpy()})
    with torch.no_grad():
        want = m(x, f)
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-4, atol=1e-5)


def test_config_round_trips_and_names_an_unknown_preset():
    cfg = FrameStudentConfig.preset("cpu", depth=2)
    assert FrameStudentConfig.from_dict(cfg.to_dict()) == cfg and cfg.depth == 2
    with pytest.raises(ValueError, match="unknown frame student preset 'huge'"):
        FrameStudentConfig.preset("huge")
