"""The training data: large enough, balanced, and validation and held-out splits with nothing from training in them."""

from __future__ import annotations

from collections import Counter

import pytest
from moderation.dataset import RISK_DIR, TARGETS, NearDuplicates, blind_index, build, read_jsonl, written
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
    # Each level as large a part of the split as of the written messages: the hash favours none.
    counts = Counter(e["level"] for e in split)
    for level, messages in WRITTEN.items():
        share = len(messages) / sum(len(m) for m in WRITTEN.values())
        assert abs(counts[level] / len(split) - share) < 0.03, (level, counts)


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


def test_no_example_like_a_blind_one_is_trained_or_tuned_on() -> None:
    blind = blind_index(RISK_DIR)
    assert not [e["text"] for split in (TRAIN, VALIDATION, HELDOUT) for e in split if blind.has(e["text"])]


def test_the_files_are_what_the_generator_writes() -> None:
    train, validation, heldout = build()
    assert train == TRAIN and validation == VALIDATION and heldout == HELDOUT


def test_writing_more_messages_moves_none_into_the_held_out_split(monkeypatch: pytest.MonkeyPatch) -> None:
    # Validation is tuned on, so a message in it must never turn up in held-out when the next round is written.
    more = {level: [(f"書き足した{level}のメッセージ{n}番、{'あいうえおかきくけこ'[n % 10]}", []) for n in range(40)] for level in TARGETS}
    monkeypatch.setattr("moderation.dataset.written", lambda level: WRITTEN[level] + more[level])
    heldout = {e["text"] for e in build()[2]}
    added = {text for messages in more.values() for text, _ in messages}
    assert heldout - added <= {e["text"] for e in HELDOUT}
    assert heldout & added, "some of the new messages are held out"
