"""A tiny training run gives a loadable model directory with a card; classify writes one line per input, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moderation.classifier import RiskClassifier
from moderation.cli import app
from moderation.dataset import RISK_DIR, read_jsonl, write_jsonl
from moderation.decision import Decision
from moderation.screening import LEVELS, decide
from moderation.train import TINY, train
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("risk")
    write_jsonl(folder / "train.jsonl", read_jsonl(RISK_DIR / "train.jsonl")[:100])
    write_jsonl(folder / "validation.jsonl", read_jsonl(RISK_DIR / "validation.jsonl")[:40])
    write_jsonl(folder / "heldout.jsonl", read_jsonl(RISK_DIR / "heldout.jsonl")[:20])
    train("scratch", folder / "train.jsonl", folder / "model", epochs=1, validation=folder / "validation.jsonl",
          heldout=folder / "heldout.jsonl", size=TINY, progress=False)
    return folder / "model"


def test_the_model_directory_loads_and_predicts_with_the_decision_chosen_on_validation(tiny_model: Path) -> None:
    card = (tiny_model / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "base: scratch" in card and "100 examples" in card and "imminent+high flagged high or above" in card
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
    assert predictions == [decide(p, classifier.decision.thresholds) for p in classifier.probabilities(texts)]
    assert all(level in LEVELS and 0.0 <= score <= 1.0 for level, score in predictions)


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
