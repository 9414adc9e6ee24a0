"""Removing free text from the structured rows that hold it beside fields the report needs.

Shared by retention (a period passed) and deletion (the person asked): both keep the structure
(levels, spans, who was contacted, statuses) and drop only the words. The rows are rewritten in
Python, never matched on their text in SQL: the columns are ciphertext (`storage/crypto.py`).
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import EmergencyResponse, Referral, RiskFlag


def _without(entries: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [{**entry, field: None} if entry.get(field) is not None else entry for entry in entries]


def strip_flag(flag: RiskFlag) -> bool:
    """Drop the words a flag's tags and drivers quote (names and spans stay). Returns whether anything changed."""
    tags, drivers = _without(flag.tags, "text"), _without(flag.drivers or [], "text")
    if tags == flag.tags and drivers == (flag.drivers or []):
        return False
    flag.tags, flag.drivers = tags, drivers
    return True


def strip_emergency(record: EmergencyResponse) -> bool:
    """Drop an emergency record's answers, contact notes and closing note (who, when, reached stay)."""
    contacts = _without(record.contacts, "note")
    if not record.assessment and contacts == record.contacts and record.closing_note is None:
        return False
    record.assessment, record.contacts, record.closing_note = {}, contacts, None
    return True


def strip_referral(referral: Referral) -> bool:
    """Drop the notes of a referral's history (statuses, times and staff stay)."""
    history = _without(referral.history, "note")
    if history == referral.history:
        return False
    referral.history = history
    return True


async def strip_all(session: AsyncSession, rows: list[Any]) -> int:
    """Strip every row of its words (flags, emergency records, referrals); returns how many changed."""
    strip = {RiskFlag: strip_flag, EmergencyResponse: strip_emergency, Referral: strip_referral}
    changed = 0
    for row in rows:
        if strip[type(row)](row):
            session.add(row)
            changed += 1
    await session.flush()
    return changed
