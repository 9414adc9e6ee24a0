"""Every table of tsunagi, in one place so Alembic sees the whole schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, String, TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, aware, in UTC (the only zone stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back aware.

    SQLite keeps no zone, so without this a value written aware would come back naive
    and compare wrongly with `utcnow()`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


# State columns are plain strings holding the enum's value (not database enums), so a new state
# needs no enum migration on PostgreSQL.


class InboxStatus(StrEnum):
    """Where an inbox event is in its processing."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class InboxEvent(SQLModel, table=True):
    """One webhook event exactly as LINE sent it, stored before the webhook answers 200."""

    id: int | None = Field(default=None, primary_key=True)
    webhook_event_id: str = Field(unique=True, max_length=64)
    # The user, group or room the event came from; events of one source run in order.
    source_id: str = Field(index=True, max_length=64)
    event_type: str = Field(max_length=64)
    mode: str = Field(default="active", max_length=16)
    is_redelivery: bool = False
    occurred_at: datetime = _timestamp()
    payload: dict[str, Any] = Field(sa_type=JSON)
    status: InboxStatus = Field(default=InboxStatus.PENDING, index=True, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(default_factory=utcnow)
    last_error: str | None = None
    received_at: datetime = _timestamp(default_factory=utcnow)
    processed_at: datetime | None = _timestamp(default=None)


class OutboxStatus(StrEnum):
    """Where an outbox row is in its delivery."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxKind(StrEnum):
    """What the sender does with a row."""

    MESSAGES = "messages"
    LOADING = "loading"


class OutboxMessage(SQLModel, table=True):
    """Up to five LINE messages waiting to be sent (or already sent) to one user or a group of users."""

    id: int | None = Field(default=None, primary_key=True)
    # Delivery order is kept per `to`: a user id, or a key naming a multicast audience.
    to: str = Field(index=True, max_length=64)
    recipients: list[str] | None = Field(default=None, sa_type=JSON)
    kind: OutboxKind = Field(default=OutboxKind.MESSAGES, sa_type=String(16))
    messages: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    reply_token: str | None = Field(default=None, max_length=255)
    reply_deadline: datetime | None = _timestamp(default=None)
    # Sent with every push/multicast attempt so LINE accepts a retried request only once.
    retry_key: str = Field(default_factory=lambda: str(uuid.uuid4()), max_length=36)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, index=True, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(default_factory=utcnow)
    last_error: str | None = None
    sent_via: str | None = Field(default=None, max_length=16)
    created_at: datetime = _timestamp(default_factory=utcnow)
    sent_at: datetime | None = _timestamp(default=None)


class LineUser(SQLModel, table=True):
    """A person who talks to the bot on LINE."""

    user_id: str = Field(primary_key=True, max_length=64)
    # False after an unfollow (block): nothing may be sent until they follow again.
    following: bool = True
    greeted_at: datetime | None = _timestamp(default=None)
    # The content language they chose (a folder in content/); empty means the base language.
    language: str | None = Field(default=None, max_length=8)
    # The school year they gave the support finder, so lines for their age come first later too.
    school_year: str | None = Field(default=None, max_length=32)
    created_at: datetime = _timestamp(default_factory=utcnow)
    updated_at: datetime = _timestamp(default_factory=utcnow)


class UserMessage(SQLModel, table=True):
    """A message a person sent; text messages keep their text until the person unsends it."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=64)
    line_message_id: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=32)
    text: str | None = None
    # Empty until the person chooses a category: what they wrote before belongs to that consultation.
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    sent_at: datetime = _timestamp()
    unsent_at: datetime | None = _timestamp(default=None)


class ConsultationStatus(StrEnum):
    """The life of a consultation request."""

    REQUESTED = "requested"
    # Arrived while the category was closed: recorded for the report, never queued.
    UNSERVED = "unserved"


class Consultation(SQLModel, table=True):
    """A request for a counselor in one category, as the guidance menu records it."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=64)
    category: str = Field(index=True, max_length=64)
    status: ConsultationStatus = Field(default=ConsultationStatus.REQUESTED, sa_type=String(16))
    # Whether the category was open when the request arrived (the response-rate report splits on it).
    arrived_in_hours: bool
    created_at: datetime = _timestamp(default_factory=utcnow)
