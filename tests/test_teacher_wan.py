"""WAN DIFT teacher on tiny random WAN checkpoints saved in the diffusers layout (CPU, float32)."""

import pytest
import torch

from distill.config import ConfigError
from distill.teacher import chunking
from distill.teacher.presets import save_random_checkpoint
from distill.teacher.wan import (
    TEXT_CONTEXT_LEN,
    WanDiftConfig,
    WanDiftTeacher,
    add_flow_noise,
)

H, W = 32, 48  # teacher resolution: feature maps are 2 × 3
BLOCK = 2


@pytest.fixture(scope="module")
def t2v_root(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("wan-t2v"), "tiny")


@pytest.fixture(scope="module")
def i2v_root(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("wan-i2v"), "tiny-i2v")


def make_teacher(root, **kw):
    cfg = {"checkpoint": str(root), "block": BLOCK, "resolution": (H, W), "chunk_frames": 9, "device": "cpu"}
    cfg.update(kw)
    return WanDiftTeacher(WanDiftConfig(**cfg))


@pytest.fixture(scope="module")
def teacher(t2v_root):
    return make_teacher(t2v_root)


def video(frames, h=H, w=W, seed=0):
    return torch.rand(frames, 3, h, w, generator=torch.Generator().manual_seed(seed))


def capture_transformer_inputs(teacher):
    """Record the kwargs of every transformer call."""
    calls = []
    handle = teacher.transformer.register_forward_pre_hook(
        lambda _m, _a, kwargs: calls.append({k: v for k, v in kwargs.items()}), with_kwargs=True)
    return calls, handle


def manual_block_output(transformer, inputs, block):
    """The transformer's own forward written out, stopped after `block`: the reference the hook must match."""
    x = inputs["hidden_states"]
    rotary = transformer.rope(x)
    tokens = transformer.patch_embedding(x).flatten(2).transpose(1, 2)
    _, tproj, text, image = transformer.condition_embedder(
        inputs["timestep"], inputs["encoder_hidden_states"], inputs["encoder_hidden_states_image"])
    tproj = tproj.unflatten(1, (6, -1))
    if image is not None:
        text = torch.cat([image, text], dim=1)
    for b in transformer.blocks[:block + 1]:
        tokens = b(tokens, text, tproj, rotary)
    return tokens


def test_shapes_per_clip_and_per_frame(teacher):
    assert teacher.stride == 16 and not teacher.is_i2v
    clips = torch.stack([video(9, seed=1), video(9, seed=2)])
    assert teacher.clip_features(clips).shape == (2, 3, teacher.feature_dim, H // 16, W // 16)
    # input at another size is resized to the configured resolution
    per_frame = teacher.features_per_frame(video(13, 40, 60))
    assert per_frame.shape == (13, teacher.feature_dim, H // 16, W // 16)
    assert per_frame.dtype == torch.float32 and torch.isfinite(per_frame).all()


def test_noise_formula_and_null_text_reach_the_transformer(teacher):
    clips = video(9)[None]
    pixels = clips.permute(0, 2, 1, 3, 4) * 2 - 1
    vae = teacher.vae
    raw = vae.encode(pixels).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    x0 = (raw - mean) / std
    assert x0.shape == (1, 4, 3, H // 8, W // 8)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))
    sigma = 0.749
    calls, handle = capture_transformer_inputs(teacher)
    try:
        teacher.clip_features(clips, noise=noise)
    finally:
        handle.remove()
    (inputs,) = calls
    assert torch.allclose(inputs["hidden_states"], (1 - sigma) * x0 + sigma * noise, atol=1e-5, rtol=0)
    assert torch.equal(add_flow_noise(x0, noise, sigma), (1 - sigma) * x0 + sigma * noise)
    assert inputs["timestep"].tolist() == [749.0]
    text = inputs["encoder_hidden_states"]
    assert text.shape == (1, TEXT_CONTEXT_LEN, 16) and not text.any()
    assert inputs["encoder_hidden_states_image"] is None


def test_hook_returns_the_chosen_block_and_later_blocks_never_run(t2v_root):
    teacher = make_teacher(t2v_root, max_blocks=4)  # all 4 blocks loaded
    later_calls = []
    handle_later = teacher.transformer.blocks[BLOCK + 1].register_forward_pre_hook(
        lambda *_: later_calls.append(1))
    calls, handle = capture_transformer_inputs(teacher)
    try:
        feats = teacher.clip_features(video(9)[None])  # [1, F′, C, h, w]
    finally:
        handle.remove()
        handle_later.remove()
    assert later_calls == []
    with torch.no_grad():
        ref = manual_block_output(teacher.transformer, calls[0], BLOCK)
        wrong = manual_block_output(teacher.transformer, calls[0], BLOCK - 1)
    _, frames, _, h, w = feats.shape
    # token n = f·h·w + i·w + j  ↔  feature map [f, :, i, j]
    f, i, j = torch.meshgrid(torch.arange(frames), torch.arange(h), torch.arange(w), indexing="ij")
    from_maps = feats[0][f.flatten(), :, i.flatten(), j.flatten()]  # [N, C] in token order
    assert torch.allclose(from_maps, ref[0], atol=1e-5)
    assert not torch.allclose(from_maps, wrong[0], atol=1e-3)


def test_truncated_load_gives_identical_features(t2v_root, teacher):
    full = make_teacher(t2v_root, max_blocks=4)
    assert len(full.transformer.blocks) == 4 and len(teacher.transformer.blocks) == BLOCK + 1
    clip = video(9, seed=3)[None]
    assert torch.equal(full.clip_features(clip), teacher.clip_features(clip))


def test_seeded_noise_is_deterministic(teacher):
    clip = video(5)[None]
    a, b = teacher.clip_features(clip, seed=1), teacher.clip_features(clip, seed=1)
    c = teacher.clip_features(clip, seed=2)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_refuses_clips_that_are_not_4k_plus_1(teacher):
    with pytest.raises(ValueError, match="4k\\+1"):
        teacher.clip_features(video(8)[None])


def test_per_frame_targets_follow_pi_and_chunks_share_frame_0(teacher):
    v = video(14, seed=4)  # latents 0..4 → chunks {1,2} and {3,4} (chunk_frames 9)
    latents = teacher.latent_features(v)
    assert latents.shape[0] == 5
    per_frame = teacher.features_per_frame(v)
    pi = chunking.frame_to_latent(14)
    for t in range(14):
        assert torch.equal(per_frame[t], latents[pi[t]])
    # chunk 0 = frames 0..8 with seed + 0; chunk 1 = frame 0 + frames 9..13 (+ 3 repeats of 13) with seed + 1
    first = teacher.clip_features(v[:9][None], seed=0)[0]
    assert torch.equal(latents[:3], first)
    second_frames = [0, *range(9, 14), 13, 13, 13]
    second = teacher.clip_features(v[second_frames][None], seed=1)[0]
    assert torch.equal(latents[3:], second[1:])


def test_image_to_video_checkpoint_conditions_on_the_first_frame(i2v_root):
    teacher = make_teacher(i2v_root)
    assert teacher.is_i2v and teacher.image_encoder is not None
    clips = video(9)[None]
    calls, handle = capture_transformer_inputs(teacher)
    try:
        feats = teacher.clip_features(clips)
    finally:
        handle.remove()
    assert feats.shape == (1, 3, teacher.feature_dim, H // 16, W // 16)
    x = calls[0]["hidden_states"]  # [1, z + 4 + z, F′, h, w]: noisy latents, mask, first-frame latent
    assert x.shape == (1, 12, 3, H // 8, W // 8)
    mask = x[:, 4:8]
    assert torch.equal(mask[:, :, 0], torch.ones_like(mask[:, :, 0])) and not mask[:, :, 1:].any()
    pixels = clips.permute(0, 2, 1, 3, 4) * 2 - 1
    condition = torch.cat([pixels[:, :, :1], torch.zeros_like(pixels[:, :, 1:])], dim=2)
    assert torch.allclose(x[:, 8:], teacher.encode(condition), atol=1e-6)
    image = calls[0]["encoder_hidden_states_image"]
    assert image.shape == (1, 5, 16)  # CLIP tokens (CLS + 2×2 patches) of the tiny encoder, hidden_states[-2]
    # a different first frame changes the condition and so the features of later frames too
    other = clips.clone()
    other[:, 0] = 1 - other[:, 0]
    assert not torch.allclose(teacher.clip_features(other)[:, 1:], feats[:, 1:], atol=1e-4)


def test_bfloat16_load_keeps_diffusers_fp32_modules(t2v_root):
    from distill.teacher.loading import load_wan_transformer

    model = load_wan_transformer(t2v_root, "transformer", torch.bfloat16, torch.device("cpu"), max_blocks=2)
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.blocks[0].scale_shift_table.dtype == torch.float32
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="transformer"):
        WanDiftTeacher(WanDiftConfig(checkpoint=str(tmp_path / "nope"), device="cpu"))


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="multiples of 16"):
        WanDiftConfig(resolution=(30, 48))
    with pytest.raises(ValueError, match="max_blocks"):
        WanDiftConfig(block=20, max_blocks=20)
    with pytest.raises(ValueError, match="4k\\+1"):
        WanDiftConfig(chunk_frames=80)


def test_sparse_frames_get_one_latent_each(teacher):
    images = video(3, seed=6)  # e.g. the probe's frames, far apart in the source video
    feats = teacher.features_for_sparse_frames(images)
    assert feats.shape == (3, teacher.feature_dim, H // 16, W // 16)
    repeated = images[[0, 1, 1, 1, 1, 2, 2, 2, 2]]
    assert torch.equal(feats, teacher.clip_features(repeated[None], seed=0)[0])
    assert not torch.allclose(feats[1], feats[2])


def test_model_id_defaults_to_the_checkpoint_folder_name():
    assert WanDiftConfig(checkpoint="/models/Wan2.1-T2V-14B-Diffusers").model_id == "Wan2.1-T2V-14B-Diffusers"
    assert WanDiftConfig(checkpoint="/x", model_id="mine").model_id == "mine"


def test_null_text_file_is_zero_padded_to_512_tokens(t2v_root, teacher, tmp_path):
    from safetensors.torch import save_file

    embeds = torch.randn(3, 16)
    save_file({"prompt_embeds": embeds}, str(tmp_path / "empty_prompt.safetensors"))
    custom = make_teacher(t2v_root, null_text=str(tmp_path / "empty_prompt.safetensors"))
    calls, handle = capture_transformer_inputs(custom)
    try:
        feats = custom.clip_features(video(5)[None])
    finally:
        handle.remove()
    text = calls[0]["encoder_hidden_states"]
    assert text.shape == (1, TEXT_CONTEXT_LEN, 16)
    assert torch.equal(text[0, :3], embeds) and not text[0, 3:].any()
    assert not torch.allclose(feats, teacher.clip_features(video(5)[None]))
    assert custom.describe()["null_text"] == "empty_prompt.safetensors"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bfloat16_matches_cpu_float32(t2v_root, teacher):
    gpu = make_teacher(t2v_root, device="cuda")  # bfloat16 by default on CUDA
    assert gpu.dtype == torch.bfloat16
    clip = video(9, seed=7)[None]
    got, want = gpu.clip_features(clip).cpu(), teacher.clip_features(clip)
    cos = torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0)
    assert got.shape == want.shape and cos > 0.99


def test_from_path_takes_a_checkpoint_or_a_yaml(t2v_root, tmp_path):
    yaml_path = tmp_path / "t.yaml"
    yaml_path.write_text(f"checkpoint: {t2v_root}\nblock: 1\nresolution: [32, 48]\ndevice: cpu\n")
    assert WanDiftTeacher.from_path(yaml_path).config.block == 1
    cfg = WanDiftConfig.from_yaml(yaml_path, ["block=2", "seed=5"], block=0, model_id="m")
    assert (cfg.block, cfg.seed, cfg.model_id, cfg.resolution) == (2, 5, "m", (32, 48))  # file, flags, then --set
    with pytest.raises(ConfigError, match=r"t.yaml: timestep must be in \(0, 1000\), got 1000$"):
        WanDiftConfig.from_yaml(yaml_path, ["timestep=1000"])
    with pytest.raises(ConfigError, match=r"t.yaml: blok: unknown field of WanDiftConfig; did you mean 'block'\?$"):
        yaml_path.write_text("blok: 3\n")
        WanDiftConfig.from_yaml(yaml_path)
    direct = WanDiftTeacher.from_path(t2v_root, block=3, resolution=None, device="cpu")
    assert direct.config.block == 3 and direct.config.resolution is None
    assert len(direct.transformer.blocks) == 4


def test_i2v_condition_matches_the_diffusers_pipeline(i2v_root):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    teacher = make_teacher(i2v_root)
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=None, image_encoder=None, image_processor=None,
                                   vae=teacher.vae, transformer=teacher.transformer,
                                   scheduler=FlowMatchEulerDiscreteScheduler())
    pixels = teacher.prepare(video(9, seed=8)[None])
    y, _ = teacher.image_condition(pixels)
    with torch.no_grad():
        _, want = pipe.prepare_latents(pixels[:, :, 0], 1, 4, H, W, 9, torch.float32, torch.device("cpu"),
                                       latents=torch.zeros(1, 4, 3, H // 8, W // 8))
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-5)


def test_sharded_checkpoint_loads_the_same_weights(t2v_root, tmp_path):
    from diffusers import WanTransformer3DModel

    from distill.teacher.loading import INDEX_NAME, load_wan_transformer

    single = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(str(t2v_root / "transformer")))
    single.load_state_dict(load_wan_transformer(t2v_root, "transformer", torch.float32, torch.device("cpu"),
                                                max_blocks=4).state_dict())
    single.save_pretrained(tmp_path / "transformer", max_shard_size="20KB")
    assert (tmp_path / "transformer" / INDEX_NAME).is_file()
    sharded = load_wan_transformer(tmp_path, "transformer", torch.float32, torch.device("cpu"), max_blocks=3)
    want = single.state_dict()
    got = sharded.state_dict()
    assert len(sharded.blocks) == 3 and got.keys() <= want.keys()
    assert all(torch.equal(got[k], want[k]) for k in got)


def test_preset_built_up_to_a_block_equals_the_full_models_first_blocks():
    """bench_teacher builds only the blocks up to the hook (a 14B-shaped model must fit one GPU)."""
    from distill.teacher.presets import build_modules

    full, _, _ = build_modules("tiny", seed=1)
    part, _, _ = build_modules("tiny", seed=1, num_layers=2)
    assert len(full.blocks) == 4 and len(part.blocks) == 2
    for a, b in zip(full.blocks[:2].state_dict().values(), part.blocks.state_dict().values()):
        assert torch.equal(a, b)
