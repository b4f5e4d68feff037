"""BERT's uncased WordPiece tokenizer (Devlin et al. 2019; Wu et al. 2016), from a ``vocab.txt``.

The two stages of ``transformers.BertTokenizer`` with ``do_lower_case=True``:

1. *basic*: drop control characters and NUL / U+FFFD, map whitespace to spaces, put spaces around
   CJK ideographs, lower-case, strip accents (NFD, drop combining marks), split off every
   punctuation character (ASCII symbols count as punctuation);
2. *WordPiece*: each word, greedy longest-match-first against the vocabulary, continuation pieces
   prefixed ``##``; a word with no match, or longer than 100 characters, becomes ``[UNK]``.

``encode`` adds ``[CLS]`` ... ``[SEP]`` and cuts to ``max_tokens``. Plain Python: the robot
runtime needs no tokenizer library (tests/test_language.py checks it against ``tokenizers``).
"""

from __future__ import annotations

import unicodedata

MAX_WORD_CHARS = 100


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def basic_tokenize(text: str) -> list[str]:
    """Stage 1: the lower-cased, accent-stripped words and punctuation marks of ``text``."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            cleaned.append(" ")
        elif _is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    words = []
    for word in "".join(cleaned).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        piece = ""
        for ch in word:
            if _is_punctuation(ch):
                if piece:
                    words.append(piece)
                words.append(ch)
                piece = ""
            else:
                piece += ch
        if piece:
            words.append(piece)
    return words


class WordPiece:
    """``vocab.txt`` (one token per line, the line number its id) -> token ids.

    Args:
        vocab_path: BERT's vocabulary file.
        unk, cls, sep, pad: the special tokens (must be in the vocabulary).
    """

    def __init__(self, vocab_path: str, unk: str = "[UNK]", cls: str = "[CLS]", sep: str = "[SEP]", pad: str = "[PAD]"):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        missing = [t for t in (unk, cls, sep, pad) if t not in self.vocab]
        if missing:
            raise ValueError(f"{vocab_path} lacks the special tokens {missing}")
        self.unk, self.cls, self.sep, self.pad = (self.vocab[t] for t in (unk, cls, sep, pad))

    def word_ids(self, word: str) -> list[int]:
        """Stage 2 for one basic word: greedy longest match first; ``[UNK]`` when no split exists."""
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str, max_tokens: int = 256) -> list[int]:
        """``[CLS] pieces... [SEP]``, at most ``max_tokens`` ids (the pieces cut, ``[SEP]`` kept)."""
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2 ([CLS] and [SEP]), got {max_tokens}")
        pieces = [i for w in basic_tokenize(text) for i in self.word_ids(w)]
        return [self.cls, *pieces[: max_tokens - 2], self.sep]
