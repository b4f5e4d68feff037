"""The per-frame recipe (student v2): one image and its focal length in, metric depth out, trained
on single frames with geometry losses; exported as a format version 2 artifact (``frame.onnx``).

Objective (each term off at weight 0; formulas in :mod:`distill.losses`)::

    L = w_silog  SILog(log d̂, log d)                      scale-invariant shape of the scene
      + w_grad   GradMatch(log d̂ − log d)  (4 scales)      edges and slopes (MiDaS)
      + w_metric mean(c |log d̂ − log d| − α log c)         metres, confidence-weighted (3D-IDE's −α log σ)
      + w_feature (1 − cos + smooth_l1)(P s, t)            student tokens -> cached teacher tokens (needs a cache)
      + w_global  (1 − cos(mean P s, mean t))              global descriptor (needs a cache)

``log d̂`` is the student's log depth for the sample's own focal length (the canonical-focal
transform, :mod:`distill.nets.heads.focal`), so random crops and zooms, which change the focal
length, teach metric depth that follows the camera. A frame whose crop holds no valid depth is a
counted skip (``skipped_empty`` in the logs), never a crash.

Data: a decoded-frame cache (:mod:`distill.data.frames`) built once from any data spec. The net is
fully convolutional with sin-cos token positions computed for the grid at hand, so it trains on
crops smaller than the exported size (``data.train_size``, e.g. 128 x 128 crops of 224 x 224
frames near their native pixel scale: the same pixel statistics as at inference, less context per
sample, a third of the compute) and exports at ``model.image_size``. The CPU speed-ups (small
crops, channels-last, explicit torch threads, a loader worker that prefetches) are config knobs,
measured by ``bench/bench_train_throughput.py``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill import config as configlib
from distill import losses
from distill.data.augment import PhotometricAugment
from distill.nets.models import FrameStudent, FrameStudentConfig, frame_card_fields
from distill.recipe import teacher_tokens

RECIPE = "frame"


@dataclass
class FrameLossWeights:
    """Weights of the per-frame objective; 0 switches a term off."""

    silog: float = 1.0
    gradient: float = 0.5
    metric: float = 1.0
    conf_alpha: float = 0.2
    silog_lambda: float = 1.0
    gradient_scales: int = 4
    feature: float = 0.0
    global_align: float = 0.0

    def depth_weights(self) -> losses.DepthLossWeights:
        return losses.DepthLossWeights(silog=self.silog, gradient=self.gradient, metric=self.metric,
                                       conf_alpha=self.conf_alpha, silog_lambda=self.silog_lambda,
                                       gradient_scales=self.gradient_scales)

    def active(self) -> list[str]:
        return [k for k in ("silog", "gradient", "metric", "feature", "global_align") if getattr(self, k) > 0]


@dataclass
class FrameModelConfig:
    student: str | dict = "cpu"  # a FrameStudentConfig preset name, or its fields
    teacher_dim: int = 0  # channels of the cached teacher features (0: no projection head)
    image_size: tuple[int, int] = (224, 224)  # the size the net trains on and is exported at

    def student_config(self) -> FrameStudentConfig:
        cfg = (FrameStudentConfig.preset(self.student) if isinstance(self.student, str)
               else FrameStudentConfig.from_dict(self.student))
        return dataclasses.replace(cfg, image_size=tuple(self.image_size))


@dataclass
class FrameDataConfig:
    root: str | list[str] = "data/libero_sim"  # a data spec (distill.data.sources), or a list: their frames pooled
    split: str = "train"
    cache: str | list[str] | None = None  # decoded-frame cache(s), one per root; default <root>-frames-<split>
    train_size: tuple[int, int] | None = None  # (h, w) of the training crops; None: model.image_size
    crop_scale: tuple[float, float] = (0.6, 1.0)  # crop side / the largest crop of train_size's aspect (a zoom)
    flip: bool = True
    photometric: bool | dict = True  # the default jitter, none, or PhotometricAugment fields (distill.data.augment)
    repeats: int | list[int] = 16  # each frame listed this many times, each with its own crop/flip/photometric
    # draw; a list gives one count per root: the data mix (a root's share of the batches ~ frames x repeats)
    samples_per_clip: int = 1  # sources other than rendered datasets: frame samples per clip for the cache
    max_frames: int | None = None  # cap each cache (smoke runs)

    def sources(self) -> list[tuple[str, str]]:
        """``(data spec, cache dir)`` per root; a root's default cache is ``<dataset dir>-frames-<split>``
        (``data/<spec>-frames-<split>`` for synthetic specs). Caches are built on first use."""
        from distill.data.sources import parse_data_spec

        roots = [self.root] if isinstance(self.root, str) else list(self.root)
        caches = [self.cache] if isinstance(self.cache, str) else list(self.cache or [None] * len(roots))
        if not roots or len(caches) != len(roots):
            raise configlib.ConfigError(f"{len(roots)} roots but {len(caches)} caches: give one cache per root, or none",
                                        key="data.cache")
        out = []
        for root, cache in zip(roots, caches):
            if cache is None:
                path = parse_data_spec(root).path
                base = str(path).rstrip("/") if path is not None else os.path.join("data", re.sub(r"[^A-Za-z0-9]+", "_", root))
                cache = f"{base}-frames-{self.split}"
            out.append((root, cache))
        return out

    def photometric_augment(self) -> PhotometricAugment | None:
        """The photometric augmentation ``photometric`` names: None for false, the default for true."""
        if isinstance(self.photometric, bool):
            return PhotometricAugment() if self.photometric else None
        fields = configlib.check_fields(PhotometricAugment, self.photometric, "data.photometric")
        try:
            return PhotometricAugment(**fields)
        except ValueError as e:
            raise configlib.ConfigError(str(e), key="data.photometric") from e

    def repeats_per_root(self) -> list[int]:
        """One repeat count per root of :meth:`sources` (an int applies to every root)."""
        n = len(self.sources())
        reps = [self.repeats] * n if isinstance(self.repeats, int) else list(self.repeats)
        if len(reps) != n or any(not isinstance(r, int) or r < 1 for r in reps):
            raise configlib.ConfigError(f"repeats {self.repeats!r}: give an int >= 1, or one per root ({n} roots)",
                                        key="data.repeats")
        return reps


@dataclass
class FrameDistillConfig:
    name: str
    recipe: Literal["frame"] = RECIPE
    data: FrameDataConfig = field(default_factory=FrameDataConfig)
    model: FrameModelConfig = field(default_factory=FrameModelConfig)
    losses: FrameLossWeights = field(default_factory=FrameLossWeights)
    trainer: dict[str, Any] = field(default_factory=dict)  # TrainerConfig fields but run_dir, checked
    teacher_cache: str | None = None
    threads: int = 2  # torch intra-op threads of the training process
    channels_last: bool = True

    def __post_init__(self) -> None:
        from distill.training.trainer import TrainerConfig

        self.trainer = configlib.check_fields(TrainerConfig, self.trainer, "trainer", exclude=("run_dir",))
        self.data.photometric_augment()  # an unknown or out-of-range augmentation field fails at load, not at step 0
        if (self.losses.feature > 0 or self.losses.global_align > 0) and not self.teacher_cache:
            raise configlib.ConfigError("losses.feature / losses.global_align need teacher_cache "
                                        "(run distill.teacher.extract first)", key="teacher_cache")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: tuple[str, ...] | list[str] = ()) -> FrameDistillConfig:
        return configlib.load_config(cls, path, overrides)


class FrameModel(nn.Module):
    """The trained modules: the per-frame student and, with a teacher, the token projection ``P``."""

    def __init__(self, cfg: FrameModelConfig, weights: FrameLossWeights) -> None:
        super().__init__()
        self.student = FrameStudent(cfg.student_config())
        needs_teacher = weights.feature > 0 or weights.global_align > 0
        if needs_teacher and cfg.teacher_dim <= 0:
            raise ValueError("feature / global terms need model.teacher_dim (the cached teacher's channels)")
        self.teacher_proj = nn.Linear(self.student.embed_dim, cfg.teacher_dim) if needs_teacher else None

    def forward(self, image: torch.Tensor, focal_px: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.student.maps(image, focal_px)


class FrameObjective:
    """``objective(model, batch, step) -> (loss, scalars)`` for :class:`distill.training.Trainer`.

    ``batch``: ``image [B, 3, H, W]``, ``depth [B, H, W]``, ``valid [B, H, W]``, ``focal_px [B]``,
    and ``teacher [B, C_t, h, w]`` when a teacher cache is used.
    """

    def __init__(self, weights: FrameLossWeights, channels_last: bool = True) -> None:
        self.w = weights
        self.depth_w = weights.depth_weights()
        self.channels_last = channels_last

    def __call__(self, model: nn.Module, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        image = batch["image"]
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        out = model(image, batch["focal_px"])
        logs: dict[str, float] = {"skipped_empty": 0.0}
        try:
            total, terms = losses.frame_depth_loss(out["log_depth"].float(), batch["depth"], batch["valid"],
                                                   conf=out["conf"].float(), weights=self.depth_w)
            logs.update({k: float(v) for k, v in terms.items()})
        except losses.EmptyDepthError:
            total = 0.0 * out["log_depth"].sum()  # keeps the graph; nothing to learn from this batch
            logs["skipped_empty"] = 1.0
        if self.w.feature > 0 or self.w.global_align > 0:
            core = model.module if hasattr(model, "module") else model
            gh, gw = core.student.grid_size(*image.shape[-2:])
            target = teacher_tokens(batch["teacher"][:, None], (gh, gw))[:, 0]  # [B, N, C_t]
            pred = core.teacher_proj(out["tokens"]).float()
            if self.w.feature > 0:
                l_feat = (1 - F.cosine_similarity(pred, target, dim=-1)).mean() + F.smooth_l1_loss(pred, target)
                total = total + self.w.feature * l_feat
                logs["feature"] = float(l_feat.detach())
            if self.w.global_align > 0:
                l_glob = losses.global_alignment_loss(pred.mean(1), target.mean(1))
                total = total + self.w.global_align * l_glob
                logs["global"] = float(l_glob.detach())
        return total, logs


# ----------------------------------------------------------------------------- teacher features per frame


def crop_feature_map(features: torch.Tensor, crop: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Resample a frame's teacher features ``[C, h, w]`` onto a crop of the frame.

    ``crop = (x0, y0, cw, ch, flip)`` in the source frame's normalised coordinates (0..1 across
    the frame; ``flip`` 1 mirrors left-right); returns ``[C, out_h, out_w]`` (bilinear).
    """
    x0, y0, cw, ch, flip = (float(v) for v in crop)
    oh, ow = out_hw
    xs = (x0 + (torch.arange(ow, dtype=torch.float32) + 0.5) / ow * cw) * 2 - 1
    ys = (y0 + (torch.arange(oh, dtype=torch.float32) + 0.5) / oh * ch) * 2 - 1
    if flip > 0.5:
        xs = xs.flip(0)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1)[None]  # [1, oh, ow, 2] as (x, y)
    return F.grid_sample(features[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


class WithFrameTeacher(torch.utils.data.Dataset):
    """Adds ``teacher [C_t, gh, gw]``: the cached WAN features of the item's frame, cut to its crop."""

    def __init__(self, base: torch.utils.data.Dataset, cache_root: str, grid_hw: tuple[int, int]) -> None:
        from distill.teacher.cache import FeatureCache

        self.base, self.cache, self.grid_hw = base, FeatureCache(cache_root), tuple(grid_hw)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, idx: int) -> dict:
        item = self.base[idx]
        if "crop" not in item:
            raise KeyError("the frame dataset's items carry no 'crop' (x0, y0, cw, ch, flip): teacher features "
                           "cannot be aligned with the random crop")
        feats = self.cache.features_per_frame(item["clip_id"], [int(item["frame_id"])])[0]
        item["teacher"] = crop_feature_map(feats, item["crop"], self.grid_hw)
        return item


# ----------------------------------------------------------------------------- data, export


def collate(samples: list[dict]) -> dict:
    """Stack tensors (and numbers); keep strings as lists."""
    out: dict[str, Any] = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        out[k] = vals if isinstance(vals[0], str) else torch.stack([torch.as_tensor(v) for v in vals])
    return out


def build_frame_dataset(cfg: FrameDistillConfig, seed: int = 0) -> torch.utils.data.Dataset:
    """The training frames of ``cfg.data`` (the decoded-frame cache is built on first use)."""
    from distill.data.frames import FrameAugment, FrameDataset, build_frame_cache

    d = cfg.data
    augment = FrameAugment(scale=tuple(d.crop_scale), flip=d.flip, photometric=d.photometric_augment())
    out_hw = tuple(d.train_size or cfg.model.image_size)
    if out_hw[0] % 16 or out_hw[1] % 16:
        raise configlib.ConfigError(f"{out_hw} is not a multiple of 16", key="data.train_size")
    parts = []
    for (root, cache), repeats in zip(d.sources(), d.repeats_per_root()):
        if not os.path.exists(cache):
            build_frame_cache(root, cache, split=d.split, samples_per_clip=d.samples_per_clip, max_frames=d.max_frames)
        parts.append(FrameDataset(cache, out_hw=out_hw, augment=augment, seed=seed, repeats=repeats))
    data: torch.utils.data.Dataset = parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
    if cfg.teacher_cache:
        gh, gw = (s // 16 for s in out_hw)
        data = WithFrameTeacher(data, cfg.teacher_cache, (gh, gw))
    return data


def save_frame_picture(model: nn.Module, batch: dict, step: int, out_dir: str) -> None:
    """Write ``images/step_XXXXXXX.png``: RGB | truth | prediction (metric, same colour scale) |
    |error| / truth (0..50 %) for up to 4 frames of the batch, with AbsRel in the log."""
    import cv2
    import numpy as np

    from distill.eval_depth import depth_picture_row
    from distill.metrics import depth_metrics

    os.makedirs(out_dir, exist_ok=True)
    n = min(4, batch["image"].shape[0])
    pred = torch.exp(model(batch["image"][:n], batch["focal_px"][:n])["log_depth"]).float().cpu().numpy()
    gt, valid = batch["depth"][:n].cpu().numpy(), batch["valid"][:n].cpu().numpy()
    rgb = (batch["image"][:n].permute(0, 2, 3, 1).float().cpu().numpy() * 255).astype(np.uint8)
    rows = []
    for i in range(n):
        rows.append(depth_picture_row(rgb[i], gt[i], pred[i], valid[i]))
        if valid[i].any():
            m = depth_metrics(pred[i], gt[i], valid[i], median_scale=False)
            print(f"[pictures] step {step} frame {i}: metric abs_rel {m['abs_rel']:.3f}, delta1 {m['delta1']:.3f}", flush=True)
    cv2.imwrite(os.path.join(out_dir, f"step_{step:07d}.png"), np.concatenate(rows, axis=0)[..., ::-1])


def export_frame_from_run(run_dir: str) -> tuple[FrameStudent, dict[str, Any]]:
    """``(frame student, card_fields)`` of a frame-recipe run's newest checkpoint, for ``export_artifact_v2``."""
    from distill.config import read_yaml
    from distill.training import checkpoint as ckpt

    source = os.path.join(run_dir, "config.yaml")
    raw = read_yaml(source)
    raw.pop("run_dir", None)
    cfg = configlib.from_dict(FrameDistillConfig, raw, source)
    model = FrameModel(cfg.model, cfg.losses)
    path = ckpt.latest_checkpoint(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to export")
    loaded = ckpt.load_checkpoint(path, model, restore_rng=False)
    student = model.student.eval()
    fields = frame_card_fields(student)
    fields["training"] = {
        **fields["training"], "run": run_dir, "step": loaded.step, "config": cfg.name, "recipe": RECIPE,
        "data": cfg.data.root, "loss_terms": cfg.losses.active(), "loss_weights": dataclasses.asdict(cfg.losses),
        "wan_teacher": bool(cfg.losses.feature > 0 or cfg.losses.global_align > 0),
        "teacher_cache": cfg.teacher_cache, "random_init": False, "trainer": raw.get("trainer"),
    }
    return student, fields


def train(cfg: FrameDistillConfig, run_dir: str, config_path: str | None = None,
          trainer_overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """Train the per-frame student into ``run_dir`` (resuming from its newest checkpoint); returns the last logs."""
    from distill import frame_init
    from distill.training import checkpoint as ckpt
    from distill.training.trainer import Trainer, TrainerConfig

    torch.set_num_threads(cfg.threads)
    fields = {**cfg.trainer, **(trainer_overrides or {}), "run_dir": run_dir}
    fields.setdefault("images_per_sample", 1)
    if cfg.teacher_cache:
        configlib.existing_path(cfg.teacher_cache, "teacher_cache", config_path,
                                hint=f"extract it first: python -m distill.teacher.extract ... --out {cfg.teacher_cache}")
    os.makedirs(run_dir, exist_ok=True)
    # the student's every field, not a preset name: an export reads the architecture that was trained
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, student=cfg.model.student_config().to_dict()))
    used = {k: v for k, v in fields.items() if k != "run_dir"}
    configlib.dump(cfg, os.path.join(run_dir, "config.yaml"), extra={"trainer": used, "run_dir": run_dir})
    tcfg = TrainerConfig(**fields)
    torch.manual_seed(tcfg.seed)  # the same initial weights on every rank and restart
    model = FrameModel(cfg.model, cfg.losses)
    dataset = build_frame_dataset(cfg, tcfg.seed)
    if tcfg.init_from and frame_init.is_frame_artifact(tcfg.init_from) and ckpt.latest_checkpoint(run_dir) is None:
        if tcfg.init_widen:
            raise frame_init.ArtifactInitError(f"trainer.init_widen cannot start from an artifact ({tcfg.init_from}): "
                                               "start a run of the artifact's own size from it first")
        tcfg = dataclasses.replace(tcfg, init_from=frame_init.write_init_weights(tcfg.init_from, model, dataset, collate,
                                                                                 run_dir, tcfg.batch_size))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(tcfg, model, FrameObjective(cfg.losses, cfg.channels_last), dataset,
                      collate_fn=collate, visualize=save_frame_picture)
    last = trainer.fit()
    if trainer.dist.is_main:
        print(f"[train] {cfg.name}: finished at step {trainer.step}; last losses "
              + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
    return last
