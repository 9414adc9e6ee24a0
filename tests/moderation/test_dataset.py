"""The training data: large enough, balanced, and a held-out split with nothing from training in it."""

from __future__ import annotations

from collections import Counter

from moderation.dataset import RISK_DIR, build, read_jsonl, similarity, trigrams
from moderation.screening import LEVELS, TAG_NAMES

TRAIN = read_jsonl(RISK_DIR / "train.jsonl")
HELDOUT = read_jsonl(RISK_DIR / "heldout.jsonl")


def test_size_and_held_out_share() -> None:
    total = len(TRAIN) + len(HELDOUT)
    assert total >= 2000
    assert 0.15 <= len(HELDOUT) / total <= 0.25


def test_levels_are_roughly_balanced() -> None:
    counts = Counter(e["level"] for e in TRAIN + HELDOUT)
    total = sum(counts.values())
    wanted = {"low": 0.45, "medium": 0.20, "high": 0.20, "imminent": 0.15}
    for level, share in wanted.items():
        assert abs(counts[level] / total - share) < 0.06, (level, counts)


def test_examples_are_well_formed() -> None:
    for example in TRAIN + HELDOUT:
        assert set(example) == {"text", "level", "tags"}
        assert example["text"].strip() and example["level"] in LEVELS
        assert set(example["tags"]) <= set(TAG_NAMES)


def test_no_held_out_example_is_a_near_duplicate_of_a_training_one() -> None:
    train_grams = [trigrams(e["text"]) for e in TRAIN]
    by_gram: dict[str, list[int]] = {}
    for index, grams in enumerate(train_grams):
        for gram in grams:
            by_gram.setdefault(gram, []).append(index)
    for example in HELDOUT:
        grams = trigrams(example["text"])
        # Only training examples sharing a trigram can be similar; check those.
        candidates = {i for gram in grams for i in by_gram.get(gram, ())}
        worst = max((similarity(grams, train_grams[i]) for i in candidates), default=0.0)
        assert worst < 0.8, example["text"]


def test_the_files_are_what_the_generator_writes() -> None:
    train, heldout = build()
    assert train == TRAIN and heldout == HELDOUT
