"""Typed keys for what the web application holds, in one place (aiohttp's "no singletons")."""

from __future__ import annotations

from aiohttp import web
from linebot.v3.messaging import AsyncMessagingApi, AsyncMessagingApiBlob
from moderation.screener import Screener
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.guidance.content import Content
from bot.line.budget import MessageBudget
from bot.line.inbox import InboxWorker, InboxWriter
from bot.line.outbox import OutboxSender
from bot.metrics import Metrics
from bot.rooms.scheduler import RoomScheduler
from bot.settings import Settings
from bot.storage.live import Hub, Listening

SETTINGS = web.AppKey("settings", Settings)
CONTENT = web.AppKey("content", Content)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
LINE_API = web.AppKey("line_api", AsyncMessagingApi)
BUDGET = web.AppKey("budget", MessageBudget)
LINE_BLOB = web.AppKey("line_blob", AsyncMessagingApiBlob)
INBOX_WRITER = web.AppKey("inbox_writer", InboxWriter)
INBOX_WORKER = web.AppKey("inbox_worker", InboxWorker)
OUTBOX_SENDER = web.AppKey("outbox_sender", OutboxSender)
HUB = web.AppKey("hub", Hub)
# Only on PostgreSQL: whether this process hears the others.
LISTENING = web.AppKey("listening", Listening)
SCREENER = web.AppKey("screener", Screener)
ROOM_SCHEDULER = web.AppKey("room_scheduler", RoomScheduler)
METRICS = web.AppKey("metrics", Metrics)
