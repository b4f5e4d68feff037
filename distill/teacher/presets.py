"""Random-weight WAN checkpoints of known shapes, for tests, benchmarks and end-to-end dry runs.

`build_modules(preset)` returns (transformer, vae[, image_encoder]) with random weights;
`save_random_checkpoint(root, preset)` writes them in the diffusers layout the teacher loads
(ROOT/transformer, ROOT/vae, and for I2V presets ROOT/image_encoder + ROOT/image_processor).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# WanTransformer3DModel kwargs. "wan2.1-1.3b-shape" / "wan2.1-14b-shape" are Wan2.1-T2V-1.3B's / -14B's
# configs (random weights).
_TINY = {"num_attention_heads": 2, "attention_head_dim": 12, "out_channels": 4, "text_dim": 16, "freq_dim": 16,
         "ffn_dim": 32, "num_layers": 4, "rope_max_seq_len": 64}
TRANSFORMER_PRESETS: dict[str, dict] = {
    "tiny": {**_TINY, "in_channels": 4},
    # I2V: noisy latents (4) + mask (4) + first-frame latent (4); CLIP tokens of width 16
    "tiny-i2v": {**_TINY, "in_channels": 12, "image_dim": 16, "added_kv_proj_dim": 24},
    "wan2.1-1.3b-shape": {"num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
                          "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30},
    "wan2.1-14b-shape": {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
                         "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40},
}
# AutoencoderKLWan kwargs; the tiny VAE keeps WAN's 8× space / 4× time compression with 4 latent channels
# and non-trivial latents_mean/std so that normalisation is exercised.
VAE_PRESETS: dict[str, dict] = {
    "tiny": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1,
             "latents_mean": [0.1, -0.2, 0.3, 0.0], "latents_std": [1.5, 0.5, 2.0, 1.0]},
    "wan2.1": {},  # the real WAN 2.1 VAE's shape (diffusers defaults)
}
PRESETS = {  # name → (transformer preset, VAE preset)
    "tiny": ("tiny", "tiny"),
    "tiny-i2v": ("tiny-i2v", "tiny"),
    "wan2.1-1.3b-shape": ("wan2.1-1.3b-shape", "wan2.1"),
    "wan2.1-14b-shape": ("wan2.1-14b-shape", "wan2.1"),
}
TINY_CLIP = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "image_size": 32, "patch_size": 16, "projection_dim": 16}


def build_modules(preset: str = "tiny", seed: int = 0, device: str | torch.device = "cpu",
                  num_layers: int | None = None):
    """Random-weight (transformer, vae, image_encoder or None) for a preset name in PRESETS, float32,
    initialised directly on `device` (a 1.3B-shaped model builds in seconds on a GPU).

    `num_layers` builds only the first blocks (what `max_blocks` loads from a real checkpoint), so a
    14B-shaped model up to its hooked block fits a single GPU in float32 before the cast.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    t_name, v_name = PRESETS[preset]
    torch.manual_seed(seed)
    with torch.device(device):
        kwargs = dict(TRANSFORMER_PRESETS[t_name])
        if num_layers is not None:
            kwargs["num_layers"] = min(num_layers, kwargs["num_layers"])
        transformer = WanTransformer3DModel(**kwargs)
        vae = AutoencoderKLWan(**VAE_PRESETS[v_name])
        image_encoder = None
        if TRANSFORMER_PRESETS[t_name].get("image_dim"):
            from transformers import CLIPVisionConfig, CLIPVisionModel

            image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_CLIP))
    return transformer, vae, image_encoder


def save_random_checkpoint(root: str | Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight checkpoint in the diffusers layout under `root`; returns root."""
    root = Path(root)
    transformer, vae, image_encoder = build_modules(preset, seed)
    transformer.save_pretrained(root / "transformer")
    vae.save_pretrained(root / "vae")
    if image_encoder is not None:
        image_encoder.save_pretrained(root / "image_encoder")
        size = TINY_CLIP["image_size"]
        (root / "image_processor").mkdir(parents=True, exist_ok=True)
        (root / "image_processor" / "preprocessor_config.json").write_text(json.dumps({
            "size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size},
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        }))
    return root
