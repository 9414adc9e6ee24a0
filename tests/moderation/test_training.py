"""A tiny training run gives a loadable model directory with a card; classify writes one line per input, in order."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from moderation.classifier import ORDERED, RiskClassifier, transformer_probabilities
from moderation.cli import app
from moderation.dataset import CONVERSATIONS_DIR, RISK_DIR, read_jsonl, write_jsonl
from moderation.decision import Decision
from moderation.screener import Screener
from moderation.screening import LEVELS, decide
from moderation.train import TINY, epoch_batches, train
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("risk")
    write_jsonl(folder / "train.jsonl", read_jsonl(RISK_DIR / "train.jsonl")[:100])
    write_jsonl(folder / "validation.jsonl", read_jsonl(RISK_DIR / "validation.jsonl")[:40])
    write_jsonl(folder / "heldout.jsonl", read_jsonl(RISK_DIR / "heldout.jsonl")[:20])
    for name, count in (("train", 60), ("validation", 30), ("heldout", 20)):
        (folder / "conversations").mkdir(exist_ok=True)
        write_jsonl(folder / "conversations" / f"{name}.jsonl", read_jsonl(CONVERSATIONS_DIR / f"{name}.jsonl")[:count])
    train("scratch", folder / "train.jsonl", folder / "model", epochs=1, validation=folder / "validation.jsonl",
          heldout=folder / "heldout.jsonl", size=TINY, progress=False, conversations=folder / "conversations")
    return folder / "model"


def test_the_model_directory_loads_and_predicts_with_the_decision_chosen_on_validation(tiny_model: Path) -> None:
    card = (tiny_model / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "base: scratch" in card and "220 examples" in card and "imminent+high flagged high or above" in card
    assert "## Held-out conversations" in card and "sequence-only risk caught" in card
    cost = card[card.index("## What finding 0.95 of urgent messages would cost"):]
    assert "decision" in cost and "urgent 0.95" in cost
    classifier = RiskClassifier(tiny_model)
    assert classifier.ngram is not None
    assert (tiny_model / "decision.json").is_file() and classifier.decision == Decision.load(tiny_model)
    assert f"transformer weight {classifier.decision.transformer_weight}" in card
    readers = card[card.index("## Each reader alone"):]
    assert all(name in readers for name in ("transformer", "n-gram", "blend"))
    texts = ["死にたい", "テスト死んだ", "こんにちは"]
    predictions = classifier.predict(texts)
    # Batched by length inside, but each text keeps its own probabilities, in order.
    batched = classifier.transformer_probabilities(["長めのメッセージです、今日は本当に疲れた", *texts])[1:]
    alone = [classifier.transformer_probabilities([text])[0] for text in texts]
    assert all(row == pytest.approx(single, abs=1e-7) for row, single in zip(batched, alone, strict=True))
    assert predictions == [decide(p, classifier.decision.thresholds_for(t)) for t, p in zip(texts, classifier.probabilities(texts))]
    assert all(level in LEVELS and 0.0 <= score <= 1.0 for level, score in predictions)
    # The head reads "this level or above": what it says of each level is a distribution over the levels.
    assert getattr(classifier.model.config, ORDERED)
    assert all(sum(row) == pytest.approx(1.0) and min(row) >= 0.0 for row in batched)


class _Head:
    """A model whose logits are fixed, for reading them as the classifier does."""

    def __init__(self, logits: list[float], ordered: bool) -> None:
        self.logits = torch.tensor([logits])
        self.config = SimpleNamespace(**{ORDERED: ordered})

    def __call__(self, **batch) -> SimpleNamespace:
        return SimpleNamespace(logits=self.logits)


def test_an_ordered_head_is_read_through_sigmoids_and_another_through_a_softmax() -> None:
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    tokenizer = lambda texts, **options: {}  # noqa: E731
    # Read in order: medium or above 0.8, high or above 0.5, imminent 0.2.
    ordered = transformer_probabilities(_Head([0.0, logit(0.8), logit(0.5), logit(0.2)], True), tokenizer, ["x"], [0, 1, 2, 3])
    assert ordered[0] == pytest.approx([0.2, 0.3, 0.3, 0.2])
    # The columns put the levels in order whatever order the head keeps them in.
    shuffled = transformer_probabilities(_Head([logit(0.2), logit(0.5), 0.0, logit(0.8)], True), tokenizer, ["x"], [2, 3, 1, 0])
    assert shuffled == ordered
    competing = transformer_probabilities(_Head([0.0, 0.0, 0.0, math.log(2)], False), tokenizer, ["x"], [0, 1, 2, 3])
    assert competing[0] == pytest.approx([0.2, 0.2, 0.2, 0.4])


def test_classify_writes_one_line_per_input_in_order(tiny_model: Path, tmp_path: Path) -> None:
    texts = ["今から飛び降りる", "テスト死んだ", "消えたい", "おはよう", "友達が死にたいって言ってる"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    result = CliRunner().invoke(app, ["classify", str(source), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["text"] for row in rows] == texts
    assert all({"level", "score", "source", "tags"} <= set(row) for row in rows)
    assert rows[0]["level"] == "imminent"
    assert "third_party" in [tag["name"] for tag in rows[4]["tags"]]


def test_classify_without_a_model_still_screens(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "死にたい"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["classify", str(source), "--model", str(tmp_path / "missing")])
    assert result.exit_code == 0
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["level"] == "high" and row["source"] == "lexicon (model unavailable)"


def test_eval_prints_the_figures(tiny_model: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(RISK_DIR / "heldout.jsonl"), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert "imminent rated imminent" in result.stdout and "combined" in result.stdout


def test_the_words_that_drove_the_model_point_into_the_message_as_written(tiny_model: Path) -> None:
    classifier = RiskClassifier(tiny_model)
    text = "今日は晴れ。でも本当にＳＨＩＮＩＴＡＩ、死にたい"
    [spans] = classifier.drivers([(text, "high")])
    assert spans and all(0 <= start < end <= len(text) for start, end in spans)
    risk = text.rindex("死にたい")
    assert any(start < risk + 4 and risk < end for start, end in spans), [text[s:e] for s, e in spans]
    inside_words = {risk + 1, risk + 3}  # 死|に|たい: MeCab's words are 死に and たい
    assert not any(start in inside_words or end in inside_words for start, end in spans), "spans are whole words"
    assert len(spans) <= 3 and len(set(spans)) == len(spans)


def test_classify_conversations_writes_one_verdict_per_conversation_never_below_a_message_alone(tiny_model: Path, tmp_path: Path) -> None:
    conversations = [["今までありがとね", "みんなによろしく", "じゃ、行ってくる"], ["死にたい", "って主人公が言う映画、泣いた"], ["おはよう"]]
    source = tmp_path / "conversations.jsonl"
    write_jsonl(source, [{"messages": messages} for messages in conversations])
    result = CliRunner().invoke(app, ["classify", "--conversations", str(source), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(row["messages"]) for row in rows] == [3, 2, 1]
    assert "死にたい" not in result.stdout, "the verdicts do not repeat what people wrote"
    for row in rows:
        assert row["reader"]["level"] in LEVELS
        assert all(LEVELS.index(row["level"]) >= LEVELS.index(m["level"]) for m in row["messages"])
        assert LEVELS.index(row["level"]) >= LEVELS.index(row["reader"]["level"])
    assert rows[1]["level"] in ("high", "imminent"), "the keyword floor still screens every message"


def test_eval_conversations_prints_each_way_of_screening(tiny_model: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    write_jsonl(sample, read_jsonl(CONVERSATIONS_DIR / "heldout.jsonl")[:30])
    result = CliRunner().invoke(app, ["eval", "--conversations", str(sample), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert "30 conversations" in result.stdout
    for words in ("one by one", "reader", "service", "sequence-only risk caught", "defused rated above their level"):
        assert words in result.stdout


async def test_the_screener_picks_up_a_model_trained_while_it_runs(tiny_model: Path, tmp_path: Path) -> None:
    data, out = tiny_model.parent, tmp_path / "model"
    splits = {"data": data / "train.jsonl", "validation": data / "validation.jsonl", "heldout": data / "heldout.jsonl",
              "conversations": data / "conversations"}
    screener = Screener(out)
    try:
        [before] = await screener.screen(["今日は晴れてる"])
        assert before.source == "lexicon (model unavailable)" and screener.readers == []
        train(**splits, out=out, quick=True, progress=False)
        [quick] = await screener.screen(["今日は晴れてる"])
        assert screener.readers == ["n-gram"] and screener.model_error is None and quick.source != before.source
        assert not (out / "config.json").exists(), "the quick model has no transformer, so `make model` still trains the full one"
        train("scratch", **splits, out=out, epochs=1, size=TINY, progress=False)
        await screener.screen(["今日は晴れてる"])
        assert screener.readers == ["transformer", "n-gram"], "the full model replaced the quick one without a restart"
        assert [p.name for p in tmp_path.iterdir()] == ["model"], "nothing half-written is left beside it"
    finally:
        screener.close()


def test_an_epoch_uses_every_example_once_in_batches_of_like_length() -> None:
    lengths = [random.Random(i).randint(5, 120) for i in range(5000)]
    batches = epoch_batches(lengths, 32)
    assert sorted(i for batch in batches for i in batch) == list(range(5000))
    assert max(len(batch) for batch in batches) == 32
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    assert padded < 1.1 * sum(lengths), "a batch pads little"
    assert epoch_batches(lengths, 32) != batches, "the order changes every epoch"
