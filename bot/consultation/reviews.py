"""Moderators' decisions as training data: every reviewed flag becomes a labelled example.

A confirmed flag keeps its level, a relabelled one takes the moderator's level, and a dismissed one
becomes `low`: the false alarms are what the next model most needs to learn from.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import FlagState, RiskFlag, UserMessage


async def reviewed_examples(session: AsyncSession) -> list[dict[str, Any]]:
    """`{"text", "level", "tags"}` for each reviewed flag whose message still has its text, oldest first."""
    rows = await session.exec(
        select(RiskFlag, UserMessage)
        .join(UserMessage, col(RiskFlag.message_id) == col(UserMessage.id))
        .where(col(RiskFlag.state).in_([FlagState.CONFIRMED, FlagState.RELABELLED, FlagState.DISMISSED]))
        .order_by(RiskFlag.reviewed_at)
    )
    examples = []
    for flag, message in rows:
        if message.text is None:  # unsent by the person: their words are gone, and stay gone
            continue
        tags = [] if flag.state == FlagState.DISMISSED else sorted({t["name"] for t in flag.tags})
        examples.append({"text": message.text, "level": str(flag.reviewed_level), "tags": tags})
    return examples
