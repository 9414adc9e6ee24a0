"""Every table of tsunagi, in one place so Alembic sees the whole schema."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, String, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.crypto import EncryptedBytes, EncryptedJSON, EncryptedText

# Set only by `clock_at` (the simulation writes a past period through the service's own code).
_simulated_now: ContextVar[datetime | None] = ContextVar("simulated_now", default=None)


def utcnow() -> datetime:
    """The current time, aware, in UTC (the only zone stored)."""
    return _simulated_now.get() or datetime.now(UTC)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Within the block, `utcnow()` is `moment`: for writing a simulated period, never for serving."""
    token = _simulated_now.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _simulated_now.reset(token)


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


RowT = TypeVar("RowT", bound=SQLModel)

# What an id from outside (a URL, a form, a postback) must look like before it is looked up: ASCII
# digits that fit a 64-bit integer column. `str.isdigit` would let "²" or 40 digits through.
_ROW_ID = re.compile(r"[0-9]{1,18}")


def row_id(text: object) -> int | None:
    """The database id a URL, form or postback names, or None for anything that cannot be one."""
    return int(text) if isinstance(text, str) and _ROW_ID.fullmatch(text) else None


async def find_by_id(session: AsyncSession, model: type[RowT], text: object, **options: Any) -> RowT | None:
    """The row of `model` whose id `text` names (from a URL, form or postback); None if it names none.

    `options` go to `session.get` (e.g. `with_for_update=True`).
    """
    number = row_id(text)
    return await session.get(model, number, **options) if number is not None else None


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


# Columns holding words a person or staff member wrote (or values that quote them) are encrypted at
# rest (bot/storage/crypto.py): the database holds only ciphertext, so SQL can test them for NULL only.
def _secret_text(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=EncryptedText, **kwargs)


def _secret_json(**kwargs: Any) -> Any:
    return Field(sa_type=EncryptedJSON, **kwargs)


# State columns are plain strings holding the enum's value (not database enums), so a new state
# needs no enum migration on PostgreSQL.


class InboxStatus(StrEnum):
    """Where an inbox event is in its processing."""

    PENDING = "pending"
    DONE = "done"
    # Given up after its attempts: listed for supervisors until retried or dismissed.
    FAILED = "failed"
    DISMISSED = "dismissed"


class InboxEvent(SQLModel, table=True):
    """One webhook event exactly as LINE sent it, stored before the webhook answers 200.

    Once processed the payload is emptied: only the event id stays, for de-duplicating redeliveries.
    """

    id: int | None = Field(default=None, primary_key=True)
    webhook_event_id: str = Field(unique=True, max_length=64)
    # The user, group or room the event came from; events of one source run in order.
    source_id: str = Field(index=True, max_length=64)
    event_type: str = Field(max_length=64)
    mode: str = Field(default="active", max_length=16)
    is_redelivery: bool = False
    occurred_at: datetime = _timestamp()
    payload: dict[str, Any] = _secret_json()
    status: InboxStatus = Field(default=InboxStatus.PENDING, index=True, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(default_factory=utcnow)
    last_error: str | None = None
    received_at: datetime = _timestamp(default_factory=utcnow)
    processed_at: datetime | None = _timestamp(default=None)
    failed_at: datetime | None = _timestamp(default=None)
    # The keyword floor's level of a text event that was given up (its text itself is never shown).
    floor_level: str | None = Field(default=None, max_length=16)


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
    # Leave the group or multi-person chat `to` (`messages` holds `{"type": "group" | "room"}`).
    LEAVE = "leave"
    # Show the person 既読 up to one of their messages (`messages` holds `{"markAsReadToken": ...}`).
    MARK_READ = "mark_read"
    # Show the person the rich menu LINE keeps under an alias (`messages` holds `{"alias": ...}`).
    RICH_MENU = "rich_menu"
    # Fetch what the person sent (an image, a file) from LINE's content API into a `MessageContent`
    # (`messages` holds `{"messageId": LINE's id, "content": the MessageContent's id}`).
    CONTENT = "content"


class OutboxMessage(SQLModel, table=True):
    """Up to five LINE messages waiting to be sent to one user or a group of users (emptied once finished)."""

    id: int | None = Field(default=None, primary_key=True)
    # Delivery order is kept per `to`: a user id, or a key naming a multicast audience.
    to: str = Field(index=True, max_length=64)
    recipients: list[str] | None = Field(default=None, sa_type=JSON)
    kind: OutboxKind = Field(default=OutboxKind.MESSAGES, sa_type=String(16))
    messages: list[dict[str, Any]] = _secret_json(default_factory=list)
    reply_token: str | None = Field(default=None, max_length=255)
    reply_deadline: datetime | None = _timestamp(default=None)
    # Sent with every push/multicast attempt so LINE accepts a retried request only once.
    retry_key: str = Field(default_factory=lambda: str(uuid.uuid4()), max_length=36)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, index=True, sa_type=String(16))
    attempts: int = 0
    # Attempts by reply whose outcome is unknown (cut off, timed out, 5xx): LINE may have delivered
    # them, and a reply has no retry key, so once the token is stale the row is never pushed instead.
    reply_unconfirmed: int = 0
    next_attempt_at: datetime = _timestamp(default_factory=utcnow)
    last_error: str | None = None
    sent_via: str | None = Field(default=None, max_length=16)
    # What the messages belong to, for the report's count of free replies and counted pushes: a
    # consultation's category, "rooms", or None for the bot's own guidance.
    category: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp(default_factory=utcnow)
    sent_at: datetime | None = _timestamp(default=None)
    failed_at: datetime | None = _timestamp(default=None)


class SendingPause(SQLModel, table=True):
    """Present while LINE refuses the channel access token (401/403): every process's sender stops.

    One row (id 1) shared by all processes; whichever claims `probe_at` first asks LINE, and on success
    removes the row, which resumes them all.
    """

    id: int = Field(default=1, primary_key=True)
    reason: str = Field(max_length=255)
    since: datetime = _timestamp(default_factory=utcnow)
    probe_at: datetime = _timestamp(default_factory=utcnow)


class DeliveryCount(SQLModel, table=True):
    """Messages LINE accepted, per hour and category, free (replies) or counted against the month's quota
    (pushes, multicasts: once per recipient). Kept for the report after the outbox rows are deleted."""

    __table_args__ = (UniqueConstraint("hour", "category", "charged"),)

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime = _timestamp()
    # As `OutboxMessage.category`, with "guidance" for the bot's own answers.
    category: str = Field(max_length=64)
    charged: bool
    messages: int = 0


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
    # The age band they gave the online ibasho (content/rooms.yaml), asked once: it decides which rooms they see.
    age_band: str | None = Field(default=None, max_length=32)
    # The prefecture they gave the support finder (an id in content/finder.yaml), so its local lines come
    # first; asked once (`prefecture_asked`), and a person may decline, leaving it empty.
    prefecture: str | None = Field(default=None, max_length=32)
    prefecture_asked: bool = False
    # When they were shown what is kept about them and for how long (content/messages.yaml privacy_notice).
    privacy_noticed_at: datetime | None = _timestamp(default=None)
    created_at: datetime = _timestamp(default_factory=utcnow)
    updated_at: datetime = _timestamp(default_factory=utcnow)


class UserMessage(SQLModel, table=True):
    """A message a person sent; text messages keep their text until the person unsends it."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=64)
    line_message_id: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=32)
    text: str | None = _secret_text()
    # Empty until the person chooses a category: what they wrote before belongs to that consultation.
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    sent_at: datetime = _timestamp()
    unsent_at: datetime | None = _timestamp(default=None)
    # LINE's markAsReadToken for this message, until a counselor has read it (then LINE shows the person
    # 既読 up to it): not words, but the person's, so it goes with their words on deletion.
    read_token: str | None = None


class MessageContent(SQLModel, table=True):
    """What a person sent that is not text (an image, a video, audio, a file), fetched from LINE.

    The bytes are what the person sent and as secret as their words: kept as long as the message's text
    would be (content/retention.yaml) and deleted with it; `data` is None until fetched, once past its
    period or deleted, and for what is larger than the service keeps.
    """

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="usermessage.id", unique=True)
    content_type: str | None = Field(default=None, max_length=128)
    # Bytes, as LINE gave them (or as LINE's event announced, for a file not kept).
    size: int | None = None
    # A file's name can say as much as its contents: secret too.
    file_name: str | None = _secret_text()
    data: bytes | None = Field(default=None, sa_type=EncryptedBytes)
    fetched_at: datetime | None = _timestamp(default=None)


class ConsultationStatus(StrEnum):
    """The life of a consultation request."""

    # Waiting in the category's queue.
    REQUESTED = "requested"
    # A counselor has it; messages flow both ways.
    ACTIVE = "active"
    ENDED = "ended"
    # The person cancelled while waiting.
    CANCELLED = "cancelled"
    # No word from the person for too long (never for a high-risk one, which goes to a supervisor).
    CLOSED_IDLE = "closed_idle"
    # Arrived while the category was closed: recorded for the report, never queued.
    UNSERVED = "unserved"


# The set of states in which a consultation is still someone's responsibility.
OPEN_CONSULTATION = (ConsultationStatus.REQUESTED, ConsultationStatus.ACTIVE)


class RiskLevel(StrEnum):
    """How urgent a consultation is; the queue serves higher levels first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    IMMINENT = "imminent"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for imminent."""
        return list(RiskLevel).index(self)


class Consultation(SQLModel, table=True):
    """A request for a counselor in one category, from the menu choice to the filed record."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=64)
    category: str = Field(index=True, max_length=64)
    status: ConsultationStatus = Field(default=ConsultationStatus.REQUESTED, index=True, sa_type=String(16))
    # Whether the category was open when the request arrived (the response-rate report splits on it).
    arrived_in_hours: bool
    # The highest level seen so far: it never drops by itself.
    risk_level: RiskLevel = Field(default=RiskLevel.LOW, sa_type=String(16))
    counselor_id: int | None = Field(default=None, foreign_key="staffuser.id", index=True)
    # Indexed: the report selects a period by arrival.
    created_at: datetime = _timestamp(default_factory=utcnow, index=True)
    # When it (re-)entered the queue: a transfer or a counselor going offline puts it back in line.
    queued_at: datetime = _timestamp(default_factory=utcnow)
    taken_at: datetime | None = _timestamp(default=None)
    ended_at: datetime | None = _timestamp(default=None)
    last_person_message_at: datetime | None = _timestamp(default=None)
    # Set when a supervisor was alerted (waiting too long at high risk, or idle at high risk).
    escalated_at: datetime | None = _timestamp(default=None)
    # The person's one-tap answer to "did this help?" at the end, if given.
    helped: bool | None = None


class StaffRole(StrEnum):
    """What a console user may do."""

    COUNSELOR = "counselor"
    SUPERVISOR = "supervisor"
    COORDINATOR = "coordinator"
    MODERATOR = "moderator"
    # Keeps a peer-support room: opens it by being present, posts as staff, mutes or removes.
    FACILITATOR = "facilitator"
    ADMIN = "admin"


class Availability(StrEnum):
    """Whether a counselor takes chats now."""

    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


class StaffUser(SQLModel, table=True):
    """A person who uses the console: counselor, supervisor, coordinator, moderator or admin."""

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(unique=True, max_length=64)
    # What a LINE user is told ("相談員の〇〇"): never the staff member's real name unless they choose it.
    display_name: str = Field(max_length=64)
    role: StaffRole = Field(sa_type=String(16))
    password_hash: str = Field(max_length=255)
    max_chats: int = 3
    availability: Availability = Field(default=Availability.OFFLINE, sa_type=String(16))
    # Set when the person leaves: the account stays (the audit log and records name it) but cannot log in.
    disabled_at: datetime | None = _timestamp(default=None)
    # After an admin's reset the password is a one-time code: a new one must be chosen at the next log-in.
    must_change_password: bool = False
    # The TOTP secret once enrolled, and the last 30-second step used, so a code works only once.
    totp_secret: str | None = _secret_text()
    totp_last_step: int | None = None
    created_at: datetime = _timestamp(default_factory=utcnow)
    # How the console draws this person's attention (bot/console/attention.py); each can be switched off.
    attention_sound: bool = True
    attention_desktop: bool = True
    attention_title: bool = True
    # A counselor is told of a new person waiting at this level or above.
    attention_from_level: RiskLevel = Field(default=RiskLevel.HIGH, sa_type=String(16))


class SessionStep(StrEnum):
    """What a session must still do before it opens any page other than the step's own."""

    NEW_PASSWORD = "new_password"
    ENROL = "enrol"
    TOTP = "totp"


class StaffSession(SQLModel, table=True):
    """A logged-in console session; the cookie holds the token, the table only its hash."""

    token_hash: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staffuser.id", index=True)
    csrf_token: str = Field(max_length=64)
    # None once the password (and the second factor, where the role needs one) are done.
    pending: SessionStep | None = Field(default=None, sa_type=String(16))
    address: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp(default_factory=utcnow)
    expires_at: datetime = _timestamp()


class LoginThrottle(SQLModel, table=True):
    """Failed log-ins counted per name typed (existing or not) and per address, with the lock-out they led to."""

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    locked_until: datetime | None = _timestamp(default=None)


class AvailabilityChange(SQLModel, table=True):
    """A counselor's availability from `at` until their next change: the report's staffing by hour."""

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staffuser.id", index=True)
    availability: Availability = Field(sa_type=String(16))
    at: datetime = _timestamp(default_factory=utcnow, index=True)


class ChatEntryKind(StrEnum):
    """What a console-side entry in a consultation is."""

    # Sent to the person on LINE.
    COUNSELOR = "counselor"
    # Seen by staff only.
    NOTE = "note"
    # Something that happened (taken, transferred, ended), for the history.
    EVENT = "event"


class ChatEntry(SQLModel, table=True):
    """What staff wrote or did in a consultation (the person's own messages are `UserMessage`s)."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id")
    kind: ChatEntryKind = Field(sa_type=String(16))
    # None once the retention period has passed (content/retention.yaml) or the person asked for deletion.
    text: str | None = _secret_text()
    created_at: datetime = _timestamp(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """Who opened or changed what, when: every opening of a consultation's content is written here."""

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id", index=True)
    action: str = Field(max_length=64)
    consultation_id: int | None = Field(default=None, index=True)
    # May quote a reason staff typed or a nickname.
    detail: str | None = _secret_text()
    at: datetime = _timestamp(default_factory=utcnow)


class ConsultationRecord(SQLModel, table=True):
    """The consultation record (相談記録票) filed when a chat ends; kept as a draft until complete."""

    consultation_id: int = Field(primary_key=True, foreign_key="consultation.id")
    staff_id: int = Field(foreign_key="staffuser.id")
    age_band: str | None = Field(default=None, max_length=32)
    gender: str | None = Field(default=None, max_length=32)
    worries: list[str] = Field(default_factory=list, sa_type=JSON)
    responses: list[str] = Field(default_factory=list, sa_type=JSON)
    serious: bool = False
    referral_needed: bool = False
    note: str | None = _secret_text()
    filed_at: datetime | None = _timestamp(default=None)
    updated_at: datetime = _timestamp(default_factory=utcnow)


class ReferralStatus(StrEnum):
    """A referral's life; the coordinator sees it only from `consented` on."""

    PROPOSED = "proposed"
    CONSENTED = "consented"
    DECLINED = "declined"
    CONTACTED = "contacted"
    CONNECTED = "connected"
    CLOSED = "closed"


class Referral(SQLModel, table=True):
    """A serious case connected to a local support organisation, with the person's consent."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    status: ReferralStatus = Field(default=ReferralStatus.PROPOSED, sa_type=String(16))
    proposed_by: int = Field(foreign_key="staffuser.id")
    consent_at: datetime | None = _timestamp(default=None)
    # Every status change: [{"status", "at", "staff_id", "note"}], oldest first.
    history: list[dict[str, Any]] = _secret_json(default_factory=list)
    created_at: datetime = _timestamp(default_factory=utcnow)


class Organisation(SQLModel, table=True):
    """A local support organisation serious cases can be referred to (kept by coordinators in the console)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    region: str = Field(max_length=100)
    # The prefecture it serves (an id in content/finder.yaml), so the directory can show one prefecture's.
    prefecture: str | None = Field(default=None, max_length=32, index=True)
    # What it helps with, as free words (e.g. 生活困窮, DV, 若者).
    fields: list[str] = Field(default_factory=list, sa_type=JSON)
    contact: str = Field(max_length=500)
    active: bool = True
    created_at: datetime = _timestamp(default_factory=utcnow)


class FlagState(StrEnum):
    """Where a risk flag is in moderator review."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    RELABELLED = "relabelled"
    DISMISSED = "dismissed"


class RiskFlag(SQLModel, table=True):
    """A message screened at `medium` or above (or reported by a counselor as a missed risk), for review."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="usermessage.id", index=True)
    user_id: str = Field(index=True, max_length=64)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    level: RiskLevel = Field(sa_type=String(16), index=True)
    score: float = 0.0
    # What decided the level: the model, the keyword floor, both, or a counselor's report.
    source: str = Field(max_length=64)
    # [{"name", "span": [start, end] | None, "text"}]
    tags: list[dict[str, Any]] = _secret_json(default_factory=list)
    state: FlagState = Field(default=FlagState.OPEN, sa_type=String(16), index=True)
    reported_by: int | None = Field(default=None, foreign_key="staffuser.id")
    reviewed_by: int | None = Field(default=None, foreign_key="staffuser.id")
    reviewed_at: datetime | None = _timestamp(default=None)
    # The level a moderator gave when relabelling (or confirmed), and why they decided as they did.
    reviewed_level: RiskLevel | None = Field(default=None, sa_type=String(16))
    review_reason: str | None = _secret_text()
    # The conversation reader's latest verdict on a window of the person's messages holding this one
    # (None until one was read): below `level`, context defused the words, and moderators may lower it.
    context_level: RiskLevel | None = Field(default=None, sa_type=String(16))
    # The words the model weighed most for its level: [{"text", "span": [start, end]}], strongest first;
    # None for flags raised before the model named its words. They quote the person, so they are secret.
    drivers: list[dict[str, Any]] | None = _secret_json(default=None)
    created_at: datetime = _timestamp(default_factory=utcnow)


class EmergencyResponse(SQLModel, table=True):
    """A supervisor's record of an emergency: what was asked, who was contacted, and how it ended."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    opened_by: int = Field(foreign_key="staffuser.id")
    # {"thoughts", "plan", "means", "timeframe"}: each a short answer as the person gave it.
    assessment: dict[str, str] = _secret_json(default_factory=dict)
    # [{"who": 110 | 119 | 児童相談所 | family | other, "at", "reached": bool, "note"}], in order.
    contacts: list[dict[str, Any]] = _secret_json(default_factory=list)
    closing_note: str | None = _secret_text()
    created_at: datetime = _timestamp(default_factory=utcnow)
    closed_at: datetime | None = _timestamp(default=None)


class RoomChange(SQLModel, table=True):
    """An admin's change to a room of content/rooms.yaml, applied over it (the reviewed file stays as it is)."""

    room_id: str = Field(primary_key=True, max_length=64)
    # Only the fields that differ from the file when saved, so later edits of the file still show elsewhere.
    values: dict[str, Any] = Field(sa_type=JSON)
    staff_id: int = Field(foreign_key="staffuser.id")
    changed_at: datetime = _timestamp(default_factory=utcnow)


class RoomSessionStatus(StrEnum):
    """A room session's life; each change is one conditional UPDATE, so it happens once in any process."""

    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    # Its time passed without opening (no facilitator present).
    CANCELLED = "cancelled"


class RoomSession(SQLModel, table=True):
    """One scheduled sitting of a room from content/rooms.yaml."""

    __table_args__ = (UniqueConstraint("room_id", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(max_length=64, index=True)
    starts_at: datetime = _timestamp(index=True)
    ends_at: datetime = _timestamp()
    status: RoomSessionStatus = Field(default=RoomSessionStatus.SCHEDULED, sa_type=String(16), index=True)
    facilitator_id: int | None = Field(default=None, foreign_key="staffuser.id")
    reminded_at: datetime | None = _timestamp(default=None)
    opened_at: datetime | None = _timestamp(default=None)
    closed_at: datetime | None = _timestamp(default=None)
    # Why it closed early or was cancelled, when it did.
    close_reason: str | None = _secret_text()


class ParticipantState(StrEnum):
    """Whether a participant is in the room."""

    JOINED = "joined"
    LEFT = "left"
    REMOVED = "removed"


class RoomParticipant(SQLModel, table=True):
    """A person in one room session, known to the others only by a nickname."""

    __table_args__ = (UniqueConstraint("session_id", "user_id"), UniqueConstraint("session_id", "nickname"))

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="roomsession.id", index=True)
    user_id: str = Field(max_length=64, index=True)
    nickname: str = Field(max_length=32)
    renamed: bool = False
    # Their next text is the new nickname they asked for.
    renaming: bool = False
    state: ParticipantState = Field(default=ParticipantState.JOINED, sa_type=String(16))
    muted_until: datetime | None = _timestamp(default=None)
    removed_by: int | None = Field(default=None, foreign_key="staffuser.id")
    removed_reason: str | None = _secret_text()
    # The one-tap answer at close: better, same or worse.
    checkin: str | None = Field(default=None, max_length=16)
    joined_at: datetime = _timestamp(default_factory=utcnow)
    left_at: datetime | None = _timestamp(default=None)


class RoomReminder(SQLModel, table=True):
    """A person asked to be told before a session opens."""

    session_id: int = Field(foreign_key="roomsession.id", primary_key=True)
    user_id: str = Field(max_length=64, primary_key=True)
    created_at: datetime = _timestamp(default_factory=utcnow)


class RoomMessage(SQLModel, table=True):
    """What was said in a room (relayed or held back); the text is deleted after the retention period."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="roomsession.id", index=True)
    # The participant who wrote it, or the staff member who posted it.
    participant_id: int | None = Field(default=None, foreign_key="roomparticipant.id")
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id")
    # The person's stored message (its risk flag refers to it).
    user_message_id: int | None = Field(default=None, foreign_key="usermessage.id")
    kind: str = Field(max_length=16)
    text: str | None = _secret_text()
    # Why it was not relayed: contact, risk, muted or media; None if the room saw it.
    held: str | None = Field(default=None, max_length=16)
    # How many participants reported it.
    reports: int = 0
    created_at: datetime = _timestamp(default_factory=utcnow)


class DemoDatabase(SQLModel, table=True):
    """Present when `tsunagi demo` or `simulate` claimed this database while it held no people: it holds made-up data."""

    id: int = Field(default=1, primary_key=True)
    claimed_by: str = Field(max_length=32)
    claimed_at: datetime = _timestamp(default_factory=utcnow)
