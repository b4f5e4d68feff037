"""TensorRT backend: build an FP16 engine from each ONNX graph, cache it, run it with CUDA buffers.

Needs ``tensorrt`` (>= 8.6; written against the 10.x API) and ``cuda-python`` for device memory
(``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases) — no torch. Neither installs
on a CPU-only machine; importing this module never imports them (only :class:`TrtEngine` does).

Engines are cached in ``cache_dir`` under a key of GPU name + TensorRT version + the ONNX file's
sha256 (+ precision and batch profile), so a robot builds once (minutes) and later starts in
seconds; a new driver/GPU/TensorRT or a new model builds a new engine. The builder's timing
cache is kept beside the engines and reused across builds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from vega_ros.artifact import Artifact
from vega_ros.contract import (
    ENCODER_FILE,
    ENCODER_INPUT,
    FRAME_FILE,
    FRAME_FOCAL,
    FRAME_IMAGE,
    HEADS_FILE,
    HEADS_INPUT,
    TOKENS,
)
from vega_ros.engine.base import Backend, Engine, EngineError, FrameOutput, HeadsOutput

log = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "vega_ros", "trt")


def import_tensorrt():
    """``(tensorrt, cudart)`` modules, or :class:`EngineError` saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise EngineError(f"TensorRT is not importable ({e})") from e
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise EngineError(f"cuda-python is not importable ({e}); TensorRT needs it here for device buffers") from e
    return trt, cudart


def _check(result):
    """cuda-python calls return ``(err, *values)``; raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise EngineError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class TrtBuildOptions:
    fp16: bool = True
    max_batch: int = 4
    opt_batch: int = 1
    workspace_bytes: int = 1 << 30
    cache_dir: str = DEFAULT_CACHE_DIR
    device_id: int = 0


def engine_cache_key(gpu_name: str, trt_version: str, onnx_sha256: str, options: TrtBuildOptions) -> str:
    """The cache key: GPU + TensorRT version + ONNX checksum + what changes the build."""
    text = f"{gpu_name}|{trt_version}|{onnx_sha256}|fp16={options.fp16}|batch={options.opt_batch}..{options.max_batch}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class _TrtGraph:
    """One deserialised engine with an execution context, device buffers and a stream."""

    def __init__(self, trt, cudart, engine_bytes: bytes, logger, device_id: int = 0):
        self.trt, self.cudart, self.device_id = trt, cudart, device_id
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise EngineError("TensorRT could not deserialise the engine (built for another GPU / version?)")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.stream = _check(cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device ptr, bytes)

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str]) -> list[np.ndarray]:
        cudart = self.cudart
        _check(cudart.cudaSetDevice(self.device_id))  # the current device is per host thread (the heads run on their own)
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, arr in feeds.items():
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not self.context.set_input_shape(name, arr.shape):
                raise EngineError(f"TensorRT rejected input shape {arr.shape} for '{name}' (outside the optimisation profile?)")
            ptr = self._buffer(name, arr.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self.stream))
            self.context.set_tensor_address(name, ptr)
        host: dict[str, np.ndarray] = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
            out = np.empty(shape, dtype=dtype)
            ptr = self._buffer(name, max(out.nbytes, 1))
            self.context.set_tensor_address(name, ptr)
            host[name] = out
        if not self.context.execute_async_v3(int(self.stream)):  # TensorRT takes the raw cudaStream_t handle
            raise EngineError("TensorRT execute_async_v3 failed")
        for name, out in host.items():
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name][0], out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return [host[n].astype(np.float32, copy=False) for n in output_names]

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            self.cudart.cudaFree(ptr)
        self._buffers.clear()
        if self.stream:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None


class TrtEngine(Engine):
    """A TensorRT engine per graph of the artifact (FP16 where the GPU has it): ``encoder.onnx`` +
    ``heads.onnx`` (format version 1) or ``frame.onnx`` [+ ``heads.onnx``] (format version 2)."""

    backend = Backend.TENSORRT

    def __init__(self, artifact: Artifact, options: TrtBuildOptions | None = None):
        super().__init__(artifact)
        self.options = options or TrtBuildOptions()
        trt, cudart = import_tensorrt()
        self.trt, self.cudart = trt, cudart
        _check(cudart.cudaSetDevice(self.options.device_id))
        props = _check(cudart.cudaGetDeviceProperties(self.options.device_id))
        name = props.name
        self.gpu_name = (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).strip("\x00 ")
        self.logger = trt.Logger(trt.Logger.WARNING)
        os.makedirs(self.options.cache_dir, exist_ok=True)
        c = artifact.card
        h, w = c.input.height, c.input.width
        self.built: dict[str, str] = {}
        per_item = {ENCODER_FILE: {ENCODER_INPUT: (3, h, w)}, FRAME_FILE: {FRAME_IMAGE: (3, h, w), FRAME_FOCAL: ()},
                    HEADS_FILE: {HEADS_INPUT: (c.frames_per_clip, c.tokens_n, c.tokens_c)}}
        self._graphs: dict[str, _TrtGraph] = {}
        for file_name in c.graphs:
            self._graphs[file_name] = self._load(file_name, per_item[file_name])

    # -- building -----------------------------------------------------------------------------

    def engine_path(self, file_name: str) -> str:
        key = engine_cache_key(self.gpu_name, self.trt.__version__, self.artifact.sha256(file_name), self.options)
        stem = _sanitize(f"{self.card.name}-{os.path.splitext(file_name)[0]}-{key}")
        return os.path.join(self.options.cache_dir, stem + ".engine")

    def _load(self, file_name: str, per_item_shapes: dict[str, tuple[int, ...]]) -> _TrtGraph:
        path = self.engine_path(file_name)
        if os.path.isfile(path):
            log.info("TensorRT: using cached engine %s", path)
            with open(path, "rb") as f:
                data = f.read()
            self.built[file_name] = "cache"
        else:
            log.warning("TensorRT: building %s for %s (TensorRT %s); this takes a while once", file_name, self.gpu_name, self.trt.__version__)
            data = self._build(os.path.join(self.artifact.path, file_name), per_item_shapes)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            self.built[file_name] = "built"
        return _TrtGraph(self.trt, self.cudart, data, self.logger, self.options.device_id)

    def _build(self, onnx_path: str, per_item_shapes: dict[str, tuple[int, ...]]) -> bytes:
        trt, o = self.trt, self.options
        builder = trt.Builder(self.logger)
        major = int(trt.__version__.split(".")[0])
        flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(onnx_path):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, o.workspace_bytes)
        # platform_has_fast_fp16 is deprecated since TensorRT 10.5 (still present); where it is gone, trust the flag
        if o.fp16 and getattr(builder, "platform_has_fast_fp16", True):
            config.set_flag(trt.BuilderFlag.FP16)
        elif o.fp16:
            log.warning("TensorRT: %s has no fast FP16; building FP32", self.gpu_name)
        profile = builder.create_optimization_profile()
        for name, item in per_item_shapes.items():
            profile.set_shape(name, (1, *item), (o.opt_batch, *item), (o.max_batch, *item))
        config.add_optimization_profile(profile)
        timing_path = os.path.join(o.cache_dir, _sanitize(f"timing-{self.gpu_name}-{trt.__version__}.cache"))
        blob = b""
        if os.path.isfile(timing_path):
            with open(timing_path, "rb") as f:
                blob = f.read()
        timing_cache = config.create_timing_cache(blob)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineError(f"TensorRT failed to build an engine from {onnx_path}")
        with open(timing_path + ".tmp", "wb") as f:
            f.write(memoryview(config.get_timing_cache().serialize()))
        os.replace(timing_path + ".tmp", timing_path)
        return bytes(memoryview(serialized))

    # -- running ------------------------------------------------------------------------------

    def _encode(self, image: np.ndarray) -> np.ndarray:
        return self._graphs[ENCODER_FILE].run({ENCODER_INPUT: image}, [TOKENS])[0]

    def _run_frame(self, image: np.ndarray, focal_px: np.ndarray) -> FrameOutput:
        return FrameOutput(*self._graphs[FRAME_FILE].run({FRAME_IMAGE: image, FRAME_FOCAL: focal_px}, list(FrameOutput.NAMES)))

    def _run_heads(self, tokens: np.ndarray) -> HeadsOutput:
        return HeadsOutput(*self._graphs[HEADS_FILE].run({HEADS_INPUT: tokens}, list(HeadsOutput.NAMES)))

    def describe(self) -> str:
        return f"tensorrt ({self.card.name}, {self.gpu_name}, TensorRT {self.trt.__version__}, fp16={self.options.fp16}, engines {self.built})"

    def close(self) -> None:
        for g in getattr(self, "_graphs", {}).values():
            g.close()
