"""Prediction heads: DPT (dense maps with confidence), camera (pose encoding), the per-frame depth
decoder, the canonical-focal transform, activations."""

from distill.nets.heads.camera_head import CameraHead
from distill.nets.heads.depth_decoder import DepthDecoder
from distill.nets.heads.dpt_head import DPTHead
from distill.nets.heads.focal import canonical_to_metric, focal_ratio, log_focal_offset, metric_to_canonical
from distill.nets.heads.head_act import (
    DenseActivation,
    activate_conf,
    activate_depth,
    activate_points,
)

__all__ = ["CameraHead", "DPTHead", "DenseActivation", "DepthDecoder", "activate_conf", "activate_depth",
           "activate_points", "canonical_to_metric", "focal_ratio", "log_focal_offset", "metric_to_canonical"]
