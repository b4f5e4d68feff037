"""Prediction heads: DPT (dense maps with confidence), camera (pose encoding), activations."""

from distill.nets.heads.camera_head import CameraHead
from distill.nets.heads.dpt_head import DPTHead
from distill.nets.heads.head_act import (
    DenseActivation,
    activate_conf,
    activate_depth,
    activate_points,
)

__all__ = ["CameraHead", "DPTHead", "DenseActivation", "activate_conf", "activate_depth", "activate_points"]
