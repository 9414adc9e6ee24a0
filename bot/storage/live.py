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
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "tsunagi"
# Heard after a gap in what this process could hear: every listener should catch up on everything.
RESYNC = "*"
_CLOSED = "\x00closed"


class Hub:
    """Fans topics out to every listening page of this process."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[str]] = set()
        #: How many console pages are listening now (for `/metrics`).
        self.pages = 0

    def publish(self, topics: Iterable[str]) -> None:
        """Tell every listener that these topics changed."""
        for listener in self._listeners:
            for topic in topics:
                listener.put_nowait(topic)

    @asynccontextmanager
    async def listen(self, *, page: bool = True) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of topics for one page (or, with `page=False`, the service itself), while connected."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(queue)
        self.pages += page
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
            self.pages -= page

    def close(self) -> None:
        """End every listening stream (the service is stopping)."""
        self.publish([_CLOSED])

    @staticmethod
    def is_closing(topic: str) -> bool:
        """Whether a topic received means the stream should end."""
        return topic == _CLOSED


class Listening:
    """Whether this process hears the others (PostgreSQL's LISTEN connection is up), for `/healthz`."""

    def __init__(self) -> None:
        self.up = False
        self.down_since: datetime | None = None

    def lost(self) -> None:
        """The connection went away."""
        self.up, self.down_since = False, datetime.now(UTC)

    def back(self) -> None:
        """The connection is listening."""
        self.up, self.down_since = True, None


@asynccontextmanager
async def postgres_listener(
    database_url: str, hub: Hub, *, max_backoff: float = 30.0, check_every: float = 15.0
) -> AsyncIterator[Listening]:
    """Relay `NOTIFY tsunagi` from every process to this process's hub, while open, whatever the database does.

    The first connection must succeed (start-up fails clearly otherwise). When the connection is lost
    (a database restart, a cut connection), it is made again with backoff up to `max_backoff`
    seconds, and the hub hears `RESYNC` so open pages fetch what they missed. A connection that died
    without a word is found by a query every `check_every` seconds.
    """
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    listening = Listening()

    def relay(_connection: object, _pid: int, _channel: str, topic: str) -> None:
        hub.publish([topic])

    async def listen() -> tuple[asyncpg.Connection, asyncio.Event]:
        connection = await asyncpg.connect(url, timeout=5)
        lost = asyncio.Event()  # this connection's own, so an old one's last words cannot trip a new one
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, relay)
        listening.back()
        return connection, lost

    async def until_lost(connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), check_every)
            except TimeoutError:
                try:
                    await connection.execute("SELECT 1", timeout=5)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    return

    async def keep_listening(connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        try:
            while True:
                await until_lost(connection, lost)
                listening.lost()
                connection.terminate()
                log.error("live updates: the LISTEN connection to PostgreSQL was lost; reconnecting")
                delay = 0.5
                while True:
                    await asyncio.sleep(delay)
                    try:
                        connection, lost = await listen()
                        break
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                        delay = min(delay * 2, max_backoff)
                        log.warning("live updates: reconnecting failed (%s); next try in %.1fs", type(exc).__name__, delay)
                log.warning("live updates: listening again")
                hub.publish([RESYNC])
        finally:
            connection.terminate()

    keeping = asyncio.create_task(keep_listening(*await listen()))
    try:
        yield listening
    finally:
        keeping.cancel()
        await asyncio.gather(keeping, return_exceptions=True)
