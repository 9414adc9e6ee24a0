"""Screening messages from async code: the model off the event loop, the keyword floor always.

The model runs on one worker thread, so a burst of messages never stalls the caller's loop and never
runs two inferences fighting for the same two cores. Requests that arrive while the thread is busy
(or in the same turn of the loop) are batched into one inference. If the model is missing or fails,
the floor still screens every message: nothing is dropped, and `model_error` says why in a short
line that the service can show to supervisors.

A model trained while the service runs is picked up without a restart: before each inference the
screener looks at the model directory's card, and when `tsunagi risk train` has put a new directory
in place it loads that one (keeping the old one if the new one does not load). `readers` says which
readers screen, so that supervisors know when only the quick model does.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from moderation.classifier import RiskClassifier
from moderation.defaults import default_model_dir
from moderation.lexicon import Lexicon, load_lexicon
from moderation.screening import Screening, rank

log = logging.getLogger(__name__)

ModelResult = list[tuple[str, float]] | None
MODEL_CARD = "MODEL_CARD.md"
_NOT_LOOKED = object()


class Screener:
    """Screens lists of messages; the model is loaded on the worker thread at the first request."""

    def __init__(self, model_dir: str | Path | None = None, lexicon: Lexicon | None = None) -> None:
        self.model_dir = str(model_dir or default_model_dir())
        self.lexicon = lexicon or load_lexicon()
        self.model_error: str | None = None
        self._classifier: RiskClassifier | None = None
        self._loaded_card: tuple[int, int] | None | object = _NOT_LOOKED
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="risk-model")
        self._pending: list[tuple[list[str], asyncio.Future[ModelResult]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def screen(self, texts: list[str]) -> list[Screening]:
        """One screening per text, in order: the higher of the model's level and the keyword floor."""
        if not texts:
            return []
        floors = [self.lexicon.floor(text) for text in texts]
        predictions = await self._predict(texts)
        if predictions is None:
            return [Screening(f.level, f.score, "lexicon (model unavailable)", f.tags) for f in floors]
        return [_combine(floor, level, score) for floor, (level, score) in zip(floors, predictions)]

    def close(self) -> None:
        """Stop the worker thread (after the inference it is running, if any)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _predict(self, texts: list[str]) -> ModelResult:
        future: asyncio.Future[ModelResult] = asyncio.get_running_loop().create_future()
        self._pending.append((texts, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run everything pending as one inference, until nothing is pending."""
        loop = asyncio.get_running_loop()
        while self._pending:
            requests, self._pending = self._pending, []
            texts = [text for batch, _ in requests for text in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._infer, texts)
            except Exception as exc:  # the floor must go on screening whatever the model does
                self._fail("inference failed", exc)
                results = None
            start = 0
            for batch, future in requests:
                if not future.done():
                    future.set_result(None if results is None else results[start : start + len(batch)])
                start += len(batch)

    @property
    def readers(self) -> list[str]:
        """The model's readers screening now ("transformer", "n-gram"); empty while only keywords screen."""
        return self._classifier.readers if self._classifier is not None else []

    def _infer(self, texts: list[str]) -> ModelResult:
        """On the worker thread: load the model if it is new, then classify."""
        card = _card(self.model_dir)
        if card != self._loaded_card:
            self._loaded_card = card
            try:
                self._classifier = RiskClassifier(self.model_dir)
                log.info("risk model loaded from %s (%s)", self.model_dir, " and ".join(self._classifier.readers))
            except Exception as exc:
                self._fail(f"model {self.model_dir} unavailable", exc)
        if self._classifier is None:
            return None
        results = self._classifier.predict(texts)
        self.model_error = None
        return results

    def _fail(self, what: str, exc: BaseException) -> None:
        self.model_error = f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        log.error("risk screening continues on keywords only; %s", self.model_error)


def _card(model_dir: str) -> tuple[int, int] | None:
    """Which model directory is in place: its card's inode and modification time (written last, moved in whole)."""
    try:
        found = (Path(model_dir) / MODEL_CARD).stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns


def _combine(floor: Screening, level: str, score: float) -> Screening:
    """The higher of the floor and the model's verdict; `source` names what gave it."""
    if rank(floor.level) > rank(level):
        return Screening(floor.level, floor.score, "lexicon", floor.tags)
    source = "model+lexicon" if floor.level == level and floor.score > 0 else "model"
    return Screening(level, score, source, floor.tags)
