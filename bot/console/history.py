"""The person's earlier consultations beside the chat: what a counselor needs to pick up where others left off."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from bot.appkeys import CONTENT
from bot.console import render
from bot.console.actions import audited
from bot.console.auth import requires
from bot.console.counselor import CHAT_ROLES, earlier_of, openable_consultation
from bot.console.records import summarise
from bot.storage.models import ConsultationRecord, Organisation, Referral

routes = web.RouteTableDef()


@routes.get("/console/c/{id}/earlier")
@requires(*CHAT_ROLES)
async def earlier_consultations(request: web.Request) -> web.Response:
    """The person's earlier consultations beside the chat: date, category, record and referrals (an audited read)."""
    content = request.app[CONTENT]
    async with audited(request, "opened_history") as audit:
        consultation = await openable_consultation(request, audit.session)
        earlier = await earlier_of(audit.session, consultation)
        ids = [c.id for c in earlier]
        records = {r.consultation_id: r for r in await audit.session.exec(select(ConsultationRecord).where(col(ConsultationRecord.consultation_id).in_(ids)))}
        referrals = list(await audit.session.exec(select(Referral).where(col(Referral.consultation_id).in_(ids)).order_by(Referral.id)))
        organisations = select(Organisation).where(col(Organisation.id).in_({r.organisation_id for r in referrals}))
        names = {o.id: o.name for o in await audit.session.exec(organisations)}
        audit.consultation_id, audit.detail = consultation.id, f"{len(earlier)}件"
    return render(
        request,
        "_earlier.html",
        earlier=earlier,
        records={cid: summarise(record, content.records) for cid, record in records.items()},
        referrals=referrals,
        names=names,
        labels={c.id: c.label for c in content.menu.categories},
    )
