"""WAN 2.1 as a frozen DIFT teacher: one noisy forward, a middle block's hidden states as 3D-aware features.

    video [T, 3, H, W] in [0, 1]
      → chunks of 4k+1 frames, each starting with frame 0                      (chunking.plan_chunks)
      → VAE encode (mode), normalise (z − latents_mean) / latents_std           x0 [B, z, F′, H/8, W/8]
      → x_t = (1 − σ)·x0 + σ·ε, σ = timestep / 1000, ε seeded                   (flow matching)
      → ONE transformer forward, null text (zeros [B, 512, text_dim]); image-to-video checkpoints also get
        the pipeline's first-frame condition (mask + VAE latent of [frame 0, zeros…], CLIP image tokens)
      → hook on blocks[block]: tokens [B, F′·H/16·W/16, C], the forward stops there
      → features [B, F′, C, H/16, W/16]; per frame t: latent π(t) = ⌈t/4⌉ of the video

Use: `WanDiftTeacher(WanDiftConfig(checkpoint="/models/Wan2.1-T2V-1.3B-Diffusers")).features_per_frame(video)`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from distill.teacher import chunking
from distill.teacher.loading import (
    load_clip_image_encoder,
    load_wan_transformer,
    load_wan_vae,
)

TEXT_CONTEXT_LEN = 512  # UMT5 context WAN was trained with; the I2V attention hard-codes it too
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class WanDiftConfig:
    """Every knob of the WAN DIFT teacher. Defaults follow the public probe code for WAN 2.1-1.3B."""

    checkpoint: str = ""  # local root in the diffusers layout (transformer/, vae/, [image_encoder/]); never downloaded
    model_id: str | None = None  # a label recorded in the cache manifest; None: the checkpoint folder's name
    block: int = 20  # hooked block index (0-based); its output hidden states are the features
    timestep: int = 749  # of 1000; σ = timestep / 1000
    resolution: tuple[int, int] | None = (480, 832)  # (H, W) clips are resized to; multiples of 16; None: as given
    chunk_frames: int = 81  # 4k+1 frames per forward (frame 0 + k 4-frame groups)
    chunk_batch: int = 1  # chunks of equal length run together in one forward
    dtype: str | None = None  # transformer/CLIP dtype; None: bfloat16 on CUDA, float32 on CPU
    vae_dtype: str = "float32"  # the Wan pipelines keep the VAE in float32
    device: str | None = None  # None: cuda if available, else cpu
    max_blocks: int | None = None  # load only blocks 0..max_blocks−1 (must exceed `block`); None: block + 1
    transformer_subfolder: str = "transformer"  # e.g. "transformer_2" for WAN 2.2's low-noise expert
    seed: int = 0  # noise seed; chunk c of a video uses seed + c
    null_text: str | None = None  # optional .safetensors with "prompt_embeds" [L, text_dim] (e.g. UMT5 of ""),
    #                               zero-padded to 512 tokens; None: all zeros (the text encoder is never loaded)

    def __post_init__(self):
        if self.model_id is None:
            self.model_id = Path(self.checkpoint).name if self.checkpoint else "unknown"
        if self.resolution is not None:
            self.resolution = tuple(int(v) for v in self.resolution)
            if len(self.resolution) != 2 or any(v <= 0 or v % 16 for v in self.resolution):
                raise ValueError(f"resolution must be (H, W), positive multiples of 16; got {self.resolution}")
        if not 0 < self.timestep < 1000:
            raise ValueError(f"timestep must be in (0, 1000), got {self.timestep}")
        if self.max_blocks is not None and self.max_blocks <= self.block:
            raise ValueError(f"max_blocks={self.max_blocks} must exceed the hooked block {self.block}")
        chunking.check_clip_length(self.chunk_frames)
        for name in ("dtype", "vae_dtype"):
            value = getattr(self, name)
            if value is not None and value not in _DTYPES:
                raise ValueError(f"{name} must be one of {sorted(_DTYPES)}, got {value!r}")

    @property
    def sigma(self) -> float:
        return self.timestep / 1000.0

    def manifest_fields(self) -> dict:
        """What a feature cache records so that features from different settings never mix."""
        return {"model_id": self.model_id, "block": self.block, "timestep": self.timestep,
                "resolution": list(self.resolution) if self.resolution else None,
                "chunk_frames": self.chunk_frames, "seed": self.seed,
                "transformer_subfolder": self.transformer_subfolder,
                "null_text": Path(self.null_text).name if self.null_text else "zeros"}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: tuple[str, ...] | list[str] = (), **values) -> WanDiftConfig:
        """Read a config/teacher/*.yaml file (``base:`` files allowed); keyword ``values`` that are not None
        win over it, then ``KEY=VALUE`` ``overrides``. Unknown keys and wrong types are a ConfigError."""
        from distill.config import load_config

        return load_config(cls, path, overrides, values={k: v for k, v in values.items() if v is not None})


class _StopForward(Exception):
    """Raised by the block hook so the transformer does no work past the hooked block."""


def add_flow_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Flow-matching forward process: x_t = (1 − σ)·x0 + σ·ε."""
    return (1.0 - sigma) * x0 + sigma * noise


def tokens_to_maps(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """[B, F′·h·w, C] tokens in the transformer's (frame, row, col) order → [B, F′, C, h, w]."""
    b, n, c = tokens.shape
    if n != frames * height * width:
        raise ValueError(f"{n} tokens do not tile {frames}×{height}×{width}")
    return tokens.reshape(b, frames, height, width, c).permute(0, 1, 4, 2, 3)


class WanDiftTeacher:
    """Frozen WAN 2.1 DIFT feature extractor. Inputs are float32 RGB in [0, 1]; outputs float32.

    Public calls:
      clip_features(clips [B, 4k+1, 3, H, W]) → [B, k+1, C, H/16, W/16]   one forward per batch of clips
      latent_features(video [T, 3, H, W])   → [1 + ⌈(T−1)/4⌉, C, H/16, W/16]  chunked, one row per latent
      features_per_frame(video [T, 3, H, W]) → [T, C, H/16, W/16]          row t = latent π(t) = ⌈t/4⌉
    H, W are the configured resolution (clips are resized to it) or the input's when resolution is None.
    """

    def __init__(self, config: WanDiftConfig, transformer=None, vae=None, image_encoder=None,
                 image_preprocess: dict | None = None):
        self.config = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = _DTYPES[config.dtype] if config.dtype else (
            torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.vae_dtype = _DTYPES[config.vae_dtype]
        max_blocks = config.max_blocks or config.block + 1
        if transformer is None:
            if not config.checkpoint:
                raise ValueError("WanDiftConfig.checkpoint must name a local WAN checkpoint directory")
            transformer = load_wan_transformer(config.checkpoint, config.transformer_subfolder, self.dtype,
                                               self.device, max_blocks=max_blocks)
        if vae is None:
            vae = load_wan_vae(config.checkpoint, self.vae_dtype, self.device)
        self.transformer, self.vae = transformer.eval(), vae.eval()
        self.image_encoder, self.image_preprocess = None, {}
        if config.block >= len(transformer.blocks):
            raise ValueError(f"block {config.block} does not exist: the transformer has {len(transformer.blocks)} blocks")

        tcfg, vcfg = transformer.config, vae.config
        self.z_dim = vcfg.z_dim
        self.latents_mean = torch.tensor(vcfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(vcfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.vae_stride = vcfg.scale_factor_spatial * (vcfg.patch_size or 1)
        self.patch = tuple(tcfg.patch_size)
        if self.patch[0] != 1:
            raise NotImplementedError(f"temporal patch size {self.patch[0]} is not supported (WAN 2.1 uses 1)")
        self.stride = self.vae_stride * self.patch[1]  # pixels per feature cell: 8 × 2 = 16 for WAN 2.1
        if tcfg.in_channels == self.z_dim:
            self.is_i2v = False
        elif tcfg.in_channels == 2 * self.z_dim + chunking.TEMPORAL_STRIDE:
            self.is_i2v = True
        else:
            raise ValueError(f"transformer in_channels={tcfg.in_channels} fits neither text-to-video ({self.z_dim}) "
                             f"nor image-to-video ({2 * self.z_dim + chunking.TEMPORAL_STRIDE}) with this VAE")
        if getattr(tcfg, "pos_embed_seq_len", None):
            raise NotImplementedError("first-last-frame (FLF2V) checkpoints are not supported")
        if self.is_i2v and tcfg.image_dim is not None:
            if image_encoder is None:
                image_encoder, image_preprocess = load_clip_image_encoder(config.checkpoint, self.dtype, self.device)
            self.image_encoder, self.image_preprocess = image_encoder.eval(), image_preprocess or {}
        self.feature_dim = tcfg.num_attention_heads * tcfg.attention_head_dim
        self.text_dim = tcfg.text_dim
        self.null_text = self._null_text(config.null_text)  # [1, 512, text_dim]

    @classmethod
    def from_path(cls, path: str | Path, **overrides) -> WanDiftTeacher:
        """The teacher a `wan:PATH` spec names.

        PATH a checkpoint root: WanDiftConfig defaults, then `overrides` (None is a value here, e.g.
        resolution=None keeps the input size). PATH a config/teacher/*.yaml: its settings (its `checkpoint`
        field or checkpoint=...), then the overrides that are not None.
        """
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            return cls(WanDiftConfig.from_yaml(path, **overrides))
        return cls(WanDiftConfig(checkpoint=str(path), **overrides))

    def _null_text(self, path: str | None) -> torch.Tensor:
        text = torch.zeros(1, TEXT_CONTEXT_LEN, self.text_dim)
        if path:
            from safetensors.torch import load_file

            embeds = load_file(path).get("prompt_embeds")
            if embeds is None:
                raise KeyError(f"{path}: no 'prompt_embeds' tensor")
            embeds = embeds.reshape(-1, embeds.shape[-1]).float()
            if embeds.shape[-1] != self.text_dim or embeds.shape[0] > TEXT_CONTEXT_LEN:
                raise ValueError(f"{path}: prompt_embeds {tuple(embeds.shape)} must be [<= {TEXT_CONTEXT_LEN}, "
                                 f"{self.text_dim}]")
            text[0, :embeds.shape[0]] = embeds
        return text.to(self.device, self.dtype)

    # ---- pieces of the recipe, each usable on its own ---------------------------------------------------

    def prepare(self, clips: torch.Tensor) -> torch.Tensor:
        """[B, F, 3, H, W] in [0, 1] → [B, 3, F, H′, W′] in [−1, 1] at the configured resolution, on device."""
        if clips.ndim != 5 or clips.shape[2] != 3:
            raise ValueError(f"clips must be [B, F, 3, H, W], got {tuple(clips.shape)}")
        chunking.check_clip_length(clips.shape[1])
        b, f, _, h, w = clips.shape
        x = clips.to(self.device, torch.float32)
        size = self.config.resolution or (h, w)
        if size[0] % self.stride or size[1] % self.stride:
            raise ValueError(f"frame size {size} must be a multiple of {self.stride}; set WanDiftConfig.resolution")
        if (h, w) != tuple(size):
            x = F.interpolate(x.flatten(0, 1), size=size, mode="bilinear", antialias=True, align_corners=False)
            x = x.unflatten(0, (b, f))
        return (x * 2.0 - 1.0).permute(0, 2, 1, 3, 4).contiguous()

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, F, H, W] in [−1, 1] → normalised latents [B, z, F′, H/8, W/8] float32 (posterior mode)."""
        latents = self.vae.encode(pixels.to(self.vae_dtype)).latent_dist.mode().float()
        mean, std = self.latents_mean.to(latents.device), self.latents_std.to(latents.device)
        return (latents - mean) / std

    def sample_noise(self, shape: tuple[int, ...], seed: int) -> torch.Tensor:
        """ε ~ N(0, I) drawn on the CPU from `seed`, so the same seed gives the same features on any device."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(shape, generator=generator, dtype=torch.float32)

    @torch.no_grad()
    def image_condition(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The I2V pipeline's first-frame condition for pixels [B, 3, F, H, W] in [−1, 1].

        Returns y [B, 4 + z, F′, H/8, W/8] (mask: 1 on the 4 channels of latent 0, else 0; then the normalised
        VAE latent of [frame 0, zeros…]) and the CLIP image tokens [B, L, image_dim] (None without CLIP).
        """
        h, w = pixels.shape[-2:]
        video_condition = torch.cat([pixels[:, :, :1], torch.zeros_like(pixels[:, :, 1:])], dim=2)
        latent_condition = self.encode(video_condition)
        mask = torch.zeros_like(latent_condition[:, :chunking.TEMPORAL_STRIDE])
        mask[:, :, 0] = 1.0
        y = torch.cat([mask, latent_condition], dim=1)
        encoder = self.image_encoder
        if encoder is None:
            return y, None
        pre = self.image_preprocess
        first = (pixels[:, :, 0].float() + 1.0) / 2.0  # [B, 3, H, W] in [0, 1]
        scale = pre.get("size", 224) / min(h, w)
        first = F.interpolate(first, size=(round(h * scale), round(w * scale)), mode="bicubic",
                              antialias=True, align_corners=False)
        ch, cw = pre.get("crop", (224, 224))
        top, left = (first.shape[2] - ch) // 2, (first.shape[3] - cw) // 2
        first = first[:, :, top:top + ch, left:left + cw]
        mean = torch.tensor(pre.get("mean", (0.5, 0.5, 0.5)), device=first.device).view(1, 3, 1, 1)
        std = torch.tensor(pre.get("std", (0.5, 0.5, 0.5)), device=first.device).view(1, 3, 1, 1)
        first = ((first - mean) / std).to(self.dtype)
        out = encoder(pixel_values=first, output_hidden_states=True)
        return y, out.hidden_states[-2]

    @contextmanager
    def _capture(self, store: dict):
        def hook(_module, _args, output):
            store["tokens"] = output
            raise _StopForward

        handle = self.transformer.blocks[self.config.block].register_forward_hook(hook)
        try:
            yield
        except _StopForward:
            pass
        finally:
            handle.remove()

    @torch.no_grad()
    def hooked_tokens(self, latent_input: torch.Tensor, image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """One transformer forward on latent_input [B, in_channels, F′, h, w] with the null text embedding
        (zeros [B, 512, text_dim], or config.null_text zero-padded);
        returns the hooked block's output tokens [B, F′·h/2·w/2, C] (float32). No block after it runs."""
        transformer = self.transformer
        b = latent_input.shape[0]
        text = self.null_text.expand(b, -1, -1)
        timestep = torch.full((b,), float(self.config.timestep), device=self.device)
        store: dict = {}
        with self._capture(store):
            transformer(hidden_states=latent_input.to(self.device, self.dtype), timestep=timestep,
                        encoder_hidden_states=text, encoder_hidden_states_image=image_embeds, return_dict=False)
        if "tokens" not in store:
            raise RuntimeError(f"block {self.config.block} never ran")
        return store["tokens"].float()

    # ---- public API --------------------------------------------------------------------------------------

    @torch.no_grad()
    def clip_features(self, clips: torch.Tensor, noise: torch.Tensor | None = None, seed: int | None = None
                      ) -> torch.Tensor:
        """Chunk-level DIFT: clips [B, 4k+1, 3, H, W] in [0, 1] → features [B, k+1, C, H/16, W/16] float32.

        noise: ε [B, z, k+1, H/8, W/8] to use instead of a seeded draw (tests, reproductions).
        seed:  noise seed (default config.seed); one draw of shape [B, …] for the whole batch.
        """
        pixels = self.prepare(clips)
        x0 = self.encode(pixels)
        if noise is None:
            noise = self.sample_noise(tuple(x0.shape), self.config.seed if seed is None else seed)
        if tuple(noise.shape) != tuple(x0.shape):
            raise ValueError(f"noise shape {tuple(noise.shape)} != latent shape {tuple(x0.shape)}")
        latent_input = add_flow_noise(x0, noise.to(x0.device, torch.float32), self.config.sigma)
        image_embeds = None
        if self.is_i2v:
            y, image_embeds = self.image_condition(pixels)
            latent_input = torch.cat([latent_input, y], dim=1)
        tokens = self.hooked_tokens(latent_input, image_embeds)
        _, _, frames, h, w = x0.shape
        return tokens_to_maps(tokens, frames, h // self.patch[1], w // self.patch[2])

    @torch.no_grad()
    def latent_features(self, video: torch.Tensor) -> torch.Tensor:
        """Video [T, 3, H, W] (any T ≥ 1) → one feature map per video latent: [1 + ⌈(T−1)/4⌉, C, h, w].

        Chunks come from `chunking.plan_chunks(T, config.chunk_frames)`; chunk c draws its noise from
        seed + c. Row 0 (frame 0, the shared reference) comes from the first chunk.
        """
        if video.ndim != 4 or video.shape[1] != 3:
            raise ValueError(f"video must be [T, 3, H, W], got {tuple(video.shape)}")
        plan = chunking.plan_chunks(video.shape[0], self.config.chunk_frames)
        out: torch.Tensor | None = None
        order = list(enumerate(plan.chunks))
        for start in range(0, len(order), self.config.chunk_batch):
            group = order[start:start + self.config.chunk_batch]
            by_len: dict[int, list] = {}
            for c, chunk in group:
                by_len.setdefault(len(chunk.frames), []).append((c, chunk))
            for items in by_len.values():
                clips = torch.stack([video[list(chunk.frames)] for _, chunk in items])
                noise = torch.cat([self._chunk_noise(clips.shape, self.config.seed + c) for c, _ in items])
                feats = self.clip_features(clips, noise=noise)
                if out is None:
                    out = feats.new_empty((plan.num_latents, *feats.shape[2:]))
                for (_, chunk), f in zip(items, feats):
                    for pos in chunk.take:
                        out[chunk.latents[pos]] = f[pos]
        return out

    def _chunk_noise(self, clip_shape: torch.Size, seed: int) -> torch.Tensor:
        _, f, _, h, w = clip_shape
        size = self.config.resolution or (h, w)
        shape = (1, self.z_dim, chunking.check_clip_length(f), size[0] // self.vae_stride, size[1] // self.vae_stride)
        return self.sample_noise(shape, seed)

    @torch.no_grad()
    def features_per_frame(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame DIFT targets: video [T, 3, H, W] float32 in [0, 1] → [T, C, H/16, W/16] float32.

        Frame t takes the features of the latent that encodes it, π(t) = ⌈t/4⌉ (frame 0 → latent 0; frames
        4k−3..4k → latent k), so the 4 frames of a group share one map. Store `latent_features` instead when
        memory matters (4× smaller) and expand with `chunking.frame_to_latent`.
        """
        latents = self.latent_features(video)
        index = torch.from_numpy(chunking.frame_to_latent(video.shape[0])).to(latents.device)
        return latents[index]

    @torch.no_grad()
    def features_for_sparse_frames(self, images: torch.Tensor) -> torch.Tensor:
        """Frames sampled far apart (e.g. the probe's S frames, ≥ 5 apart) → [S, C, h, w], one map each.

        Fed as a video, frames 1..3 would share latent 1. Instead each frame after the first is repeated
        4 times — [f0, f1 f1 f1 f1, f2 f2 f2 f2, …], 4(S−1)+1 frames — so latent s encodes frame s alone
        (a still 4-frame group) while all S frames still attend to each other in one forward.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [S, 3, H, W], got {tuple(images.shape)}")
        index = [0, *(s for s in range(1, images.shape[0]) for _ in range(chunking.TEMPORAL_STRIDE))]
        return self.latent_features(images[index])

    def describe(self) -> dict:
        """What produced the features: the cache manifest's `teacher` entry (settings that change them)."""
        return {**self.config.manifest_fields(), "feature_dim": self.feature_dim, "stride": self.stride,
                "image_to_video": self.is_i2v, "dtype": str(self.dtype).removeprefix("torch.")}


__all__ = ["WanDiftConfig", "WanDiftTeacher", "add_flow_noise", "tokens_to_maps"]
