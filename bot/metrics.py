"""`GET /metrics` in Prometheus's text format, for operators: how the service is doing, never what people wrote.

Counts kept as things happen (webhook latency, screening latency, LINE's errors by status) live in
this app's own registry (several apps can run in one process, as in the tests); what the database
knows (backlogs, failures, the queue) is read at each scrape.
"""

from __future__ import annotations

import time
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import waiting
from bot.line.deadletters import failure_counts
from bot.line.inbox import InboxWorker
from bot.line.outbox import OutboxSender
from bot.storage.live import Hub, Listening
from bot.storage.models import InboxEvent, InboxStatus, OutboxMessage, OutboxStatus, RiskLevel, utcnow

# Seconds; the webhook must answer LINE well within a second, so the buckets are fine below it.
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCREENING_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The instruments of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhook_seconds = Histogram("tsunagi_webhook_seconds", "Time to answer LINE's webhook POST", buckets=WEBHOOK_BUCKETS, registry=r)
        self.screening_seconds = Histogram(
            "tsunagi_screening_seconds", "Time to screen one text for risk (keyword floor and model)", buckets=SCREENING_BUCKETS, registry=r
        )
        self.line_api_errors = PromCounter("tsunagi_line_api_errors", "Answers from LINE's Messaging API outside 2xx", ["status"], registry=r)
        self.backlog = Gauge("tsunagi_backlog", "Pending inbox events or outbox rows", ["queue"], registry=r)
        self.oldest_seconds = Gauge("tsunagi_backlog_oldest_seconds", "Age of the oldest pending item", ["queue"], registry=r)
        self.failed = Gauge("tsunagi_failed", "Items given up, waiting for someone (tsunagi inbox|outbox retry)", ["queue"], registry=r)
        self.waiting = Gauge("tsunagi_queue_waiting", "People waiting for a counselor", ["risk_level"], registry=r)
        self.longest_wait = Gauge("tsunagi_queue_oldest_wait_seconds", "Longest current wait for a counselor", ["risk_level"], registry=r)
        self.live_connections = Gauge("tsunagi_live_connections", "Console pages listening for live updates", registry=r)
        self.listening = Gauge("tsunagi_listen_up", "1 while PostgreSQL's LISTEN connection carries other processes' changes", registry=r)
        self.sending_paused = Gauge("tsunagi_sending_paused", "1 while sending is paused (LINE refused the token)", registry=r)
        self.workers_running = Gauge("tsunagi_worker_running", "1 while the worker runs", ["worker"], registry=r)

    def webhook_timer(self) -> Middleware:
        """A middleware timing every webhook POST, whatever its answer."""

        @web.middleware
        async def time_webhook(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path != "/callback":
                return await handler(request)
            started = time.perf_counter()
            try:
                return await handler(request)
            finally:
                self.webhook_seconds.observe(time.perf_counter() - started)

        return time_webhook

    async def exposition(
        self,
        sessions: async_sessionmaker[AsyncSession],
        inbox: InboxWorker,
        sender: OutboxSender,
        hub: Hub,
        listening: Listening | None,
    ) -> bytes:
        """The text exposition: what the database knows, read now, with what this process counted."""
        now = utcnow()
        async with sessions() as session:
            for name, model, pending, created in (
                ("inbox", InboxEvent, InboxEvent.status == InboxStatus.PENDING, InboxEvent.received_at),
                ("outbox", OutboxMessage, OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.created_at),
            ):
                count, oldest = (await session.exec(select(func.count(), func.min(created)).select_from(model).where(pending))).one()
                self.backlog.labels(queue=name).set(count)
                self.oldest_seconds.labels(queue=name).set(_age(oldest, now))
            failed = await failure_counts(session)
            queue = await waiting(session, now)
        self.failed.labels(queue="inbox").set(failed.inbox)
        self.failed.labels(queue="outbox").set(failed.outbox)
        for level in RiskLevel:
            mine = [c for c in queue if c.risk_level == level]
            self.waiting.labels(risk_level=level.value).set(len(mine))
            self.longest_wait.labels(risk_level=level.value).set(max((_age(c.queued_at, now) for c in mine), default=0.0))
        self.sending_paused.set(sender.paused is not None)
        self.workers_running.labels(worker="inbox").set(inbox.running)
        self.workers_running.labels(worker="outbox").set(sender.running)
        self.live_connections.set(hub.pages)
        self.listening.set(1 if listening is None or listening.up else 0)  # SQLite: one process, nothing to hear
        return generate_latest(self.registry)


def _age(since: datetime | None, now: datetime) -> float:
    return (now - since).total_seconds() if since is not None else 0.0
