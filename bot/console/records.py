"""The counselor's writing: canned phrases during a chat, and the consultation record (相談記録票) after it.

A record is saved as a draft in whatever state it is, so an interrupted counselor loses nothing; it
counts as filed (`filed_at`) only once the questions the reports need are answered, and stays
complete from then on: corrections to a filed record are checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from multidict import MultiDictProxy

from bot.appkeys import CONTENT
from bot.console import render
from bot.console.actions import audited, refusal
from bot.console.auth import STAFF_KEY, requires
from bot.console.counselor import CHAT_ROLES, openable_consultation
from bot.guidance.content import Choice, Records
from bot.storage.models import Consultation, ConsultationRecord, utcnow

routes = web.RouteTableDef()

# Longer than any note written by hand; a longer one came from somewhere else.
MAX_NOTE_CHARACTERS = 10000
# What the page says after a save (the redirect names which, so nothing typed is echoed back).
SAVED_NOTICES = {"draft": "下書きを保存しました。", "filed": "記録を提出しました。", "corrected": "記録を修正しました。"}


@dataclass
class RecordValues:
    """What the record form holds: from the saved record, or as submitted (options not in content dropped)."""

    age_band: str | None = None
    gender: str | None = None
    worries: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    serious: bool = False
    referral_needed: bool = False
    note: str = ""

    @classmethod
    def of(cls, record: ConsultationRecord | None) -> RecordValues:
        """The values of a saved record (empty when there is none yet)."""
        if record is None:
            return cls()
        return cls(record.age_band, record.gender, list(record.worries), list(record.responses), record.serious, record.referral_needed, record.note or "")

    @classmethod
    def from_form(cls, form: MultiDictProxy, options: Records) -> RecordValues:
        """The submitted form; multi-selects keep the order of content, whatever order they came in."""

        def one(name: str, choices: list[Choice]) -> str | None:
            value = str(form.get(name, ""))
            return value if value in {c.id for c in choices} else None

        def many(name: str, choices: list[Choice]) -> list[str]:
            chosen = {str(value) for value in form.getall(name, [])}
            return [c.id for c in choices if c.id in chosen]

        return cls(
            age_band=one("age_band", options.age_bands),
            gender=one("gender", options.genders),
            worries=many("worries", options.worries),
            responses=many("responses", options.responses),
            serious=form.get("serious") == "yes",
            referral_needed=form.get("referral_needed") == "yes",
            note=str(form.get("note", "")).strip(),
        )

    def problems(self) -> list[str]:
        """What is missing before the record can be filed, in the counselor's words."""
        problems = []
        if self.age_band is None:
            problems.append("推定年代を選んでください（わからないときは「不明」）。")
        if not self.worries:
            problems.append("相談内容を1つ以上選んでください。")
        if not self.responses:
            problems.append("対応の種類を1つ以上選んでください。")
        return problems

    def write_to(self, record: ConsultationRecord) -> None:
        """Put these values into the record (the caller sets the times)."""
        record.age_band, record.gender = self.age_band, self.gender
        record.worries, record.responses = self.worries, self.responses
        record.serious, record.referral_needed = self.serious, self.referral_needed
        record.note = self.note or None


@dataclass(frozen=True)
class RecordSummary:
    """A record as labels, for staff who may read the record but not the chat (the coordinator)."""

    filed: bool
    age_band: str
    gender: str
    worries: list[str]
    responses: list[str]
    serious: bool
    referral_needed: bool
    note: str


def summarise(record: ConsultationRecord | None, options: Records) -> RecordSummary | None:
    """The record in words; an option removed from content since shows as its id."""
    if record is None:
        return None

    def label(choices: list[Choice], choice_id: str | None) -> str:
        return next((c.label for c in choices if c.id == choice_id), choice_id or "")

    return RecordSummary(
        filed=record.filed_at is not None,
        age_band=label(options.age_bands, record.age_band),
        gender=label(options.genders, record.gender),
        worries=[label(options.worries, w) for w in record.worries],
        responses=[label(options.responses, r) for r in record.responses],
        serious=record.serious,
        referral_needed=record.referral_needed,
        note=record.note or "",
    )


def _record_page(
    request: web.Request,
    consultation: Consultation,
    record: ConsultationRecord | None,
    values: RecordValues,
    *,
    errors: list[str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    content = request.app[CONTENT]
    return render(
        request,
        "record.html",
        status=status,
        consultation=consultation,
        label=next((c.label for c in content.menu.categories if c.id == consultation.category), consultation.category),
        record=record,
        values=values,
        options=content.records,
        errors=errors or [],
        notice=notice,
    )


@routes.get("/console/c/{id}/record")
@requires(*CHAT_ROLES)
async def record_form(request: web.Request) -> web.Response:
    """The record form, filled with what was saved so far; every opening is audited."""
    async with audited(request, "opened_record") as audit:
        consultation = await openable_consultation(request, audit.session)
        record = await audit.session.get(ConsultationRecord, consultation.id)
        audit.consultation_id = consultation.id
    return _record_page(request, consultation, record, RecordValues.of(record), notice=SAVED_NOTICES.get(request.query.get("saved", "")))


@routes.post("/console/c/{id}/record")
@requires(*CHAT_ROLES)
async def save_record(request: web.Request) -> web.Response:
    """Save a draft (anything goes), or file the record (checked; what was typed is kept either way)."""
    form = await request.post()
    if len(str(form.get("note", ""))) > MAX_NOTE_CHARACTERS:
        raise web.HTTPBadRequest(text=f"メモは{MAX_NOTE_CHARACTERS}文字までです。")
    values = RecordValues.from_form(form, request.app[CONTENT].records)
    staff = request[STAFF_KEY]
    async with audited(request, "record_saved") as audit:
        consultation = await openable_consultation(request, audit.session)
        record = await audit.session.get(ConsultationRecord, consultation.id)
        was_filed = record is not None and record.filed_at is not None
        # A filed record is only ever replaced by another complete one.
        checked = form.get("action") == "file" or was_filed
        problems = values.problems() if checked else []
        if problems and was_filed:
            raise refusal(_record_page(request, consultation, record, values, errors=problems, status=422))
        if record is None:
            record = ConsultationRecord(consultation_id=consultation.id, staff_id=staff.id)
        values.write_to(record)
        record.updated_at = utcnow()
        if checked and not problems and not was_filed:
            record.filed_at = record.updated_at
        saved = "corrected" if was_filed else "filed" if record.filed_at else "draft"
        audit.session.add(record)
        audit.action, audit.consultation_id = f"record_{saved}", consultation.id
    if problems:
        notice = "提出はまだです。入力した内容は下書きとして保存しました。"
        return _record_page(request, consultation, record, values, errors=problems, notice=notice, status=422)
    raise web.HTTPSeeOther(f"/console/c/{consultation.id}/record?saved={saved}")


@routes.get("/console/canned")
@requires(*CHAT_ROLES)
async def canned_options(request: web.Request) -> web.Response:
    """The canned phrases as <option>s, for the chat page's reply box (console.js puts them in)."""
    return render(request, "_canned.html", canned=request.app[CONTENT].canned)
