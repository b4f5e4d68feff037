"""Instruction text for the policies, without torch: BERT WordPiece and a sentence encoder artifact."""

from vega_ros.language.encoder import SentenceEncoder, SentenceEncoderCard, SentenceEncoderError, nearest
from vega_ros.language.wordpiece import WordPiece, basic_tokenize

__all__ = ["SentenceEncoder", "SentenceEncoderCard", "SentenceEncoderError", "WordPiece", "basic_tokenize", "nearest"]
