"""Run an exported manipulation policy (no torch): ``policy.onnx`` + the student encoder artifact.

A policy artifact ``models/<name>/`` holds::

    policy.onnx                inputs  agentview, wrist [B, 3, H, W] float32 RGB in [0, 1];
                                       tokens_3d [B, 2, N, C] (student tokens of agentview, wrist);
                                       proprio [B, P]; language [B, L]
                               output  actions [B, K, 7] in [-1, 1]
                               (an ablation's graph may lack an input it does not use)
    language_embeddings.json   {instruction: [L floats]} (all-MiniLM-L6-v2, computed at training time)
    policy_card.json           kind "policy", fusion, image_size, chunk K, execute_steps, proprio
                               layout, encoder artifact (directory name and its encoder sha256),
                               training data and budget, measured success, sha256 of each file

An instruction the policy was not trained on (a reworded one) needs a sentence encoder artifact
(``vega_ros.language``, ``models/minilm-l6-v2-int8``: the all-MiniLM-L6-v2 the embeddings came from).
``language_mode`` says what the policy then hears: ``nearest`` (the default) the stored embedding of
the known instruction closest to the new one by cosine, so the policy runs a skill it was trained
on; ``embed`` the new sentence's own embedding (the policy interpolates between the instructions it
knows). :attr:`OnnxPolicy.language_match` reports the match of the last ``reset``.

Each call of :meth:`OnnxPolicy.act` returns one action; a new chunk is predicted every
``execute_steps`` calls (action chunking), so the encoder and the policy graph run once per
``execute_steps`` control steps. Two run-time alternatives, chosen when the policy is loaded:
another ``execute_steps`` (1 .. K), or ACT's temporal ensembling (Zhao et al., RSS 2023): a chunk
is predicted at every step and the action for step t is the weighted mean of what every chunk that
covers t predicted for it (``ensemble_action``).
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from vega_ros.artifact import sha256_file
from vega_ros.policy_io import PolicyInputs, check_action
from vega_ros.proprio import PROPRIO_LAYOUTS, encode_proprio

POLICY_FILE = "policy.onnx"
LANGUAGE_FILE = "language_embeddings.json"
POLICY_CARD = "policy_card.json"
POLICY_INPUTS = ("agentview", "wrist", "tokens_3d", "proprio", "language")
DEFAULT_SENTENCE_ENCODER = "minilm-l6-v2-int8"
LANGUAGE_MODES = ("nearest", "embed")


class PolicyArtifactError(ValueError):
    """A policy artifact is missing a file, fails its checksum, or does not match its card."""


@dataclass
class PolicyCard:
    name: str
    fusion: str
    image_size: int
    chunk: int
    execute_steps: int
    proprio_layout: list[str]
    language_dim: int
    encoder: dict[str, Any]  # {"name": dir name under models/, "encoder_sha256": ...}; empty for semantic-only
    files: dict[str, str]  # file name -> sha256
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    kind: str = "policy"
    format_version: int = 1

    @classmethod
    def load(cls, policy_dir: str) -> PolicyCard:
        path = os.path.join(policy_dir, POLICY_CARD)
        try:
            raw = json.load(open(path))
        except (OSError, json.JSONDecodeError) as e:
            from vega_ros.catalog import archived_hint

            hint = "" if os.path.isdir(policy_dir) else archived_hint(policy_dir)
            raise PolicyArtifactError(f"cannot read {path}: {e}{hint}") from e
        if raw.get("kind") != "policy":
            raise PolicyArtifactError(f"{path} is not a policy card (kind={raw.get('kind')!r})")
        try:
            return cls(**raw)
        except TypeError as e:
            raise PolicyArtifactError(f"{path}: {e}") from e

    def save(self, policy_dir: str) -> str:
        path = os.path.join(policy_dir, POLICY_CARD)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.__dict__, f, indent=2)
        os.replace(tmp, path)
        return path


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[3, size, size]`` float32 in [0, 1] (area filter when shrinking)."""
    if image.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0


def ensemble_action(chunks: list[tuple[int, np.ndarray]], t: int, m: float) -> np.ndarray:
    """ACT's temporal ensemble: the action ``[7]`` for step ``t`` from chunks ``(t0, [K, 7])``
    predicted at steps ``t0 <= t`` (oldest first; chunks with ``t0 + K <= t`` are ignored).

    Chunk i (0 = the oldest that covers t) weighs ``exp(-m * i)``: m = 0 is the plain mean, a larger
    m favours older predictions (ACT's choice, m = 0.01, is close to the mean)."""
    preds = [chunk[t - t0] for t0, chunk in chunks if t0 <= t < t0 + len(chunk)]
    if not preds:
        raise ValueError(f"no chunk covers step {t}")
    w = np.exp(-m * np.arange(len(preds)))
    return (w[:, None] * np.stack(preds)).sum(0) / w.sum()


def load_language_embeddings(policy_dir: str) -> dict[str, np.ndarray]:
    """``{instruction: [L] float32}`` of a policy artifact's ``language_embeddings.json``."""
    with open(os.path.join(policy_dir, LANGUAGE_FILE)) as f:
        return {k: np.asarray(v, np.float32) for k, v in json.load(f).items()}


def sentence_encoder_dir(spec: str | None, models_root: str) -> str | None:
    """The sentence encoder folder that ``spec`` names (see :class:`OnnxPolicy`), or None."""
    if not spec:
        return None
    if spec == "auto":
        folder = os.path.join(models_root, DEFAULT_SENTENCE_ENCODER)
        return folder if os.path.isdir(folder) else None
    if not os.path.isdir(spec):
        raise PolicyArtifactError(f"language_encoder {spec!r} is not a directory (a sentence encoder artifact, "
                                  f"e.g. models/{DEFAULT_SENTENCE_ENCODER})")
    return spec


class OnnxPolicy:
    """A :class:`vega_ros.policy_io.Policy` backed by ONNX Runtime.

    Args:
        policy_dir: the policy artifact.
        models_root: where the encoder artifact named in the card lives (default: the policy's parent).
        backend: the encoder engine's backend (see vega_ros.engine).
        threads: intra-op threads of both sessions (0 = ONNX Runtime's default).
        execute_steps: actions executed per predicted chunk (1 .. K); None = the card's.
        temporal_ensemble: ACT's weight m >= 0: predict at every step and execute the ensembled action
            (``ensemble_action``); None = plain chunking. The ensemble costs one encoder and one policy
            run per executed action instead of per chunk (as does ``execute_steps`` 1).
        language_encoder: a sentence encoder artifact for instructions the policy does not know;
            ``"auto"`` = ``<models_root>/minilm-l6-v2-int8`` if it is there; None or ``""`` = none
            (an unknown instruction is then refused).
        language_mode: ``nearest`` or ``embed`` (module docstring).
    """

    def __init__(self, policy_dir: str, models_root: str | None = None, backend: str = "onnxruntime-cpu", threads: int = 1,
                 execute_steps: int | None = None, temporal_ensemble: float | None = None,
                 language_encoder: str | None = "auto", language_mode: str = "nearest") -> None:
        import onnxruntime as ort

        if language_mode not in LANGUAGE_MODES:
            raise ValueError(f"language_mode must be one of {LANGUAGE_MODES}, got {language_mode!r}")
        self.language_mode = language_mode
        self.card = PolicyCard.load(policy_dir)
        if execute_steps is not None and temporal_ensemble is not None:
            raise ValueError("give execute_steps or temporal_ensemble, not both (the ensemble executes one action per prediction)")
        self.execute_steps = self.card.execute_steps if execute_steps is None else int(execute_steps)
        if not 1 <= self.execute_steps <= self.card.chunk:
            raise ValueError(f"execute_steps must be in [1, {self.card.chunk}] (the chunk length), got {execute_steps}")
        if temporal_ensemble is not None and not (np.isfinite(temporal_ensemble) and temporal_ensemble >= 0):
            raise ValueError(f"temporal_ensemble must be a finite weight >= 0, got {temporal_ensemble}")
        self.temporal_ensemble = temporal_ensemble
        for name, digest in self.card.files.items():
            path = os.path.join(policy_dir, name)
            if not os.path.isfile(path):
                raise PolicyArtifactError(f"policy artifact lacks {path}")
            if sha256_file(path) != digest:
                raise PolicyArtifactError(f"{path} does not match the sha256 in its card")
        if tuple(self.card.proprio_layout) not in PROPRIO_LAYOUTS.values():
            raise PolicyArtifactError(f"{policy_dir}: unknown proprio_layout {self.card.proprio_layout}; "
                                      f"known: {', '.join(PROPRIO_LAYOUTS)}")
        self.embeddings = load_language_embeddings(policy_dir)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(os.path.join(policy_dir, POLICY_FILE), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        unknown = set(self.input_names) - set(POLICY_INPUTS)
        if unknown:
            raise PolicyArtifactError(f"{POLICY_FILE} has unexpected inputs {sorted(unknown)}")
        root = models_root or os.path.dirname(os.path.abspath(policy_dir))
        self.sentence_encoder_dir = sentence_encoder_dir(language_encoder, root)
        self._sentence_encoder = None  # loaded with the first instruction the policy does not know
        self._threads = threads
        self.language_match: dict[str, Any] = {}
        self.encoder = None
        if "tokens_3d" in self.input_names:
            from vega_ros.engine.selection import create_engine

            enc_dir = os.path.join(root, self.card.encoder["name"])
            self.encoder, _ = create_engine(enc_dir, backend, intra_op_threads=threads)
            graph = self.encoder.token_graph
            if self.encoder.artifact.sha256(graph) != self.card.encoder.get("encoder_sha256"):
                raise PolicyArtifactError(f"{enc_dir}/{graph} is not the encoder this policy was trained with "
                                          f"(its sha256 differs from the policy card's encoder_sha256): re-train the "
                                          f"policy on this student, or restore the student it names")
        self.queue: deque[np.ndarray] = deque()
        self.chunks: deque[tuple[int, np.ndarray]] = deque()  # (step predicted at, [K, 7]) for the ensemble
        self.step = 0
        self.language: np.ndarray | None = None

    def _language_for(self, instruction: str) -> np.ndarray:
        """The ``[L]`` language input for ``instruction``; sets :attr:`language_match`."""
        if instruction in self.embeddings:
            self.language_match = {"instruction": instruction, "known": True}
            return self.embeddings[instruction]
        if self.sentence_encoder_dir is None:
            raise PolicyArtifactError(
                f"no language embedding for {instruction!r}; this policy knows {len(self.embeddings)} instructions, "
                f"e.g. {sorted(self.embeddings)[:3]}; give a sentence encoder (language_encoder, e.g. "
                f"models/{DEFAULT_SENTENCE_ENCODER}) to take other instructions")
        from vega_ros.language import SentenceEncoder, SentenceEncoderError, nearest

        if self._sentence_encoder is None:
            try:
                self._sentence_encoder = SentenceEncoder(self.sentence_encoder_dir, threads=self._threads)
            except SentenceEncoderError as e:
                raise PolicyArtifactError(str(e)) from e
        vector = self._sentence_encoder.embed([instruction])[0]
        if vector.shape != (self.card.language_dim,):
            raise PolicyArtifactError(f"the sentence encoder gives {vector.shape[0]}-d embeddings; "
                                      f"this policy reads {self.card.language_dim}-d ones")
        matched, cosine, margin = nearest(vector, self.embeddings)
        self.language_match = {"instruction": instruction, "known": False, "mode": self.language_mode,
                               "matched": matched, "cosine": round(cosine, 4), "margin": round(margin, 4)}
        return self.embeddings[matched] if self.language_mode == "nearest" else vector

    def reset(self, instruction: str) -> None:
        self.language = np.asarray(self._language_for(instruction), np.float32)[None]
        self.queue.clear()
        self.chunks.clear()
        self.step = 0

    def predict_chunk(self, inputs: PolicyInputs) -> np.ndarray:
        """``[K, 7]`` actions for the current observation."""
        if self.language is None:
            raise RuntimeError("call reset(instruction) first")
        if inputs.agentview is None or inputs.wrist is None:
            raise ValueError("predict_chunk needs both camera images (needs_images() said so; the step was not rendered)")
        feeds: dict[str, np.ndarray] = {}
        size = self.card.image_size
        images = {"agentview": resize_rgb(inputs.agentview, size)[None], "wrist": resize_rgb(inputs.wrist, size)[None]}
        for name in ("agentview", "wrist"):
            if name in self.input_names:
                feeds[name] = images[name]
        if "tokens_3d" in self.input_names:
            h, w = self.encoder.input_hw
            both = np.stack([resize_rgb(inputs.agentview, h), resize_rgb(inputs.wrist, h)]) if h == w else None
            if both is None:
                raise PolicyArtifactError("the encoder's input must be square for the policy")
            feeds["tokens_3d"] = self.encoder.tokens(both)[None]
        if "proprio" in self.input_names:
            feeds["proprio"] = encode_proprio(inputs.proprio, self.card.proprio_layout)[None]
        if "language" in self.input_names:
            feeds["language"] = self.language
        (actions,) = self.session.run(["actions"], feeds)
        return actions[0]

    def act(self, inputs: PolicyInputs) -> np.ndarray:
        if self.temporal_ensemble is not None:
            self.chunks.append((self.step, self.predict_chunk(inputs)))
            while self.chunks[0][0] + len(self.chunks[0][1]) <= self.step:
                self.chunks.popleft()
            action = ensemble_action(list(self.chunks), self.step, self.temporal_ensemble)
            self.step += 1
            return check_action(action).astype(np.float32)
        if not self.queue:
            chunk = self.predict_chunk(inputs)
            self.queue.extend(chunk[: self.execute_steps])
        return check_action(self.queue.popleft()).astype(np.float32)

    def needs_images(self) -> bool:
        """True when the next :meth:`act` predicts (every step with the ensemble, else when the chunk is spent)."""
        return self.temporal_ensemble is not None or not self.queue

    @property
    def execution(self) -> str:
        """How actions are executed, for reports: ``chunks of 4`` or ``temporal ensemble m=0.01``."""
        if self.temporal_ensemble is not None:
            return f"temporal ensemble m={self.temporal_ensemble:g}"
        return f"chunks of {self.execute_steps}"

