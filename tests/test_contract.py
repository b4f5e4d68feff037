"""vega_ros.contract: an exported tiny artifact's graphs carry exactly the names, order, dtypes and
shapes the contract states, and every reader of the heads' outputs uses the contract's names."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.fixtures.artifacts import export_small, export_small_v2
from vega_ros import contract
from vega_ros.artifact import read_onnx_signature
from vega_ros.engine.base import HeadsOutput


def test_exported_graphs_match_the_contract(tmp_path):
    a = export_small(tmp_path / "m", seed=0)
    c = a.card
    sizes = {"H": c.input.height, "W": c.input.width, "N": c.tokens_n, "C": c.tokens_c,
             "S": c.frames_per_clip, "F": c.features_dim}
    assert set(contract.GRAPHS) == {contract.ENCODER_FILE, contract.HEADS_FILE} == set(c.files)
    assert c.format_version == contract.CARD_FORMAT_VERSION and c.pose_encoding == contract.POSE_ENCODING
    for file_name, (want_in, want_out) in contract.GRAPHS.items():
        got_in, got_out = read_onnx_signature(f"{a.path}/{file_name}")
        for want, got in ((want_in, got_in), (want_out, got_out)):
            assert [t.name for t in got] == [t.name for t in want], file_name  # names and their order
            for w, g in zip(want, got):
                assert g.dtype == w.dtype == contract.DTYPE, (file_name, w.name)
                resolved = w.resolve(sizes)
                assert len(g.shape) == len(resolved), (file_name, w.name, g.shape)
                for axis, (gd, sym, wd) in enumerate(zip(g.shape, w.shape, resolved)):
                    if sym in contract.FREE_DIMS:
                        assert not isinstance(gd, int) or gd <= 0, (file_name, w.name, axis, g.shape)  # symbolic
                    else:
                        assert gd == wd, (file_name, w.name, axis, g.shape, resolved)


def test_resolve_fills_sizes_and_names_a_missing_one():
    spec = contract.HEADS_OUTPUT_SPECS[2]
    assert spec.name == "points" and spec.resolve({"S": 4, "H": 8, "W": 6}) == (None, 4, 8, 6, 3)
    with pytest.raises(KeyError, match="'W'"):
        spec.resolve({"S": 4, "H": 8})


def test_readers_of_the_heads_use_the_contract_names():
    from distill.nets.models import Probe, ProbeConfig

    assert tuple(f.name for f in dataclasses.fields(HeadsOutput)) == contract.HEADS_OUTPUTS == HeadsOutput.NAMES
    cfg = ProbeConfig.preset("tiny")
    cfg.in_dim, cfg.image_size, cfg.grid_size = 16, (16, 16), (1, 1)
    out = Probe(cfg).eval()(torch.zeros(1, 2, 1, 16), image_hw=(16, 16))
    exported = Probe.export_outputs(out)
    assert len(exported) == len(contract.HEADS_OUTPUTS)
    for spec, t in zip(contract.HEADS_OUTPUT_SPECS, exported):
        assert t.dim() == len(spec.shape), spec.name


def test_v2_names_and_graphs_for_each_version():
    assert contract.CARD_FORMAT_VERSION_V2 == 2 and contract.FRAME_FILE == "frame.onnx"
    assert [t.name for t in contract.FRAME_INPUTS] == [contract.FRAME_IMAGE, contract.FRAME_FOCAL] == ["image", "focal_px"]
    assert contract.FRAME_OUTPUTS == ("depth", "depth_conf", "tokens")
    assert contract.graphs_for_version(1) is contract.GRAPHS
    assert contract.graphs_for_version(2) is contract.GRAPHS_V2
    assert set(contract.GRAPHS_V2) == {contract.FRAME_FILE, contract.HEADS_FILE}
    assert contract.required_graphs(2) == (contract.FRAME_FILE,)
    assert contract.required_graphs(1) == (contract.ENCODER_FILE, contract.HEADS_FILE)
    with pytest.raises(ValueError, match="format_version 3"):
        contract.graphs_for_version(3)
    # without S and F, a v2 card resolves only the per-frame graph; v1 needs them
    sigs = contract.resolved_signatures({"H": 8, "W": 6, "N": 4, "C": 2}, version=2)
    assert set(sigs) == {contract.FRAME_FILE}
    assert sigs[contract.FRAME_FILE][0] == {"image": (None, 3, 8, 6), "focal_px": (None,)}
    assert sigs[contract.FRAME_FILE][1] == {"depth": (None, 8, 6), "depth_conf": (None, 8, 6), "tokens": (None, 4, 2)}
    with pytest.raises(KeyError):
        contract.resolved_signatures({"H": 8, "W": 6, "N": 4, "C": 2}, version=1)


@pytest.mark.parametrize("with_heads", [True, False])
def test_v2_exported_graphs_match_the_contract(tmp_path, with_heads):
    a = export_small_v2(tmp_path / "m", with_heads=with_heads)
    c = a.card
    assert c.format_version == contract.CARD_FORMAT_VERSION_V2 and c.canonical_focal_px == 60.0
    assert set(c.files) == ({contract.FRAME_FILE, contract.HEADS_FILE} if with_heads else {contract.FRAME_FILE})
    sizes = {"H": c.input.height, "W": c.input.width, "N": c.tokens_n, "C": c.tokens_c}
    if with_heads:
        sizes.update(S=c.frames_per_clip, F=c.features_dim)
    for file_name in c.files:
        want_in, want_out = contract.GRAPHS_V2[file_name]
        got_in, got_out = read_onnx_signature(f"{a.path}/{file_name}")
        for want, got in ((want_in, got_in), (want_out, got_out)):
            assert [t.name for t in got] == [t.name for t in want], file_name
            for w, g in zip(want, got):
                assert g.dtype == contract.DTYPE
                assert [d if isinstance(d, int) and d > 0 else None for d in g.shape] == list(w.resolve(sizes)), (file_name, w.name)
