"""Atomic, resumable training checkpoints: safetensors for tensors, JSON for everything else.

Layout of a run directory::

    RUN/checkpoints/step_00001200/model.safetensors      model weights
    RUN/checkpoints/step_00001200/optimizer.safetensors  optimizer tensors (flattened keys)
    RUN/checkpoints/step_00001200/state.json             step, optimizer/scheduler structure, RNG states, extra
    RUN/checkpoints/latest                               text file naming the newest complete checkpoint

A checkpoint is written into a temporary directory and renamed into place, then ``latest`` is
replaced atomically, so a kill at any moment leaves either the old or the new checkpoint
complete, never a torn one. ``load_latest`` returns None when there is nothing to resume.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"
WEIGHTS_FILE = "model.safetensors"
STATE_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or does not match the model; the text names the file."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns (tensors already loaded into the given objects)."""

    path: str
    step: int
    extra: dict[str, Any]
    rng: dict[str, Any]


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- RNG state


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and, if present, CUDA) RNG states as JSON-serialisable data."""
    state: dict[str, Any] = {
        "python": _encode(random.getstate()),
        "numpy": _encode(np.random.get_state()),
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_decode(state["python"]))
    np.random.set_state(_decode(state["numpy"]))
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(state["torch"])), dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(
            [torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in state["cuda"]]
        )


def _encode(obj: Any) -> Any:
    """Tuples, numpy arrays and scalars to tagged JSON values (round-trips through :func:`_decode`)."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": base64.b64encode(obj.tobytes()).decode(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(x) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict) and "__ndarray__" in obj:
        return np.frombuffer(base64.b64decode(obj["__ndarray__"]), dtype=obj["dtype"]).reshape(obj["shape"]).copy()
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_decode(x) for x in obj["__tuple__"])
    if isinstance(obj, list):
        return [_decode(x) for x in obj]
    return obj


# ----------------------------------------------------------------------------- state dicts


def _split_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested state dict by a reference, collecting tensors by key."""
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(state, dict):
        return {"__dict__": [[_encode_key(k), _split_state(v, f"{prefix}.{k}", tensors)] for k, v in state.items()]}
    if isinstance(state, (list, tuple)):
        out = [_split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(state)]
        return {"__tuple__": out} if isinstance(state, tuple) else out
    return _encode(state)


def _join_state(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(structure, dict) and "__tensor__" in structure:
        return tensors[structure["__tensor__"]]
    if isinstance(structure, dict) and "__dict__" in structure:
        return {_decode_key(k): _join_state(v, tensors) for k, v in structure["__dict__"]}
    if isinstance(structure, dict) and "__tuple__" in structure:
        return tuple(_join_state(v, tensors) for v in structure["__tuple__"])
    if isinstance(structure, list):
        return [_join_state(v, tensors) for v in structure]
    return _decode(structure)


def _encode_key(k: Any) -> Any:
    return {"int": k} if isinstance(k, int) else k


def _decode_key(k: Any) -> Any:
    return k["int"] if isinstance(k, dict) else k


# ----------------------------------------------------------------------------- save / load


def checkpoint_dir(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, "checkpoints", f"step_{step:08d}")


def save_model_weights(folder: str, model: torch.nn.Module) -> str:
    """Write ``model``'s state dict to ``folder/model.safetensors`` (CPU, contiguous); returns the path.

    A folder holding this file is a valid ``init_from`` source (``resolve_checkpoint``)."""
    path = os.path.join(folder, WEIGHTS_FILE)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path)
    return path


def save_checkpoint(
    run_dir: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    extra: dict[str, Any] | None = None,
    keep_last: int = 3,
) -> str:
    """Write checkpoint ``step`` atomically and point ``latest`` at it; keep the newest ``keep_last``."""
    root = os.path.join(run_dir, "checkpoints")
    os.makedirs(root, exist_ok=True)
    final = checkpoint_dir(run_dir, step)
    tmp = tempfile.mkdtemp(dir=root, prefix=".tmp-")
    try:
        save_model_weights(tmp, model)
        opt_tensors: dict[str, torch.Tensor] = {}
        state = {
            "version": STATE_VERSION,
            "step": step,
            "optimizer": _split_state(optimizer.state_dict(), "opt", opt_tensors) if optimizer is not None else None,
            "scheduler": _split_state(scheduler.state_dict(), "sched", opt_tensors) if scheduler is not None else None,
            "rng": capture_rng_state(),
            "extra": extra or {},
        }
        save_file(opt_tensors, os.path.join(tmp, "optimizer.safetensors"))
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(os.path.join(root, LATEST), os.path.basename(final))
    _prune(root, keep_last)
    return final


def _prune(root: str, keep_last: int) -> None:
    steps = sorted(d for d in os.listdir(root) if d.startswith("step_"))
    for old in steps[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)


def latest_checkpoint(run_dir: str) -> str | None:
    """Path of the newest complete checkpoint, or None."""
    pointer = os.path.join(run_dir, "checkpoints", LATEST)
    if not os.path.exists(pointer):
        return None
    path = os.path.join(run_dir, "checkpoints", open(pointer).read().strip())
    if not os.path.isdir(path):
        raise CheckpointError(f"{pointer} names {path}, which does not exist")
    return path


def resolve_checkpoint(source: str) -> str:
    """``source`` itself if it is a checkpoint directory, else the newest checkpoint of run dir ``source``."""
    if os.path.isfile(os.path.join(source, WEIGHTS_FILE)):
        return source
    path = latest_checkpoint(source)
    if path is None:
        raise CheckpointError(f"{source} is neither a checkpoint nor a run dir with one")
    return path


def read_model_weights(path: str) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` in checkpoint directory ``path``."""
    weights_file = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(weights_file):
        raise CheckpointError(f"checkpoint file missing: {weights_file}")
    try:
        return load_file(weights_file)
    except Exception as e:  # safetensors raises its own error types for truncated headers / data
        raise CheckpointError(f"cannot read {weights_file}: {e}") from e


def load_model_weights(path: str, model: torch.nn.Module) -> None:
    """Load only ``model.safetensors`` of checkpoint directory ``path`` into ``model`` (strict)."""
    weights_file = os.path.join(path, WEIGHTS_FILE)
    weights = read_model_weights(path)
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # a tensor of another shape (a wider or narrower net: see init_widen)
        raise CheckpointError(f"{weights_file} does not match the model: {str(e).splitlines()[-1].strip()}") from e
    if missing or unexpected:
        raise CheckpointError(f"{weights_file} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def load_checkpoint(
    path: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> Checkpoint:
    """Load a checkpoint directory into ``model`` (and optimizer / scheduler / RNG)."""
    files = {name: os.path.join(path, name) for name in (WEIGHTS_FILE, "optimizer.safetensors", "state.json")}
    for f in files.values():
        if not os.path.isfile(f):
            raise CheckpointError(f"checkpoint file missing: {f}")
    load_model_weights(path, model)
    try:
        state = json.load(open(files["state.json"]))
        opt_tensors = load_file(files["optimizer.safetensors"])
    except Exception as e:
        raise CheckpointError(f"cannot read the state of {path}: {e}") from e
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(_join_state(state["optimizer"], opt_tensors))
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(_join_state(state["scheduler"], opt_tensors))
    if restore_rng:
        restore_rng_state(state["rng"])
    return Checkpoint(path=path, step=int(state["step"]), extra=state.get("extra", {}), rng=state["rng"])
