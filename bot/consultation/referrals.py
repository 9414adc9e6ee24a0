"""Referrals (つなぎ) as the person on LINE meets them: nothing about them leaves without their yes.

Connecting someone to a local support organisation hands it their personal information, which the
law allows only with their consent (孤独・孤立対策推進法 notices: 本人の同意を得る必要がある). So a
counselor only proposes; the bot asks the person, and the coordinator sees the referral only once
they said yes. Every change is kept in the referral's history, oldest first.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.consultation.queue import consultation_topic, person_content
from bot.consultation.taps import ConsentTap
from bot.conversation.router import Router, Turn
from bot.guidance.content import Content
from bot.line.messages import postback_item, texts
from bot.line.outbox import enqueue
from bot.storage.after_commit import announce
from bot.storage.models import (
    ChatEntry,
    ChatEntryKind,
    Consultation,
    ConsultationStatus,
    Organisation,
    Referral,
    ReferralStatus,
    StaffUser,
    utcnow,
)

# A referral can be proposed once someone has talked with the person (during the chat or after it).
REFERRABLE = (ConsultationStatus.ACTIVE, ConsultationStatus.ENDED, ConsultationStatus.CLOSED_IDLE)

router = Router()


def with_history(referral: Referral, status: ReferralStatus, at: datetime, staff_id: int | None = None, note: str = "") -> None:
    """Move the referral to `status` and append the change (a new list, so the JSON column is saved)."""
    referral.status = status
    referral.history = [*referral.history, {"status": status.value, "at": at.isoformat(), "staff_id": staff_id, "note": note}]


class ProposalRefused(Exception):
    """The referral cannot be proposed; the message says why, for the counselor."""


async def propose_referral(
    session: AsyncSession, content: Content, consultation: Consultation, organisation: Organisation, staff: StaffUser
) -> Referral:
    """Record the proposal and ask the person on LINE, in their language, with a yes/no button.

    Raises:
        ProposalRefused: nobody has talked with the person yet, the organisation is no longer
            listed, or this organisation was already proposed and not declined.
    """
    if consultation.status not in REFERRABLE:
        raise ProposalRefused("相談員と話す前の相談には、つなぎを提案できません。")
    if not organisation.active:
        raise ProposalRefused("この支援機関は、いまは一覧から外れています。")
    earlier = await session.exec(
        select(Referral).where(
            Referral.consultation_id == consultation.id,
            Referral.organisation_id == organisation.id,
            Referral.status != ReferralStatus.DECLINED,
        )
    )
    if earlier.first() is not None:
        raise ProposalRefused(f"「{organisation.name}」へのつなぎは、すでに提案しています。")
    referral = Referral(consultation_id=consultation.id, organisation_id=organisation.id, proposed_by=staff.id)
    with_history(referral, ReferralStatus.PROPOSED, utcnow(), staff.id)
    session.add(referral)
    await session.flush()
    words = (await person_content(session, content, consultation.user_id)).messages
    buttons = [
        postback_item(words.referral_yes_label, ConsentTap(id=referral.id, v="yes").pack()),
        postback_item(words.referral_no_label, ConsentTap(id=referral.id, v="no").pack()),
    ]
    question = texts(words.referral_question.format(organisation=organisation.name), quick_reply=buttons)
    enqueue(session, consultation.user_id, question, category=consultation.category)
    session.add(
        ChatEntry(
            consultation_id=consultation.id,
            staff_id=staff.id,
            kind=ChatEntryKind.EVENT,
            text=f"{staff.display_name} が「{organisation.name}」へのつなぎを提案し、本人に同意をたずねました",
        )
    )
    announce(session, consultation_topic(consultation.id))
    return referral


@router.tap(ConsentTap)
async def answer_consent(turn: Turn, tap: ConsentTap) -> None:
    """The person's yes or no, for their own referral still waiting for it; anything else changes nothing."""
    referral = await turn.session.get(Referral, tap.id)  # postback data can be typed by anyone
    if referral is None or referral.status != ReferralStatus.PROPOSED:
        return
    consultation = await turn.session.get(Consultation, referral.consultation_id)
    if consultation.user_id != turn.source_id:
        return
    name = (await turn.session.get(Organisation, referral.organisation_id)).name
    words = turn.content.messages
    if tap.v == "yes":
        referral.consent_at = turn.record.occurred_at
        with_history(referral, ReferralStatus.CONSENTED, turn.record.occurred_at)
        event, reply = f"相談者は「{name}」へのつなぎに同意しました", words.referral_consented
    else:
        with_history(referral, ReferralStatus.DECLINED, turn.record.occurred_at)
        event, reply = f"相談者は「{name}」へのつなぎを希望しませんでした", words.referral_declined
    turn.session.add(referral)
    turn.session.add(ChatEntry(consultation_id=consultation.id, kind=ChatEntryKind.EVENT, text=event))
    announce(turn.session, consultation_topic(consultation.id))
    turn.reply(texts(reply.format(organisation=name)))
