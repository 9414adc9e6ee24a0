"""What the bot does with each kind of LINE event: the table of routes and the handlers behind them."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from linebot.v3.webhooks import (
    AudioMessageContent,
    Event,
    FileMessageContent,
    FollowEvent,
    ImageMessageContent,
    JoinEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    VideoMessageContent,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation import referrals, requests
from bot.consultation.requests import note_person_wrote, open_consultation
from bot.consultation.risk import screen_message
from bot.conversation import menu
from bot.conversation.menu import menu_messages
from bot.conversation.people import get_or_create_user, keep_content, previous_message, store_message
from bot.conversation.postbacks import Postback
from bot.conversation.router import Router, Screens, Turn
from bot.guidance import finder
from bot.guidance.content import Content
from bot.line.inbox import source_id
from bot.line.messages import texts
from bot.line.outbox import cancel_pending_for, enqueue_leave
from bot.privacy import mine
from bot.privacy.erasure import forget_unsent
from bot.privacy.mine import privacy_notice_once
from bot.rooms import participants
from bot.rooms.participants import current_participant, room_media, room_text
from bot.storage.models import ConsultationStatus, InboxEvent, LineUser, RiskLevel, utcnow

log = logging.getLogger(__name__)

router = Router()
# Each capability answers its own taps.
for capability in (menu, finder, requests, referrals, participants, mine):
    router.include_router(capability.router)

# What a person sends that is kept for a counselor (outside the rooms, which relay no media).
KEPT_CONTENT = ("image", "video", "audio", "file")
# Messages closer together than this are one burst: answered once, not line by line.
BURST = timedelta(seconds=60)


async def handle_event(
    session: AsyncSession, record: InboxEvent, content: Content, zone: ZoneInfo, screener: Screens
) -> None:
    """Process one stored webhook event (the inbox worker commits what this writes)."""
    if record.mode != "active":
        return  # standby: another channel is answering; LINE forbids replying
    source_type = (record.payload.get("source") or {}).get("type")
    if source_type in ("group", "room") and record.event_type != "join":
        return  # the bot leaves at its join; nothing of a group was kept to handle (`inbox.kept_payload`)
    try:
        event = Event.from_dict(record.payload)
    except ValueError:
        log.info("inbox event %s: type %r has no handler", record.id, record.event_type, extra={"event_id": record.id})
        return
    # The person's language decides which content they read (identity-mapped: handlers reuse this row).
    user = await session.get(LineUser, source_id(record.payload))
    turn = Turn(
        session=session, all_content=content, zone=zone, record=record, event=event, screener=screener,
        language=user and user.language,
    )
    if not await router.dispatch(turn):
        log.debug("inbox event %s: %s needs no answer", record.id, record.event_type, extra={"event_id": record.id})


async def _greet(turn: Turn) -> None:
    user = await get_or_create_user(turn.session, turn.source_id)
    user.greeted_at = utcnow()
    notice = privacy_notice_once(turn, user)
    turn.reply(menu_messages(turn, f"{turn.content.menu.greeting}\n\n{notice}" if notice else turn.content.menu.greeting))


@router.on(FollowEvent)
async def on_follow(turn: Turn) -> None:
    """A new friend, or one who unblocked the bot: greet and offer the menu."""
    user = await get_or_create_user(turn.session, turn.source_id)
    user.following = True
    user.updated_at = utcnow()
    await _greet(turn)


@router.on(UnfollowEvent)
async def on_unfollow(turn: Turn) -> None:
    """Blocked: nothing more may be sent, including what is already queued."""
    user = await get_or_create_user(turn.session, turn.source_id)
    user.following = False
    user.updated_at = utcnow()
    await cancel_pending_for(turn.session, turn.source_id)


@router.on(MessageEvent, TextMessageContent)
async def on_text(turn: Turn) -> None:
    """Text: keep it, then open the menu, greet a newcomer, or acknowledge once per burst."""
    content, text = turn.content, turn.event.message.text
    user = await get_or_create_user(turn.session, turn.source_id)
    message = await store_message(
        turn.session, turn.source_id, turn.event.message.id, "text", turn.record.occurred_at, text,
        read_token=turn.event.message.mark_as_read_token,
    )
    # Screened first: a person in danger is answered and queued before anything else happens.
    level, consultation = await screen_message(turn, message)
    if consultation is not None:
        note_person_wrote(turn.session, consultation, message)
    asked_for_menu = any(text.strip() in c.menu.keywords for c in turn.all_content.languages())
    participant = None if asked_for_menu else await current_participant(turn)
    if participant is not None:
        await room_text(turn, participant, message, level)
        return
    if level is RiskLevel.IMMINENT:
        return
    if asked_for_menu:
        turn.reply(menu_messages(turn, content.menu.prompt))
        return
    if user.greeted_at is None:
        await _greet(turn)
        return
    if consultation is not None and consultation.status == ConsultationStatus.ACTIVE:
        return  # the counselor reads it live and answers
    previous = await previous_message(turn.session, message)
    if previous is not None and message.sent_at - previous.sent_at < BURST:
        return
    if consultation is not None:
        turn.reply(texts(content.messages.after_choice))
    else:
        turn.reply(menu_messages(turn, content.menu.prompt))


async def _non_text(turn: Turn, kind: str, answer: str) -> None:
    await get_or_create_user(turn.session, turn.source_id)
    message = await store_message(
        turn.session, turn.source_id, turn.event.message.id, kind, turn.record.occurred_at,
        read_token=turn.event.message.mark_as_read_token,
    )
    participant = await current_participant(turn)
    if participant is not None:
        await room_media(turn, participant, message)
        return
    if kind in KEPT_CONTENT:
        await keep_content(turn.session, message, turn.event.message)
    consultation = await open_consultation(turn.session, turn.source_id)
    if consultation is not None:
        note_person_wrote(turn.session, consultation, message)
        if consultation.status == ConsultationStatus.ACTIVE:
            return  # shown to the counselor as what it is; they answer
    turn.reply(menu_messages(turn, answer))


@router.on(MessageEvent, StickerMessageContent)
async def on_sticker(turn: Turn) -> None:
    """A sticker where words were hoped for: thank them and invite text."""
    await _non_text(turn, "sticker", turn.content.messages.received_sticker)


@router.on(MessageEvent, ImageMessageContent)
async def on_image(turn: Turn) -> None:
    """Images are not looked at (privacy, and no one to read them): say so kindly."""
    await _non_text(turn, "image", turn.content.messages.received_image)


@router.on(MessageEvent, LocationMessageContent)
async def on_location(turn: Turn) -> None:
    """A location is not used; point to 110/119 in case it was sent in danger."""
    await _non_text(turn, "location", turn.content.messages.received_location)


@router.on(MessageEvent, VideoMessageContent)
@router.on(MessageEvent, AudioMessageContent)
@router.on(MessageEvent, FileMessageContent)
async def on_media(turn: Turn) -> None:
    """Video, audio and files are not opened: say so kindly."""
    await _non_text(turn, turn.event.message.type, turn.content.messages.received_media)


@router.on(PostbackEvent)
async def on_postback(turn: Turn) -> None:
    """A button: only a payload the bot itself made is acted on; anything else re-shows the menu."""
    await get_or_create_user(turn.session, turn.source_id)
    tap = Postback.parse(turn.event.postback.data)
    if tap is None or not await router.dispatch_tap(turn, tap):
        turn.reply(menu_messages(turn, turn.content.messages.unknown_choice))


@router.on(UnsendEvent)
async def on_unsend(turn: Turn) -> None:
    """The person took a message back: its words leave every table, here as on their phone."""
    await forget_unsent(turn.session, turn.source_id, turn.event.unsend.message_id)


@router.on(JoinEvent)
async def on_join(turn: Turn) -> None:
    """Added to a group or a multi-person chat: consultations are one to one, so say so once, kindly,
    with where to go instead, and leave (the outbox sends the words first)."""
    turn.reply(texts(turn.content.messages.group_not_supported))
    enqueue_leave(turn.session, turn.source_id, turn.event.source.type)
