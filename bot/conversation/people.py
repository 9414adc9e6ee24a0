"""People on LINE and what they sent: the user record and the stored messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from typing import Any

from bot.line.outbox import enqueue_content_fetch, enqueue_mark_read
from bot.storage.models import LineUser, MessageContent, UserMessage

# The largest file kept; a larger one is listed with its size only (LINE announces a file's size).
CONTENT_MAX_BYTES = 25 * 1024 * 1024


async def get_or_create_user(session: AsyncSession, user_id: str) -> LineUser:
    """The person's record, created on first contact."""
    user = await session.get(LineUser, user_id)
    if user is None:
        user = LineUser(user_id=user_id)
        session.add(user)
    return user


async def store_message(
    session: AsyncSession,
    user_id: str,
    line_message_id: str,
    kind: str,
    sent_at: datetime,
    text: str | None = None,
    read_token: str | None = None,
) -> UserMessage:
    """Keep a message the person sent; a message id seen before (an edit event repeats it) is kept once."""
    existing = (await session.exec(select(UserMessage).where(UserMessage.line_message_id == line_message_id))).first()
    if existing is not None:
        return existing
    message = UserMessage(user_id=user_id, line_message_id=line_message_id, kind=kind, text=text, sent_at=sent_at, read_token=read_token)
    session.add(message)
    return message


async def previous_message(session: AsyncSession, message: UserMessage) -> UserMessage | None:
    """The message the same person sent just before this one."""
    result = await session.exec(
        select(UserMessage)
        .where(UserMessage.user_id == message.user_id, UserMessage.sent_at < message.sent_at)
        .order_by(UserMessage.sent_at.desc())
        .limit(1)
    )
    return result.first()



async def mark_read(session: AsyncSession, user_id: str) -> bool:
    """A person reading the chat (a counselor holding it): LINE shows the person 既読 up to their latest
    message. Never called by the bot alone. Returns whether there was anything unread.

    LINE marks a token's message and every earlier one, so one request covers them all and the
    earlier tokens are dropped with it.
    """
    latest = (
        await session.exec(
            select(UserMessage)
            .where(UserMessage.user_id == user_id, col(UserMessage.read_token).is_not(None))
            .order_by(col(UserMessage.sent_at).desc(), col(UserMessage.id).desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        return False
    enqueue_mark_read(session, user_id, latest.read_token)
    await session.exec(
        update(UserMessage)
        .where(UserMessage.user_id == user_id, col(UserMessage.read_token).is_not(None), UserMessage.sent_at <= latest.sent_at)
        .values(read_token=None)
    )
    return True


async def keep_content(session: AsyncSession, message: UserMessage, sent: Any) -> None:
    """An image, video, audio or file the person sent: kept like their words, its bytes fetched from
    LINE's content API by the outbox sender (never inside this transaction).

    `sent` is the webhook's message content; one whose `contentProvider` is external holds nothing at
    LINE to fetch, and a file larger than `CONTENT_MAX_BYTES` is listed with its size only.
    """
    provider = getattr(sent, "content_provider", None)
    if provider is not None and provider.type != "line":
        return
    await session.flush()
    if (await session.exec(select(MessageContent.id).where(MessageContent.message_id == message.id))).first() is not None:
        return  # a redelivered or repeated message
    size = getattr(sent, "file_size", None)
    content = MessageContent(message_id=message.id, size=size, file_name=getattr(sent, "file_name", None))
    session.add(content)
    await session.flush()
    if size is None or size <= CONTENT_MAX_BYTES:
        enqueue_content_fetch(session, message.user_id, sent.id, content.id)
