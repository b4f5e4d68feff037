"""Load WAN 2.1 parts from a LOCAL checkpoint directory in the diffusers layout (never from a hub).

    ROOT/transformer/{config.json, diffusion_pytorch_model*.safetensors[.index.json]}
    ROOT/vae/{config.json, diffusion_pytorch_model.safetensors}
    ROOT/image_encoder/, ROOT/image_processor/      (image-to-video checkpoints only)

The VAE goes through `AutoencoderKLWan.from_pretrained`. The transformer has its own small loader, because
(1) `WanTransformer3DModel.from_pretrained` refuses to run without `accelerate` (its fp32-kept modules force
low_cpu_mem_usage), and (2) DIFT stops after the hooked block, so with `max_blocks=k` only blocks 0..k−1 are
built and only their tensors are read from disk (a 14B checkpoint truncated at block 20 reads half the file).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from safetensors import safe_open

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"


def _weight_files(folder: Path) -> dict[str, Path]:
    """Map each tensor name to the safetensors file that holds it (sharded or single-file checkpoints)."""
    index = folder / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / WEIGHTS_NAME
    if single.is_file():
        with safe_open(str(single), framework="pt") as f:
            return dict.fromkeys(f.keys(), single)  # safe_open is not iterable
    found = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else "missing folder"
    raise FileNotFoundError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in {folder} (found: {found})")


def _keep_in_fp32(name: str, patterns: list[str]) -> bool:
    parts = name.split(".")
    return any(p in parts for p in patterns)


def cast_keeping_fp32(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast floating parameters to dtype except the class's `_keep_in_fp32_modules` (as diffusers loads them)."""
    patterns = list(getattr(model, "_keep_in_fp32_modules", None) or [])
    for name, param in model.named_parameters():
        if param.is_floating_point():
            param.data = param.data.to(torch.float32 if _keep_in_fp32(name, patterns) else dtype)
    return model


def load_wan_transformer(root: str | Path, subfolder: str, dtype: torch.dtype, device: torch.device,
                         max_blocks: int | None = None) -> torch.nn.Module:
    """Build `WanTransformer3DModel` from ROOT/subfolder/config.json and load its weights.

    max_blocks: keep only blocks 0..max_blocks−1 (None: all). The model's output head is still loaded but
    a truncated model must only be used up to its last block (the teacher's hook stops there).
    Parameters listed in the class's `_keep_in_fp32_modules` stay float32, as diffusers does.
    """
    from diffusers import WanTransformer3DModel

    folder = Path(root) / subfolder
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'} not found: expected a diffusers-layout WAN checkpoint at {root}")
    config = dict(WanTransformer3DModel.load_config(str(folder)))
    total = config["num_layers"]
    num_blocks = total if max_blocks is None else max_blocks
    if not 1 <= num_blocks <= total:
        raise ValueError(f"{folder} has {total} blocks; cannot load {num_blocks} (is the hooked block < {total}?)")

    # Everything but the blocks is small: build it for real (its non-persistent RoPE tables included),
    # then add the blocks on the meta device so no memory or time is spent initialising them.
    model = WanTransformer3DModel.from_config({**config, "num_layers": 0})
    with torch.device("meta"):
        model.blocks = WanTransformer3DModel.from_config({**config, "num_layers": num_blocks}).blocks
    model.register_to_config(num_layers=num_blocks)

    wanted = model.state_dict().keys()
    files = _weight_files(folder)
    missing = [k for k in wanted if k not in files]
    if missing:
        raise KeyError(f"{folder}: checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. {missing[:3]}")
    fp32 = list(model._keep_in_fp32_modules or [])
    state = {}
    by_file: dict[Path, list[str]] = {}
    for k in wanted:
        by_file.setdefault(files[k], []).append(k)
    for path, keys in by_file.items():
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for k in keys:
                t = f.get_tensor(k)
                if t.is_floating_point():
                    t = t.to(torch.float32 if _keep_in_fp32(k, fp32) else dtype)
                state[k] = t
    model.load_state_dict(state, strict=True, assign=True)
    # Non-persistent buffers (RoPE tables) are not in the checkpoint; they are float and stay float32/64.
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"{folder}: tensors left uninitialised after loading: {leftover[:3]}")
    return model.to(device).eval().requires_grad_(False)


def load_wan_vae(root: str | Path, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from diffusers import AutoencoderKLWan

    folder = Path(root) / "vae"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'} not found: expected a diffusers-layout WAN checkpoint at {root}")
    has_accelerate = importlib.util.find_spec("accelerate") is not None  # without it diffusers only warns
    vae = AutoencoderKLWan.from_pretrained(str(root), subfolder="vae", torch_dtype=dtype,
                                           low_cpu_mem_usage=has_accelerate)
    return vae.to(device).eval().requires_grad_(False)


def load_clip_image_encoder(root: str | Path, dtype: torch.dtype, device: torch.device):
    """The CLIP vision tower of WAN 2.1 I2V checkpoints and its preprocessing constants.

    Returns (encoder, preprocess) where preprocess is a dict with `size` (shortest edge), `crop` (h, w),
    `mean` and `std`, read from ROOT/image_processor/preprocessor_config.json (CLIP defaults if absent).
    """
    from transformers import CLIPVisionModel

    folder = Path(root) / "image_encoder"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} not found: this is an image-to-video checkpoint (its transformer has image_dim set), which "
            "needs the CLIP image encoder that WAN 2.1 I2V ships in image_encoder/"
        )
    encoder = CLIPVisionModel.from_pretrained(str(folder), torch_dtype=dtype).to(device).eval().requires_grad_(False)
    pre = {"size": 224, "crop": (224, 224), "mean": (0.48145466, 0.4578275, 0.40821073),
           "std": (0.26862954, 0.26130258, 0.27577711)}
    cfg_path = Path(root) / "image_processor" / "preprocessor_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        size = cfg.get("size", {})
        pre["size"] = size.get("shortest_edge", size) if isinstance(size, dict) else size
        crop = cfg.get("crop_size", pre["crop"])
        pre["crop"] = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
        pre["mean"] = tuple(cfg.get("image_mean", pre["mean"]))
        pre["std"] = tuple(cfg.get("image_std", pre["std"]))
    return encoder, pre
