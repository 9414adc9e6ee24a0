"""A small event router: handlers registered per event kind, first match wins (after aiogram 3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from linebot.v3.webhooks import Event, MessageEvent
from moderation.screener import Screener
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.guidance.content import Content
from bot.line.inbox import source_id
from bot.line.messages import Message
from bot.line.outbox import enqueue
from bot.storage.models import InboxEvent


@dataclass
class Turn:
    """Everything a handler needs for one event; handlers get it as their only argument."""

    session: AsyncSession
    #: The content in every language; `content` is the one the person reads.
    all_content: Content
    zone: ZoneInfo
    record: InboxEvent
    event: Event
    #: Screens what people write for risk (`moderation.screener.Screener`).
    screener: Screener
    language: str | None = None

    @property
    def content(self) -> Content:
        """The content in the person's language."""
        return self.all_content.in_language(self.language)

    @property
    def source_id(self) -> str:
        """The user (or group/room) the event came from."""
        return source_id(self.record.payload)

    def reply(self, messages: list[Message]) -> None:
        """Answer the event: by reply token while fresh, else by push (decided by the outbox sender)."""
        enqueue(
            self.session,
            self.source_id,
            messages,
            reply_token=getattr(self.event, "reply_token", None),
            event_time=self.record.occurred_at,
        )


Handler = Callable[[Turn], Awaitable[None]]


class Router:
    """Maps event classes (and, for messages, content classes) to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[type, type | None, Handler]] = []

    def on(self, event_type: type, content_type: type | None = None) -> Callable[[Handler], Handler]:
        """Register the decorated handler for an event class, optionally one message content class."""

        def register(handler: Handler) -> Handler:
            self._routes.append((event_type, content_type, handler))
            return handler

        return register

    async def dispatch(self, turn: Turn) -> bool:
        """Run the first matching handler. Returns whether one matched."""
        content = turn.event.message if isinstance(turn.event, MessageEvent) else None
        for event_type, content_type, handler in self._routes:
            if isinstance(turn.event, event_type) and (content_type is None or isinstance(content, content_type)):
                await handler(turn)
                return True
        return False
