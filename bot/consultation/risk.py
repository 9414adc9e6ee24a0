"""Risk screening in the service: every text a person sends is screened before it is queued or answered.

The level of a consultation is the highest seen so far and never drops by itself. A message at
`medium` or above becomes a flag for moderators. An `imminent` message gets the person a safety
message at once, puts their consultation at the top of the queue (opening one in the crisis
category if they had none) and alerts supervisors live.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from moderation.lexicon import Lexicon
from moderation.screener import Screener
from moderation.screening import Screening, at_least
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import ALERTS_TOPIC, QUEUE_TOPIC, raise_level
from bot.consultation.requests import crisis_consultation, open_consultation
from bot.conversation.router import Turn
from bot.guidance.finder import open_lines
from bot.line.messages import texts
from bot.storage.after_commit import announce
from bot.storage.models import OPEN_CONSULTATION, Consultation, InboxEvent, RiskFlag, RiskLevel, UserMessage, utcnow

log = logging.getLogger(__name__)

FLAGS_TOPIC = "flags"
# Messages at this level or above are kept as flags for moderator review.
FLAG_FROM = RiskLevel.MEDIUM


async def screen_message(turn: Turn, message: UserMessage) -> tuple[RiskLevel, Consultation | None]:
    """Screen one text the person sent and act on its level.

    Returns the level and the person's open consultation (opened here if the level was imminent),
    which the handler goes on with rather than looking it up again.
    """
    if message.id is None:
        await turn.session.flush()  # the flag refers to the stored message
    [screening] = await turn.screener.screen([message.text or ""])
    level = RiskLevel(screening.level)
    if level is RiskLevel.IMMINENT:
        consultation = await crisis_consultation(turn)
    else:
        consultation = await open_consultation(turn.session, turn.source_id)
    if level.rank >= FLAG_FROM.rank:
        turn.session.add(_flag(message, consultation, screening))
        announce(turn.session, FLAGS_TOPIC)
    if consultation is not None:
        raise_level(turn.session, consultation, level)
    if level is RiskLevel.IMMINENT:
        safety = f"{turn.content.messages.imminent_safety}\n\n{await open_lines(turn, turn.record.occurred_at)}"
        turn.reply(texts(safety))
    return level, consultation


class ScreenedAhead:
    """The screener, with each text screened before the handler's transaction opens (screen first, then write).

    `ahead` runs as the inbox worker's `before` hook; the handler's `screen` then finds the result
    ready instead of waiting for the model inside its transaction. Results are kept by text (a
    screening depends on the text alone), taken once, and at most `KEEP` are held.
    """

    KEEP = 256

    def __init__(self, screener: Screener, observe: Callable[[float], None] = lambda seconds: None) -> None:
        """`observe` is told how long each screening ahead took (for `/metrics`)."""
        self._screener = screener
        self._observe = observe
        self._ready: OrderedDict[str, Screening] = OrderedDict()

    async def ahead(self, record: InboxEvent) -> None:
        """Screen the event's text, if it is a text message, and keep the result for the handler."""
        message = record.payload.get("message") or {}
        if record.event_type != "message" or message.get("type") != "text":
            return
        text = str(message.get("text") or "")
        started = time.perf_counter()
        [self._ready[text]] = await self._screener.screen([text])
        self._observe(time.perf_counter() - started)
        while len(self._ready) > self.KEEP:
            self._ready.popitem(last=False)

    async def screen(self, texts: list[str]) -> list[Screening]:
        """One screening per text: those screened ahead at once, any other by the screener now."""
        ready = {text: self._ready.pop(text) for text in set(texts) if text in self._ready}
        missing = [text for text in dict.fromkeys(texts) if text not in ready]
        ready.update(zip(missing, await self._screener.screen(missing)))
        return [ready[text] for text in texts]


def _flag(message: UserMessage, consultation: Consultation | None, screening: Screening) -> RiskFlag:
    return RiskFlag(
        message_id=message.id,
        user_id=message.user_id,
        consultation_id=consultation.id if consultation else None,
        level=RiskLevel(screening.level),
        score=screening.score,
        source=screening.source,
        tags=[{"name": t.name, "span": list(t.span) if t.span else None, "text": t.text} for t in screening.tags],
    )


@dataclass(frozen=True)
class RaisedBy:
    """Why a consultation stands at its level: the flag that set it and the message it was on."""

    flag: RiskFlag
    message: UserMessage

    @property
    def words(self) -> list[str]:
        """The words the keyword floor found (empty when the model alone decided or a counselor reported it)."""
        return list(dict.fromkeys(t["text"] for t in self.flag.tags if t.get("span") and t["name"] != "third_party"))

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Where those words are in the message, to mark them when it is shown."""
        return sorted(tuple(t["span"]) for t in self.flag.tags if t.get("span") and t["name"] != "third_party")


async def raised_by(session: AsyncSession, consultations: Iterable[Consultation]) -> dict[int, RaisedBy]:
    """For each consultation above `low`, the first flag at its level (the one that raised it there)."""
    levels = {c.id: c.risk_level for c in consultations if c.risk_level is not RiskLevel.LOW}
    if not levels:
        return {}
    flags = await session.exec(select(RiskFlag).where(col(RiskFlag.consultation_id).in_(levels)).order_by(RiskFlag.created_at, RiskFlag.id))
    first: dict[int, RiskFlag] = {}
    for flag in flags:
        if flag.level == levels[flag.consultation_id]:
            first.setdefault(flag.consultation_id, flag)
    messages = {m.id: m for m in await session.exec(select(UserMessage).where(col(UserMessage.id).in_([f.message_id for f in first.values()])))}
    return {cid: RaisedBy(flag, messages[flag.message_id]) for cid, flag in first.items()}


async def alarm_for_unhandled(session: AsyncSession, record: InboxEvent, lexicon: Lexicon) -> None:
    """Screen a text the service gave up on with the keyword floor, and raise the alarm if it is urgent.

    Called as the inbox marks the event failed: the handler never screened it, and it may be the
    message saying someone has taken pills. The level is kept on the event (supervisors see it at the
    top of the failure list); at high or imminent the person's open consultation, if any, is escalated
    and supervisors' pages are alerted live. Only the floor runs here: it is pure and cannot fail the
    way the handler did.
    """
    message = record.payload.get("message") or {}
    if message.get("type") != "text":
        return
    level = lexicon.floor(str(message.get("text") or "")).level
    record.floor_level = level
    session.add(record)
    if not at_least(level, RiskLevel.HIGH):
        return
    await session.exec(
        update(Consultation)
        .where(
            Consultation.user_id == record.source_id,
            col(Consultation.status).in_(OPEN_CONSULTATION),
            col(Consultation.escalated_at).is_(None),
        )
        .values(escalated_at=utcnow())
    )
    announce(session, ALERTS_TOPIC, QUEUE_TOPIC)
    log.error("inbox event %s was given up and its text screens %s: supervisors alerted", record.id, level, extra={"event_id": record.id})
