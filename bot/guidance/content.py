"""Content as data: the guidance menu, the bot's messages and the helplines, validated with line numbers.

Everything a person reads lives in `content/*.yaml`; this module turns those files into typed
objects, or into a list of `file:line: what is wrong` problems when they are broken.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from apscheduler.triggers.cron import CronTrigger
from moderation.lexicon import LexiconError, load_lexicon
from moderation.screening import LEVELS, TAG_NAMES
from moderation.yamlfile import dotted, line_of
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.guidance.hours import OpeningHours
from bot.line.limits import MULTICAST_MAX_RECIPIENTS, QUICK_REPLY_LABEL_MAX, QUICK_REPLY_MAX_ITEMS, RICH_MENU_CHAT_BAR_TEXT_MAX

# A helpline's details are checked against its source at least this often: older ones are listed as stale
# (`tsunagi content check --stale`, the admin's page).
STALE_AFTER_DAYS = 180
# Japanese numbers as their source writes them: 10 or 11 digits in hyphenated groups (0120-061-338,
# 0570-078374), #-short codes (#8103) and 3-digit numbers (189).
PHONE_PATTERN = re.compile(r"^((?=(?:-?\d){10,11}$)0\d{1,4}(-\d{1,6}){1,2}|#\d{4}|1\d{2})$")
ID_PATTERN = r"^[a-z0-9_]+$"
# The language of the files at the top of `content/`; each other language is a folder beside them.
BASE_LANGUAGE = "ja"


class ContentError(Exception):
    """Content files are broken; `problems` holds one `file:line: what is wrong` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Strict):
    """One consultation category of the guidance menu (like one branch of #9999's voice guidance)."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    hours: OpeningHours
    accepted: str = Field(min_length=1)
    # The finder's worries this category serves: its out-of-hours answer offers their lines open now.
    worries: list[str] = Field(min_length=1)
    # The lowest risk level a consultation in it starts at: choosing some categories is itself a signal.
    risk_floor: str = "low"

    @field_validator("risk_floor")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level not in LEVELS:
            raise ValueError(f"risk_floor must be one of {', '.join(LEVELS)}")
        return level


class MenuLink(_Strict):
    """A menu entry that is not a consultation category (the finder, the online ibasho)."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    # What the entry answers, unless it `opens` a feature that asks its own questions.
    answer: str | None = Field(default=None, min_length=1)
    opens: Literal["finder", "rooms", "records", "emergency"] | None = None

    @model_validator(mode="after")
    def _answers_or_opens(self) -> MenuLink:
        if (self.answer is None) == (self.opens is None):
            raise ValueError("give either answer (a text) or opens (a feature), not both")
        return self


class Menu(_Strict):
    """The guidance menu: its greeting, the words that open it, and its entries in order."""

    language_name: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    greeting: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    # Where a person screened at imminent risk is queued if they had not chosen a category (base menu only).
    crisis_category: str | None = None
    categories: list[Category] = Field(default_factory=list)
    links: list[MenuLink] = Field(default_factory=list)

    def category(self, category_id: str) -> Category | None:
        """The category with this id, if the menu has one."""
        return next((c for c in self.categories if c.id == category_id), None)

    def link(self, link_id: str) -> MenuLink | None:
        """The non-category entry with this id, if the menu has one."""
        return next((link for link in self.links if link.id == link_id), None)


class Messages(_Strict):
    """Every fixed sentence the bot says outside the menu entries."""

    received_sticker: str
    received_image: str
    received_media: str
    received_location: str
    unknown_choice: str
    group_not_supported: str
    after_choice: str
    out_of_hours: str
    crisis_offer: str
    emergency: str
    language_chosen: str
    queue_position: str
    queue_estimate: str
    queue_no_estimate: str
    queue_check_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    queue_cancel_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    rich_menu_consult_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    rich_menu_end_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    rich_menu_chat_bar: str = Field(max_length=RICH_MENU_CHAT_BAR_TEXT_MAX)
    queue_cancelled: str
    queue_not_waiting: str
    queue_in_chat: str
    counselor_joined: str
    consultation_ended: str
    helped_question: str
    helped_yes_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    helped_no_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    helped_thanks: str
    consultation_idle_closed: str
    imminent_safety: str
    # Asking consent before anything about the person goes to a support organisation ({organisation}).
    referral_question: str
    referral_yes_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    referral_no_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    referral_consented: str
    referral_declined: str
    # Shown once before the first consultation: what is kept, how long ({retention} periods), who reads it, deletion.
    privacy_notice: str
    # 「わたしの記録」: what is kept about the person, in plain words, and deletion confirmed with a second tap.
    records_intro: str
    records_messages: str
    records_consultations: str
    records_rooms: str
    records_settings: str
    records_nothing: str
    records_forget_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    records_forget_question: str
    records_forget_yes_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    records_forget_no_label: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    records_forgotten: str
    records_kept: str
    records_refused_open: str
    records_refused_emergency: str


class Worry(_Strict):
    """One worry the support finder offers (the national site's chatbot's categories)."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    # Children are asked their school year first, as the national site's under-18 page does.
    asks_school_year: bool = False
    # Lines for this worry are offered whatever language they answer in (it is about other languages).
    any_language: bool = False


class SchoolYear(_Strict):
    """A school year the finder asks children for, with the ages it stands for."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    ages: tuple[int, int]


class Region(_Strict):
    """A group of prefectures the finder offers first, so that each question fits one quick reply."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)


class Prefecture(_Strict):
    """A prefecture a person may say they live in; `content/local/<id>.yaml` holds its local lines."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    region: str = Field(pattern=ID_PATTERN)


class Finder(_Strict):
    """The support finder's questions, answers and labels."""

    prompt: str = Field(min_length=1)
    school_year_prompt: str = Field(min_length=1)
    results: str = Field(min_length=1)
    open_now: str = Field(min_length=1)
    closed_now: str = Field(min_length=1)
    hours: str = Field(min_length=1)
    # Said of a web page instead of hours: a page is not a line that is open or closed.
    anytime: str = Field(min_length=1)
    # Asked once, before the first results; a person may skip it (`prefecture_skip`).
    region_prompt: str = Field(min_length=1)
    prefecture_prompt: str = Field(min_length=1)
    prefecture_skip: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    change_prefecture: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    # Shown before the number on a call button, whose label LINE caps at 20 characters.
    call: str = Field(min_length=1, max_length=6)
    open_page: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    search_again: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    back_to_menu: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    worries: list[Worry] = Field(min_length=1)
    school_years: list[SchoolYear] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    prefectures: list[Prefecture] = Field(default_factory=list)

    def worry(self, worry_id: str) -> Worry | None:
        """The worry with this id, if the finder offers it."""
        return next((w for w in self.worries if w.id == worry_id), None)

    def school_year(self, year_id: str) -> SchoolYear | None:
        """The school year with this id, if the finder asks for it."""
        return next((y for y in self.school_years if y.id == year_id), None)

    def region(self, region_id: str) -> Region | None:
        """The region with this id, if the finder offers it."""
        return next((r for r in self.regions if r.id == region_id), None)

    def prefecture(self, prefecture_id: str | None) -> Prefecture | None:
        """The prefecture with this id, if the finder offers it."""
        return next((p for p in self.prefectures if p.id == prefecture_id), None)

    def prefectures_in(self, region_id: str) -> list[Prefecture]:
        """The prefectures of a region, in the file's order."""
        return [p for p in self.prefectures if p.region == region_id]


class Contact(_Strict):
    """One way to reach a helpline."""

    kind: Literal["phone", "chat", "line", "web"]
    value: str
    # Only for people in these prefectures (ids in finder.yaml), as a source gives a number for callers there.
    prefectures: list[str] = Field(default_factory=list)

    @field_validator("value")
    @classmethod
    def _well_formed(cls, value: str, info: Any) -> str:
        kind = info.data.get("kind")
        if kind == "phone" and not PHONE_PATTERN.match(value):
            raise ValueError(f"phone number {value!r} is not written like 0120-061-338, #8891 or 110")
        if kind in ("chat", "web", "line") and not value.startswith("https://"):
            raise ValueError(f"{kind} address must be an https:// URL")
        return value


class Audience(_Strict):
    """Who a line is for; anything left out means everyone."""

    min_age: int | None = Field(default=None, ge=0)
    max_age: int | None = Field(default=None, ge=0)
    gender: Literal["any", "women", "men"] = "any"
    languages: list[str] = Field(default_factory=lambda: ["ja"], min_length=1)

    def admits(self, language: str | None, ages: tuple[int, int] | None) -> bool:
        """Whether a person speaking `language` (any if None), aged within `ages` (if known), may use the line."""
        if language is not None and language not in self.languages:
            return False
        if ages is None:
            return True
        low, high = ages
        return (self.min_age is None or high >= self.min_age) and (self.max_age is None or low <= self.max_age)


class ResourceText(_Strict):
    """A resource's name and summary in another language."""

    name: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=120)


class Resource(_Strict):
    """A real, public helpline or support program, with where its details come from.

    A line (a phone, chat or LINE contact) has `hours`; a program known only by its web page has
    none, since a page is not a line that is open: it is never offered as open now.
    """

    id: str = Field(pattern=ID_PATTERN)
    name: str
    organisation: str
    summary: str = Field(min_length=1, max_length=60)
    contacts: list[Contact] = Field(min_length=1)
    hours: OpeningHours | None = None
    audience: Audience = Audience()
    worries: list[str] = Field(min_length=1)
    school_years: list[str] = Field(default_factory=list)
    emergency: bool = False
    translations: dict[str, ResourceText] = Field(default_factory=dict)
    source: HttpUrl
    checked: date
    # The sentence on the source page that gives the number and hours, for whoever checks it next.
    evidence: str | None = None

    @model_validator(mode="after")
    def _lines_have_hours(self) -> Resource:
        if self.is_line and self.hours is None:
            raise ValueError("a phone, chat or LINE contact needs hours (always, periods or varies)")
        if not self.is_line and self.hours is not None:
            raise ValueError("a web page has no hours: leave hours out (it reads 「いつでも見られます」)")
        return self

    @property
    def is_line(self) -> bool:
        """Whether someone answers here (phone, chat, LINE), rather than a page to read."""
        return any(c.kind != "web" for c in self.contacts)

    @property
    def always_open(self) -> bool:
        """A line that answers 24 hours, every day."""
        return self.hours is not None and self.hours.always

    @property
    def hours_vary(self) -> bool:
        """A line whose hours depend on the caller's region or a calendar: never known to be open."""
        return self.hours is not None and self.hours.varies is not None

    def contacts_for(self, prefecture: str | None) -> list[Contact]:
        """The contacts a person in `prefecture` (unknown if None) can use, those for their prefecture first."""
        own = [c for c in self.contacts if prefecture in c.prefectures]
        return own + [c for c in self.contacts if not c.prefectures]

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        """Whether this is a line known to be open at `at`; a web page or varying hours never is."""
        return self.hours is not None and self.hours.is_open(at, zone)

    def text(self, language: str) -> ResourceText:
        """Name and summary in `language` where translated, else as written."""
        return self.translations.get(language) or ResourceText(name=self.name, summary=self.summary)


class Choice(_Strict):
    """One option of a consultation record question: the id kept in the record, the label counselors see."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=40)


class Records(_Strict):
    """The questions of the consultation record (相談記録票) a counselor files after a chat."""

    age_bands: list[Choice] = Field(min_length=1)
    genders: list[Choice] = Field(min_length=1)
    worries: list[Choice] = Field(min_length=1)
    responses: list[Choice] = Field(min_length=1)


class CannedResponse(_Strict):
    """A phrase a counselor can put into the reply box, then edit before sending."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=30)
    text: str = Field(min_length=1, max_length=500)


class AgeBand(_Strict):
    """An age band a person says they are in; rooms admit bands, never children together with adults."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    ages: tuple[int, int]

    @property
    def is_child(self) -> bool:
        """Whether everyone in the band is under 18."""
        return self.ages[1] < 18


class Room(_Strict):
    """A scheduled peer-support room: each time its crontab `schedule` names starts one session."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=40)
    theme: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1, max_length=200)
    age_bands: list[str] = Field(min_length=1)
    schedule: str
    duration_minutes: int = Field(ge=10, le=240)
    # The others of a full room must fit one multicast.
    capacity: int = Field(ge=2, le=MULTICAST_MAX_RECIPIENTS + 1)
    # Without a facilitator present the session does not open.
    facilitator_required: bool = True
    rules: str = Field(min_length=1)

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        CronTrigger.from_crontab(value)  # raises ValueError naming the bad field
        return value

    def starts(self, after: datetime, until: datetime, zone: ZoneInfo) -> list[datetime]:
        """The session starts in (after, until], on `zone`'s clock."""
        trigger = CronTrigger.from_crontab(self.schedule, timezone=zone)
        starts, previous = [], None
        moment = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
        while moment is not None and moment <= until:
            starts.append(moment)
            previous = moment
            moment = trigger.get_next_fire_time(previous, moment + timedelta(seconds=1))
        return starts


class RoomWords(_Strict):
    """Every fixed sentence of the rooms, with {placeholders} the bot fills."""

    ask_age_band: str
    list_intro: str
    none_upcoming: str
    open_now: str
    starts_at: str
    join: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    remind: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    agree: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    decline: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    declined: str
    joined: str
    already_in: str
    in_consultation: str
    announce_join: str
    announce_leave: str
    left: str
    full: str
    not_open: str
    closed: str
    other_band: str
    next_session: str
    reminder_set: str
    reminder: str
    opened: str
    rename_prompt: str
    rename_done: str
    rename_used: str
    rename_invalid: str
    announce_rename: str
    held_contact: str
    held_risk: str
    consult_button: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    consult_started: str
    muted: str
    image_not_relayed: str
    sticker_word: str
    removed: str
    staff_mark: str
    closing: str
    checkin_question: str
    checkin_better: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    checkin_same: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    checkin_worse: str = Field(max_length=QUICK_REPLY_LABEL_MAX)
    checkin_thanks: str
    report_prompt: str
    report_none: str
    report_done: str
    cancelled: str
    rescheduled: str
    leave_words: list[str] = Field(min_length=1)
    rename_words: list[str] = Field(min_length=1)
    report_words: list[str] = Field(min_length=1)


class Rooms(_Strict):
    """The online ibasho: age bands, the rooms and their schedules, and what the bot says about them."""

    remind_minutes_before: int = Field(ge=1, le=120)
    age_bands: list[AgeBand] = Field(min_length=1)
    rules: str = Field(min_length=1)
    rooms: list[Room]
    words: RoomWords

    def room(self, room_id: str) -> Room | None:
        """The room with this id, if any."""
        return next((r for r in self.rooms if r.id == room_id), None)

    def age_band(self, band_id: str | None) -> AgeBand | None:
        """The age band with this id, if any."""
        return next((b for b in self.age_bands if b.id == band_id), None)

    def band_problems(self, room: Room) -> list[str]:
        """What is wrong with the room's age bands: unknown ones, or children together with adults."""
        bands = [self.age_band(band_id) for band_id in room.age_bands]
        problems = [f"unknown age band {band_id!r}" for band_id, band in zip(room.age_bands, bands, strict=True) if band is None]
        if len({band.is_child for band in bands if band}) > 1:
            problems.append("a room is for under-18s or for adults, never both")
        return problems


class Retention(_Strict):
    """How many days each kind of data is kept (content/retention.yaml); `bot.privacy.retention` applies it."""

    webhook_event_days: int = Field(ge=1)
    sent_message_days: int = Field(ge=1)
    consultation_text_days: int = Field(ge=1)
    outside_consultation_days: int = Field(ge=1)
    record_note_days: int = Field(ge=1)
    emergency_note_days: int = Field(ge=1)
    audit_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _audit_longest(self) -> Retention:
        # The audit log answers "who read this?" for as long as anything it names may still be asked about.
        longest = max(value for name, value in self if name != "audit_days")
        if self.audit_days < longest:
            raise ValueError(f"audit_days must be the longest period (at least {longest})")
        return self


class Content(_Strict):
    """All content the bot runs on, in one language, with the other languages beside it."""

    language: str = BASE_LANGUAGE
    menu: Menu
    messages: Messages
    finder: Finder
    resources: list[Resource]
    # Local lines by prefecture id (`content/local/<prefecture>.yaml`), offered first to people there.
    local: dict[str, list[Resource]] = Field(default_factory=dict)
    # Console-only parts: staff read them in Japanese whatever language the person chose.
    records: Records
    canned: list[CannedResponse] = Field(min_length=1)
    rooms: Rooms
    retention: Retention
    translations: dict[str, Content] = Field(default_factory=dict)

    def resource(self, resource_id: str) -> Resource | None:
        """The resource with this id (national or local), if any."""
        return next((r for r in self.all_resources() if r.id == resource_id), None)

    def all_resources(self) -> list[Resource]:
        """Every resource: the national ones, then each prefecture's local ones."""
        return [*self.resources, *(r for local in self.local.values() for r in local)]

    def stale_resources(self, today: date, days: int) -> list[Resource]:
        """Resources whose `checked` date is more than `days` days before `today`, oldest first."""
        limit = today - timedelta(days=days)
        return sorted((r for r in self.all_resources() if r.checked < limit), key=lambda r: r.checked)

    def in_language(self, language: str | None) -> Content:
        """This content as a person using `language` reads it (the base language if not offered)."""
        if language in self.translations:
            return self.translations[language]
        return self

    def languages(self) -> list[Content]:
        """The content in every language offered, the base first."""
        return [self, *self.translations.values()]


# Which file holds which part of `Content`; a language folder holds the translated ones.
FILES = {
    "menu": "menu.yaml",
    "messages": "messages.yaml",
    "finder": "finder.yaml",
    "resources": "resources.yaml",
    "records": "records.yaml",
    "canned": "canned.yaml",
    "rooms": "rooms.yaml",
    "retention": "retention.yaml",
}
TRANSLATED_PARTS = ("menu", "messages", "finder")
# Lists whose entries a translation names by id; it gives their words, the base file everything else.
TRANSLATED_LISTS = {"menu": ("categories", "links"), "finder": ("worries", "school_years", "regions", "prefectures")}
TRANSLATABLE_FIELDS = {"id", "label", "accepted", "answer"}
LANGUAGE_FOLDER = re.compile(r"^[a-z]{2}$")
# The risk screening's data: the keyword lexicon and the labelled examples the model learns from.
RISK_FOLDER = "risk"
# Local lines, one file per prefecture named by its id in finder.yaml (`local/yamagata.yaml`).
LOCAL_FOLDER = "local"


class _Files:
    """The parsed files of one content folder, and where each problem in them is."""

    def __init__(self, directory: Path, problems: list[str], files: dict[str, str] = FILES) -> None:
        self.directory = directory
        self.problems = problems
        self.files = files
        self.nodes: dict[str, yaml.Node] = {}
        self.data: dict[str, Any] = {}

    def read(self, part: str) -> bool:
        node = _compose(self.directory / self.files[part], self.problems)
        if node is None:
            return False
        self.nodes[part] = node
        self.data[part] = yaml.safe_load((self.directory / self.files[part]).read_text(encoding="utf-8"))
        return True

    def report(self, part: str, location: tuple[Any, ...], message: str) -> None:
        line = line_of(self.nodes[part], location) if part in self.nodes else 1
        self.problems.append(f"{self.directory / self.files[part]}:{line}: {message}")

    def validate(self, part: str, data: Any, annotation: Any = None) -> Any:
        try:
            return TypeAdapter(annotation or Content.model_fields[part].annotation).validate_python(data)
        except ValidationError as exc:
            for error in exc.errors():
                self.report(part, error["loc"], f"{dotted(error['loc'])}: {error['msg']}")
            return None


def load_content(directory: Path | str) -> Content:
    """Load and validate every content file, in every language, with their cross-references.

    Raises:
        ContentError: with every problem found, each as `file:line: what is wrong`.
    """
    directory = Path(directory)
    problems: list[str] = []
    base = _Files(directory, problems)
    parts = {part: base.validate(part, base.data[part]) for part in FILES if base.read(part)}
    _unknown_files(directory, problems)
    local_files = _Files(
        directory / LOCAL_FOLDER, problems, {p.stem: p.name for p in sorted((directory / LOCAL_FOLDER).glob("*.yaml"))}
    )
    local = {name: local_files.validate(name, local_files.data[name], list[Resource]) for name in local_files.files if local_files.read(name)}
    if (directory / RISK_FOLDER).is_dir():
        _check_risk(directory / RISK_FOLDER, problems)
    translations: dict[str, tuple[_Files, dict[str, Any]]] = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and LANGUAGE_FOLDER.match(p.name)):
        files = _Files(folder, problems)
        translated = {}
        for part in TRANSLATED_PARTS:
            if files.read(part) and part in base.data:
                translated[part] = files.validate(part, _with_base(files, part, base.data[part]))
        translations[folder.name] = (files, translated)
    if problems or any(value is None for value in [*parts.values(), *local.values()]):
        raise ContentError(problems)
    shared = {"local": local, **{part: parts[part] for part in FILES if part not in TRANSLATED_PARTS}}
    content = Content(
        **parts,
        local=local,
        translations={language: Content(language=language, **shared, **translated) for language, (_, translated) in translations.items()},
    )
    _check_references(base, content, {language: files for language, (files, _) in translations.items()}, local_files)
    if problems:
        raise ContentError(problems)
    return content


def _with_base(files: _Files, part: str, base: Any) -> Any:
    """A translated file's data completed from the base file, so it validates as a whole part.

    Entries of translated lists name a base entry by id and may give only words; the rest (hours,
    worries, ages) comes from the base, so languages cannot drift apart.
    """
    data = files.data[part]
    if not isinstance(data, dict) or not isinstance(base, dict):
        return data
    merged = dict(data)
    for list_name in TRANSLATED_LISTS.get(part, ()):
        by_id = {entry.get("id"): entry for entry in base.get(list_name) or [] if isinstance(entry, dict)}
        entries = []
        for index, entry in enumerate(data.get(list_name) or []):
            if not isinstance(entry, dict):
                entries.append(entry)
                continue
            extra = set(entry) - TRANSLATABLE_FIELDS
            if extra:
                files.report(part, (list_name, index, sorted(extra)[0]), f"{', '.join(sorted(extra))}: comes from the base file, only words are translated")
            if entry.get("id") not in by_id:
                files.report(part, (list_name, index, "id"), f"id {entry.get('id')!r} is not in the base file")
            entries.append({**by_id.get(entry.get("id"), {}), **entry})
        merged[list_name] = entries
    return merged


def _unknown_files(directory: Path, problems: list[str]) -> None:
    """A file tsunagi does not read is most likely a typo; say so instead of ignoring it."""
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in (".yaml", ".yml") and path.name not in FILES.values():
            problems.append(f"{path}:1: not a content file tsunagi reads (expected one of {', '.join(FILES.values())})")
        if path.is_dir() and not LANGUAGE_FOLDER.match(path.name) and path.name not in (RISK_FOLDER, LOCAL_FOLDER):
            problems.append(f"{path}:1: folders in content/ are languages (a two-letter code such as en), {RISK_FOLDER}/ or {LOCAL_FOLDER}/")


def _check_risk(folder: Path, problems: list[str]) -> None:
    """The lexicon as the screening loads it, and every labelled example line by line."""
    try:
        load_lexicon(folder / "lexicon.yaml")
    except LexiconError as exc:
        problems.extend(exc.problems)
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            problem = _example_problem(line)
            if problem:
                problems.append(f"{path}:{number}: {problem}")


def _example_problem(line: str) -> str | None:
    """What is wrong with one training example line (`{"text", "level", "tags"}`), if anything."""
    try:
        example = json.loads(line)
    except ValueError:
        return "not a JSON object"
    if not isinstance(example, dict) or not isinstance(example.get("text"), str) or not example["text"].strip():
        return "needs a non-empty text"
    if example.get("level") not in LEVELS:
        return f"level must be one of {', '.join(LEVELS)}"
    tags = example.get("tags", [])
    if not isinstance(tags, list) or any(tag not in TAG_NAMES for tag in tags):
        return f"tags must be a list of {', '.join(TAG_NAMES)}"
    return None


def _compose(path: Path, problems: list[str]) -> yaml.Node | None:
    if not path.is_file():
        problems.append(f"{path}:1: file is missing")
        return None
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        problems.append(f"{path}:{line}: YAML syntax: {exc.problem}")
        return None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: not readable as YAML: {exc}")
        return None
    if node is None:
        problems.append(f"{path}:1: file is empty")
    return node


def _check_references(base: _Files, content: Content, translations: dict[str, _Files], local: _Files) -> None:
    """Ids are unique, every id named elsewhere exists, and no finder answer can come back empty."""
    finder = content.finder
    worries = {w.id for w in finder.worries}
    years = {y.id for y in finder.school_years}
    for part, list_name, items in (
        ("menu", "categories", content.menu.categories),
        ("menu", "links", content.menu.links),
        ("finder", "worries", finder.worries),
        ("finder", "school_years", finder.school_years),
        ("finder", "regions", finder.regions),
        ("finder", "prefectures", finder.prefectures),
    ):
        _unique_ids(base, part, [((list_name, i, "id"), item.id) for i, item in enumerate(items)])
    seen_resources: set[str] = set()
    _unique_ids(base, "resources", [((i, "id"), r.id) for i, r in enumerate(content.resources)], seen_resources)
    for name, resources in content.local.items():
        _unique_ids(local, name, [((i, "id"), r.id) for i, r in enumerate(resources)], seen_resources)
        if finder.prefecture(name) is None:
            local.report(name, (), f"{name!r} is not a prefecture id of finder.yaml; name the file after one (yamagata.yaml)")
    regions = {r.id for r in finder.regions}
    for i, prefecture in enumerate(finder.prefectures):
        if prefecture.region not in regions:
            base.report("finder", ("prefectures", i, "region"), f"unknown region {prefecture.region!r}")
    for list_name in ("age_bands", "genders", "worries", "responses"):
        choices = getattr(content.records, list_name)
        _unique_ids(base, "records", [((list_name, i, "id"), c.id) for i, c in enumerate(choices)])
    _unique_ids(base, "canned", [((i, "id"), c.id) for i, c in enumerate(content.canned)])
    _check_rooms(base, content.rooms)
    crisis = content.menu.category(content.menu.crisis_category or "")
    if crisis is None or not crisis.hours.always:
        base.report("menu", ("crisis_category",), "crisis_category must name a category of this menu that is open 24 hours")
    for language, translation in content.translations.items():
        # A person at risk who chose a closed category is offered the crisis category in their language.
        if crisis is not None and translation.menu.category(crisis.id) is None:
            translations[language].report("menu", ("categories",), f"the crisis category {crisis.id!r} must be offered in every language")
    for i, category in enumerate(content.menu.categories):
        for j, worry in enumerate(category.worries):
            if worry not in worries:
                base.report("menu", ("categories", i, "worries", j), f"unknown worry {worry!r} (see finder.yaml)")
    for files, part, resources in [(base, "resources", content.resources), *((local, n, r) for n, r in content.local.items())]:
        for i, resource in enumerate(resources):
            _check_resource(files, part, i, resource, content, worries, years)
    for language_content in content.languages():
        files = translations.get(language_content.language, base)
        language = language_content.language
        menu = language_content.menu
        entries = len(menu.categories) + len(menu.links) + len(content.translations)
        if entries > QUICK_REPLY_MAX_ITEMS:
            files.report("menu", (), f"{entries} menu entries with the language choices; a quick reply holds at most {QUICK_REPLY_MAX_ITEMS}")
        for i, worry in enumerate(language_content.finder.worries):
            if not any(worry.id in r.worries and (worry.any_language or r.audience.admits(language, None)) for r in content.resources):
                files.report("finder", ("worries", i), f"no resource in resources.yaml serves worry {worry.id!r} in {language!r}")
        for i, year in enumerate(language_content.finder.school_years):
            if not any(year.id in r.school_years and r.audience.admits(language, None) for r in content.resources):
                files.report("finder", ("school_years", i), f"no resource in resources.yaml is for school year {year.id!r} in {language!r}")
        try:
            language_content.messages.privacy_notice.format(**content.retention.model_dump())
        except (KeyError, IndexError, ValueError) as exc:
            files.report("messages", ("privacy_notice",), f"privacy_notice: unknown placeholder {exc} (use the names in retention.yaml)")


def _check_resource(files: _Files, part: str, i: int, resource: Resource, content: Content, worries: set[str], years: set[str]) -> None:
    """A resource names known worries, school years and languages, and its evidence quotes its numbers."""
    for j, worry in enumerate(resource.worries):
        if worry not in worries:
            files.report(part, (i, "worries", j), f"unknown worry {worry!r} (see finder.yaml)")
    for j, year in enumerate(resource.school_years):
        if year not in years:
            files.report(part, (i, "school_years", j), f"unknown school year {year!r} (see finder.yaml)")
    if resource.evidence:
        quoted = _dial_string(resource.evidence)
        for j, contact in enumerate(resource.contacts):
            if contact.kind == "phone" and _dial_string(contact.value) not in quoted:
                files.report(part, (i, "contacts", j, "value"), f"{contact.value} is not in the evidence quoted from the source")
    for language in resource.translations:
        if language not in content.translations:
            files.report(part, (i, "translations", language), f"no content/{language}/ folder for this translation")
    for j, contact in enumerate(resource.contacts):
        for k, prefecture in enumerate(contact.prefectures):
            if content.finder.prefecture(prefecture) is None:
                files.report(part, (i, "contacts", j, "prefectures", k), f"unknown prefecture {prefecture!r} (see finder.yaml)")
    if not any(not c.prefectures for c in resource.contacts):
        files.report(part, (i, "contacts"), "at least one contact must be for everyone (no prefectures)")


def _check_rooms(base: _Files, rooms: Rooms) -> None:
    """Ids unique, bands known, and children never in a room with adults."""
    _unique_ids(base, "rooms", [(("age_bands", i, "id"), b.id) for i, b in enumerate(rooms.age_bands)])
    _unique_ids(base, "rooms", [(("rooms", i, "id"), r.id) for i, r in enumerate(rooms.rooms)])
    for i, room in enumerate(rooms.rooms):
        for problem in rooms.band_problems(room):
            base.report("rooms", ("rooms", i, "age_bands"), problem)


def _dial_string(text: str) -> str:
    """Only what one dials: digits and '#', however the page wrote them (全角, ♯, hyphens, spaces)."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).replace("♯", "#") if c.isdigit() or c == "#")


def _unique_ids(files: _Files, part: str, entries: list[tuple[tuple[Any, ...], str]], seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    for location, item_id in entries:
        if item_id in seen:
            files.report(part, location, f"duplicate id {item_id!r}")
        seen.add(item_id)
