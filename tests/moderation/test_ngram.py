"""The n-gram model's word meanings: words training never showed still land near words of like meaning."""

from __future__ import annotations

import numpy as np
import pytest
from moderation.ngram import Meanings


def _similarity(a: str, b: str) -> float:
    first, second = Meanings().transform([a, b])
    return float(first @ second)


def test_a_word_lands_near_words_of_like_meaning_and_far_from_others() -> None:
    assert _similarity("歩道橋", "橋") > _similarity("歩道橋", "ケーキ") + 0.2
    assert _similarity("錠剤", "薬") > _similarity("錠剤", "パン") + 0.2
    # Sudachi's normalised forms: a word spelt in hiragana means what its kanji spelling means.
    assert _similarity("くすり", "薬") == pytest.approx(1.0)


def test_each_message_is_unit_length_and_one_without_known_words_is_zero() -> None:
    rows = Meanings().transform(["橋の上にいる", "！！", ""])
    assert np.linalg.norm(rows[0]) == pytest.approx(1.0)
    assert not rows[1].any() and not rows[2].any()
