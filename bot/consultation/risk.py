"""Risk screening in the service: every text a person sends is screened before it is queued or answered.

Each text is screened alone (the model and the keyword floor) and, with the person's messages just
before it (`window_before`), by the model as a conversation: a goodbye and then 「行ってくる」 says
more than either line. The level of a consultation is the highest seen so far and never drops by
itself. A message at `medium` or above, alone or read in its window, becomes a flag for moderators;
each flag keeps the reader's latest verdict on a window holding its message (`context_level`), and
when that is lower (a bungee jump after 「飛び降りた」) moderators see it and may lower the level with
one audited click. An `imminent` message gets the person a safety message at once, puts their
consultation at the top of the queue (opening one in the crisis category if they had none) and alerts
supervisors live.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from moderation.lexicon import Lexicon
from moderation.screener import ModelResult, Screener
from moderation.screening import Screening, at_least, highest, rank
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import ALERTS_TOPIC, QUEUE_TOPIC, consultation_topic, raise_level
from bot.consultation.requests import crisis_consultation, open_consultation
from bot.conversation.router import Turn
from bot.guidance.finder import open_lines
from bot.line.inbox import source_id
from bot.line.messages import texts
from bot.storage.after_commit import announce
from bot.storage.models import OPEN_CONSULTATION, Consultation, FlagState, InboxEvent, RiskFlag, RiskLevel, UserMessage, utcnow

log = logging.getLogger(__name__)

FLAGS_TOPIC = "flags"
# Messages at this level or above are kept as flags for moderator review.
FLAG_FROM = RiskLevel.MEDIUM
# What the conversation reader reads with a new message: the person's texts of the last half hour,
# at most this many (the reader keeps the newest that fit its length, `moderation.screening`).
WINDOW_MESSAGES = 8
WINDOW = timedelta(minutes=30)
# The source of a flag the conversation reader raised above what each message alone said.
READER_SOURCE = "conversation"


async def screen_message(turn: Turn, message: UserMessage) -> tuple[RiskLevel, Consultation | None]:
    """Screen one text the person sent, alone and in its window, and act on the level.

    Returns the level and the person's open consultation (opened here if the level was imminent),
    which the handler goes on with rather than looking it up again.
    """
    if message.id is None:
        await turn.session.flush()  # the flag refers to the stored message
    [screening] = await turn.screener.screen([message.text or ""])
    window = [*await window_before(turn.session, message.user_id, message.sent_at), message]
    read = await turn.screener.read([[m.text or "" for m in window]]) if len(window) > 1 else None
    in_context = read[0] if read else None
    level = RiskLevel(highest(screening.level, in_context[0] if in_context else "low"))
    if level is RiskLevel.IMMINENT:
        consultation = await crisis_consultation(turn)
    else:
        consultation = await open_consultation(turn.session, turn.source_id)
    flags = []
    if rank(screening.level) >= FLAG_FROM.rank:
        flags.append(_flag(message, consultation, screening))
    if in_context and rank(in_context[0]) > max(rank(screening.level), FLAG_FROM.rank - 1):
        flags.append(_flag(message, consultation, Screening(in_context[0], in_context[1], READER_SOURCE)))
    turn.session.add_all(flags)
    if in_context:
        await _read_in_context(turn.session, [m.id for m in window], RiskLevel(in_context[0]), flags)
    if flags:
        announce(turn.session, FLAGS_TOPIC)
    if consultation is not None:
        raise_level(turn.session, consultation, level)
    if level is RiskLevel.IMMINENT:
        safety = f"{turn.content.messages.imminent_safety}\n\n{await open_lines(turn, turn.record.occurred_at)}"
        turn.reply(texts(safety))
    return level, consultation


async def window_before(session: AsyncSession, user_id: str, until: datetime) -> list[UserMessage]:
    """The person's texts the reader reads before one sent at `until`, oldest first."""
    rows = await session.exec(
        select(UserMessage)
        .where(UserMessage.user_id == user_id, UserMessage.kind == "text", col(UserMessage.text).is_not(None),
               UserMessage.sent_at < until, UserMessage.sent_at >= until - WINDOW)
        .order_by(col(UserMessage.sent_at).desc(), col(UserMessage.id).desc())
        .limit(WINDOW_MESSAGES - 1)
    )
    return list(reversed(list(rows)))


async def _read_in_context(session: AsyncSession, message_ids: list[int | None], level: RiskLevel, new: list[RiskFlag]) -> None:
    """Keep the reader's verdict on this window on every flag of its messages: the latest reading has the most context."""
    earlier = await session.exec(select(RiskFlag).where(col(RiskFlag.message_id).in_(message_ids), col(RiskFlag.reported_by).is_(None)))
    for flag in [*earlier, *new]:
        if flag.context_level != level:
            flag.context_level = level
            session.add(flag)


class ScreenedAhead:
    """The screener, with each text screened before the handler's transaction opens (screen first, then write).

    `ahead` runs as the inbox worker's `before` hook: it screens the text alone and, when `sessions`
    is given, reads it in its window of the person's earlier texts; the handler's `screen` and `read`
    then find the results ready instead of waiting for the model inside its transaction. Results are
    kept by text (a screening depends on the text alone) or by window, taken once, and at most `KEEP`
    of each are held.
    """

    KEEP = 256

    def __init__(
        self, screener: Screener, observe: Callable[[float], None] = lambda seconds: None, sessions: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        """`observe` is told how long each screening ahead took (for `/metrics`)."""
        self._screener = screener
        self._observe = observe
        self._sessions = sessions
        self._ready: OrderedDict[str, Screening] = OrderedDict()
        self._read: OrderedDict[tuple[str, ...], tuple[str, float] | None] = OrderedDict()

    async def ahead(self, record: InboxEvent) -> None:
        """Screen the event's text, if it is a text message, and keep the results for the handler."""
        message = record.payload.get("message") or {}
        if record.event_type != "message" or message.get("type") != "text":
            return
        text = str(message.get("text") or "")
        started = time.perf_counter()
        [self._ready[text]] = await self._screener.screen([text])
        if self._sessions is not None:
            async with self._sessions() as session:
                before = await window_before(session, source_id(record.payload), record.occurred_at)
            if before:
                window = (*(m.text for m in before), text)
                read = await self._screener.read([list(window)])
                self._read[window] = read[0] if read else None
        self._observe(time.perf_counter() - started)
        for kept in (self._ready, self._read):
            while len(kept) > self.KEEP:
                kept.popitem(last=False)

    async def screen(self, texts: list[str]) -> list[Screening]:
        """One screening per text: those screened ahead at once, any other by the screener now."""
        ready = {text: self._ready.pop(text) for text in set(texts) if text in self._ready}
        missing = [text for text in dict.fromkeys(texts) if text not in ready]
        ready.update(zip(missing, await self._screener.screen(missing)))
        return [ready[text] for text in texts]

    async def read(self, conversations: list[list[str]]) -> ModelResult:
        """The reader's verdict on each conversation: those read ahead at once, the others by the screener now."""
        keys = [tuple(c) for c in conversations]
        if all(key in self._read for key in keys):
            results = [self._read.pop(key) for key in keys]
            return None if None in results else results
        return await self._screener.read(conversations)


def _flag(message: UserMessage, consultation: Consultation | None, screening: Screening) -> RiskFlag:
    return RiskFlag(
        message_id=message.id,
        user_id=message.user_id,
        consultation_id=consultation.id if consultation else None,
        level=RiskLevel(screening.level),
        score=screening.score,
        source=screening.source,
        tags=[{"name": t.name, "span": list(t.span) if t.span else None, "text": t.text} for t in screening.tags],
        drivers=[{"span": list(t.span), "text": t.text} for t in screening.drivers],
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

    @property
    def drivers(self) -> list[str]:
        """The words the model weighed most for its level, strongest first, beside the floor's words."""
        return [w for w in dict.fromkeys(d["text"] for d in self.flag.drivers or [] if d.get("text")) if w not in self.words]

    @property
    def driver_spans(self) -> list[tuple[int, int]]:
        """Where those words are in the message."""
        return sorted(tuple(d["span"]) for d in self.flag.drivers or [])

    @property
    def defused(self) -> RiskLevel | None:
        """The conversation reader's lower verdict on this flag's message in its context, if it gave one."""
        return defused(self.flag)


def defused(flag: RiskFlag) -> RiskLevel | None:
    """The reader's latest verdict on the flag's message read with the messages around it, when it is
    below the flag's level (context defused the words), else None."""
    if flag.context_level is None or RiskLevel(flag.context_level).rank >= RiskLevel(flag.level).rank:
        return None
    return RiskLevel(flag.context_level)


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


async def lower_in_context(session: AsyncSession, flag: RiskFlag, staff_id: int, category_floor: RiskLevel) -> Consultation | None:
    """A moderator accepts the conversation reader's lower verdict on a flag (`defused`): the flag is
    relabelled at it, and its consultation, if any, goes down to the highest level still standing (its
    other flags as reviewed, its category's floor). Returns that consultation; the caller audits."""
    level = defused(flag)
    if level is None:
        raise ValueError(f"flag {flag.id} is not defused in context")
    flag.state, flag.reviewed_level, flag.reviewed_by, flag.reviewed_at = FlagState.RELABELLED, level, staff_id, utcnow()
    session.add(flag)
    announce(session, FLAGS_TOPIC)
    consultation = await session.get(Consultation, flag.consultation_id) if flag.consultation_id else None
    if consultation is None:
        return None
    others = await session.exec(select(RiskFlag).where(RiskFlag.consultation_id == consultation.id, RiskFlag.id != flag.id))
    standing = RiskLevel(highest(category_floor, level, *(f.reviewed_level or f.level for f in others)))
    if standing.rank < RiskLevel(consultation.risk_level).rank:
        consultation.risk_level = standing
        session.add(consultation)
        announce(session, QUEUE_TOPIC, consultation_topic(consultation.id))
    return consultation


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
