"""The training data: large enough, balanced, and validation and held-out splits with nothing from training in them."""

from __future__ import annotations

from collections import Counter

import pytest

from moderation.dataset import RISK_DIR, TARGETS, NearDuplicates, build, read_jsonl, written
from moderation.screening import LEVELS, TAG_NAMES

TRAIN = read_jsonl(RISK_DIR / "train.jsonl")
VALIDATION = read_jsonl(RISK_DIR / "validation.jsonl")
HELDOUT = read_jsonl(RISK_DIR / "heldout.jsonl")
WRITTEN = {level: written(level) for level in TARGETS}


def test_enough_messages_are_written_one_by_one() -> None:
    assert sum(len(messages) for messages in WRITTEN.values()) >= 2500
    texts = [text for messages in WRITTEN.values() for text, _ in messages]
    assert len(set(texts)) == len(texts)


def test_sizes_and_shares() -> None:
    total = len(TRAIN) + len(VALIDATION) + len(HELDOUT)
    assert total >= 4000
    for split in (VALIDATION, HELDOUT):
        assert 0.10 <= len(split) / total <= 0.20


@pytest.mark.parametrize("split", [VALIDATION, HELDOUT], ids=["validation", "heldout"])
def test_evaluation_splits_hold_written_messages_of_every_level(split: list[dict]) -> None:
    texts = {text for messages in WRITTEN.values() for text, _ in messages}
    assert all(e["text"] in texts for e in split)
    counts = Counter(e["level"] for e in split)
    wanted = {"low": 0.38, "medium": 0.20, "high": 0.22, "imminent": 0.19}
    for level, share in wanted.items():
        assert abs(counts[level] / len(split) - share) < 0.06, (level, counts)


def test_examples_are_well_formed() -> None:
    for example in TRAIN + VALIDATION + HELDOUT:
        assert set(example) == {"text", "level", "tags"}
        assert example["text"].strip() and example["level"] in LEVELS
        assert set(example["tags"]) <= set(TAG_NAMES)


@pytest.mark.parametrize(
    ("split", "others"),
    [(VALIDATION, [TRAIN]), (HELDOUT, [TRAIN, VALIDATION])],
    ids=["validation-vs-train", "heldout-vs-train-and-validation"],
)
def test_no_evaluation_example_is_a_near_duplicate_of_another_split(split: list[dict], others: list[list[dict]]) -> None:
    index = NearDuplicates([e for other in others for e in other])
    for example in split:
        assert not index.has(example["text"]), example["text"]


def test_the_files_are_what_the_generator_writes() -> None:
    train, validation, heldout = build()
    assert train == TRAIN and validation == VALIDATION and heldout == HELDOUT
