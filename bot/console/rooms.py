"""The peer-support rooms in the console: sessions live, keeping a room (present, post, mute, remove, close)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONTENT, OUTBOX_SENDER, ROOM_SCHEDULER, SESSIONS, SETTINGS
from bot.console import render
from bot.console.actions import audited, find_or_404, refusal
from bot.console.auth import STAFF_KEY, requires
from bot.rooms.sessions import UNFINISHED, change_room, claim, close_session, mute, post_as_staff, remove, rooms_in_effect, session_measures
from bot.storage.models import (
    ParticipantState,
    RoomChange,
    RoomMessage,
    RoomParticipant,
    RoomSession,
    RoomSessionStatus,
    StaffRole,
    StaffUser,
    utcnow,
)

routes = web.RouteTableDef()

ROOM_STAFF = (StaffRole.FACILITATOR, StaffRole.MODERATOR, StaffRole.SUPERVISOR)
# Finished sessions stay on the list this long, with their measures.
RECENT = timedelta(days=7)
MUTE_CHOICES = (5, 15, 60)
POST_MAX = 1000


@routes.get("/console/rooms")
@requires(*ROOM_STAFF)
async def rooms_page(request: web.Request) -> web.Response:
    """Open and coming sessions (claim to facilitate), and the last week's with their measures."""
    return render(request, "rooms.html", **await _sessions_context(request))


@routes.get("/console/rooms/live")
@requires(*ROOM_STAFF)
async def rooms_live(request: web.Request) -> web.Response:
    """The list of sessions as a fragment, re-fetched when the topic `rooms` changes."""
    return render(request, "_rooms.html", **await _sessions_context(request))


@routes.get("/console/rooms/{id}")
@requires(*ROOM_STAFF)
async def room_page(request: web.Request) -> web.Response:
    """One session: its transcript (held-back messages marked), its participants, and what staff can do."""
    async with audited(request, "opened_room") as audit:
        context = await _room_context(request, audit.session)
        audit.detail = f"room session {context['room_session'].id}"
    return render(request, "room.html", **context, mute_choices=MUTE_CHOICES)


@routes.get("/console/rooms/{id}/live")
@requires(*ROOM_STAFF)
async def room_live(request: web.Request) -> web.Response:
    """The transcript and participants as a fragment, re-fetched when `room:{id}` changes."""
    async with request.app[SESSIONS]() as session:
        context = await _room_context(request, session)
    return render(request, "_room.html", **context, mute_choices=MUTE_CHOICES)


@routes.post("/console/rooms/{id}/claim")
@requires(*ROOM_STAFF)
async def claim_session(request: web.Request) -> web.Response:
    """I facilitate this session: a session waiting for its facilitator opens now."""
    async with audited(request, "room_claimed") as audit:
        room_session = await _room_session(request, audit.session)
        if not await claim(audit.session, request.app[CONTENT], room_session.id, request[STAFF_KEY]):
            raise web.HTTPConflict(text="この回はもう終わっています。")
        audit.detail = f"room session {room_session.id}"
    request.app[OUTBOX_SENDER].wake()
    raise web.HTTPSeeOther(f"/console/rooms/{room_session.id}")


@routes.post("/console/rooms/{id}/post")
@requires(*ROOM_STAFF)
async def post(request: web.Request) -> web.Response:
    """Words to the whole room, marked as staff."""
    text = str((await request.post()).get("text", "")).strip()
    if not 0 < len(text) <= POST_MAX:
        raise web.HTTPBadRequest(text=f"1〜{POST_MAX}文字で書いてください。")
    async with request.app[SESSIONS]() as session:
        room_session = await _room_session(request, session, open_only=True)
        await post_as_staff(session, request.app[CONTENT], room_session, request[STAFF_KEY], text)
        await session.commit()
    raise web.HTTPSeeOther(f"/console/rooms/{room_session.id}")


@routes.post("/console/rooms/{id}/close")
@requires(*ROOM_STAFF)
async def close_early(request: web.Request) -> web.Response:
    """Close a session before its time (a reason is kept and audited)."""
    reason = str((await request.post()).get("reason", "")).strip()
    if not reason:
        raise web.HTTPBadRequest(text="早く閉じる理由を書いてください。")
    async with audited(request, "room_closed_early") as audit:
        room_session = await _room_session(request, audit.session)
        if not await close_session(audit.session, request.app[CONTENT], room_session.id, reason):
            raise web.HTTPConflict(text="この回はもう終わっています。")
        audit.detail = f"room session {room_session.id}: {reason}"
    request.app[OUTBOX_SENDER].wake()
    raise web.HTTPSeeOther(f"/console/rooms/{room_session.id}")


@routes.post("/console/rooms/participants/{id}/mute")
@requires(*ROOM_STAFF)
async def mute_participant(request: web.Request) -> web.Response:
    """Hold a participant's messages back for a few minutes."""
    minutes = str((await request.post()).get("minutes", ""))
    if minutes not in {str(m) for m in MUTE_CHOICES}:
        raise web.HTTPBadRequest(text="止める時間を選んでください。")
    async with audited(request, "room_muted") as audit:
        participant = await _participant(request, audit.session)
        mute(audit.session, participant, int(minutes))
        audit.detail = f"room session {participant.session_id}: {participant.nickname} {minutes} min"
    raise web.HTTPSeeOther(f"/console/rooms/{participant.session_id}")


@routes.post("/console/rooms/participants/{id}/remove")
@requires(*ROOM_STAFF)
async def remove_participant(request: web.Request) -> web.Response:
    """Take a participant out of the session, with a reason (logged)."""
    reason = str((await request.post()).get("reason", "")).strip()
    if not reason:
        raise web.HTTPBadRequest(text="退室させる理由を書いてください。")
    async with audited(request, "room_removed") as audit:
        participant = await _participant(request, audit.session)
        await remove(audit.session, request.app[CONTENT], participant, request[STAFF_KEY], reason)
        audit.detail = f"room session {participant.session_id}: {participant.nickname}: {reason}"
    request.app[OUTBOX_SENDER].wake()
    raise web.HTTPSeeOther(f"/console/rooms/{participant.session_id}")


@routes.get("/console/admin/rooms")
@requires(StaffRole.ADMIN)
async def rooms_admin(request: web.Request) -> web.Response:
    """Every room as the service runs it (content/rooms.yaml with the admins' changes), each in a form."""
    return await _rooms_admin_page(request)


@routes.post("/console/admin/rooms/{room_id}")
@requires(StaffRole.ADMIN)
async def change(request: web.Request) -> web.Response:
    """Save a room's fields (or go back to the file's); coming sessions follow the new schedule at once."""
    form = await request.post()
    room_id = request.match_info["room_id"]
    values = None if form.get("reset") == "yes" else {
        **{key: str(form.get(key, "")).strip() for key in ("title", "theme", "description", "schedule", "rules")},
        "age_bands": [str(band) for band in form.getall("age_bands", [])],
        "duration_minutes": str(form.get("duration_minutes", "")),
        "capacity": str(form.get("capacity", "")),
        "facilitator_required": form.get("facilitator_required") == "yes",
    }
    async with audited(request, "room_changed") as audit:
        problems = await change_room(audit.session, request.app[CONTENT], request.app[SETTINGS].timezone, room_id, values, request[STAFF_KEY])
        if problems:
            raise refusal(await _rooms_admin_page(request, problems, status=400))
        audit.detail = f"{room_id}: {'reset to rooms.yaml' if values is None else 'changed'}"
    await request.app[ROOM_SCHEDULER].plan()
    request.app[OUTBOX_SENDER].wake()
    raise web.HTTPSeeOther("/console/admin/rooms")


async def _rooms_admin_page(request: web.Request, errors: list[str] | None = None, status: int = 200) -> web.Response:
    async with request.app[SESSIONS]() as session:
        rooms = await rooms_in_effect(session, request.app[CONTENT].rooms)
        changed = set(await session.exec(select(RoomChange.room_id)))
    return render(request, "room_admin.html", status=status, rooms=rooms, changed=changed, errors=errors or [])


async def _sessions_context(request: web.Request) -> dict[str, object]:
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        sessions = list(
            await session.exec(
                select(RoomSession)
                .where(RoomSession.ends_at > now - RECENT, RoomSession.starts_at < now + RECENT)
                .order_by(RoomSession.starts_at)
            )
        )
        measures = await session_measures(session, [s.id for s in sessions if s.status not in UNFINISHED])
        facilitators = await _staff_names(session, {s.facilitator_id for s in sessions})
        rooms = await rooms_in_effect(session, request.app[CONTENT].rooms)
    return {"sessions": sessions, "measures": measures, "rooms": rooms, "facilitators": facilitators, "now": now, "unfinished": UNFINISHED}


async def _room_context(request: web.Request, session: AsyncSession) -> dict[str, object]:
    room_session = await _room_session(request, session)
    participants = list(await session.exec(select(RoomParticipant).where(RoomParticipant.session_id == room_session.id).order_by(RoomParticipant.id)))
    messages = list(await session.exec(select(RoomMessage).where(RoomMessage.session_id == room_session.id).order_by(col(RoomMessage.id))))
    staff = await _staff_names(session, {m.staff_id for m in messages} | {room_session.facilitator_id})
    [measures] = (await session_measures(session, [room_session.id])).values()
    room = (await rooms_in_effect(session, request.app[CONTENT].rooms)).room(room_session.room_id)
    return {
        "room_session": room_session,
        "room": room,
        "participants": participants,
        "nicknames": {p.id: p.nickname for p in participants},
        "messages": messages,
        "staff_names": staff,
        "measures": measures,
        "joined": ParticipantState.JOINED,
        "now": utcnow(),
    }


async def _staff_names(session: AsyncSession, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {s.id: s.display_name for s in await session.exec(select(StaffUser).where(col(StaffUser.id).in_(wanted)))}


async def _room_session(request: web.Request, session: AsyncSession, *, open_only: bool = False) -> RoomSession:
    room_session = await find_or_404(session, RoomSession, request.match_info["id"], "この回は見つかりません。")
    if open_only and room_session.status != RoomSessionStatus.OPEN:
        raise web.HTTPConflict(text="この回はいま開いていません。")
    return room_session


async def _participant(request: web.Request, session: AsyncSession) -> RoomParticipant:
    return await find_or_404(
        session, RoomParticipant, request.match_info["id"], "この参加者はいま部屋にいません。", allowed=lambda p: p.state == ParticipantState.JOINED
    )
