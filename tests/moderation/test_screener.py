"""The async screener: keywords always screen, the model stays off the event loop, failures are reported."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from moderation.screener import Screener
from moderation.screening import Screening


async def test_a_missing_model_leaves_the_floor_screening(tmp_path: Path) -> None:
    screener = Screener(tmp_path / "no-model")
    try:
        screenings = await screener.screen(["今から飛び降りる", "テスト死んだ", "消えたい"])
    finally:
        screener.close()
    assert [s.level for s in screenings] == ["imminent", "low", "medium"]
    assert {s.source for s in screenings} == {"lexicon (model unavailable)"}
    assert screener.model_error and "unavailable" in screener.model_error


class SlowModel:
    """Stands in for the classifier: slow, records the batches and the thread it ran on."""

    def __init__(self, level: str = "low", fail: bool = False) -> None:
        self.level = level
        self.fail = fail
        self.batches: list[int] = []
        self.threads: set[int] = set()

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        self.threads.add(threading.get_ident())
        self.batches.append(len(texts))
        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("out of memory")
        return [(self.level, 0.9) for _ in texts]


def _with(model: SlowModel) -> Screener:
    screener = Screener("unused")
    screener._classifier = model
    screener._loaded_card = None  # "unused" has no card: nothing new to load
    return screener


async def test_a_burst_is_batched_off_the_loop_while_the_loop_keeps_ticking() -> None:
    model = SlowModel()
    screener = _with(model)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    clock = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(screener.screen([f"メッセージ{i}", "テスト死んだ"]) for i in range(20)))
    finally:
        clock.cancel()
        screener.close()
    assert all(len(r) == 2 for r in results)
    assert threading.get_ident() not in model.threads and len(model.threads) == 1
    assert model.batches[0] == 40 and sum(model.batches) == 40
    assert ticks >= 5


async def test_the_higher_level_wins_and_the_source_says_which() -> None:
    screener = _with(SlowModel("medium"))
    try:
        calm, urgent, same = await screener.screen(["こんにちは", "今から飛び降りる", "消えたい"])
    finally:
        screener.close()
    assert (calm.level, calm.source) == ("medium", "model")
    assert (urgent.level, urgent.source) == ("imminent", "lexicon")
    assert (same.level, same.source) == ("medium", "model+lexicon")


async def test_the_floor_never_lowers_the_model() -> None:
    screener = _with(SlowModel("imminent"))
    try:
        [screening] = await screener.screen(["テスト死んだ"])
    finally:
        screener.close()
    assert screening.level == "imminent" and screening.source == "model"


async def test_an_inference_failure_is_reported_and_nothing_is_dropped() -> None:
    screener = _with(SlowModel(fail=True))
    try:
        screenings = await screener.screen(["死にたい", "おはよう"])
    finally:
        screener.close()
    assert [s.level for s in screenings] == ["high", "low"]
    assert all(isinstance(s, Screening) and s.source == "lexicon (model unavailable)" for s in screenings)
    assert screener.model_error == "inference failed: RuntimeError: out of memory"


def test_the_floor_still_counts_when_the_model_says_low() -> None:
    from moderation.screener import _combine

    alarmed_floor = Screening("high", 1.0, "lexicon")
    unsure = _combine(alarmed_floor, "low", 0.99)
    assert (unsure.level, unsure.source) == ("high", "lexicon")
