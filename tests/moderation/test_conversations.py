"""Conversations: split by conversation with nothing from training in the evaluation splits, read as one text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from moderation.dataset import CONVERSATIONS_DIR, NearDuplicates, blind_index, build_conversations, read_jsonl, written_conversations
from moderation.defaults import default_model_dir
from moderation.screener import Screener
from moderation.screening import LEVELS, SEPARATOR, TAG_NAMES, WINDOW_CHARACTERS, conversation_text

SPLITS = {name: read_jsonl(CONVERSATIONS_DIR / f"{name}.jsonl") for name in ("train", "validation", "heldout")}
WRITTEN = written_conversations()


def whole(conversation: dict) -> str:
    return "\n".join(conversation["messages"])


BLIND = blind_index(CONVERSATIONS_DIR, whole)


def test_enough_conversations_are_written_of_every_kind() -> None:
    assert len(WRITTEN) >= 1500
    kinds = Counter(c["kind"] for c in WRITTEN)
    assert {"sequence", "defused", "explicit", "calm"} <= set(kinds) and min(kinds.values()) >= 100, kinds
    for conversation in WRITTEN:
        assert conversation["level"] in LEVELS and set(conversation["tags"]) <= set(TAG_NAMES)
        assert len(conversation["messages"]) >= 2 and all(m.strip() for m in conversation["messages"])


def test_each_written_conversation_is_whole_in_exactly_one_split() -> None:
    texts = Counter(whole(c) for split in SPLITS.values() for c in split if c["kind"] != "composed")
    assert sorted(texts.elements()) == sorted(whole(c) for c in WRITTEN if not BLIND.has(whole(c)))
    assert all(c["kind"] != "composed" for name in ("validation", "heldout") for c in SPLITS[name]), "composed windows train only"
    total = len(WRITTEN)
    for name in ("validation", "heldout"):
        assert 0.10 <= len(SPLITS[name]) / total <= 0.25


@pytest.mark.parametrize(("split", "others"), [("validation", ["train"]), ("heldout", ["train", "validation"])])
def test_no_evaluation_conversation_is_a_near_duplicate_of_another_split(split: str, others: list[str]) -> None:
    index = NearDuplicates([c for other in others for c in SPLITS[other]], whole)
    assert not [c for c in SPLITS[split] if index.has(whole(c))]


def test_no_conversation_like_a_blind_one_is_trained_or_tuned_on() -> None:
    assert not [c for split in SPLITS.values() for c in split if BLIND.has(whole(c))]


def test_the_files_are_what_the_generator_writes() -> None:
    built = build_conversations(read_jsonl(CONVERSATIONS_DIR.parent / "train.jsonl"))
    assert list(built) == list(SPLITS.values())


def test_writing_more_conversations_moves_none_into_the_held_out_split(monkeypatch: pytest.MonkeyPatch) -> None:
    more = [{"messages": [f"書き足した会話{n}番", f"{'あいうえおかきくけこ'[n % 10]}の話をしよう{n * 7}"], "level": "low", "kind": "calm", "tags": []}
            for n in range(60)]
    monkeypatch.setattr("moderation.dataset.written_conversations", lambda: WRITTEN + more)
    heldout = {whole(c) for c in build_conversations(read_jsonl(CONVERSATIONS_DIR.parent / "train.jsonl"))[2]}
    added = {whole(c) for c in more}
    assert heldout - added <= {whole(c) for c in SPLITS["heldout"]}
    assert heldout & added, "some of the new conversations are held out"


def test_a_conversation_is_read_as_its_newest_messages_joined_by_the_separator() -> None:
    assert conversation_text(["死にたい"]) == "死にたい", "one message is read as it is"
    assert conversation_text(["今までありがとね", "じゃ、行ってくる"]) == f"今までありがとね{SEPARATOR}じゃ、行ってくる"
    long = ["あ" * 60, "い" * 60, "う" * 50, "最後"]
    assert conversation_text(long) == SEPARATOR.join(long[2:]), "the oldest that do not fit are left out"
    assert conversation_text(["x" * (WINDOW_CHARACTERS + 50)]) == "x" * (WINDOW_CHARACTERS + 50), "the newest is read whole"


@pytest.mark.skipif(not (Path(default_model_dir()) / "ngram.joblib").is_file(), reason="no trained model (make model)")
async def test_the_trained_model_reads_a_goodbye_then_going_as_urgent_though_no_line_alone_is() -> None:
    screener = Screener(default_model_dir())
    try:
        [goodbye, defused] = await screener.screen_conversations([["今までありがとね", "みんなによろしく", "じゃ、行ってくる"],
                                                                  ["死にたい", "って主人公が言う映画、泣いた"]])
    finally:
        screener.close()
    assert all(s.level in ("low", "medium") for s in goodbye.messages)
    assert goodbye.level in ("high", "imminent") and goodbye.reader[0] in ("high", "imminent")
    assert defused.level == "high" and defused.reader[0] == "low", "the level stands; the reader sees the film"
