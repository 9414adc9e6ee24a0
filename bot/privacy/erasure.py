"""Unsend and deletion mean gone; disclosure gives everything.

`forget_unsent` removes one message's words from every table that held them. `forget_person`
removes a person's words and identifiers everywhere: their LINE user id is replaced by an alias
that nothing links back to them, so the report's counts (consultations, flags by level, returning
room participants) stay exactly as they were. `export_person` is everything stored about a person,
for a disclosure request. None of these matches rows on their text: the columns that hold it are ciphertext
(`storage/crypto.py`).
"""

from __future__ import annotations

import base64
import secrets
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, delete, literal, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import QUEUE_TOPIC, consultation_topic
from bot.consultation.risk import FLAGS_TOPIC
from bot.privacy.retention import WRITTEN_KINDS
from bot.privacy.texts import strip_all
from bot.rooms.participants import relayed
from bot.rooms.sessions import ROOMS_TOPIC, room_topic
from bot.storage.after_commit import announce
from bot.storage.models import (
    OPEN_CONSULTATION,
    AuditEntry,
    ChatEntry,
    Consultation,
    ConsultationRecord,
    EmergencyResponse,
    InboxEvent,
    InboxStatus,
    LineUser,
    MessageContent,
    OutboxMessage,
    OutboxStatus,
    Referral,
    RiskFlag,
    RoomMessage,
    RoomParticipant,
    RoomReminder,
    UserMessage,
    utcnow,
)


class Refusal(StrEnum):
    """Why a person's records cannot be deleted right now."""

    # A counselor is reading them, or the person is waiting for one.
    OPEN_CONSULTATION = "open_consultation"
    # Staff are still acting for the person's safety.
    EMERGENCY = "emergency"


async def forget_unsent(session: AsyncSession, user_id: str, line_message_id: str) -> None:
    """The person unsent a message: its words leave every table, only that it existed stays."""
    message = (
        await session.exec(select(UserMessage).where(UserMessage.user_id == user_id, UserMessage.line_message_id == line_message_id))
    ).first()
    if message is None:
        return
    words, message.text, message.unsent_at, message.read_token = message.text, None, utcnow(), None
    session.add(message)
    await session.exec(delete(MessageContent).where(MessageContent.message_id == message.id))
    if message.consultation_id is not None:
        announce(session, consultation_topic(message.consultation_id))
    flags = list(await session.exec(select(RiskFlag).where(RiskFlag.message_id == message.id)))
    if await strip_all(session, flags):
        announce(session, FLAGS_TOPIC)
    for room_message in await session.exec(select(RoomMessage).where(RoomMessage.user_message_id == message.id)):
        room_message.text = None
        session.add(room_message)
        announce(session, room_topic(room_message.session_id), ROOMS_TOPIC)
        if words is not None and room_message.held is None:
            await _withdraw_relay(session, room_message, words)
    # The event itself is emptied once processed; one that failed every attempt still holds its body.
    for event in await session.exec(select(InboxEvent).where(InboxEvent.source_id == user_id, InboxEvent.status == InboxStatus.FAILED)):
        if (event.payload.get("message") or {}).get("id") == line_message_id:
            event.payload = {}
            session.add(event)


async def _withdraw_relay(session: AsyncSession, room_message: RoomMessage, words: str) -> None:
    """A relayed line not yet sent to the room is taken out (sent ones were emptied when sent)."""
    participant = await session.get(RoomParticipant, room_message.participant_id)
    line = relayed(participant.nickname, words)
    pending = await session.exec(
        select(OutboxMessage).where(OutboxMessage.to == room_topic(room_message.session_id), OutboxMessage.status == OutboxStatus.PENDING)
    )
    for row in pending:
        kept = [m for m in row.messages if m.get("text") != line]
        if kept != row.messages:
            row.messages = kept
            row.status = OutboxStatus.PENDING if kept else OutboxStatus.CANCELLED
            session.add(row)


async def why_not_forget(session: AsyncSession, user_id: str) -> Refusal | None:
    """Why the person's records cannot be deleted now, or None if they can."""
    open_consultation = await session.exec(
        select(Consultation.id).where(Consultation.user_id == user_id, col(Consultation.status).in_(OPEN_CONSULTATION)).limit(1)
    )
    if open_consultation.first() is not None:
        return Refusal.OPEN_CONSULTATION
    emergency = await session.exec(
        select(EmergencyResponse.id)
        .join(Consultation, col(Consultation.id) == EmergencyResponse.consultation_id)
        .where(Consultation.user_id == user_id, col(EmergencyResponse.closed_at).is_(None))
        .limit(1)
    )
    return Refusal.EMERGENCY if emergency.first() is not None else None


async def forget_person(session: AsyncSession, user_id: str, *, asked_by: str) -> str:
    """Remove the person's words and identifiers everywhere, keeping the counts; audited. Returns the alias.

    The caller checks `why_not_forget` first and commits. Nothing still waiting to be sent to them
    goes out; a confirmation queued after this keeps their address only until it is sent and deleted
    with the other sent messages (content/retention.yaml `sent_message_days`).

    Args:
        session: a session the caller commits.
        user_id: the LINE user id.
        asked_by: who asked, for the audit log ("the person on LINE", "operator command").
    """
    alias = f"forgotten-{secrets.token_hex(12)}"
    consultations = list(await session.exec(select(Consultation.id).where(Consultation.user_id == user_id)))
    participants = list(await session.exec(select(RoomParticipant.id).where(RoomParticipant.user_id == user_id)))
    messages = select(UserMessage.id).where(UserMessage.user_id == user_id)

    await session.exec(delete(LineUser).where(LineUser.user_id == user_id))
    # Images and files they sent, before their messages stop bearing their id.
    await session.exec(delete(MessageContent).where(col(MessageContent.message_id).in_(messages)))
    await session.exec(delete(RoomReminder).where(RoomReminder.user_id == user_id))
    await session.exec(
        update(RoomMessage)
        .where(col(RoomMessage.participant_id).in_(participants) | col(RoomMessage.user_message_id).in_(messages))
        .values(text=None)
    )
    await session.exec(
        update(UserMessage)
        .where(UserMessage.user_id == user_id)
        .values(user_id=alias, text=None, read_token=None, line_message_id=literal(f"{alias}:") + cast(UserMessage.id, String))
    )
    await session.exec(update(Consultation).where(Consultation.user_id == user_id).values(user_id=alias))
    await session.exec(
        update(ChatEntry).where(col(ChatEntry.consultation_id).in_(consultations), col(ChatEntry.kind).in_(WRITTEN_KINDS)).values(text=None)
    )
    await session.exec(update(ConsultationRecord).where(col(ConsultationRecord.consultation_id).in_(consultations)).values(note=None))
    await session.exec(update(RiskFlag).where(RiskFlag.user_id == user_id).values(user_id=alias, review_reason=None))
    await strip_all(
        session,
        [
            *await session.exec(select(RiskFlag).where(RiskFlag.user_id == alias)),
            *await session.exec(select(EmergencyResponse).where(col(EmergencyResponse.consultation_id).in_(consultations))),
            *await session.exec(select(Referral).where(col(Referral.consultation_id).in_(consultations))),
        ],
    )
    # A nickname may be a real name: each becomes the participation's number (unique in its session, like nicknames).
    await session.exec(
        update(RoomParticipant)
        .where(col(RoomParticipant.id).in_(participants))
        .values(user_id=alias, nickname=literal("#") + cast(RoomParticipant.id, String), removed_reason=None)
    )
    await session.exec(
        update(InboxEvent).where(InboxEvent.source_id == user_id, InboxEvent.status != InboxStatus.PENDING).values(source_id=alias, payload={})
    )
    await session.exec(delete(OutboxMessage).where(OutboxMessage.to == user_id))
    # Multicasts keep their other recipients; the ids are matched, never any text.
    for row in await session.exec(select(OutboxMessage).where(cast(OutboxMessage.recipients, String).contains(f'"{user_id}"'))):
        row.recipients = [recipient for recipient in row.recipients or [] if recipient != user_id]
        session.add(row)
    session.add(AuditEntry(action="person_forgotten", detail=f"asked by {asked_by}"))
    announce(session, QUEUE_TOPIC, FLAGS_TOPIC, ROOMS_TOPIC, *(consultation_topic(c) for c in consultations))
    return alias


async def export_person(session: AsyncSession, user_id: str, *, asked_by: str) -> dict[str, Any]:
    """Everything stored about the person, as JSON-ready data, for a disclosure request; audited.

    The caller commits (the audit entry).
    """
    consultation_rows = list(await session.exec(select(Consultation).where(Consultation.user_id == user_id).order_by(Consultation.id)))
    ids = [c.id for c in consultation_rows]
    participant_rows = list(await session.exec(select(RoomParticipant).where(RoomParticipant.user_id == user_id).order_by(RoomParticipant.id)))

    async def rows(statement: Any) -> list[dict[str, Any]]:
        return [_plain(row) for row in await session.exec(statement)]

    user = await session.get(LineUser, user_id)
    export = {
        "line_user_id": user_id,
        "person": _plain(user) if user else None,
        "messages": await rows(select(UserMessage).where(UserMessage.user_id == user_id).order_by(UserMessage.sent_at)),
        # The bytes of each image or file as Base64 (`data`), beside its type and size.
        "images_and_files": [
            {**content.model_dump(mode="json", exclude={"data"}), "data": content.data and base64.b64encode(content.data).decode()}
            for content in await session.exec(
                select(MessageContent)
                .join(UserMessage, col(UserMessage.id) == MessageContent.message_id)
                .where(UserMessage.user_id == user_id)
                .order_by(MessageContent.id)
            )
        ],
        "consultations": [
            {
                **_plain(consultation),
                "chat": await rows(select(ChatEntry).where(ChatEntry.consultation_id == consultation.id).order_by(ChatEntry.id)),
                "record": await rows(select(ConsultationRecord).where(ConsultationRecord.consultation_id == consultation.id)),
                "emergency_records": await rows(select(EmergencyResponse).where(EmergencyResponse.consultation_id == consultation.id)),
                "referrals": await rows(select(Referral).where(Referral.consultation_id == consultation.id)),
            }
            for consultation in consultation_rows
        ],
        "risk_flags": await rows(select(RiskFlag).where(RiskFlag.user_id == user_id).order_by(RiskFlag.id)),
        "room_participations": [
            {
                **_plain(participant),
                "messages": await rows(select(RoomMessage).where(RoomMessage.participant_id == participant.id).order_by(RoomMessage.id)),
            }
            for participant in participant_rows
        ],
        "room_reminders": await rows(select(RoomReminder).where(RoomReminder.user_id == user_id)),
        "webhook_events": await rows(select(InboxEvent).where(InboxEvent.source_id == user_id).order_by(InboxEvent.id)),
        "messages_sent_to_them": await rows(select(OutboxMessage).where(OutboxMessage.to == user_id).order_by(OutboxMessage.id)),
        "audit_entries_about_their_consultations": await rows(
            select(AuditEntry).where(col(AuditEntry.consultation_id).in_(ids)).order_by(AuditEntry.id)
        ),
    }
    session.add(AuditEntry(action="person_exported", detail=f"asked by {asked_by}"))
    return export


def _plain(row: SQLModel) -> dict[str, Any]:
    # State columns read back as plain strings, not their enums (models.py): nothing to warn about.
    return row.model_dump(mode="json", warnings=False)
