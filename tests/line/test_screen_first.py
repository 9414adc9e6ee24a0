"""Screen first, then write: on SQLite the webhook is never held behind the risk model."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import run_service, settle
from moderation.screener import ModelResult, Screener
from sqlmodel import select

import bot.app
from bot.appkeys import SESSIONS
from bot.storage.models import RiskFlag

BATCH_SECONDS = 1.5


class SlowModel(Screener):
    """A model that takes `BATCH_SECONDS` per batch on its worker thread, as a long batch on a busy CPU does."""

    busy = threading.Event()

    def _infer(self, texts: list[str]) -> ModelResult:
        SlowModel.busy.set()
        time.sleep(BATCH_SECONDS)
        return [("low", 0.01)] * len(texts)


async def test_a_webhook_is_answered_at_once_while_the_model_screens_a_long_batch(
    sqlite_url: str, content, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.app, "Screener", SlowModel)
    async with run_service(sqlite_url, content) as service:
        await asyncio.sleep(BATCH_SECONDS + 0.5)  # the start-up warming batch is out of the way
        writer, other = service.line.add_user().user_id, service.line.add_user().user_id
        SlowModel.busy.clear()
        assert await service.line.send_text(writer, "今から飛び降りる") == 200
        await asyncio.to_thread(SlowModel.busy.wait, 10)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert await service.line.send_text(other, "こんにちは") == 200
            timings.append(time.perf_counter() - started)
        assert SlowModel.busy.is_set()
        assert max(timings) < 0.05, f"webhook answers took {[round(t * 1000) for t in timings]} ms while the model worked"
        await settle(service)
        async with service.app[SESSIONS]() as session:
            [flag] = list(await session.exec(select(RiskFlag)))
        assert flag.level == "imminent", "the text screened ahead was still flagged, by the keyword floor over the model"
