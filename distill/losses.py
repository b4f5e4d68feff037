"""Training losses of the 3D probe, the weak verifier and the distillation objectives.

Scale normalisation (``ScaleNorm.GT``, the default, as VGGT): monocular multi-view geometry is only
defined up to a global scale, so each sample's ground truth is divided by its scene scale
``s = mean ‖p‖₂`` over the valid pixels of ``points_ref`` (all S frames, reference camera frame).
GT points, GT depth and the GT pose-encoding translation are divided by the same ``s``; the
network predicts in these normalised units (rotation and field of view are scale-free).
``ScaleNorm.NONE`` keeps metres (for metric-depth training in a known domain).

Probe loss = w_p L_points + w_d L_depth + w_c L_camera (all weights 1 by default), with

- ``L_points = mean_valid( c_p ‖p̂ − p/s‖₂ − α log c_p )`` (confidence-weighted Euclidean error),
- ``L_depth  = mean_valid( c_d |d̂ − d/s| − α log c_d )``,
- ``L_camera = Huber_δ(ê − e)`` over the 9-d pose encoding of every frame (translation / s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill.nets.pose_enc import pose_to_encoding, relative_to_reference, se3_inverse


class ScaleNorm(enum.Enum):
    GT = "gt"  # divide the ground truth by its scene scale (VGGT); predictions are in those units
    NONE = "none"  # metres


@dataclass
class ProbeLossConfig:
    """Weights and knobs of :func:`probe_loss`."""

    weight_points: float = 1.0
    weight_depth: float = 1.0
    weight_camera: float = 1.0
    alpha: float = 0.2
    """Weight of the ``−α log c`` confidence regulariser."""
    huber_delta: float = 1.0
    """δ of the Huber loss on the pose encoding."""
    scale_norm: ScaleNorm = ScaleNorm.GT


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def scene_scale(points_ref: torch.Tensor, valid: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample scene scale ``[B]``: mean ‖p‖₂ of valid GT points ``[B, S, H, W, 3]``."""
    norms = points_ref.norm(dim=-1) * valid.to(points_ref.dtype)
    count = valid.flatten(1).sum(1).clamp_min(1).to(points_ref.dtype)
    return (norms.flatten(1).sum(1) / count).clamp_min(eps)


def conf_weighted_loss(err: torch.Tensor, conf: torch.Tensor, valid: torch.Tensor, alpha: float) -> torch.Tensor:
    """``mean_valid(conf * err − alpha * log conf)`` for per-pixel errors and confidences of one shape."""
    return _masked_mean(conf * err - alpha * torch.log(conf), valid)


def gt_pose_encoding(T_wc: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[B, S, 9]`` pose encoding of each frame relative to frame 0 (metric translation)."""
    return pose_to_encoding(relative_to_reference(T_wc), K, height, width)


def probe_loss(pred: dict, batch: dict, cfg: ProbeLossConfig | None = None) -> tuple[torch.Tensor, dict]:
    """Probe loss on ``pred`` (from :class:`distill.nets.models.Probe`) against a batch of clips.

    Returns the total and a dict of detached terms (``points``, ``depth``, ``camera``, ``total``).
    """
    cfg = cfg or ProbeLossConfig()
    valid = batch["valid"].bool()
    pts_gt, depth_gt = batch["points_ref"], batch["depth"]
    h, w = depth_gt.shape[-2:]
    enc_gt = gt_pose_encoding(batch["T_wc"], batch["K"], h, w)
    if ScaleNorm(cfg.scale_norm) is ScaleNorm.GT:
        s = scene_scale(pts_gt, valid)
        pts_gt = pts_gt / s.view(-1, 1, 1, 1, 1)
        depth_gt = depth_gt / s.view(-1, 1, 1, 1)
        enc_gt = torch.cat([enc_gt[..., :3] / s.view(-1, 1, 1), enc_gt[..., 3:]], -1)
    l_pts = conf_weighted_loss((pred["points"] - pts_gt).norm(dim=-1), pred["points_conf"], valid, cfg.alpha)
    l_depth = conf_weighted_loss((pred["depth"] - depth_gt).abs(), pred["depth_conf"], valid, cfg.alpha)
    l_cam = F.huber_loss(pred["pose_enc"], enc_gt, delta=cfg.huber_delta)
    total = cfg.weight_points * l_pts + cfg.weight_depth * l_depth + cfg.weight_camera * l_cam
    terms = {"points": l_pts.detach(), "depth": l_depth.detach(), "camera": l_cam.detach(), "total": total.detach()}
    return total, terms


def verifier_loss(
    depth_pred: torch.Tensor, sigma: torch.Tensor, depth_gt: torch.Tensor, valid: torch.Tensor, alpha: float = 0.2
) -> torch.Tensor:
    """3D-IDE's verifier loss ``|Σ⊙(D̂−D)| + |Σ⊙(∇D̂−∇D)| − α log Σ``, each a mean over valid pixels.

    ``∇`` is the forward difference along x and along y (a difference is valid where both its
    pixels are; it is weighted by Σ of its first pixel). All inputs ``[..., H, W]``.
    """
    valid = valid.bool()
    data = _masked_mean((sigma * (depth_pred - depth_gt)).abs(), valid)
    diff = depth_pred - depth_gt
    gx, gy = diff[..., :, 1:] - diff[..., :, :-1], diff[..., 1:, :] - diff[..., :-1, :]
    vx, vy = valid[..., :, 1:] & valid[..., :, :-1], valid[..., 1:, :] & valid[..., :-1, :]
    sx, sy = sigma[..., :, :-1], sigma[..., :-1, :]
    m_x, m_y = vx.to(diff.dtype), vy.to(diff.dtype)
    grad = ((sx * gx).abs() * m_x).sum() + ((sy * gy).abs() * m_y).sum()
    grad = grad / (m_x.sum() + m_y.sum()).clamp_min(1.0)
    reg = _masked_mean(torch.log(sigma), valid)
    return data + grad - alpha * reg


def _pixel_rays(height: int, width: int, K: torch.Tensor) -> torch.Tensor:
    """``[..., H, W, 3]`` rays K⁻¹ [u, v, 1] at pixel centres (u = col + 0.5)."""
    dev, dt = K.device, K.dtype
    v, u = torch.meshgrid(
        torch.arange(height, device=dev, dtype=dt) + 0.5, torch.arange(width, device=dev, dtype=dt) + 0.5, indexing="ij"
    )
    uv1 = torch.stack([u, v, torch.ones_like(u)], -1)  # [H, W, 3]
    K_inv = torch.linalg.inv(K)
    return torch.einsum("...ij,hwj->...hwi", K_inv, uv1)


def _project_into_source(
    depth_tgt: torch.Tensor, K_tgt: torch.Tensor, K_src: torch.Tensor, T_src_tgt: torch.Tensor, src_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(grid [B, H, W, 2] for grid_sample, z_src [B, H, W], inside [B, H, W] bool)``."""
    h, w = depth_tgt.shape[-2:]
    pts = _pixel_rays(h, w, K_tgt) * depth_tgt[..., None]  # [B, H, W, 3]
    pts_src = torch.einsum("bij,bhwj->bhwi", T_src_tgt[:, :3, :3], pts) + T_src_tgt[:, None, None, :3, 3]
    z = pts_src[..., 2]
    z_safe = torch.where(z > 1e-6, z, torch.ones_like(z))
    proj = torch.einsum("bij,bhwj->bhwi", K_src, pts_src / z_safe[..., None])
    u, v = proj[..., 0], proj[..., 1]
    hs, ws = src_hw
    inside = (z > 1e-6) & (u >= 0) & (u <= ws) & (v >= 0) & (v <= hs)
    grid = torch.stack([2.0 * u / ws - 1.0, 2.0 * v / hs - 1.0], -1)
    return grid, z, inside


def warp_depth(
    depth_tgt: torch.Tensor,
    depth_src: torch.Tensor,
    K_tgt: torch.Tensor,
    K_src: torch.Tensor,
    T_src_tgt: torch.Tensor,
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Look up the source frame's depth where the target frame's points land.

    Each target pixel is back-projected with ``depth_tgt [B, H, W]``, moved into the source camera
    by ``T_src_tgt [B, 4, 4]``, projected with ``K_src`` and ``depth_src [B, H, W]`` is sampled
    there (``grid_sample``, half-pixel convention: u = 0 and u = W are the image edges).

    Returns ``(sampled [B, H, W], z_src [B, H, W], inside [B, H, W] bool)``: the sampled source depth,
    the depth the target point has in the source camera, and where it projects inside the image
    in front of the camera.
    """
    grid, z, inside = _project_into_source(depth_tgt, K_tgt, K_src, T_src_tgt, depth_src.shape[-2:])
    sampled = F.grid_sample(depth_src[:, None], grid, mode=mode, padding_mode="border", align_corners=False)[:, 0]
    return sampled, z, inside


def cross_view_consistency_loss(
    depth: torch.Tensor,
    K: torch.Tensor,
    T_wc: torch.Tensor,
    valid: torch.Tensor | None = None,
    pairs: list[tuple[int, int]] | None = None,
    occlusion_tol: float | None = 0.05,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Mean L1 between frame t′'s depth warped into frame t and the depth frame t implies there.

    Args:
        depth: ``[B, S, H, W]`` predicted depth (any consistent unit).
        K, T_wc: ``[B, S, 3, 3]`` intrinsics and ``[B, S, 4, 4]`` world-from-camera poses (known).
        valid: optional ``[B, S, H, W]`` mask; a pair counts where both ends are valid.
        pairs: ``(t, t′)`` pairs; default all ordered pairs t ≠ t′.
        occlusion_tol: drop pixels whose point lies more than this fraction behind t′'s surface
            (occluded in t′); None keeps them.
        mode: ``grid_sample`` mode for the lookup in t′ (bilinear or nearest).
    Returns: the L1 over the valid overlap of all pairs (0 if there is none).
    """
    s = depth.shape[1]
    if pairs is None:
        pairs = [(t, tp) for t in range(s) for tp in range(s) if t != tp]
    total = depth.new_zeros(())
    count = depth.new_zeros(())
    for t, tp in pairs:
        T_src_tgt = se3_inverse(T_wc[:, tp]) @ T_wc[:, t]
        grid, z, mask = _project_into_source(depth[:, t], K[:, t], K[:, tp], T_src_tgt, depth.shape[-2:])
        src = depth[:, tp, None]
        sampled = F.grid_sample(src, grid, mode=mode, padding_mode="border", align_corners=False)[:, 0]
        if valid is not None:
            v_src = F.grid_sample(valid[:, tp, None].to(depth.dtype), grid, mode="nearest", align_corners=False)[:, 0]
            mask = mask & valid[:, t].bool() & (v_src > 0.5)
        if occlusion_tol is not None:
            mask = mask & (z <= sampled * (1.0 + occlusion_tol))
        m = mask.to(depth.dtype)
        total = total + ((sampled - z).abs() * m).sum()
        count = count + m.sum()
    return total / count.clamp_min(1.0)


def global_alignment_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``mean(1 − cos(student, teacher))`` over descriptors ``[..., C]`` (pooled per frame or clip)."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)).mean()


# ----------------------------------------------------------------------------- per-frame depth (student v2)
#
# All in log depth: ``log_pred [B, H, W]`` (log metres, the student's output before exp), ``depth
# [B, H, W]`` metres (0, negative, NaN or inf = invalid) and an optional ``valid [B, H, W]`` mask.
# A pixel counts where the mask holds and the depth is finite and > 0; a sample counts where it
# has at least one such pixel; a batch with none raises :class:`EmptyDepthError`.


class EmptyDepthError(ValueError):
    """No valid ground-truth depth pixel in the whole batch (every sample empty, NaN or masked)."""


def depth_mask(depth: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, H, W]`` bool: ``valid`` (if given) and finite, positive ``depth``."""
    m = torch.isfinite(depth) & (depth > 0)
    if valid is not None:
        if valid.shape != depth.shape:
            raise ValueError(f"valid {tuple(valid.shape)} does not match depth {tuple(depth.shape)}")
        m = m & valid.bool()
    return m


def _log_residual(log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r = log_pred - log depth, 0 where invalid; mask)``, both ``[B, H, W]``; raises on an empty batch."""
    if log_pred.shape != depth.shape or log_pred.dim() != 3:
        raise ValueError(f"log_pred {tuple(log_pred.shape)} and depth {tuple(depth.shape)} must both be [B, H, W]")
    m = depth_mask(depth, valid)
    if not bool(m.any()):
        raise EmptyDepthError(f"no valid depth pixel in a batch of {depth.shape[0]} (all empty, NaN or masked)")
    safe = torch.where(m, depth, torch.ones_like(depth))
    r = torch.where(m, log_pred - torch.log(safe).to(log_pred.dtype), torch.zeros_like(log_pred))
    return r, m


def silog_loss(log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None = None,
               lam: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """Scale-invariant log depth (Eigen et al. 2014): per sample ``sqrt(mean r² − λ (mean r)²)``
    with ``r = log d̂ − log d`` over its valid pixels, averaged over the samples that have any.

    With ``λ = 1`` (default) it is the standard deviation of ``r``: multiplying the prediction by
    any per-sample factor leaves it unchanged; ``λ < 1`` keeps a share of the metric error.
    """
    r, m = _log_residual(log_pred, depth, valid)
    mf = m.to(r.dtype)
    n = mf.flatten(1).sum(1)
    has = n > 0
    mean_r = r.flatten(1).sum(1) / n.clamp_min(1)
    centred = (r - mean_r.view(-1, 1, 1)) * mf  # mean r² − λ (mean r)² = var r + (1 − λ)(mean r)², stably
    var = (centred * centred).flatten(1).sum(1) / n.clamp_min(1) + (1.0 - lam) * mean_r * mean_r
    return torch.sqrt(var.clamp_min(0.0) + eps)[has].mean()


def gradient_matching_loss(log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None = None,
                           scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient matching (MiDaS, Ranftl et al. 2020) on the log-depth residual
    ``r = log d̂ − log d``: ``Σ_k mean(|∂x r_k| + |∂y r_k|)`` over ``scales`` levels, level k taking
    every 2^k-th pixel; a difference counts where both of its pixels are valid. In log space a
    prediction that is the truth times a constant has ``r`` constant, so the loss is 0: it scores
    the shape (edges, slopes), not the scale.
    """
    r, m = _log_residual(log_pred, depth, valid)
    total = r.new_zeros(())
    for k in range(scales):
        step = 2 ** k
        rk, mk = r[:, ::step, ::step], m[:, ::step, ::step]
        if rk.shape[-1] < 2 and rk.shape[-2] < 2:
            break
        vx = mk[:, :, 1:] & mk[:, :, :-1]
        vy = mk[:, 1:, :] & mk[:, :-1, :]
        gx = (rk[:, :, 1:] - rk[:, :, :-1]).abs() * vx.to(r.dtype)
        gy = (rk[:, 1:, :] - rk[:, :-1, :]).abs() * vy.to(r.dtype)
        count = (vx.sum() + vy.sum()).clamp_min(1).to(r.dtype)
        total = total + (gx.sum() + gy.sum()) / count
    return total


def log_l1_loss(log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None = None,
                conf: torch.Tensor | None = None, alpha: float = 0.2) -> torch.Tensor:
    """The metric term: ``mean_valid |log d̂ − log d|`` (a relative error, the same weight at 0.3 m
    and at 3 m). With ``conf [B, H, W]`` (> 0) it is confidence-weighted as the verifier's loss,
    ``mean_valid(c |log d̂ − log d| − α log c)``: the net may lower ``c`` where it cannot know
    the depth, at the price ``−α log c``."""
    r, m = _log_residual(log_pred, depth, valid)
    if conf is None:
        return _masked_mean(r.abs(), m)
    if conf.shape != r.shape:
        raise ValueError(f"conf {tuple(conf.shape)} does not match depth {tuple(r.shape)}")
    return conf_weighted_loss(r.abs(), conf, m, alpha)


@dataclass
class DepthLossWeights:
    """Weights of :func:`frame_depth_loss`'s terms (0 switches one off)."""

    silog: float = 1.0
    gradient: float = 0.5
    metric: float = 1.0
    conf_alpha: float = 0.2
    """``α`` of the confidence term; the metric term is confidence-weighted when a conf map is given."""
    silog_lambda: float = 1.0
    gradient_scales: int = 4


def frame_depth_loss(log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None = None,
                     conf: torch.Tensor | None = None, weights: DepthLossWeights | None = None,
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``w_silog SILog + w_grad GradMatch + w_metric (conf-weighted) log-L1`` on ``[B, H, W]`` maps;
    returns the total and the detached terms (``silog``, ``gradient``, ``metric``)."""
    w = weights or DepthLossWeights()
    terms: dict[str, torch.Tensor] = {}
    total = log_pred.new_zeros(())
    if w.silog > 0:
        terms["silog"] = silog_loss(log_pred, depth, valid, lam=w.silog_lambda)
        total = total + w.silog * terms["silog"]
    if w.gradient > 0:
        terms["gradient"] = gradient_matching_loss(log_pred, depth, valid, scales=w.gradient_scales)
        total = total + w.gradient * terms["gradient"]
    if w.metric > 0:
        terms["metric"] = log_l1_loss(log_pred, depth, valid, conf=conf, alpha=w.conf_alpha)
        total = total + w.metric * terms["metric"]
    if not terms:
        raise ValueError("frame_depth_loss: every weight is 0")
    return total, {k: v.detach() for k, v in terms.items()}
