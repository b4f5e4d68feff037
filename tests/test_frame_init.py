"""distill.frame_init: a shipped per-frame artifact starts a training run on a machine without runs/.

The student is rebuilt from frame.onnx (folded BatchNorms, float16-stored and transposed MatMul
weights) and matches the graph; the BatchNorm recalibration keeps the eval-mode function and makes
the train-mode one agree with it; a run started from an artifact begins where the artifact is."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from distill import frame_init as fi
from distill import frame_recipe as fr
from distill.export import export_artifact_v2
from distill.nets.models import build_frame_student, frame_card_fields

TINY = "config/distill/student-v2-tiny.yaml"


def _trained_looking(seed: int = 0, **overrides) -> torch.nn.Module:
    """A tiny student whose BatchNorms hold non-trivial statistics and affines (so folding matters)."""
    student = build_frame_student("tiny", seed=seed, **overrides)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return student.eval()


def _export(student, path, weights="float32"):
    return export_artifact_v2(student, str(path), name="tiny-init", card_fields=frame_card_fields(student), weights=weights)


def _inputs(student, n=3, seed=0):
    h, w = student.cfg.image_size
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g), torch.tensor([20.0, 28.0, 40.0][:n])


@pytest.mark.parametrize("weights", ["float32", "float16"])
def test_the_rebuilt_student_is_the_exported_one(tmp_path, weights):
    original = _trained_looking()
    _export(original, tmp_path / "art", weights)
    rebuilt, card = fi.student_from_artifact(str(tmp_path / "art"))
    assert card["name"] == "tiny-init" and rebuilt.cfg == original.cfg
    image, focal = _inputs(original)
    with torch.no_grad():
        want, got = original(image, focal), rebuilt.eval()(image, focal)
    tol = 1e-4 if weights == "float32" else 2e-2  # float16 storage rounds the weights the graph holds
    for w, g in zip(want, got):
        np.testing.assert_allclose(g.numpy(), w.numpy(), atol=tol, rtol=tol)
    qkv = rebuilt.blocks[0].attn.qkv.weight  # a transposed MatMul initializer in the graph
    assert torch.allclose(qkv, original.blocks[0].attn.qkv.weight, atol=1e-3 if weights == "float16" else 1e-7)


def test_recalibrated_batchnorms_keep_eval_and_make_train_mode_agree():
    student = _trained_looking()
    image, focal = _inputs(student, n=3)
    with torch.no_grad():
        before = student.eval()(image, focal)[0]
        untouched_train = student.train()(image, focal)[0]  # batch statistics: every channel renormalised
        student.load_state_dict(_trained_looking().state_dict())
        assert fi.recalibrate_batchnorm(student, image, focal) == 13
        after_eval = student.eval()(image, focal)[0]
        after_train = student.train()(image, focal)[0]
    assert torch.allclose(after_eval, before, rtol=1e-4, atol=1e-5)
    calibrated = (after_train - before).abs().max()
    assert calibrated < 1e-3 < (untouched_train - before).abs().max() / 10, (calibrated, untouched_train)


def test_an_artifact_that_is_not_the_configs_architecture_or_is_corrupt_is_refused(tmp_path):
    art = _export(_trained_looking(embed_dim=48, num_heads=2), tmp_path / "art")
    model = fr.FrameModel(fr.FrameModelConfig(student="tiny", image_size=(32, 48)), fr.FrameLossWeights())
    with pytest.raises(fi.ArtifactInitError, match="embed_dim"):
        fi.write_init_weights(art.path, model, [], fr.collate, str(tmp_path / "run"), 2)
    with pytest.raises(fi.ArtifactInitError, match="not a per-frame artifact"):
        fi.student_from_artifact(str(tmp_path))
    onnx = tmp_path / "art" / "frame.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(fi.ArtifactInitError, match="sha256|checksum|frame.onnx"):
        fi.student_from_artifact(str(tmp_path / "art"))


def test_a_run_started_from_an_artifact_begins_where_the_artifact_is(tmp_path, capsys):
    original = _trained_looking()
    art = _export(original, tmp_path / "art")
    cfg = fr.FrameDistillConfig.from_yaml(TINY, [f"data.cache={tmp_path / 'frames'}", "data.max_frames=2",
                                                 "data.crop_scale=[1.0, 1.0]", "data.flip=false",
                                                 f"trainer.init_from={art.path}", "trainer.lr=0.0",
                                                 "trainer.batch_size=2", "trainer.checkpoint_every=1"])
    run = tmp_path / "run"
    fr.train(cfg, str(run), TINY, {"max_steps": 1})
    assert "BatchNorms recalibrated on 2 training images" in capsys.readouterr().out
    exported, _ = fr.export_frame_from_run(str(run))
    image, focal = _inputs(original)
    with torch.no_grad():
        want, got = original(image, focal)[0], exported(image, focal)[0]
    # one step at lr 0: only the running statistics moved, toward the batch they were calibrated on
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-3, atol=1e-4)
    shutil.rmtree(art.path)  # resuming reads the run's own checkpoint, not the artifact
    fr.train(cfg, str(run), TINY, {"max_steps": 2})
