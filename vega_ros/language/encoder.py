"""A sentence encoder artifact (no torch): ``sentence.onnx`` + ``vocab.txt`` + ``card.json``.

The artifact holds all-MiniLM-L6-v2 (the encoder the policies' instruction embeddings were computed
with at training time), exported by ``python -m distill.policy.language_export``::

    sentence.onnx   inputs  input_ids, attention_mask [B, T] int64
                    output  embedding [B, 384] float32, L2-normalised (mean over the unmasked tokens)
    vocab.txt       BERT uncased WordPiece vocabulary (vega_ros.language.wordpiece)
    card.json       kind "sentence_encoder", dim, max_tokens, source, parity with the PyTorch model, sha256s

It lets a policy take an instruction it was not trained on (a reworded one): the runtime embeds the
sentence and either feeds that vector or the nearest instruction the policy knows
(``vega_ros.policy_runtime``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vega_ros.artifact import sha256_file
from vega_ros.language.wordpiece import WordPiece

SENTENCE_FILE = "sentence.onnx"
VOCAB_FILE = "vocab.txt"
CARD_FILE = "card.json"


class SentenceEncoderError(ValueError):
    """A sentence encoder artifact is missing a file, fails its checksum, or is not one."""


@dataclass
class SentenceEncoderCard:
    name: str
    dim: int
    max_tokens: int
    files: dict[str, str]  # file name -> sha256
    source: str = ""
    parity: dict[str, Any] = field(default_factory=dict)
    kind: str = "sentence_encoder"
    format_version: int = 1

    @classmethod
    def load(cls, folder: str) -> SentenceEncoderCard:
        path = os.path.join(folder, CARD_FILE)
        try:
            raw = json.load(open(path))
        except (OSError, json.JSONDecodeError) as e:
            raise SentenceEncoderError(f"cannot read {path}: {e}") from e
        if raw.get("kind") != "sentence_encoder":
            raise SentenceEncoderError(f"{path} is not a sentence encoder card (kind={raw.get('kind')!r})")
        try:
            return cls(**raw)
        except TypeError as e:
            raise SentenceEncoderError(f"{path}: {e}") from e

    def save(self, folder: str) -> str:
        path = os.path.join(folder, CARD_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump(self.__dict__, f, indent=2)
        os.replace(path + ".tmp", path)
        return path


class SentenceEncoder:
    """``embed(sentences) -> [B, dim]`` float32, L2-normalised, with ONNX Runtime on the CPU.

    Args:
        folder: the artifact (checked against its card's sha256s).
        threads: ONNX Runtime intra-op threads (0 = its default).
    """

    def __init__(self, folder: str, threads: int = 1) -> None:
        import onnxruntime as ort

        self.card = SentenceEncoderCard.load(folder)
        for name in (SENTENCE_FILE, VOCAB_FILE):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise SentenceEncoderError(f"sentence encoder artifact lacks {path}")
            if sha256_file(path) != self.card.files.get(name):
                raise SentenceEncoderError(f"{path} does not match the sha256 in its card")
        self.tokenizer = WordPiece(os.path.join(folder, VOCAB_FILE))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(os.path.join(folder, SENTENCE_FILE), opts, providers=["CPUExecutionProvider"])

    def embed(self, sentences: list[str]) -> np.ndarray:
        """``[B, dim]`` float32 unit vectors, one per sentence.

        One graph run per sentence: int8 dynamic quantisation scales each activation tensor by its
        range over the whole batch, padding included, so a batched embedding would depend on the
        sentences beside it. (2.6 ms per 15-word sentence on 1 thread.)"""
        out = np.zeros((len(sentences), self.card.dim), np.float32)
        for row, sentence in enumerate(sentences):
            input_ids = np.asarray([self.tokenizer.encode(sentence, self.card.max_tokens)], np.int64)  # [1, T]
            (vec,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)})
            out[row] = vec[0]
        return out


def nearest(vector: np.ndarray, known: dict[str, np.ndarray]) -> tuple[str, float, float]:
    """``(instruction, cosine, margin)``: the known instruction closest to unit ``vector`` [L], its
    cosine, and how far it is ahead of the second closest (1.0 when only one is known)."""
    if not known:
        raise ValueError("no known instructions to match against")
    names = sorted(known)
    mat = np.stack([known[n] / max(float(np.linalg.norm(known[n])), 1e-12) for n in names])
    cos = mat @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
    order = np.argsort(-cos)
    margin = float(cos[order[0]] - cos[order[1]]) if len(names) > 1 else 1.0
    return names[order[0]], float(cos[order[0]]), margin


__all__ = ["SentenceEncoder", "SentenceEncoderCard", "SentenceEncoderError", "nearest", "SENTENCE_FILE", "VOCAB_FILE"]
