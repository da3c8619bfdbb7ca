"""Text that cannot be encoded as UTF-8 (lone surrogates from JSON escapes) is repaired, not fatal."""

from __future__ import annotations

from pipeline.classify.embedder import repair_text, sentence_key


def test_lone_surrogates_become_replacement_characters():
    assert repair_text("Kim\ud800 met Putin") == "Kim\ufffd met Putin"
    assert repair_text("\udfff") == "\ufffd"
    assert repair_text("a\ud83d") == "a\ufffd"  # a high surrogate with nothing after it


def test_valid_text_and_surrogate_pairs_are_kept():
    plain = "Séoul: 12 000 soldats — \U0001F1F0\U0001F1F5"
    assert repair_text(plain) is plain
    # a pair that arrives as two escapes decodes to its one character
    assert repair_text("x\ud83d\ude00y") == "x\U0001F600y"


def test_sentence_key_accepts_any_str():
    assert sentence_key("a\ud800") != sentence_key("a\ufffd")
    assert len(sentence_key("\ud800")) == 32
