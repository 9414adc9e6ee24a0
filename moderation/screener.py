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
from dataclasses import replace
from pathlib import Path

from moderation.classifier import RiskClassifier
from moderation.defaults import default_model_dir
from moderation.lexicon import Lexicon, load_lexicon
from moderation.screening import ConversationScreening, Screening, Tag, conversation_text, rank

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
        screenings = [_combine(floor, level, score) for floor, (level, score) in zip(floors, predictions)]
        flagged = [i for i, (level, _) in enumerate(predictions) if rank(level) > 0]
        for i, spans in zip(flagged, await self._drivers([(texts[i], predictions[i][0]) for i in flagged])):
            screenings[i] = replace(screenings[i], drivers=[Tag("model", span, texts[i][span[0] : span[1]]) for span in spans])
        return screenings

    async def read(self, conversations: list[list[str]]) -> ModelResult:
        """The model's verdict on each conversation as a whole (`conversation_text`), or None while no
        model screens: the keyword floor reads messages one by one, never a conversation."""
        if not conversations:
            return []
        return await self._predict([conversation_text(c) for c in conversations])

    async def screen_conversations(self, conversations: list[list[str]]) -> list[ConversationScreening]:
        """Each conversation as the service screens it: every message alone, and the model on every
        window ending at a message."""
        alone = await self.screen([m for c in conversations for m in c])
        return assemble(conversations, alone, await self.read(windows(conversations)))

    async def _drivers(self, rated: list[tuple[str, str]]) -> list[list[tuple[int, int]]]:
        """The words that drove the model's verdicts (`RiskClassifier.drivers`), on the worker thread; none if that fails."""
        if not rated or self._classifier is None:
            return []
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._classifier.drivers, rated)
        except Exception as exc:  # only an explanation: the verdicts stand without it
            log.warning("risk model could not say which words drove it: %s", type(exc).__name__)
            return []

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


def windows(conversations: list[list[str]]) -> list[list[str]]:
    """Every window the service reads of the conversations: each one's first message, its first two, ... all."""
    return [c[: i + 1] for c in conversations for i in range(len(c))]


def assemble(conversations: list[list[str]], alone: list[Screening], read: ModelResult) -> list[ConversationScreening]:
    """Each conversation's verdict from its messages screened alone and the model's verdicts on its
    `windows` (None without a model), all of them in order."""
    verdicts, start = [], 0
    for conversation in conversations:
        end = start + len(conversation)
        verdicts.append(ConversationScreening(alone[start:end], None if read is None else read[start:end]))
        start = end
    return verdicts


def screen_now(classifier: RiskClassifier, lexicon: Lexicon, texts: list[str]) -> list[Screening]:
    """What `Screener.screen` says, from a classifier at hand, on the caller's thread (for evaluation)."""
    return [_combine(lexicon.floor(text), level, score) for text, (level, score) in zip(texts, classifier.predict(texts))]


def _combine(floor: Screening, level: str, score: float) -> Screening:
    """The higher of the floor and the model's verdict; `source` names what gave it."""
    if rank(floor.level) > rank(level):
        return Screening(floor.level, floor.score, "lexicon", floor.tags)
    source = "model+lexicon" if floor.level == level and floor.score > 0 else "model"
    return Screening(level, score, source, floor.tags)
