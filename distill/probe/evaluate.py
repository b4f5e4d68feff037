"""Scoring a trained probe (or an artifact's own heads) on a cached test split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distill.metrics import Alignment, ProbeMetrics
from vega_ros.contract import HEADS_OUTPUTS

HeadsLike = Callable[..., dict[str, torch.Tensor]]
"""A :class:`distill.nets.models.Probe` or :class:`ArtifactHeads`: ``tokens [B, S, N, C]`` -> outputs."""


def _device_of(model) -> torch.device:
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if params is not None else None
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def predict(probe: HeadsLike, tokens: torch.Tensor, image_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """One clip's predictions (numpy, no batch axis) from its tokens ``[S, N, C]``, on the probe's device."""
    out = probe(tokens[None].float().to(_device_of(probe)), image_hw=image_hw)
    return {k: v[0].float().cpu().numpy() for k, v in out.items()}


def evaluate(probe: HeadsLike, cache: dict, alignment: Alignment = Alignment.SCALE) -> tuple[dict, list[dict]]:
    """Score every cached clip; returns the summary (with ``per_clip`` values, clip order) and the
    per-clip predictions."""
    probe.eval()
    metrics = ProbeMetrics(alignment)
    preds = []
    hw = tuple(cache["depth"].shape[-2:])
    for i in tqdm(range(cache["tokens"].shape[0]), desc="eval", unit="clip", dynamic_ncols=True, disable=None):
        pred = predict(probe, cache["tokens"][i], hw)
        sample = {k: cache[k][i].numpy() for k in ("depth", "K", "T_wc", "points_ref")}
        sample["valid"] = cache["valid"][i].numpy().astype(bool)
        metrics.add(pred, sample)
        preds.append(pred)
    return {**metrics.summary(), "per_clip": metrics.per_clip()}, preds


class ArtifactHeads:
    """A student artifact's own heads in the probe's place, run by the robot runtime's engine.

    Scores what the robot runs: the heads trained with the encoder, not a fresh probe.
    Called like :class:`Probe`: ``tokens [1, S, N, C]`` -> dict of the heads' outputs
    (``vega_ros.contract.HEADS_OUTPUTS``).
    """

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        from vega_ros.engine.selection import create_engine

        self.engine, _ = create_engine(str(model_dir), "onnxruntime-cpu", intra_op_threads=threads)
        self.card = self.engine.card

    def eval(self) -> ArtifactHeads:
        return self

    def __call__(self, tokens: torch.Tensor, image_hw: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        out = self.engine.run_heads(tokens.float().numpy())
        return {k: torch.from_numpy(getattr(out, k)) for k in HEADS_OUTPUTS}
