"""The 3D probe benchmark: how much 3D does a frozen encoder hold?

    python -m distill.probe --encoder SPEC --data DATA --out DIR [--config config/probe/cpu.yaml]
    python -m distill.probe --table OUT_A OUT_B ...      # one markdown table from several runs
    python -m distill.probe --table OUT_A OUT_B --versus OUT_B   # + clip-by-clip comparison with OUT_B

1. The encoder (``distill.encoders.parse_encoder_spec``) is frozen; its tokens for every clip of the
   train and test splits are cached once under ``OUT/cache/<split>/`` (fp16 safetensors shards +
   ``manifest.json``; :mod:`~distill.probe.features`), so probe steps never pay the encoder again.
2. The probe (``distill.nets.models.Probe``, preset from the config) trains on the cached tokens on
   ``distill.losses.probe_loss`` through the project's one training loop
   (``distill.training.trainer.Trainer``: AdamW, linear warm-up, cosine decay; :mod:`~distill.probe.objective`).
   Checkpoints land atomically in ``OUT/train/checkpoints/`` every ``ckpt_every`` steps and a rerun
   resumes from the newest (the batch order is a function of the step, so a resumed run sees the
   batches an uninterrupted one would).
3. The test split is scored (:mod:`~distill.probe.evaluate`, ``distill.metrics.ProbeMetrics``), a
   classical baseline (ORB + essential matrix with RANSAC, :mod:`~distill.probe.baseline`) is scored
   on the same frame pairs, and ``results.json``, ``results.md`` and ``predictions.png`` are written
   (:mod:`~distill.probe.report`); ``results.json`` keeps every test clip's values (``test.per_clip``),
   so ``--versus`` can put a paired bootstrap interval on the difference between two encoders
   (each cell ends with its verdict: ahead / behind / n.s., whether the interval excludes zero).
   Rerunning a finished run only re-scores it.

``--data`` is a ``distill.data.sources`` spec: a rendered dataset directory (``libero_sim:DIR`` or
plain ``DIR``), ``co3d:DIR``, ``dl3dv:DIR``, or ``synthetic:N[:HxW]`` for N analytic clips
(:mod:`distill.data.synthetic`: a textured ground plane and spheres, exact depth and poses).
"""

from distill.data.synthetic import SyntheticClips, make_synthetic_clip
from distill.probe.baseline import essential_relative_pose, orb_baseline, orb_pose_errors, orb_relative_pose
from distill.probe.cli import main
from distill.probe.config import ProbeRunConfig
from distill.probe.evaluate import ArtifactHeads, evaluate, predict
from distill.probe.features import TRAIN_KEYS, batch_from_cache, cache_features, cache_splits, load_cached_split
from distill.probe.objective import ProbeObjective, build_probe, train_probe
from distill.probe.report import markdown_table, paired_table, record_in_card, write_results
from distill.probe.run import run_probe, score_own_heads

__all__ = [
    "ArtifactHeads", "ProbeObjective", "ProbeRunConfig", "SyntheticClips", "TRAIN_KEYS", "batch_from_cache",
    "build_probe", "cache_features", "cache_splits", "essential_relative_pose", "evaluate", "load_cached_split",
    "main", "make_synthetic_clip", "markdown_table", "orb_baseline", "orb_pose_errors", "orb_relative_pose",
    "paired_table", "predict", "record_in_card", "run_probe", "score_own_heads", "train_probe", "write_results",
]
