"""Models: the student encoder, the 3D probe, the weak verifier, and their configs."""

from distill.nets.models.config import (
    ProbeConfig,
    StudentArch,
    StudentConfig,
    VerifierConfig,
)
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
    "Probe",
    "ProbeConfig",
    "StudentArch",
    "StudentConfig",
    "StudentEncoder",
    "Verifier",
    "VerifierConfig",
    "build_student",
    "load_student",
    "save_student",
]
