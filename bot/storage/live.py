"""Live updates for the console: which topics changed ("queue", "consultation:12", "alerts"), never content.

Code that changes something calls `after_commit.announce(session, topic)`; the topic goes out only
if the transaction commits. On SQLite (one process) the hub hears it after the commit; on PostgreSQL
it is sent with `pg_notify` inside the transaction, so every process, this one included, hears it
from its `LISTEN` connection (`postgres_listener`) at commit time. Pages listen through Server-Sent
Events and re-fetch what changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "tsunagi"
_CLOSED = "\x00closed"


class Hub:
    """Fans topics out to every listening page of this process."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[str]] = set()

    def publish(self, topics: Iterable[str]) -> None:
        """Tell every listener that these topics changed."""
        for listener in self._listeners:
            for topic in topics:
                listener.put_nowait(topic)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of topics for one page, for as long as it is connected."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    def close(self) -> None:
        """End every listening stream (the service is stopping)."""
        self.publish([_CLOSED])

    @staticmethod
    def is_closing(topic: str) -> bool:
        """Whether a topic received means the stream should end."""
        return topic == _CLOSED


@asynccontextmanager
async def postgres_listener(database_url: str, hub: Hub) -> AsyncIterator[None]:
    """Relay `NOTIFY tsunagi` from every process to this process's hub, while open."""
    url = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))

    def relay(_connection: object, _pid: int, _channel: str, topic: str) -> None:
        hub.publish([topic])

    await connection.add_listener(CHANNEL, relay)
    try:
        yield
    finally:
        await connection.close()
