"""The distillation recipe: what is trained (student + probe heads + weak verifier + teacher
projection) and with which objective terms, configured from one YAML file.

Objective (each term switchable by giving it weight 0; see distill.losses for each formula):

    L = w_probe    * probe_loss(points, depth, camera)      (VidFM3D probe; camera sub-weight w_probe_camera)
      + w_verifier * verifier_loss(D̂, Σ)                    (3D-IDE weak verifier, from scratch)
      + w_cross    * cross_view_consistency(probe depth)     (known K and relative poses)
      + w_feature  * (1 - cos + smooth_l1)(P s, t)           (student tokens s -> teacher tokens t; needs a cache)
      + w_global   * (1 - cos(mean_tokens(P s), mean_tokens(t)))  (global descriptor alignment; needs a cache)

P is a linear projection head from the student width to the teacher width; the teacher tokens
are the cached WAN DIFT features of the same frames (distill.teacher.cache), resampled to the
student's token grid when the grids differ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distill import losses
from distill.nets.models import Probe, ProbeConfig, StudentConfig, StudentEncoder, Verifier, VerifierConfig


@dataclass
class LossWeights:
    """Weights of the objective's terms; 0 switches a term off (and skips its computation)."""

    probe: float = 1.0
    verifier: float = 1.0
    cross_view: float = 0.1
    feature: float = 0.0
    global_align: float = 0.0
    probe_camera: float = 1.0  # weight of the camera term inside the probe loss (the probe benchmark keeps 1)
    verifier_alpha: float = 0.2
    probe_scale_norm: str = "gt"  # "gt": scale-normalised targets (relative depth); "none": metres

    def active(self) -> list[str]:
        return [k for k in ("probe", "verifier", "cross_view", "feature", "global_align") if getattr(self, k) > 0]


@dataclass
class ModelConfig:
    student: str | dict = "vit-ti"  # a StudentConfig preset name, or its fields
    probe: str | dict = "cpu"  # a ProbeConfig preset name, or its fields
    verifier: dict = field(default_factory=dict)  # VerifierConfig fields
    teacher_dim: int = 0  # channels of the cached teacher features (0: no projection head)
    image_size: tuple[int, int] = (224, 224)

    def student_config(self) -> StudentConfig:
        cfg = StudentConfig.preset(self.student) if isinstance(self.student, str) else StudentConfig.from_dict(self.student)
        return dataclasses.replace(cfg, image_size=tuple(self.image_size))

    def probe_config(self, in_dim: int) -> ProbeConfig:
        if isinstance(self.probe, str):
            return ProbeConfig.preset(self.probe, in_dim=in_dim, image_size=tuple(self.image_size))
        return ProbeConfig.from_dict({**self.probe, "in_dim": in_dim, "image_size": list(self.image_size)})

    def verifier_config(self, in_dim: int) -> VerifierConfig:
        return VerifierConfig.from_dict({**self.verifier, "in_dim": in_dim, "image_size": list(self.image_size)})


class DistillModel(nn.Module):
    """Student encoder + probe heads + weak verifier (+ teacher projection), trained jointly.

    ``forward(images [B, S, 3, H, W])`` returns the probe's outputs plus ``tokens [B, S, N, C]``
    and, when present, ``verifier_depth``, ``verifier_sigma`` ``[B, S, H, W]``.
    """

    def __init__(self, cfg: ModelConfig, weights: LossWeights) -> None:
        super().__init__()
        self.cfg = cfg
        self.student = StudentEncoder(cfg.student_config())
        c = self.student.embed_dim
        self.probe = Probe(cfg.probe_config(c))
        self.verifier = Verifier(cfg.verifier_config(c)) if weights.verifier > 0 else None
        needs_teacher = weights.feature > 0 or weights.global_align > 0
        if needs_teacher and cfg.teacher_dim <= 0:
            raise ValueError("feature / global terms need model.teacher_dim (the cached teacher's channels)")
        self.teacher_proj = nn.Linear(c, cfg.teacher_dim) if needs_teacher else None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s, _, h, w = images.shape
        tokens = self.student(images)  # [B, S, N, C]
        grid = self.student.grid_size(h, w)
        out = dict(self.probe(tokens, image_hw=(h, w), grid_hw=grid))
        out["tokens"] = tokens
        if self.verifier is not None:
            v = self.verifier(tokens, image_hw=(h, w), grid_hw=grid)
            out["verifier_depth"], out["verifier_sigma"] = v["depth"], v["sigma"]
        return out


def teacher_tokens(features: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Cached teacher features ``[B, S, C_t, h, w]`` -> tokens ``[B, S, gh * gw, C_t]`` on the student grid."""
    b, s, c, h, w = features.shape
    x = features.flatten(0, 1).float()
    if (h, w) != tuple(grid_hw):
        x = F.interpolate(x, size=grid_hw, mode="bilinear", align_corners=False)
    return x.flatten(2).transpose(1, 2).reshape(b, s, grid_hw[0] * grid_hw[1], c)


class DistillObjective:
    """``objective(model, batch, step) -> (loss, scalars)`` for :class:`distill.training.Trainer`."""

    def __init__(self, weights: LossWeights) -> None:
        self.w = weights
        self.probe_cfg = losses.ProbeLossConfig(weight_camera=weights.probe_camera,
                                                scale_norm=losses.ScaleNorm(weights.probe_scale_norm))

    def __call__(self, model: nn.Module, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["images"])
        total = out["tokens"].new_zeros(())
        logs: dict[str, float] = {}
        valid = batch["valid"].bool()
        if self.w.probe > 0:
            l_probe, terms = losses.probe_loss(out, batch, self.probe_cfg)
            total = total + self.w.probe * l_probe
            logs.update({f"probe/{k}": float(v) for k, v in terms.items()})
        if self.w.verifier > 0:
            l_ver = losses.verifier_loss(out["verifier_depth"], out["verifier_sigma"], batch["depth"], valid, self.w.verifier_alpha)
            total = total + self.w.verifier * l_ver
            logs["verifier"] = float(l_ver.detach())
        if self.w.cross_view > 0:
            l_cv = losses.cross_view_consistency_loss(out["depth"], batch["K"], batch["T_wc"], valid)
            total = total + self.w.cross_view * l_cv
            logs["cross_view"] = float(l_cv.detach())
        if self.w.feature > 0 or self.w.global_align > 0:
            core = model.module if hasattr(model, "module") else model
            h, w = batch["images"].shape[-2:]
            target = teacher_tokens(batch["teacher"], core.student.grid_size(h, w))  # [B, S, N, C_t]
            pred = core.teacher_proj(out["tokens"])
            if self.w.feature > 0:
                l_feat = (1 - F.cosine_similarity(pred, target, dim=-1)).mean() + F.smooth_l1_loss(pred, target)
                total = total + self.w.feature * l_feat
                logs["feature"] = float(l_feat.detach())
            if self.w.global_align > 0:
                l_glob = losses.global_alignment_loss(pred.mean(2), target.mean(2))
                total = total + self.w.global_align * l_glob
                logs["global"] = float(l_glob.detach())
        return total, logs


# ----------------------------------------------------------------------------- export


class ProbeHeads(nn.Module):
    """The exported ``heads`` graph: ``tokens [B, S, N, C]`` -> the artifact's five outputs, in order."""

    def __init__(self, probe: Probe, image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> None:
        super().__init__()
        self.probe, self.image_hw, self.grid_hw = probe, tuple(image_hw), tuple(grid_hw)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return Probe.export_outputs(self.probe(tokens, image_hw=self.image_hw, grid_hw=self.grid_hw))


def _earlier_stages(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain of runs whose weights started this one (``trainer.init_from``), oldest first."""
    import os

    from distill.config import read_yaml
    from distill.training import checkpoint as ckpt

    stages: list[dict[str, Any]] = []
    source = (raw.get("trainer") or {}).get("init_from")
    while source:
        path = ckpt.resolve_checkpoint(source)
        run_dir = os.path.dirname(os.path.dirname(path))  # <run>/checkpoints/step_N
        prev = read_yaml(os.path.join(run_dir, "config.yaml"))
        stages.insert(0, {"run": run_dir, "config": prev.get("name"), "checkpoint": os.path.basename(path),
                          "loss_weights": prev.get("losses"), "trainer": prev.get("trainer")})
        source = (prev.get("trainer") or {}).get("init_from")
    return stages


def export_modules_from_run(run_dir: str) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """``(encoder, heads, card_fields)`` of a distillation run's newest checkpoint, for distill.export."""
    from distill.config import from_dict, read_yaml
    from distill.training import checkpoint as ckpt

    source = f"{run_dir}/config.yaml"
    raw = read_yaml(source)
    model_cfg = from_dict(ModelConfig, raw.get("model", {}), source, "model")
    weights = from_dict(LossWeights, raw.get("losses", {}), source, "losses")
    model = DistillModel(model_cfg, weights)
    path = ckpt.latest_checkpoint(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to export")
    loaded = ckpt.load_checkpoint(path, model, restore_rng=False)
    h, w = model_cfg.image_size
    grid = model.student.grid_size(h, w)
    earlier = _earlier_stages(raw)
    teacher_used = any((s["loss_weights"] or {}).get(k, 0) > 0 for s in earlier for k in ("feature", "global_align"))
    scfg = model.student.cfg
    fields = {
        "height": h, "width": w, "tokens_n": grid[0] * grid[1], "tokens_c": model.student.embed_dim,
        "frames_per_clip": raw["data"]["num_frames"], "features_dim": 2 * model.probe.cfg.dim,
        "depth_scale": "metric" if weights.probe_scale_norm == "none" else "relative",
        "normalization": {"mean": list(scfg.mean), "std": list(scfg.std), "in_graph": True},
        "training": {
            "run": run_dir, "step": loaded.step, "config": raw.get("name"), "data": raw["data"]["root"],
            "loss_terms": weights.active(), "loss_weights": dataclasses.asdict(weights),
            "wan_teacher": bool(weights.feature > 0 or weights.global_align > 0 or teacher_used),  # any stage
            "teacher_cache": raw.get("teacher_cache"), "random_init": False, "trainer": raw.get("trainer"),
            "earlier_stages": earlier,
        },
    }
    return model.student.eval(), ProbeHeads(model.probe, (h, w), grid).eval(), fields
