"""People on LINE and what they sent: the user record and the stored messages."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import LineUser, UserMessage


async def get_or_create_user(session: AsyncSession, user_id: str) -> LineUser:
    """The person's record, created on first contact."""
    user = await session.get(LineUser, user_id)
    if user is None:
        user = LineUser(user_id=user_id)
        session.add(user)
    return user


async def store_message(
    session: AsyncSession, user_id: str, line_message_id: str, kind: str, sent_at: datetime, text: str | None = None
) -> UserMessage:
    """Keep a message the person sent; a message id seen before (an edit event repeats it) is kept once."""
    existing = (await session.exec(select(UserMessage).where(UserMessage.line_message_id == line_message_id))).first()
    if existing is not None:
        return existing
    message = UserMessage(user_id=user_id, line_message_id=line_message_id, kind=kind, text=text, sent_at=sent_at)
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

