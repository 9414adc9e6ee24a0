"""APScheduler drives the room sessions: a reminder before, opening at the start, closing at the end.

Jobs carry only a session id and live in memory; the database is the truth. At start, and every
hour after, the scheduler plans the coming sessions and (re)builds the jobs of every session not
yet finished, so a restart during an open session keeps it open and closes it on time, and a time
that passed while the service was down is acted on at once. With several processes each runs the
same jobs; the transitions in `bot/rooms/sessions.py` make the repeats do nothing. A change of a
room's schedule reaches every process at once (`SCHEDULE_TOPIC`, through NOTIFY on PostgreSQL), and
each transition checks its time against the database before acting, so a job planned before a
change neither closes a lengthened session early nor is lost: it is planned again for the new time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.guidance.content import Content
from bot.line.inbox import SessionFactory
from bot.rooms.sessions import (
    SCHEDULE_TOPIC,
    UNFINISHED,
    close_session,
    open_session,
    plan_sessions,
    remind,
    rooms_in_effect,
    unfinished_sessions,
)
from bot.storage.live import RESYNC, Hub
from bot.storage.models import RoomSession, RoomSessionStatus, utcnow

log = logging.getLogger(__name__)

PLAN_EVERY = timedelta(hours=1)


class RoomScheduler:
    """Keeps one APScheduler job per coming transition of every unfinished session."""

    def __init__(
        self, sessions: SessionFactory, content: Content, zone: ZoneInfo, on_change: Callable[[], None], hub: Hub | None = None
    ) -> None:
        """`on_change` is called after a transition committed (it wakes the outbox sender); from `hub`
        the scheduler hears that a room's schedule changed, in any process."""
        self._sessions, self._content, self._zone, self._on_change = sessions, content, zone, on_change
        self._hub = hub
        self._scheduler = AsyncIOScheduler(timezone=zone)
        self._running: set[asyncio.Task[None]] = set()
        self._hearing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Plan, build the jobs, and start the schedule (within the running event loop)."""
        self._scheduler.start()
        if self._hub is not None:
            self._hearing = asyncio.create_task(self._plan_on_change(self._hub))
        await self.plan()
        self._scheduler.add_job(self._tracked, IntervalTrigger(seconds=PLAN_EVERY.total_seconds(), timezone=self._zone), args=[self.plan], id="plan")

    async def stop(self) -> None:
        """No new jobs start; the ones running finish (before the database they use is closed).

        APScheduler's own shutdown cancels running coroutine jobs, so it comes last.
        """
        if self._hearing is not None:
            self._hearing.cancel()
        self._scheduler.pause()
        await asyncio.sleep(0)  # a job handed to the executor a moment ago starts, and so is waited for
        await asyncio.gather(*self._running, return_exceptions=True)
        self._scheduler.shutdown(wait=False)

    async def _plan_on_change(self, hub: Hub) -> None:
        """Plan again whenever a room's schedule changed, here or in another process (or changes were missed)."""
        async with hub.listen(page=False) as topics:
            while True:
                topic = await topics.get()
                if topic in (SCHEDULE_TOPIC, RESYNC):
                    try:
                        await self._tracked(self.plan)
                    except Exception:
                        log.exception("room schedule: planning after a change failed; the hourly planning retries")

    async def _tracked(self, job: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run a job so that `stop` can wait for it."""
        task = asyncio.current_task()
        self._running.add(task)
        try:
            await job(*args)
        finally:
            self._running.discard(task)

    async def plan(self) -> None:
        """Create the coming sessions and a job for each transition still ahead of every unfinished one."""
        async with self._sessions() as session:
            await plan_sessions(session, await rooms_in_effect(session, self._content.rooms), self._zone, utcnow())
            await session.commit()
            unfinished = await unfinished_sessions(session)
        for room_session in unfinished:
            self.schedule(room_session)

    def schedule(self, room_session: RoomSession) -> None:
        """Jobs for what is still to happen to this session; a time already past runs now."""
        now = utcnow()
        remind_at = room_session.starts_at - timedelta(minutes=self._content.rooms.remind_minutes_before)
        if room_session.status == RoomSessionStatus.SCHEDULED:
            if room_session.reminded_at is None and now < room_session.starts_at:
                self._at(remind_at, "remind", room_session.id)
            self._at(room_session.starts_at, "open", room_session.id)
        self._at(room_session.ends_at, "close", room_session.id)

    def _at(self, when: datetime, what: str, session_id: int) -> None:
        self._scheduler.add_job(
            self._tracked,
            DateTrigger(run_date=max(when, utcnow()), timezone=self._zone),
            args=[self._run, what, session_id],
            id=f"{what}:{session_id}",
            replace_existing=True,
            misfire_grace_time=None,  # late is better than never: a closing must still happen
        )

    async def _run(self, what: str, session_id: int) -> None:
        transitions: dict[str, Callable[[AsyncSession], Awaitable[bool]]] = {
            "remind": lambda session: remind(session, self._content, session_id, self._zone),
            "open": lambda session: open_session(session, self._content, session_id),
            "close": lambda session: close_session(session, self._content, session_id, when_due=True),
        }
        try:
            async with self._sessions() as session:
                done = await transitions[what](session)
                await session.commit()
                current = None if done else await session.get(RoomSession, session_id)
        except Exception:
            log.exception("room session %s: %s failed; the next planning retries it", session_id, what, extra={"room_session_id": session_id})
            return
        if done:
            log.info("room session %s: %s", session_id, what, extra={"room_session_id": session_id})
            self._on_change()
        elif current is not None and current.status in UNFINISHED and self._time_of(what, current) > utcnow():
            # The database moved this transition later (a change made elsewhere): keep a job for the new time.
            self._at(self._time_of(what, current), what, session_id)

    def _time_of(self, what: str, room_session: RoomSession) -> datetime:
        """When the database says `what` should happen to the session."""
        if what == "close":
            return room_session.ends_at
        if what == "open":
            return room_session.starts_at
        return room_session.starts_at - timedelta(minutes=self._content.rooms.remind_minutes_before)
