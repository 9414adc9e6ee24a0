"""What waits for a commit: live topics for the console and a wake-up for the outbox sender.

Code that changes something records what should follow with `announce(session, topic)` or
`note_send_queued(session)`; nothing happens unless and until the transaction commits. The
listeners that act on those notes are installed on each session factory's own session class by
`bot.storage.db.session_factory` (not by importing a module), so a reader finds them there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event, text
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.live import CHANNEL, Hub

# Keys in `Session.info` for what this transaction asked for.
_TOPICS_KEY = "announced_topics"
_SEND_KEY = "send_queued"


def announce(session: AsyncSession, *topics: str) -> None:
    """Announce `topics` to the console's live pages when (and only if) this transaction commits."""
    session.sync_session.info.setdefault(_TOPICS_KEY, set()).update(topics)


def note_send_queued(session: AsyncSession, *recipients: str) -> None:
    """This transaction added outbox rows (for `recipients`, or unknown): wake the sender when it commits.

    Named recipients are started directly; without names the sender searches for due rows.
    """
    session.sync_session.info.setdefault(_SEND_KEY, set()).update(recipients or [None])


@dataclass(frozen=True)
class AfterCommit:
    """This process's answers to a commit: the hub of its live pages and its outbox sender's wake-up."""

    hub: Hub | None = None
    wake_sender: Callable[..., None] | None = None

    def install(self, session_class: type[Session]) -> None:
        """Listen to the transactions of `session_class` (one class per session factory)."""
        event.listen(session_class, "before_commit", self._notify_postgres)
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", self._forget)

    @staticmethod
    def _notify_postgres(session: Session) -> None:
        # On PostgreSQL the topics travel with the transaction, so every process (this one included)
        # hears them from its LISTEN connection exactly when they become true.
        topics = session.info.get(_TOPICS_KEY)
        if topics and session.get_bind().dialect.name == "postgresql":
            for topic in sorted(topics):
                session.execute(text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic})

    def _after_commit(self, session: Session) -> None:
        topics = session.info.pop(_TOPICS_KEY, None)
        if topics and self.hub is not None and session.get_bind().dialect.name != "postgresql":
            self.hub.publish(topics)
        recipients = session.info.pop(_SEND_KEY, None)
        if recipients and self.wake_sender is not None:
            self.wake_sender(*recipients)

    @staticmethod
    def _forget(session: Session) -> None:
        session.info.pop(_TOPICS_KEY, None)
        session.info.pop(_SEND_KEY, None)
