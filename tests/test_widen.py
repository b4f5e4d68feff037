"""Function-preserving widening (distill.nets.widen): the wider net computes what the narrow one did,
its new channels learn, and what cannot be widened is refused by name."""

import pytest
import torch
from torch import nn

from distill.nets.models.frame_student import build_frame_student
from distill.nets.widen import widen_into
from distill.training import checkpoint as ckpt
from distill.training.trainer import Trainer, TrainerConfig

NARROW = {"decoder_channels": (16, 8, 8, 4)}
WIDE = {"decoder_channels": (24, 16, 12, 8)}


def _trained_narrow() -> nn.Module:
    """A tiny frame student with non-trivial batch-norm statistics and weights (a few train-mode passes)."""
    net = build_frame_student("tiny", seed=1, **NARROW)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        net.train()
        for _ in range(3):
            net.maps(torch.rand(4, 3, 32, 48), torch.full((4,), 28.0))
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_widened_net_computes_what_the_narrow_one_did(mode):
    narrow = _trained_narrow()
    wide = build_frame_student("tiny", seed=2, **WIDE)
    report = widen_into(narrow.state_dict(), wide)
    assert report.widened and report.copied  # the decoder widened, the encoder copied
    assert all(name.startswith("decoder.") for name in report.widened)
    x, f = torch.rand(3, 3, 32, 48), torch.tensor([28.0, 20.0, 40.0])
    getattr(narrow, mode)(), getattr(wide, mode)()
    with torch.no_grad():
        a, b = narrow.maps(x, f), wide.maps(x, f)
    for key in ("log_depth", "conf", "tokens"):
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-5)
    # the new channels are there and alive: their own weights are the fresh random ones
    stage = wide.decoder.stages[0].proj.weight
    assert stage.shape[0] == 24 and stage[16:].abs().sum() > 0


def test_the_new_channels_receive_gradients_after_one_step():
    wide = build_frame_student("tiny", seed=2, **WIDE)
    widen_into(_trained_narrow().state_dict(), wide)
    opt = torch.optim.SGD(wide.parameters(), lr=0.1)
    x, f = torch.rand(2, 3, 32, 48), torch.full((2,), 28.0)
    for _ in range(2):
        opt.zero_grad()
        (wide.maps(x, f)["log_depth"] - 1.0).pow(2).mean().backward()
        opt.step()
    fan_in = wide.decoder.out.weight[:, 4:]  # zero at the start: the old outputs read no new channel
    assert fan_in.abs().sum() > 0
    assert wide.decoder.stages[3].refine[0].weight.grad[4:].abs().sum() > 0  # a new channel's own weights learn


def test_what_cannot_be_widened_is_refused_by_name():
    narrow = build_frame_student("tiny", seed=1, **NARROW)
    with pytest.raises(ValueError, match="smaller dimension.*decoder"):
        widen_into(build_frame_student("tiny", seed=1, **WIDE).state_dict(), narrow)  # a shrink
    deeper = build_frame_student("tiny", seed=1, depth=2, **WIDE)
    with pytest.raises(ValueError, match="missing from the source.*blocks.1"):
        widen_into(narrow.state_dict(), deeper)


def test_the_trainer_starts_a_wider_run_from_a_narrow_checkpoint(tmp_path):
    narrow = _trained_narrow()
    ckpt.save_checkpoint(str(tmp_path / "narrow"), 5, narrow, torch.optim.AdamW(narrow.parameters()), None)
    wide = build_frame_student("tiny", seed=2, **WIDE)
    cfg = TrainerConfig(run_dir=str(tmp_path / "wide"), max_steps=0, batch_size=2, tensorboard=False, progress=False,
                        device="cpu", init_from=str(tmp_path / "narrow"), init_widen=True)
    Trainer(cfg, wide, lambda m, b, s: (torch.zeros(()), {}), [0, 1]).fit()
    x, f = torch.rand(2, 3, 32, 48), torch.full((2,), 28.0)
    narrow.eval(), wide.eval()
    with torch.no_grad():
        torch.testing.assert_close(wide.maps(x, f)["log_depth"], narrow.maps(x, f)["log_depth"], rtol=1e-5, atol=1e-5)
    # without init_widen the same start is a shape mismatch, named as such
    cfg.init_widen, cfg.run_dir = False, str(tmp_path / "wide2")
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors does not match the model: size mismatch"):
        Trainer(cfg, build_frame_student("tiny", seed=2, **WIDE), lambda m, b, s: (torch.zeros(()), {}), [0, 1]).fit()
