"""On LINE: the privacy notice once before the first consultation, and 「わたしの記録」.

「わたしの記録」 tells the person in plain words what is kept about them and how long, and offers
deletion, confirmed with a second tap. Deletion is refused, kindly and saying why, only while a
consultation is open or staff are still acting for their safety (`erasure.why_not_forget`).
"""

from __future__ import annotations

from typing import Literal

from sqlmodel import col, func, select

from bot.conversation.postbacks import Postback
from bot.conversation.router import Router, Turn
from bot.line.messages import postback_item, texts
from bot.privacy.erasure import Refusal, forget_person, why_not_forget
from bot.guidance.content import Content
from bot.storage.models import Consultation, LineUser, RoomParticipant, UserMessage, utcnow

router = Router()


class RecordsTap(Postback, action="mine"):
    """A step of 「わたしの記録」: ask to delete (the question comes back), then delete or keep."""

    do: Literal["ask", "forget", "keep"]


def privacy_notice(content: Content) -> str:
    """What is kept, for how long (the periods of content/retention.yaml), who reads it, how to delete it."""
    return content.messages.privacy_notice.format(**content.retention.model_dump())


def privacy_notice_once(turn: Turn, user: LineUser) -> str | None:
    """The privacy notice if this person has not been shown it yet (then it counts as shown)."""
    if user.privacy_noticed_at is not None:
        return None
    user.privacy_noticed_at = utcnow()
    turn.session.add(user)
    return privacy_notice(turn.content)


async def show_records(turn: Turn) -> None:
    """What is kept about the person, in plain words, with how long and a button to delete it."""
    messages, user_id = turn.content.messages, turn.source_id

    async def count(model: type, *conditions: object) -> int:
        return (await turn.session.exec(select(func.count()).select_from(model).where(*conditions))).one()

    written = await count(UserMessage, UserMessage.user_id == user_id, col(UserMessage.text).is_not(None))
    consultations = await count(Consultation, Consultation.user_id == user_id)
    rooms = await count(RoomParticipant, RoomParticipant.user_id == user_id)
    lines = [messages.records_messages.format(count=written)] if written else []
    lines += [messages.records_consultations.format(count=consultations)] if consultations else []
    lines += [messages.records_rooms.format(count=rooms)] if rooms else []
    if settings := _settings(turn, await turn.session.get(LineUser, user_id)):
        lines.append(messages.records_settings.format(settings=" / ".join(settings)))
    notice = privacy_notice(turn.content)
    if not lines:
        turn.reply(texts(f"{messages.records_nothing}\n\n{notice}"))
        return
    forget = postback_item(messages.records_forget_label, RecordsTap(do="ask").pack())
    turn.reply(texts("\n".join([messages.records_intro, *lines, "", notice]), quick_reply=[forget]))


def _settings(turn: Turn, user: LineUser | None) -> list[str]:
    """The choices the person gave that are kept with them, by the names they chose them by."""
    if user is None:
        return []
    content = turn.content
    chosen = [turn.all_content.in_language(user.language).menu.language_name] if user.language else []
    if year := content.finder.school_year(user.school_year or ""):
        chosen.append(year.label)
    if prefecture := content.finder.prefecture(user.prefecture):
        chosen.append(prefecture.label)
    if band := content.rooms.age_band(user.age_band):
        chosen.append(band.label)
    return chosen


@router.tap(RecordsTap)
async def records_step(turn: Turn, tap: RecordsTap) -> None:
    """A tap of 「わたしの記録」: ask before deleting, delete, or keep."""
    messages = turn.content.messages
    if tap.do == "keep":
        turn.reply(texts(messages.records_kept))
        return
    refusal = await why_not_forget(turn.session, turn.source_id)
    if refusal is not None:
        turn.reply(texts(messages.records_refused_open if refusal is Refusal.OPEN_CONSULTATION else messages.records_refused_emergency))
        return
    if tap.do == "ask":
        answers = [
            postback_item(messages.records_forget_yes_label, RecordsTap(do="forget").pack()),
            postback_item(messages.records_forget_no_label, RecordsTap(do="keep").pack()),
        ]
        turn.reply(texts(messages.records_forget_question, quick_reply=answers))
        return
    alias = await forget_person(turn.session, turn.source_id, asked_by="the person on LINE")
    # Queued after the deletion, so it is the one row that still has their address, until it is sent.
    turn.reply(texts(messages.records_forgotten))
    # This very event is the last that names them; its body is emptied when it is processed.
    turn.record.source_id = alias
