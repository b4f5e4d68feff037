"""Frozen encoders for the 3D probe, chosen by a SPEC string.

One small interface (:class:`FrozenEncoder`): ``encode_clip(images [S, 3, H, W] in [0, 1]) →
tokens [S, N, C]`` on a ``grid_size(H, W)`` patch grid (row-major), plus ``dim``, ``name`` and
``per_frame`` (True when frames are encoded independently: the papers' lower-bound control).

SPECs:
    random-vit-ti     the floor: a ViT-Ti student with fixed random weights (seed 0)
    random-cnn        the CNN student preset, fixed random weights (seed 0)
    pixels            raw 16x16 RGB patches (768-d), per frame: appearance only, no learning
    random-frame-cpu  the per-frame student of format version 2 (``FrameStudent``, preset cpu), fixed
                      random weights (seed 0): the random-init control of that architecture
                      (``random-frame-tiny``: the tests' preset)
    student:PATH      a student checkpoint dir (config.json + model.safetensors), or an exported
                      ``encoder.onnx`` (a file, or a directory holding one), run with onnxruntime;
                      or a format-version-2 artifact (a directory whose card.json says
                      format_version 2, or its ``frame.onnx``): frame.onnx's ``tokens`` output
    wan:PATH          WAN 2.1 DIFT teacher from a local diffusers checkpoint (distill.teacher.wan);
                      the S frames of a clip go through the video model together
    hf:PATH           a local transformers vision model directory (e.g. DINOv2), read per frame;
                      its prefix tokens (CLS, registers) are dropped
"""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.nets.models.config import IMAGENET_MEAN, IMAGENET_STD
from vega_ros.artifact import sha256_file
from vega_ros.contract import CARD_FILE, CARD_FORMAT_VERSION_V2, ENCODER_FILE, FRAME_FILE, FRAME_FOCAL, FRAME_IMAGE, TOKENS


class FrozenEncoder(abc.ABC):
    """A frozen feature extractor the probe reads. Subclasses set ``name``, ``dim``, ``per_frame``."""

    name: str = ""
    dim: int = 0
    per_frame: bool = True

    @abc.abstractmethod
    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (h, w) for images of ``height x width``."""

    @abc.abstractmethod
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        """``images [S, 3, H, W]`` float32 in [0, 1] RGB → ``tokens [S, N, C]`` float32 (N = h * w)."""

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "per_frame": self.per_frame}


class ModuleEncoder(FrozenEncoder):
    """Any ``nn.Module`` with the exported-encoder contract: ``[B, 3, H, W]`` → ``[B, N, C]``."""

    def __init__(self, module: torch.nn.Module, name: str, dim: int, patch: int, batch: int = 16):
        self.module = module.eval().requires_grad_(False)
        self.name, self.dim, self.patch, self.batch = name, dim, patch, batch

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch, width // self.patch

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.module(images[i : i + self.batch]) for i in range(0, len(images), self.batch)])


def default_threads() -> int:
    """ONNX Runtime intra-op threads for the probe's encoders: ``OMP_NUM_THREADS`` if set, else 1.

    ONNX Runtime ignores ``OMP_NUM_THREADS`` and would take every core; the probe runs beside
    other jobs on a small machine, so the count is always given explicitly."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def ort_cpu_session(path: Path, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on CPU with an explicit intra-op thread count (and one
    inter-op thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads if threads is not None else default_threads())
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxEncoder(FrozenEncoder):
    """An exported ``encoder.onnx`` (one image → tokens) run with onnxruntime on CPU."""

    def __init__(self, path: Path, name: str, threads: int | None = None):
        self.session = ort_cpu_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.name = name
        self.sha256 = sha256_file(str(path))
        shape = self.session.get_outputs()[0].shape
        self.dim = int(shape[-1]) if isinstance(shape[-1], int) else 0
        self.patch, self.grid = 16, None
        card = path.parent / CARD_FILE
        if card.is_file():  # an exported artifact: its card gives the fixed input size and token count
            from vega_ros.artifact import read_card

            parsed = read_card(str(path.parent))
            h, w, n = parsed.input.height, parsed.input.width, parsed.tokens_n
            gh = int(round((n * h / w) ** 0.5))
            if gh * (n // gh) != n:
                raise ValueError(f"{card}: {n} tokens do not form a grid for a {h}x{w} input")
            self.grid = (h, w, gh, n // gh)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        if self.grid is None:
            return height // self.patch, width // self.patch
        h, w, gh, gw = self.grid
        if (height, width) != (h, w):
            raise ValueError(f"{self.name}: the exported encoder takes {h}x{w} images, the data is {height}x{width}")
        return gh, gw

    def describe(self) -> dict:
        return {**super().describe(), "sha256": self.sha256}  # ties probe results to the exact file

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        outs = [self.session.run(None, {self.input_name: images[i : i + 1].numpy()})[0] for i in range(len(images))]
        tokens = torch.from_numpy(np.concatenate(outs)).float()
        self.dim = tokens.shape[-1]
        return tokens


class FrameOnnxEncoder(FrozenEncoder):
    """A format-version-2 artifact's ``frame.onnx`` (image + focal → depth, conf, tokens) run per
    frame with onnxruntime on CPU; the probe reads its ``tokens`` output ``[B, N, C]``.

    Input and output names come from :mod:`vega_ros.contract`; the card gives the fixed input size,
    the token grid and ``canonical_focal_px``. ``describe()`` carries frame.onnx's sha256.
    """

    def __init__(self, path: Path, name: str, threads: int | None = None, batch: int = 1):
        from vega_ros.artifact import read_card

        model_dir = path.parent
        if not (model_dir / CARD_FILE).is_file():
            raise FileNotFoundError(f"{name}: {path} has no {CARD_FILE} beside it (the card gives the focal and the grid)")
        self.card = read_card(str(model_dir))
        if self.card.format_version != CARD_FORMAT_VERSION_V2 or FRAME_FILE not in self.card.files:
            raise ValueError(f"{name}: {model_dir / CARD_FILE} is format_version {self.card.format_version} "
                             f"without {FRAME_FILE}, not a format-version-2 artifact")
        self.session = ort_cpu_session(path, threads)
        self.name, self.batch = name, batch
        self.sha256 = sha256_file(str(path))
        h, w, n = self.card.input.height, self.card.input.width, self.card.tokens_n
        gh = int(round((n * h / w) ** 0.5))
        if gh * (n // gh) != n:
            raise ValueError(f"{model_dir / CARD_FILE}: {n} tokens do not form a grid for a {h}x{w} input")
        self.grid = (h, w, gh, n // gh)
        self.dim = int(self.card.tokens_c)
        # The tokens do not depend on focal_px (only the depth output is rescaled by
        # focal_px / canonical_focal_px), and encode_clip is given images without intrinsics; the
        # card's canonical focal is the one value the graph is sure to have been exported and
        # parity-checked for, so every frame gets it.
        self.focal = float(self.card.canonical_focal_px)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        h, w, gh, gw = self.grid
        if (height, width) != (h, w):
            raise ValueError(f"{self.name}: {FRAME_FILE} takes {h}x{w} images, the data is {height}x{width}")
        return gh, gw

    def describe(self) -> dict:
        return {**super().describe(), "graph": FRAME_FILE, "sha256": self.sha256}  # ties probe results to the exact file

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        self.grid_size(*images.shape[-2:])
        outs = []
        for i in range(0, len(images), self.batch):
            x = images[i : i + self.batch].float().numpy()
            focal = np.full((len(x),), self.focal, dtype=np.float32)
            outs.append(self.session.run([TOKENS], {FRAME_IMAGE: x, FRAME_FOCAL: focal})[0])
        tokens = torch.from_numpy(np.concatenate(outs)).float()
        self.dim = tokens.shape[-1]
        return tokens


class FrameModuleEncoder(FrozenEncoder):
    """A :class:`~distill.nets.models.frame_student.FrameStudent` in torch: ``maps(image, focal)['tokens']``.

    Focal: the model's canonical one, as for :class:`FrameOnnxEncoder` (the tokens do not depend on it).
    """

    def __init__(self, model: torch.nn.Module, name: str, batch: int = 16):
        self.model = model.eval().requires_grad_(False)
        self.name, self.dim, self.batch = name, int(model.embed_dim), batch

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return self.model.grid_size(height, width)

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, len(images), self.batch):
            x = images[i : i + self.batch]
            focal = torch.full((len(x),), float(self.model.canonical_focal_px))
            outs.append(self.model.maps(x, focal)["tokens"])
        return torch.cat(outs).float()


class HFEncoder(FrozenEncoder):
    """A local transformers vision model (``AutoModel``), per frame; patch tokens of the last hidden state.

    Normalisation comes from the directory's ``preprocessor_config.json`` (``image_mean``/``image_std``)
    or ImageNet's. Images are resized to the nearest lower multiple of the patch size if needed.
    """

    def __init__(self, path: Path, name: str, batch: int = 8):
        from transformers import AutoConfig, AutoModel

        if not path.is_dir():
            raise FileNotFoundError(f"hf:{path}: not a local transformers model directory")
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval().requires_grad_(False)
        patch = getattr(config, "patch_size", None) or getattr(getattr(config, "vision_config", None), "patch_size", None)
        if patch is None:
            raise ValueError(f"hf:{path}: the config has no patch_size; only ViT-like models are supported")
        self.patch = int(patch if isinstance(patch, int) else patch[0])
        self.dim = int(getattr(config, "hidden_size", 0))
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            pc = json.loads(pre.read_text())
            mean, std = tuple(pc.get("image_mean", mean)), tuple(pc.get("image_std", std))
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.name, self.batch = name, batch

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch, width // self.patch

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        gh, gw = self.grid_size(h, w)
        if (gh * self.patch, gw * self.patch) != (h, w):
            images = F.interpolate(images, size=(gh * self.patch, gw * self.patch), mode="bilinear", align_corners=False)
        x = (images - self.mean) / self.std
        outs = []
        for i in range(0, len(x), self.batch):
            hidden = self.model(pixel_values=x[i : i + self.batch]).last_hidden_state
            outs.append(hidden[:, hidden.shape[1] - gh * gw :])  # drop CLS / register tokens
        tokens = torch.cat(outs).float()
        self.dim = tokens.shape[-1]
        return tokens


class WanEncoder(FrozenEncoder):
    """WAN 2.1 DIFT features through ``distill.teacher.wan.WanDiftTeacher.features_per_frame``.

    The S frames of a clip are one (short) video; frame t reads latent π(t). Input size is kept
    (``resolution=None``), so H and W must be multiples of 16.
    """

    per_frame = False

    def __init__(self, path: Path, name: str):
        try:
            from distill.teacher.wan import WanDiftConfig, WanDiftTeacher
        except ImportError as e:  # the teacher module is issue 6's
            raise NotImplementedError(
                f"wan:{path} needs distill.teacher.wan (WanDiftConfig, WanDiftTeacher.features_per_frame); "
                f"it could not be imported: {e}"
            ) from e
        self.teacher = WanDiftTeacher(WanDiftConfig(checkpoint=str(path), resolution=None))
        self.name, self.dim = name, int(getattr(self.teacher, "feature_dim", 0))

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // 16, width // 16

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.teacher.features_per_frame(images)  # [S, C, h, w]
        self.dim = feats.shape[1]
        return feats.flatten(2).transpose(1, 2).float().cpu()


class PixelEncoder(FrozenEncoder):
    """Tokens are the raw pixels of each 16x16 patch (``[S, N, 3 * 16 * 16]``, row-major): a control
    that holds appearance and position but nothing learned."""

    def __init__(self, patch: int = 16):
        self.patch, self.name, self.dim = patch, "pixels", 3 * patch * patch

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch, width // self.patch

    @torch.no_grad()
    def encode_clip(self, images: torch.Tensor) -> torch.Tensor:
        gh, gw = self.grid_size(*images.shape[-2:])
        x = images[..., : gh * self.patch, : gw * self.patch]
        return F.unfold(x, kernel_size=self.patch, stride=self.patch).transpose(1, 2).contiguous()


def _is_v2_dir(path: Path) -> bool:
    card = path / CARD_FILE
    if not (path / FRAME_FILE).is_file() or not card.is_file():
        return False
    try:
        return json.loads(card.read_text()).get("format_version") == CARD_FORMAT_VERSION_V2
    except (OSError, ValueError):
        return False


def onnx_file_of_spec(spec: str) -> Path | None:
    """The graph a ``student:PATH`` SPEC runs for its tokens (an exported artifact's
    ``encoder.onnx``, or ``frame.onnx`` of a format-version-2 artifact), else None."""
    kind, sep, rest = spec.partition(":")
    if kind != "student" or not sep or not rest:
        return None
    path = Path(rest).expanduser()
    if path.suffix != ".onnx" and _is_v2_dir(path):
        return path / FRAME_FILE
    onnx = path if path.suffix == ".onnx" else path / ENCODER_FILE
    return onnx if onnx.is_file() and not (path / "model.safetensors").is_file() else None


def token_graph_of_card(card) -> str:
    """The graph file whose tokens the probe reads for an artifact with this card (a
    ``vega_ros.artifact.ModelCard``): ``frame.onnx`` in format version 2, else ``encoder.onnx``."""
    return FRAME_FILE if card.format_version == CARD_FORMAT_VERSION_V2 else ENCODER_FILE


def parse_encoder_spec(spec: str) -> FrozenEncoder:
    """Build the frozen encoder a SPEC names (see the module docstring)."""
    from distill.nets.models.student import build_student, load_student

    if spec == "pixels":
        return PixelEncoder()
    if spec.startswith("random-frame-"):
        from distill.nets.models.frame_student import build_frame_student

        return FrameModuleEncoder(build_frame_student(spec.removeprefix("random-frame-"), seed=0), spec)
    if spec in ("random-vit-ti", "random-vit-s", "random-cnn"):
        preset = spec.removeprefix("random-")
        model = build_student(preset, seed=0)
        return ModuleEncoder(model, spec, model.embed_dim, model.patch_size)
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"bad encoder SPEC {spec!r}: use random-vit-ti, random-cnn, random-frame-cpu, pixels, "
                         f"student:PATH, wan:PATH or hf:PATH")
    path = Path(rest).expanduser()
    if kind == "student":
        onnx = onnx_file_of_spec(spec)
        if onnx is not None and onnx.name == FRAME_FILE:
            return FrameOnnxEncoder(onnx, spec)
        if onnx is not None:
            return OnnxEncoder(onnx, spec)
        model = load_student(path)
        return ModuleEncoder(model, spec, model.embed_dim, model.patch_size)
    if kind == "hf":
        return HFEncoder(path, spec)
    if kind == "wan":
        return WanEncoder(path, spec)
    raise ValueError(f"unknown encoder kind {kind!r} in SPEC {spec!r}: use student:, wan: or hf:")
