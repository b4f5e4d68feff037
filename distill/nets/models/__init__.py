"""Models: the student encoder, the per-frame student (format version 2), the 3D probe, the weak verifier, and their configs."""

from distill.nets.models.config import (
    FrameStudentConfig,
    ProbeConfig,
    StudentArch,
    StudentConfig,
    VerifierConfig,
)
from distill.nets.models.frame_student import FrameStudent, build_frame_student, frame_card_fields
from distill.nets.models.probe import OUTPUT_NAMES, Probe
from distill.nets.models.student import (
    StudentEncoder,
    build_student,
    load_student,
    save_student,
)
from distill.nets.models.verifier import Verifier

__all__ = [
    "OUTPUT_NAMES",
    "FrameStudent",
    "FrameStudentConfig",
    "Probe",
    "ProbeConfig",
    "StudentArch",
    "StudentConfig",
    "StudentEncoder",
    "Verifier",
    "VerifierConfig",
    "build_frame_student",
    "build_student",
    "frame_card_fields",
    "load_student",
    "save_student",
]
