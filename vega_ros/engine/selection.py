"""``backend: auto`` and friends: create the engine a setting asks for, and say which and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vega_ros.artifact import Artifact, load_artifact
from vega_ros.engine.base import Backend, Engine, EngineError

log = logging.getLogger(__name__)


@dataclass
class BackendChoice:
    """Which backend was created and why the ones before it were skipped."""

    requested: Backend
    chosen: Backend
    reasons: list[str] = field(default_factory=list)

    def message(self) -> str:
        why = "; ".join(self.reasons) if self.reasons else "as requested"
        return f"backend {self.requested.value} -> {self.chosen.value} ({why})"


def create_engine(model: str | Artifact, backend: str | Backend = Backend.AUTO, *, intra_op_threads: int = 0,
                  inter_op_threads: int = 0, device_id: int = 0, trt_cache_dir: str | None = None,
                  trt_fp16: bool = True, heads_intra_op_threads: int = -1) -> tuple[Engine, BackendChoice]:
    """Load ``model`` (a directory or a loaded :class:`Artifact`) on ``backend``.

    ``auto`` tries TensorRT, then ONNX Runtime CUDA, then ONNX Runtime CPU, recording why each
    earlier one was not used. An explicit backend that cannot be created raises
    :class:`EngineError`. ``heads_intra_op_threads`` (ONNX Runtime, format version 2): threads of
    the keyframe heads (-1 = ``intra_op_threads``).
    """
    requested = Backend.parse(backend) if not isinstance(backend, Backend) else backend
    artifact = model if isinstance(model, Artifact) else load_artifact(model)
    order = [Backend.TENSORRT, Backend.ORT_CUDA, Backend.ORT_CPU] if requested == Backend.AUTO else [requested]
    reasons: list[str] = []
    for candidate in order:
        try:
            engine = _create(candidate, artifact, intra_op_threads, inter_op_threads, device_id, trt_cache_dir, trt_fp16,
                             heads_intra_op_threads)
        except EngineError as e:
            if requested != Backend.AUTO:
                raise
            reasons.append(f"{candidate.value} unavailable: {e}")
            continue
        if requested == Backend.AUTO:
            reasons.append(f"{candidate.value} is the first available")
        choice = BackendChoice(requested, candidate, reasons)
        log.info("%s", choice.message())
        return engine, choice
    raise EngineError("no backend could be created: " + "; ".join(reasons))


def _create(backend: Backend, artifact: Artifact, intra: int, inter: int, device_id: int, cache_dir: str | None,
            fp16: bool, heads_intra: int) -> Engine:
    if backend == Backend.TENSORRT:
        from vega_ros.engine.trt_backend import (
            DEFAULT_CACHE_DIR,
            TrtBuildOptions,
            TrtEngine,
        )

        return TrtEngine(artifact, TrtBuildOptions(fp16=fp16, cache_dir=cache_dir or DEFAULT_CACHE_DIR, device_id=device_id))
    from vega_ros.engine.ort_backend import OrtEngine

    return OrtEngine(artifact, cuda=backend == Backend.ORT_CUDA, intra_op_threads=intra, inter_op_threads=inter, device_id=device_id,
                     heads_intra_op_threads=heads_intra)
