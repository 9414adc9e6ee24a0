"""The n-gram model: word meanings land near words of like meaning; the levels are read in order."""

from __future__ import annotations

import numpy as np
import pytest
from moderation.ngram import Meanings, OrderedRegression


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


def test_ordered_regression_reads_each_level_or_above() -> None:
    # One feature: the higher it is, the higher the level; the model must say so level by level.
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 4, 400)
    features = (levels + rng.normal(0, 0.4, 400)).reshape(-1, 1)
    model = OrderedRegression().fit(features, levels)
    probabilities = model.predict_proba(np.array([[0.0], [1.0], [2.0], [3.0]]))
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(4))
    assert list(probabilities.argmax(axis=1)) == [0, 1, 2, 3]
    # What pulls a message up is the feature, for every level, and nothing pulls towards the lowest.
    assert not model.coef_[0].any() and (model.coef_[1:, 0] > 0).all()


class _Says:
    """A reader that gives every message the same probability of its level or above."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.tile([1 - self.probability, self.probability], (len(features), 1))


def test_ordered_regression_never_makes_a_higher_level_likelier_than_the_one_below_or_above() -> None:
    model = OrderedRegression()
    # The readers disagree: imminent (0.5) above high or above (0.3).
    model.readers_ = [_Says(0.6), _Says(0.3), _Says(0.5)]
    [probabilities] = model.predict_proba(np.zeros((1, 1)))
    assert probabilities == pytest.approx([0.4, 0.3, 0.0, 0.3])
