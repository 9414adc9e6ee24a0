"""Referrals (つなぎ) in the console: the support organisations, proposing one, and the coordinator's work.

A counselor (or a supervisor) proposes; the person answers on LINE (`bot/consultation/referrals.py`). The
coordinator sees a referral only from the person's yes on, and then its record summary, never the
chat; each status change they make is kept in the referral's history and in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONTENT, SESSIONS
from bot.console import render
from bot.console.actions import audited, find_or_404, refusal
from bot.console.auth import STAFF_KEY, requires
from bot.console.counselor import CHAT_ROLES, openable_consultation
from bot.console.records import RecordSummary, summarise
from bot.console.words import REFERRAL_STATUSES
from bot.consultation.referrals import REFERRABLE, ProposalRefused, propose_referral, with_history
from bot.guidance.content import Content
from bot.storage.models import (
    AuditEntry,
    Consultation,
    ConsultationRecord,
    Organisation,
    Referral,
    ReferralStatus,
    StaffRole,
    StaffUser,
    row_id,
    utcnow,
)

routes = web.RouteTableDef()

COORDINATION_ROLES = (StaffRole.COORDINATOR, StaffRole.ADMIN)
# Without the person's yes, nothing about them reaches the coordinator.
VISIBLE = (ReferralStatus.CONSENTED, ReferralStatus.CONTACTED, ReferralStatus.CONNECTED, ReferralStatus.CLOSED)
# Forward one step at a time; a referral that goes nowhere can be closed at any step.
NEXT_STATUSES = {
    ReferralStatus.CONSENTED: (ReferralStatus.CONTACTED, ReferralStatus.CLOSED),
    ReferralStatus.CONTACTED: (ReferralStatus.CONNECTED, ReferralStatus.CLOSED),
    ReferralStatus.CONNECTED: (ReferralStatus.CLOSED,),
}
MAX_NOTE_CHARACTERS = 1000
# Where a proposal returns to: the page it was made from.
BACK_PAGES = {"chat": "", "record": "/record"}
# Fields of an organisation are typed as words separated by commas, 、 or spaces.
FIELD_SEPARATORS = re.compile(r"[、,，\s]+")


# --- Proposing, from the chat or record page ---


@routes.get("/console/c/{id}/referral")
@requires(*CHAT_ROLES)
async def referral_part(request: web.Request) -> web.Response:
    """The referral part of a chat or record page: what was proposed, and the form to propose."""
    back = request.query.get("back", "chat")
    async with request.app[SESSIONS]() as session:
        consultation = await openable_consultation(request, session)
        proposed = list(await session.exec(select(Referral).where(Referral.consultation_id == consultation.id).order_by(Referral.id)))
        organisations = list(await session.exec(select(Organisation).order_by(Organisation.region, Organisation.name)))
    # One open proposal per organisation: one already asked (and not declined) is not offered again.
    asked = {r.organisation_id for r in proposed if r.status != ReferralStatus.DECLINED}
    return render(
        request,
        "_referral.html",
        consultation=consultation,
        proposed=proposed,
        names={o.id: o.name for o in organisations},
        organisations=[o for o in organisations if o.active and o.id not in asked],
        can_propose=consultation.status in REFERRABLE,
        back=back if back in BACK_PAGES else "chat",
        words=REFERRAL_STATUSES,
    )


@routes.post("/console/c/{id}/referral")
@requires(*CHAT_ROLES)
async def propose(request: web.Request) -> web.Response:
    """Propose an organisation: the person is asked on LINE; nothing is shared before their yes."""
    form = await request.post()
    organisation_id = row_id(form.get("organisation_id"))
    async with audited(request, "referral_proposed") as audit:
        consultation = await openable_consultation(request, audit.session)
        organisation = await audit.session.get(Organisation, organisation_id) if organisation_id is not None else None
        if organisation is None:
            raise web.HTTPBadRequest(text="つなぎ先の支援機関を選んでください。")
        try:
            referral = await propose_referral(audit.session, request.app[CONTENT], consultation, organisation, request[STAFF_KEY])
        except ProposalRefused as refused:
            raise web.HTTPConflict(text=str(refused)) from None
        audit.consultation_id, audit.detail = consultation.id, f"つなぎ #{referral.id}: {organisation.name}"
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}{BACK_PAGES.get(str(form.get('back')), '')}")


# --- The coordinator's list ---


@dataclass(frozen=True)
class Change:
    """One line of a referral's history as the coordinator reads it."""

    at: datetime
    status: str
    who: str
    note: str


@dataclass(frozen=True)
class ReferralView:
    """A referral with what the coordinator needs to act on it (and nothing of the chat)."""

    referral: Referral
    organisation: Organisation
    consultation: Consultation
    category: str
    summary: RecordSummary | None
    changes: list[Change]
    next_statuses: tuple[ReferralStatus, ...]


async def _views(request: web.Request, session: AsyncSession, referrals: list[Referral]) -> list[ReferralView]:
    consultation_ids = {r.consultation_id for r in referrals}
    organisations = {o.id: o for o in await session.exec(select(Organisation).where(col(Organisation.id).in_({r.organisation_id for r in referrals})))}
    consultations = {c.id: c for c in await session.exec(select(Consultation).where(col(Consultation.id).in_(consultation_ids)))}
    records = {r.consultation_id: r for r in await session.exec(select(ConsultationRecord).where(col(ConsultationRecord.consultation_id).in_(consultation_ids)))}
    staff_ids = {change["staff_id"] for r in referrals for change in r.history if change.get("staff_id")}
    names = {s.id: s.display_name for s in await session.exec(select(StaffUser).where(col(StaffUser.id).in_(staff_ids)))}
    content = request.app[CONTENT]
    labels = {c.id: c.label for c in content.menu.categories}
    return [
        ReferralView(
            referral=r,
            organisation=organisations[r.organisation_id],
            consultation=consultations[r.consultation_id],
            category=labels.get(consultations[r.consultation_id].category, consultations[r.consultation_id].category),
            summary=summarise(records.get(r.consultation_id), content.records),
            changes=[
                Change(
                    at=datetime.fromisoformat(change["at"]),
                    status=REFERRAL_STATUSES.get(change["status"], change["status"]),
                    # Changes without a staff member are the person's own answer on LINE.
                    who=names.get(change["staff_id"], "スタッフ") if change.get("staff_id") else "相談者",
                    note=change.get("note") or "",
                )
                for change in r.history
            ],
            next_statuses=NEXT_STATUSES.get(ReferralStatus(r.status), ()),
        )
        for r in referrals
    ]


def _audit_opened(request: web.Request, session: AsyncSession, views: list[ReferralView]) -> None:
    """Each record summary shown is an opening of that consultation's content."""
    for view in views:
        session.add(
            AuditEntry(staff_id=request[STAFF_KEY].id, action="opened_referral", consultation_id=view.consultation.id, detail=f"つなぎ #{view.referral.id}")
        )


@routes.get("/console/referrals")
@requires(*COORDINATION_ROLES)
async def referrals_page(request: web.Request) -> web.Response:
    """Referrals the person agreed to: open ones in full, oldest consent first; closed ones in short."""
    async with request.app[SESSIONS]() as session:
        rows = list(await session.exec(select(Referral).where(col(Referral.status).in_(VISIBLE)).order_by(Referral.consent_at)))
        views = await _views(request, session, rows)
        open_views = [v for v in views if v.referral.status != ReferralStatus.CLOSED]
        _audit_opened(request, session, open_views)
        await session.commit()
    closed = [v for v in reversed(views) if v.referral.status == ReferralStatus.CLOSED]
    return render(request, "referrals.html", open_views=open_views, closed=closed, single=False, words=REFERRAL_STATUSES)


async def _visible_referral(request: web.Request, session: AsyncSession, *, for_update: bool = False) -> Referral:
    """The referral in the URL if the person agreed to it (404 otherwise: a proposal is not the coordinator's)."""
    return await find_or_404(
        session, Referral, request.match_info["rid"], "このつなぎは開けません。", allowed=lambda r: r.status in VISIBLE, with_for_update=for_update
    )


@routes.get("/console/referrals/{rid}")
@requires(*COORDINATION_ROLES)
async def referral_page(request: web.Request) -> web.Response:
    """One referral in full, closed ones too."""
    async with request.app[SESSIONS]() as session:
        [view] = await _views(request, session, [await _visible_referral(request, session)])
        _audit_opened(request, session, [view])
        await session.commit()
    return render(request, "referrals.html", open_views=[view], closed=[], single=True, words=REFERRAL_STATUSES)


@routes.post("/console/referrals/{rid}/status")
@requires(*COORDINATION_ROLES)
async def change_status(request: web.Request) -> web.Response:
    """Move a referral one step on (or close it), with a note; kept in its history and audited."""
    form = await request.post()
    note = str(form.get("note", "")).strip()
    if len(note) > MAX_NOTE_CHARACTERS:
        raise web.HTTPBadRequest(text=f"メモは{MAX_NOTE_CHARACTERS}文字までです。")
    async with audited(request, "referral_status_changed") as audit:
        referral = await _visible_referral(request, audit.session, for_update=True)
        previous = ReferralStatus(referral.status)
        if form.get("current") != previous:
            raise web.HTTPConflict(text="ほかの人が先に状態を変えました。ページを読み込み直してください。")
        chosen = str(form.get("status", ""))
        target = next((s for s in NEXT_STATUSES.get(previous, ()) if s == chosen), None)
        if target is None:
            raise web.HTTPBadRequest(text="その状態には変えられません。")
        with_history(referral, target, utcnow(), request[STAFF_KEY].id, note)
        audit.session.add(referral)
        audit.consultation_id, audit.detail = referral.consultation_id, f"つなぎ #{referral.id}: {previous.value} → {target.value}"
    raise web.HTTPSeeOther(f"/console/referrals#referral-{referral.id}")


# --- The directory of support organisations ---


@dataclass
class OrganisationForm:
    """An organisation as typed into the form, with what is wrong with it."""

    name: str
    region: str
    fields: list[str]
    contact: str
    # A prefecture id of content/finder.yaml, or empty: the same prefectures people give the finder.
    prefecture: str = ""

    @classmethod
    def read(cls, form: MultiDictProxy) -> OrganisationForm:
        return cls(
            name=str(form.get("name", "")).strip(),
            region=str(form.get("region", "")).strip(),
            fields=[word for word in FIELD_SEPARATORS.split(str(form.get("fields", ""))) if word],
            contact=str(form.get("contact", "")).strip(),
            prefecture=str(form.get("prefecture", "")).strip(),
        )

    def problems(self, content: Content) -> list[str]:
        problems = []
        if self.prefecture and content.finder.prefecture(self.prefecture) is None:
            problems.append("都道府県を一覧から選んでください。")
        for value, label, longest in ((self.name, "名称", 200), (self.region, "地域", 100), (self.contact, "連絡先", 500)):
            if not value:
                problems.append(f"{label}を入力してください。")
            elif len(value) > longest:
                problems.append(f"{label}は{longest}文字までです。")
        return problems

    def write_to(self, organisation: Organisation) -> None:
        organisation.name, organisation.region, organisation.fields, organisation.contact = self.name, self.region, self.fields, self.contact
        organisation.prefecture = self.prefecture or None


async def _organisations_page(request: web.Request, *, errors: list[str] | None = None, draft: OrganisationForm | None = None) -> web.Response:
    prefectures = request.app[CONTENT].finder.prefectures
    # ?prefecture= narrows the directory to one prefecture (unknown ids show everything).
    shown = next((p.id for p in prefectures if p.id == request.query.get("prefecture")), None)
    query = select(Organisation).order_by(col(Organisation.active).desc(), Organisation.region, Organisation.name)
    if shown is not None:
        query = query.where(Organisation.prefecture == shown)
    async with request.app[SESSIONS]() as session:
        organisations = list(await session.exec(query))
    return render(
        request,
        "organisations.html",
        status=422 if errors else 200,
        organisations=organisations,
        prefectures=prefectures,
        prefecture_names={p.id: p.label for p in prefectures},
        shown=shown,
        errors=errors or [],
        draft=draft or OrganisationForm("", "", [], ""),
    )


@routes.get("/console/organisations")
@requires(*COORDINATION_ROLES)
async def organisations_page(request: web.Request) -> web.Response:
    """Every organisation (or one prefecture's), active first, with forms to add, edit and take off the list."""
    return await _organisations_page(request)


@routes.post("/console/organisations")
@requires(*COORDINATION_ROLES)
async def add_organisation(request: web.Request) -> web.Response:
    """Add an organisation to the directory."""
    typed = OrganisationForm.read(await request.post())
    if problems := typed.problems(request.app[CONTENT]):
        return await _organisations_page(request, errors=problems, draft=typed)
    async with audited(request, "organisation_added") as audit:
        audit.session.add(
            Organisation(name=typed.name, region=typed.region, fields=typed.fields, contact=typed.contact, prefecture=typed.prefecture or None)
        )
        audit.detail = typed.name
    raise web.HTTPSeeOther("/console/organisations")


async def _organisation(request: web.Request, session: AsyncSession) -> Organisation:
    return await find_or_404(session, Organisation, request.match_info["oid"], "この支援機関は見つかりません。")


@routes.post("/console/organisations/{oid}")
@requires(*COORDINATION_ROLES)
async def edit_organisation(request: web.Request) -> web.Response:
    """Correct an organisation's name, region, fields or contact."""
    typed = OrganisationForm.read(await request.post())
    async with audited(request, "organisation_edited") as audit:
        organisation = await _organisation(request, audit.session)
        if problems := typed.problems(request.app[CONTENT]):
            raise refusal(await _organisations_page(request, errors=[f"「{organisation.name}」: {p}" for p in problems]))
        typed.write_to(organisation)
        audit.session.add(organisation)
        audit.detail = organisation.name
    raise web.HTTPSeeOther("/console/organisations")


@routes.post("/console/organisations/{oid}/active")
@requires(*COORDINATION_ROLES)
async def set_organisation_active(request: web.Request) -> web.Response:
    """Take an organisation off the list counselors choose from (referrals made to it stay), or back on."""
    active = (await request.post()).get("active") == "yes"
    async with audited(request, "organisation_reactivated" if active else "organisation_deactivated") as audit:
        organisation = await _organisation(request, audit.session)
        organisation.active = active
        audit.session.add(organisation)
        audit.detail = organisation.name
    raise web.HTTPSeeOther("/console/organisations")
