"""The web application: `init_app(settings, content)` builds it; cleanup contexts own every resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from moderation.lexicon import load_lexicon
from moderation.screener import Screener

from bot.appkeys import (
    BUDGET,
    CONTENT,
    ENGINE,
    HUB,
    INBOX_WORKER,
    INBOX_WRITER,
    LINE_API,
    LINE_BLOB,
    LISTENING,
    METRICS,
    OUTBOX_SENDER,
    ROOM_SCHEDULER,
    SCREENER,
    SESSIONS,
    SETTINGS,
)
from bot.console import add_console
from bot.consultation.queue import sweep
from bot.consultation.risk import ScreenedAhead, alarm_for_unhandled
from bot.conversation.handlers import handle_event
from bot.guidance.content import RISK_FOLDER, Content
from bot.line.budget import MessageBudget
from bot.line.channel import line_clients
from bot.line.deadletters import failure_counts
from bot.line.inbox import InboxWorker, InboxWriter, SessionFactory, yielding
from bot.line.outbox import OutboxSender
from bot.line.webhook import MAX_BODY_BYTES, callback
from bot.metrics import Metrics
from bot.privacy.retention import NightlyRetention
from bot.rooms.scheduler import RoomScheduler
from bot.settings import Settings, SettingsError
from bot.storage.crypto import use_keys
from bot.storage.db import UPGRADE_COMMAND, create_engine, pending_migrations, session_factory
from bot.storage.live import Hub, postgres_listener

log = logging.getLogger(__name__)

# How often waiting and silent consultations are looked at (idle closing, high-risk escalation).
SWEEP_SECONDS = 5


class StartupError(Exception):
    """The service cannot start; the message says why and what to do, in one line."""


def init_app(settings: Settings, content: Content) -> web.Application:
    """Build the service: webhook, health check, workers, database and LINE client."""
    metrics = Metrics()
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[metrics.webhook_timer()])
    app[METRICS] = metrics
    app[SETTINGS] = settings
    app[CONTENT] = content
    app[HUB] = Hub()
    app.cleanup_ctx.extend([_database, _live, _line_api, _screener, _workers, _rooms, _retention])
    # Open event streams end first, so stopping never waits for a console tab to close.
    app.on_shutdown.append(_close_streams)
    app.router.add_post("/callback", callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    add_console(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    try:
        # What people write is stored encrypted under these keys (bot/storage/crypto.py).
        use_keys(app[SETTINGS].key_ring())
    except SettingsError as exc:
        raise StartupError(str(exc)) from None
    engine = create_engine(app[SETTINGS].database)
    try:
        if await pending_migrations(engine):
            raise StartupError(f"the database is not at the newest migration; run `{UPGRADE_COMMAND}` first")
    except StartupError:
        await engine.dispose()
        raise
    except Exception as exc:
        await engine.dispose()
        raise StartupError(f"cannot reach the database at {app[SETTINGS].database_shown}: {type(exc).__name__}") from exc
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine, app[HUB], wake_sender=lambda *keys: app[OUTBOX_SENDER].wake(*keys) if OUTBOX_SENDER in app else None)
    yield
    await engine.dispose()


async def _live(app: web.Application) -> AsyncIterator[None]:
    """On PostgreSQL, hear what every process announces; on SQLite the hub hears commits directly."""
    if app[ENGINE].dialect.name != "postgresql":
        yield
        return
    async with postgres_listener(app[SETTINGS].database, app[HUB]) as listening:
        app[LISTENING] = listening
        yield


async def _close_streams(app: web.Application) -> None:
    app[HUB].close()


async def _line_api(app: web.Application) -> AsyncIterator[None]:
    async with line_clients(app[SETTINGS]) as (api, blob):
        app[LINE_API], app[LINE_BLOB] = api, blob
        app[BUDGET] = MessageBudget(api)
        yield


async def _screener(app: web.Application) -> AsyncIterator[None]:
    """The risk screener: keyword floor always, the model once loaded (in the background, so start-up is quick)."""
    settings = app[SETTINGS]
    screener = Screener(settings.risk_model_dir, load_lexicon(Path(settings.content_dir) / RISK_FOLDER / "lexicon.yaml"))
    app[SCREENER] = screener
    warming = asyncio.create_task(screener.screen(["起動時の読み込み"]))
    yield
    warming.cancel()
    screener.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    writer = InboxWriter(app[ENGINE])
    background = app[SESSIONS]
    if app[ENGINE].dialect.name == "sqlite":
        background = yielding(app[SESSIONS], writer)
    metrics = app[METRICS]
    sender = OutboxSender(
        background, app[LINE_API], budget=app[BUDGET], blob=app[LINE_BLOB], on_api_error=lambda status: metrics.line_api_errors.labels(status=str(status)).inc()
    )
    screened = ScreenedAhead(app[SCREENER], observe=metrics.screening_seconds.observe, sessions=app[SESSIONS])
    worker = InboxWorker(
        background,
        partial(handle_event, content=app[CONTENT], zone=settings.timezone, screener=screened),
        give_up=partial(alarm_for_unhandled, lexicon=app[SCREENER].lexicon),
        before=screened.ahead,
    )
    app[INBOX_WRITER], app[OUTBOX_SENDER], app[INBOX_WORKER] = writer, sender, worker
    writing = asyncio.create_task(writer.run())
    sending, working = asyncio.create_task(sender.run()), asyncio.create_task(worker.run())
    sweeping = asyncio.create_task(_sweep_forever(app, background))
    yield
    sweeping.cancel()
    # The webhook has stopped; the inbox stops next so what it still commits reaches a running sender.
    worker.stop()
    await working
    sender.stop()
    await sending
    writing.cancel()


async def _rooms(app: web.Application) -> AsyncIterator[None]:
    """The peer-support rooms' schedule; started after the workers so what it sends goes out at once."""
    scheduler = RoomScheduler(
        app[SESSIONS], app[CONTENT], app[SETTINGS].timezone, on_change=app[OUTBOX_SENDER].wake, hub=app[HUB]
    )
    app[ROOM_SCHEDULER] = scheduler
    await scheduler.start()
    yield
    await scheduler.stop()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Every night, what has outlived content/retention.yaml is removed (in every process; repeats find nothing)."""
    nightly = NightlyRetention(app[SESSIONS], app[CONTENT].retention, app[SETTINGS].timezone)
    nightly.start()
    yield
    await nightly.stop()


async def _sweep_forever(app: web.Application, sessions: SessionFactory) -> None:
    """Close chats the person left and escalate waiting or silent high-risk ones, every few seconds."""
    settings = app[SETTINGS]
    idle = timedelta(minutes=settings.consultation_idle_minutes)
    high_risk_wait = timedelta(seconds=settings.high_risk_max_wait_seconds)
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            async with sessions() as session:
                await sweep(session, app[CONTENT], idle, high_risk_wait)
                await session.commit()
            app[OUTBOX_SENDER].wake()
        except Exception:
            log.exception("consultation sweep failed; trying again in %s s", SWEEP_SECONDS)


async def healthz(request: web.Request) -> web.Response:
    """How the service is: 200 "ok"; 200 "degraded" (working, but something waits for a person); 503 "down".

    Degraded names what: inbox events or outbox rows given up (`tsunagi inbox retry` / `outbox retry`),
    sending paused because LINE refused the channel access token, pushes held because the month's
    message quota is spent (replies still go), or (PostgreSQL) the LISTEN connection
    that carries other processes' changes is down and reconnecting.
    Down is what a restart or an operator must fix at once: the database or a worker.
    """
    app = request.app
    sender = app[OUTBOX_SENDER]
    parts: dict[str, object] = {
        "inbox_worker": "running" if app[INBOX_WORKER].running else "stopped",
        "outbox_sender": "running" if sender.running else "stopped",
    }
    try:
        async with asyncio.timeout(2), app[SESSIONS]() as session:
            counts = await failure_counts(session)
        parts["database"] = "ok"
        parts["failed"] = {"inbox": counts.inbox, "outbox": counts.outbox}
    except Exception as exc:
        parts["database"] = f"down: {type(exc).__name__}"
        return web.json_response({"status": "down", **parts}, status=503)
    if not (app[INBOX_WORKER].running and sender.running):
        return web.json_response({"status": "down", **parts}, status=503)
    if sender.paused is not None:
        parts["outbox_sender"] = f"paused: {sender.paused}"
    elif sender.quota_spent is not None:
        parts["outbox_sender"] = f"pushes held: {sender.quota_spent}"
    listening = app.get(LISTENING)
    if listening is not None:
        # Without it this process's console pages stop updating and room changes elsewhere go unheard.
        parts["live"] = "listening" if listening.up else f"down since {listening.down_since:%Y-%m-%dT%H:%M:%SZ}; reconnecting"
    degraded = counts.any or sender.paused is not None or sender.quota_spent is not None or (listening is not None and not listening.up)
    return web.json_response({"status": "degraded" if degraded else "ok", **parts})


async def metrics_page(request: web.Request) -> web.Response:
    """`/metrics` for Prometheus: backlogs, failures, the queue by risk level, latencies, LINE's errors, LISTEN."""
    app = request.app
    body = await app[METRICS].exposition(app[SESSIONS], app[INBOX_WORKER], app[OUTBOX_SENDER], app[HUB], app.get(LISTENING))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
