"""The counselor's console: the queue, taking a chat, the chat itself, notes, transfer and the end."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from PIL import Image, ImageFilter, UnidentifiedImageError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONTENT, SESSIONS
from bot.console import render
from bot.console.actions import audited, find_or_404
from bot.console.auth import STAFF_KEY, requires
from bot.console.words import MESSAGE_KINDS
from bot.consultation.risk import raised_by
from bot.conversation.people import mark_read
from bot.consultation.queue import (
    TakeRefused,
    add_note,
    end,
    send_to_person,
    set_availability,
    take,
    transfer,
    waiting,
)
from bot.storage.models import (
    OPEN_CONSULTATION,
    Availability,
    ChatEntry,
    Consultation,
    ConsultationStatus,
    MessageContent,
    RiskFlag,
    RiskLevel,
    StaffRole,
    StaffUser,
    UserMessage,
    find_by_id,
    row_id,
    utcnow,
)

routes = web.RouteTableDef()

CHAT_ROLES = (StaffRole.COUNSELOR, StaffRole.SUPERVISOR)
# Earlier consultations of the same person shown under the current one.
EARLIER_SHOWN = 5
# Longest message a counselor can send at once (LINE splits nothing; the outbox splits into messages).
MAX_SEND_CHARACTERS = 5000
# Words removed after their retention period (content/retention.yaml) or at the person's request.
REMOVED = "（保存期間を過ぎたか、本人の希望で削除）"


def can_open(staff: StaffUser, consultation: Consultation) -> bool:
    """Supervisors see every chat; a counselor only the ones they hold."""
    return staff.role == StaffRole.SUPERVISOR or consultation.counselor_id == staff.id


async def openable_consultation(request: web.Request, session: AsyncSession) -> Consultation:
    """The consultation in the URL, if this staff member may open it (404 otherwise: no probing)."""
    staff = request[STAFF_KEY]
    return await find_or_404(session, Consultation, request.match_info["id"], "この相談は開けません。", allowed=lambda c: can_open(staff, c))


@dataclass(frozen=True)
class Line:
    """One line of a chat's history as the console shows it."""

    at: datetime
    who: str
    text: str
    kind: str  # person, counselor, note, event
    earlier: bool = False
    before_choice: bool = False
    # The person's stored message, which a counselor can report as a missed risk.
    message_id: int | None = None
    # The image or file the message carried, if kept (never its bytes: those come by `content`, audited).
    content: Attachment | None = None


@dataclass(frozen=True)
class Attachment:
    """An image or file a person sent, as a chat lists it."""

    id: int
    image: bool
    size: int | None
    file_name: str | None
    # Whether its bytes are here (fetched, within the size kept, not yet past retention).
    kept: bool


async def history(session: AsyncSession, consultation: Consultation) -> list[Line]:
    """The whole history: this consultation (including what was typed before choosing), then earlier ones."""
    earlier = list(
        await session.exec(
            select(Consultation.id)
            .where(Consultation.user_id == consultation.user_id, Consultation.id != consultation.id, Consultation.created_at < consultation.created_at)
            .order_by(col(Consultation.created_at).desc())
            .limit(EARLIER_SHOWN)
        )
    )
    ids = [consultation.id, *earlier]
    people = list(await session.exec(select(UserMessage).where(col(UserMessage.consultation_id).in_(ids))))
    attachments = {
        message_id: Attachment(content_id, kind == "image", size, file_name, kept)
        for content_id, message_id, kind, size, file_name, kept in await session.exec(
            select(
                MessageContent.id, MessageContent.message_id, UserMessage.kind, MessageContent.size, MessageContent.file_name,
                col(MessageContent.data).is_not(None),
            )
            .join(UserMessage, col(UserMessage.id) == MessageContent.message_id)
            .where(col(UserMessage.consultation_id).in_(ids))
        )
    }
    entries = list(await session.exec(select(ChatEntry).where(col(ChatEntry.consultation_id).in_(ids))))
    names = {s.id: s.display_name for s in await session.exec(select(StaffUser).where(col(StaffUser.id).in_({e.staff_id for e in entries if e.staff_id})))}
    lines = [
        Line(
            m.sent_at,
            "相談者",
            m.text if m.kind == "text" and m.text is not None else ("（送信取消）" if m.unsent_at else (f"（{MESSAGE_KINDS[m.kind]}）" if m.kind in MESSAGE_KINDS else REMOVED)),
            "person",
            earlier=m.consultation_id != consultation.id,
            before_choice=m.consultation_id == consultation.id and m.sent_at < consultation.created_at,
            message_id=m.id,
            content=attachments.get(m.id),
        )
        for m in people
    ]
    lines += [
        Line(e.created_at, names.get(e.staff_id, "システム"), e.text if e.text is not None else REMOVED, e.kind, earlier=e.consultation_id != consultation.id)
        for e in entries
    ]
    return sorted(lines, key=lambda line: (not line.earlier, line.at))


async def earlier_of(session: AsyncSession, consultation: Consultation) -> list[Consultation]:
    """The person's consultations before this one, newest first."""
    statement = select(Consultation).where(Consultation.user_id == consultation.user_id, Consultation.id != consultation.id, Consultation.created_at < consultation.created_at)
    return list(await session.exec(statement.order_by(col(Consultation.created_at).desc())))


async def _queue_context(request: web.Request) -> dict:
    staff = request[STAFF_KEY]
    async with request.app[SESSIONS]() as session:
        queue = await waiting(session)
        mine = list(
            await session.exec(
                select(Consultation)
                .where(Consultation.counselor_id == staff.id, Consultation.status == ConsultationStatus.ACTIVE)
                .order_by(Consultation.taken_at)
            )
        )
        raised = await raised_by(session, [*queue, *mine])
    labels = {c.id: c.label for c in request.app[CONTENT].menu.categories}
    return {"queue": queue, "mine": mine, "raised": raised, "labels": labels, "now": utcnow()}


@routes.get("/console/queue")
@requires(*CHAT_ROLES)
async def queue_page(request: web.Request) -> web.Response:
    """The waiting people (highest priority first), my chats and my availability."""
    return render(request, "queue.html", **await _queue_context(request), availability=list(Availability))


@routes.get("/console/queue/live")
@requires(*CHAT_ROLES)
async def queue_live(request: web.Request) -> web.Response:
    """The queue part of the page, re-fetched when the queue changes."""
    return render(request, "_queue.html", **await _queue_context(request))


@routes.post("/console/availability")
@requires(*CHAT_ROLES)
async def availability(request: web.Request) -> web.Response:
    """Available, away or offline; going offline returns open chats to the queue."""
    form = await request.post()
    try:
        chosen = Availability(str(form.get("availability")))
    except ValueError:
        raise web.HTTPBadRequest(text="状態の指定が正しくありません。") from None
    async with request.app[SESSIONS]() as session:
        staff = await session.get(StaffUser, request[STAFF_KEY].id)
        await set_availability(session, staff, chosen)
        await session.commit()
    raise web.HTTPSeeOther("/console/queue")


@routes.post("/console/c/{id}/take")
@requires(*CHAT_ROLES)
async def take_chat(request: web.Request) -> web.Response:
    """Take a waiting consultation; if someone was quicker, say so on the queue page."""
    consultation_id = row_id(request.match_info["id"])
    if consultation_id is None:
        raise web.HTTPNotFound()
    async with request.app[SESSIONS]() as session:
        try:
            await take(session, request.app[CONTENT], consultation_id, request[STAFF_KEY])
            await session.commit()
        except TakeRefused as refused:
            error = str(refused)
        else:
            raise web.HTTPSeeOther(f"/console/c/{consultation_id}")
    return render(request, "queue.html", status=409, error=error, **await _queue_context(request), availability=list(Availability))


async def _chat_context(request: web.Request, session: AsyncSession, consultation: Consultation) -> dict:
    """What one chat pane shows (its caller audits the read)."""
    content = request.app[CONTENT]
    counselors = list(
        await session.exec(
            select(StaffUser).where(StaffUser.role == StaffRole.COUNSELOR, StaffUser.availability == Availability.AVAILABLE, StaffUser.id != request[STAFF_KEY].id)
        )
    )
    flags = list(await session.exec(select(RiskFlag).where(RiskFlag.user_id == consultation.user_id).order_by(col(RiskFlag.created_at).desc())))
    return {
        "consultation": consultation,
        "flags": flags,
        "raised": (await raised_by(session, [consultation])).get(consultation.id),
        "earlier_count": len(await earlier_of(session, consultation)),
        "levels": list(RiskLevel),
        "lines": await history(session, consultation),
        "label": next((c.label for c in content.menu.categories if c.id == consultation.category), consultation.category),
        "categories": content.menu.categories,
        "counselors": counselors,
        "is_open": consultation.status in OPEN_CONSULTATION,
        "holds_it": consultation.counselor_id == request[STAFF_KEY].id and consultation.status == ConsultationStatus.ACTIVE,
    }


@routes.get("/console/c/{id}")
@requires(*CHAT_ROLES)
async def chat_page(request: web.Request) -> web.Response:
    """One consultation in full, beside the other chats this staff member holds (as tabs) and the people waiting."""
    context = await _opened_chat(request)
    return render(request, "chat.html", **context, **await _chats_context(request, context["consultation"]))


async def _opened_chat(request: web.Request) -> dict:
    """The chat the URL names, for a page or a pane; every opening is audited."""
    async with audited(request, "opened_consultation") as audit:
        consultation = await openable_consultation(request, audit.session)
        audit.consultation_id = consultation.id
        await _read_by_holder(request, audit.session, consultation)
        return await _chat_context(request, audit.session, consultation)


async def _read_by_holder(request: web.Request, session: AsyncSession, consultation: Consultation) -> bool:
    """The counselor holding the chat has it before their eyes: the person sees 既読 (`people.mark_read`).

    Only then: never when the bot alone has the message, nor when a supervisor watches silently.
    Returns whether anything was marked (the caller commits).
    """
    if consultation.counselor_id != request[STAFF_KEY].id or consultation.status != ConsultationStatus.ACTIVE:
        return False
    return await mark_read(session, consultation.user_id)


async def _chats_context(request: web.Request, shown: Consultation | None) -> dict:
    """The chats column: the chats held (and the one shown, if it is not one of them), then the people waiting."""
    context = await _queue_context(request)
    tabs = context["mine"] if shown is None or shown.id in {c.id for c in context["mine"]} else [shown, *context["mine"]]
    return {"tabs": tabs, "shown_id": shown.id if shown else None, **{key: context[key] for key in ("queue", "mine", "labels", "now")}}


@routes.get("/console/chats/live")
@requires(*CHAT_ROLES)
async def chats_live(request: web.Request) -> web.Response:
    """The chats column of the chat page, re-fetched when the queue changes or a chat is taken there."""
    async with request.app[SESSIONS]() as session:
        shown = await find_by_id(session, Consultation, request.query.get("open", ""))
    if shown is not None and not can_open(request[STAFF_KEY], shown):
        shown = None
    return render(request, "_chats.html", **await _chats_context(request, shown))


@routes.get("/console/c/{id}/pane")
@requires(*CHAT_ROLES)
async def chat_pane(request: web.Request) -> web.Response:
    """One chat's pane, fetched when its tab is first chosen (drafts in the other panes stay where they are)."""
    return render(request, "_pane.html", **await _opened_chat(request))


@routes.get("/console/c/{id}/live")
@requires(*CHAT_ROLES)
async def chat_live(request: web.Request) -> web.Response:
    """The history part of the chat page, re-fetched when the consultation changes."""
    async with request.app[SESSIONS]() as session:
        consultation = await openable_consultation(request, session)
        if await _read_by_holder(request, session, consultation):
            await session.commit()
        lines = await history(session, consultation)
        raised = (await raised_by(session, [consultation])).get(consultation.id)
    return render(request, "_messages.html", lines=lines, levels=list(RiskLevel), consultation=consultation, raised=raised)


async def _held(request: web.Request, session: AsyncSession) -> Consultation:
    """The consultation, if this staff member holds it now (only its counselor writes to the person)."""
    consultation = await openable_consultation(request, session)
    if consultation.counselor_id != request[STAFF_KEY].id or consultation.status != ConsultationStatus.ACTIVE:
        raise web.HTTPConflict(text="この相談はいま、あなたが対応中ではありません。")
    return consultation


@routes.post("/console/c/{id}/send")
@requires(*CHAT_ROLES)
async def send(request: web.Request) -> web.Response:
    """Send text to the person on LINE (through the outbox; split to LINE's limits there)."""
    text = str((await request.post()).get("text", "")).strip()
    if not text or len(text) > MAX_SEND_CHARACTERS:
        raise web.HTTPBadRequest(text=f"メッセージは1〜{MAX_SEND_CHARACTERS}文字で入力してください。")
    async with request.app[SESSIONS]() as session:
        consultation = await _held(request, session)
        await send_to_person(session, consultation, request[STAFF_KEY], text)
        await session.commit()
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}")


@routes.post("/console/c/{id}/note")
@requires(*CHAT_ROLES)
async def note(request: web.Request) -> web.Response:
    """A private note on the consultation, for staff only."""
    text = str((await request.post()).get("text", "")).strip()
    if not text:
        raise web.HTTPBadRequest(text="メモが空です。")
    async with request.app[SESSIONS]() as session:
        consultation = await openable_consultation(request, session)
        add_note(session, consultation, request[STAFF_KEY], text)
        await session.commit()
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}")


@routes.post("/console/c/{id}/transfer")
@requires(*CHAT_ROLES)
async def transfer_chat(request: web.Request) -> web.Response:
    """Hand the chat to another counselor, or back to a category's queue, with a note."""
    form = await request.post()
    target = str(form.get("to", ""))
    async with request.app[SESSIONS]() as session:
        consultation = await _held(request, session)
        note_text = str(form.get("note", ""))
        if target.startswith("counselor:") and (counselor_id := row_id(target[10:])) is not None:
            counselor = await session.get(StaffUser, counselor_id)
            if counselor is None or counselor.role != StaffRole.COUNSELOR:
                raise web.HTTPBadRequest(text="引き継ぎ先が見つかりません。")
            await transfer(session, consultation, request[STAFF_KEY], note_text, counselor=counselor)
        elif target.startswith("category:") and request.app[CONTENT].menu.category(target[9:]):
            await transfer(session, consultation, request[STAFF_KEY], note_text, category=target[9:])
        else:
            raise web.HTTPBadRequest(text="引き継ぎ先を選んでください。")
        await session.commit()
    raise web.HTTPSeeOther("/console/queue")


@routes.post("/console/c/{id}/end")
@requires(*CHAT_ROLES)
async def end_chat(request: web.Request) -> web.Response:
    """End the chat; the record form comes next."""
    async with request.app[SESSIONS]() as session:
        consultation = await _held(request, session)
        await end(session, request.app[CONTENT], consultation, request[STAFF_KEY])
        await session.commit()
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}/record")


# Served inline only as these (a picture); anything else is a download, never shown or played in the page.
INLINE_IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")


async def _attachment_of(request: web.Request, session: AsyncSession, consultation: Consultation) -> MessageContent:
    """The kept image or file the URL names, if the consultation's person sent it (404 otherwise)."""
    found = (
        await session.exec(
            select(MessageContent)
            .join(UserMessage, col(UserMessage.id) == MessageContent.message_id)
            .where(MessageContent.id == int(request.match_info["content"]), UserMessage.user_id == consultation.user_id)
        )
    ).first()
    if found is None or found.data is None:
        raise web.HTTPNotFound(text="この画像・ファイルはもうありません。")
    return found


@routes.get(r"/console/c/{id}/content/{content:\d+}/blurred")
@requires(*CHAT_ROLES)
async def blurred_attachment(request: web.Request) -> web.Response:
    """The image so blurred that nothing in it can be made out: what the chat shows before anyone chooses to see it."""
    async with request.app[SESSIONS]() as session:
        found = await _attachment_of(request, session, await openable_consultation(request, session))
    if found.content_type not in INLINE_IMAGES:
        raise web.HTTPNotFound()
    try:
        with Image.open(io.BytesIO(found.data)) as image:
            tiny = image.convert("RGB").resize((6, 4))
    except (UnidentifiedImageError, OSError):
        raise web.HTTPNotFound() from None
    out = io.BytesIO()
    tiny.resize((240, 160), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(12)).save(out, "PNG")
    return web.Response(body=out.getvalue(), content_type="image/png", headers={"Cache-Control": "no-store"})


@routes.get(r"/console/c/{id}/content/{content:\d+}")
@requires(*CHAT_ROLES)
async def attachment(request: web.Request) -> web.Response:
    """An image or file the person sent in this consultation, when the counselor chooses to see it (audited)."""
    async with audited(request, "opened_content") as audit:
        consultation = await openable_consultation(request, audit.session)
        audit.consultation_id = consultation.id
        found = await _attachment_of(request, audit.session, consultation)
        audit.detail = f"content #{found.id}"
    inline = found.content_type in INLINE_IMAGES
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if not inline:
        headers["Content-Disposition"] = "attachment"
    return web.Response(body=found.data, content_type=found.content_type if inline else "application/octet-stream", headers=headers)
