"""A small event router: handlers registered per event kind or tap payload, first match wins (after aiogram 3).

Each capability keeps a `Router` of its own beside its handlers; the table of routes
(`bot.conversation.handlers`) includes them, so a capability's taps live in its own package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from linebot.v3.webhooks import Event, MessageEvent
from moderation.screening import Screening
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation.postbacks import Postback
from bot.guidance.content import Content
from bot.line.inbox import source_id
from bot.line.messages import Message
from bot.line.outbox import enqueue
from bot.storage.models import InboxEvent


class Screens(Protocol):
    """What screens texts for risk: `moderation.screener.Screener`, or `risk.ScreenedAhead` around it."""

    async def screen(self, texts: list[str]) -> list[Screening]:
        """One screening per text, in order."""

    async def read(self, conversations: list[list[str]]) -> list[tuple[str, float]] | None:
        """The model's verdict (level, probability) on each conversation as a whole; None while no model screens."""


@dataclass
class Turn:
    """Everything a handler needs for one event; handlers get it as their only argument."""

    session: AsyncSession
    #: The content in every language; `content` is the one the person reads.
    all_content: Content
    zone: ZoneInfo
    record: InboxEvent
    event: Event
    #: Screens what people write for risk.
    screener: Screens
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
P = TypeVar("P", bound=Postback)
TapHandler = Callable[[Turn, P], Awaitable[None]]


class Router:
    """Maps event classes (for messages, also content classes) and tap payloads to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[type, type | None, Handler]] = []
        self._taps: list[tuple[type[Postback], dict[str, Any], TapHandler[Any]]] = []
        self._children: list[Router] = []

    def on(self, event_type: type, content_type: type | None = None) -> Callable[[Handler], Handler]:
        """Register the decorated handler for an event class, optionally one message content class."""

        def register(handler: Handler) -> Handler:
            self._routes.append((event_type, content_type, handler))
            return handler

        return register

    def tap(self, kind: type[P], **fields: Any) -> Callable[[TapHandler[P]], TapHandler[P]]:
        """Register the decorated handler for taps of `kind`, optionally only those whose fields equal `fields`."""

        def register(handler: TapHandler[P]) -> TapHandler[P]:
            self._taps.append((kind, fields, handler))
            return handler

        return register

    def include_router(self, router: Router) -> None:
        """Consult `router` after this router's own routes."""
        self._children.append(router)

    def tap_routes(self) -> Iterator[tuple[type[Postback], dict[str, Any]]]:
        """Each tap kind routed here or in an included router, with the fields it must have."""
        for router in self._all():
            for kind, fields, _handler in router._taps:
                yield kind, fields

    def _all(self) -> Iterator[Router]:
        yield self
        for child in self._children:
            yield from child._all()

    async def dispatch(self, turn: Turn) -> bool:
        """Run the first handler matching the event. Returns whether one matched."""
        content = turn.event.message if isinstance(turn.event, MessageEvent) else None
        for router in self._all():
            for event_type, content_type, handler in router._routes:
                if isinstance(turn.event, event_type) and (content_type is None or isinstance(content, content_type)):
                    await handler(turn)
                    return True
        return False

    async def dispatch_tap(self, turn: Turn, tap: Postback) -> bool:
        """Run the first handler matching a parsed tap. Returns whether one matched."""
        for router in self._all():
            for kind, fields, handler in router._taps:
                if isinstance(tap, kind) and all(getattr(tap, name) == value for name, value in fields.items()):
                    await handler(turn, tap)
                    return True
        return False
