"""The support finder: worries → (school year for children) → helplines and programs, open ones first.

Like the national site's chatbot (あなたはひとりじゃない), from the same kind of data: `content/resources.yaml`,
and the lines of the person's prefecture (`content/local/`) where they gave one. The same choice of lines
answers out of hours and in emergencies (`lines_for`).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot.conversation.people import get_or_create_user
from bot.conversation.postbacks import MenuTap, Postback
from bot.conversation.router import Router, Turn
from bot.guidance.content import Content, Resource
from bot.line.messages import Message, flex, postback_item, texts

# How many lines an out-of-hours or emergency answer lists: enough to choose, few enough to read;
# the general crisis lines take at most CRISIS_LINES of them, the rest are for the person's worries.
MAX_LINES = 5
CRISIS_LINES = 2
# A handful of bubbles reads well on a phone; LINE allows 12.
MAX_RESULTS = 5
# From late evening to early morning 24-hour lines come first: most others are closed or closing.
NIGHT_STARTS, NIGHT_ENDS = time(22, 0), time(6, 0)

router = Router()


class FinderTap(Postback, action="finder"):
    """Search again: the worries from the start."""


class WorryTap(Postback, action="worry"):
    """A worry chosen in the finder."""

    id: str


class SchoolYearTap(Postback, action="year"):
    """A child's school year, asked before lines for children are listed."""

    id: str


class RegionTap(Postback, action="region"):
    """A region, to list its prefectures; empty to list the regions (to change the prefecture given)."""

    id: str


class PrefectureTap(Postback, action="pref"):
    """The prefecture a person lives in; empty when they would rather not say."""

    id: str


def lines_for(
    content: Content,
    at: datetime,
    zone: ZoneInfo,
    *,
    worries: set[str] | None = None,
    school_year: str | None = None,
    ages: tuple[int, int] | None = None,
    prefecture: str | None = None,
    open_only: bool = False,
) -> list[Resource]:
    """Resources for a person, best first: serving one of `worries` (any if None) in their language,
    for their age or school year, with their prefecture's local lines (if they gave one).

    Lines known to be open come first, then lines whose hours vary by region (never above an open
    one), then the rest; within each, local lines first and, at night, 24-hour lines before others.
    `open_only` keeps only lines known to be open: never a web page, never varying hours.
    """
    clock = at.astimezone(zone).time()
    night = clock >= NIGHT_STARTS or clock < NIGHT_ENDS
    local = content.local.get(prefecture or "", [])
    # A worry about other languages wants lines in them, whatever language the person reads.
    any_language = bool(worries) and all((w := content.finder.worry(i)) is not None and w.any_language for i in worries)
    chosen = [
        r
        for r in [*local, *content.resources]
        if (worries is None or worries & set(r.worries))
        and (school_year is None or school_year in r.school_years)
        and r.audience.admits(None if any_language else content.language, ages)
        and (not open_only or r.is_open(at, zone))
    ]

    def rank(resource: Resource) -> tuple[int, bool, bool]:
        standing = 0 if resource.is_open(at, zone) else 1 if resource.hours_vary else 2
        return standing, resource not in local, not (night and resource.always_open)

    # Stable sort: within equal keys the order of the files (the editors' order) stays.
    return sorted(chosen, key=rank)


def person_ages(content: Content, school_year: str | None) -> tuple[int, int] | None:
    """The ages a person's school year stands for, if they gave one."""
    year = content.finder.school_year(school_year) if school_year else None
    return year.ages if year else None


def contact_uri(kind: str, value: str) -> str:
    """Where a tap on a contact goes: a call for numbers (# escaped, as tel: URIs need), else the page."""
    return f"tel:{quote(value.replace('-', ''))}" if kind == "phone" else value


def resource_bubble(content: Content, resource: Resource, at: datetime, zone: ZoneInfo, prefecture: str | None = None) -> dict[str, Any]:
    """One resource as a Flex bubble: name, what it is for, open now or its hours, tap to call or open."""
    finder, text = content.finder, resource.text(content.language)
    is_open = resource.is_open(at, zone)
    buttons = [
        {
            "type": "button",
            "style": "link",
            "height": "sm",
            "action": {
                "type": "uri",
                "label": f"{finder.call} {c.value}" if c.kind == "phone" else finder.open_page,
                "uri": contact_uri(c.kind, c.value),
            },
        }
        for c in resource.contacts_for(prefecture)
    ]
    if resource.hours is None:
        # A page: no open or closed, only that it can be read at any time.
        when = [{"type": "text", "text": finder.anytime, "size": "sm", "color": "#666666", "wrap": True}]
    elif resource.hours_vary:
        # Never claimed open: the page's own sentence says why the hours cannot be given here.
        when = [{"type": "text", "text": finder.hours.format(hours=resource.hours.describe(content.language)), "size": "sm", "color": "#666666", "wrap": True}]
    else:
        when = [
            {"type": "text", "text": finder.open_now if is_open else finder.closed_now, "size": "sm", "weight": "bold", "color": "#1f8a3b" if is_open else "#888888"},
            {"type": "text", "text": finder.hours.format(hours=resource.hours.describe(content.language)), "size": "xs", "color": "#666666", "wrap": True},
        ]
    return {
        "type": "bubble",
        "size": "kilo",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "sm",
            "contents": [
                {"type": "text", "text": text.name, "weight": "bold", "wrap": True},
                {"type": "text", "text": text.summary, "size": "sm", "wrap": True},
                *when,
            ],
        },
        "footer": {"type": "box", "layout": "vertical", "contents": buttons},
    }


def results_messages(
    content: Content, title: str, resources: list[Resource], at: datetime, zone: ZoneInfo, prefecture: str | None = None
) -> list[Message]:
    """The results as a carousel, with the way back to the finder, to another prefecture and to the menu."""
    finder = content.finder
    shown = resources[:MAX_RESULTS]
    intro = finder.results.format(worry=title, count=len(shown))
    alt_text = "\n".join([intro, *(f"・{r.text(content.language).name}" for r in shown)])
    return texts(intro) + [
        flex(
            alt_text,
            {"type": "carousel", "contents": [resource_bubble(content, r, at, zone, prefecture) for r in shown]},
            quick_reply=[
                postback_item(finder.search_again, FinderTap().pack()),
                *([postback_item(finder.change_prefecture, RegionTap(id="").pack())] if finder.prefectures else []),
                postback_item(finder.back_to_menu, MenuTap().pack()),
            ],
        )
    ]


async def start_finder(turn: Turn) -> None:
    """Ask once where the person lives (they may skip it), then offer the worries."""
    user = await get_or_create_user(turn.session, turn.source_id)
    if turn.content.finder.prefectures and not user.prefecture_asked:
        ask_region(turn, "")
        return
    show_worries(turn)


def ask_region(turn: Turn, region_id: str) -> None:
    """The regions (no region chosen yet, or an unknown one), or the prefectures of the chosen region;
    both with a way to skip the question.
    """
    finder = turn.content.finder
    skip = postback_item(finder.prefecture_skip, PrefectureTap(id="").pack())
    if finder.region(region_id) is None:
        items = [postback_item(r.label, RegionTap(id=r.id).pack()) for r in finder.regions]
        turn.reply(texts(finder.region_prompt, quick_reply=[*items, skip]))
        return
    items = [postback_item(p.label, PrefectureTap(id=p.id).pack()) for p in finder.prefectures_in(region_id)]
    turn.reply(texts(finder.prefecture_prompt, quick_reply=[*items, skip]))


@router.tap(RegionTap)
async def choose_region(turn: Turn, tap: RegionTap) -> None:
    """A region chosen (its prefectures next), or the way to give another prefecture (the regions)."""
    ask_region(turn, tap.id)


@router.tap(PrefectureTap)
async def choose_prefecture(turn: Turn, tap: PrefectureTap) -> None:
    """Keep the prefecture the person gave (or that they skipped the question), then offer the worries."""
    user = await get_or_create_user(turn.session, turn.source_id)
    prefecture = turn.content.finder.prefecture(tap.id)
    user.prefecture = prefecture.id if prefecture else None
    user.prefecture_asked = True
    show_worries(turn)


def show_worries(turn: Turn) -> None:
    """Offer the worries, as the national site's chatbot does, as buttons in one bubble."""
    finder = turn.content.finder
    buttons = [
        {
            "type": "button",
            "style": "secondary",
            "height": "sm",
            "action": {"type": "postback", "label": w.label, "data": WorryTap(id=w.id).pack(), "displayText": w.label},
        }
        for w in finder.worries
    ]
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons}}
    alt_text = "\n".join([finder.prompt, *(f"・{w.label}" for w in finder.worries)])
    turn.reply(texts(finder.prompt) + [flex(alt_text, bubble)])


@router.tap(FinderTap)
async def search_again(turn: Turn, _tap: FinderTap) -> None:
    """The worries again, for another search (asking where they live first if never asked)."""
    await start_finder(turn)


@router.tap(WorryTap)
async def choose_worry(turn: Turn, tap: WorryTap) -> None:
    """Children are asked their school year first; everyone else gets the lines for the worry now."""
    content = turn.content
    worry = content.finder.worry(tap.id)
    if worry is None:
        show_worries(turn)
        return
    if worry.asks_school_year:
        items = [postback_item(y.label, SchoolYearTap(id=y.id).pack()) for y in content.finder.school_years]
        turn.reply(texts(content.finder.school_year_prompt, quick_reply=items))
        return
    user = await get_or_create_user(turn.session, turn.source_id)
    at = turn.record.occurred_at
    found = lines_for(content, at, turn.zone, worries={worry.id}, ages=person_ages(content, user.school_year), prefecture=user.prefecture)
    turn.reply(results_messages(content, worry.label, found, at, turn.zone, user.prefecture))


@router.tap(SchoolYearTap)
async def choose_school_year(turn: Turn, tap: SchoolYearTap) -> None:
    """A child gave their school year: keep it, and list the lines for children of that age."""
    content = turn.content
    year = content.finder.school_year(tap.id)
    if year is None:
        show_worries(turn)
        return
    user = await get_or_create_user(turn.session, turn.source_id)
    user.school_year = year.id
    at = turn.record.occurred_at
    found = lines_for(content, at, turn.zone, school_year=year.id, ages=year.ages, prefecture=user.prefecture)
    turn.reply(results_messages(content, year.label, found, at, turn.zone, user.prefecture))


async def open_lines(turn: Turn, at: datetime, worries: list[str] | None = None) -> str:
    """The emergency sentence and the lines open now for this person (their language and age):
    crisis lines first, then lines for `worries`.
    """
    content = turn.content
    user = await get_or_create_user(turn.session, turn.source_id)
    ages = person_ages(content, user.school_year)
    crisis = [r for r in lines_for(content, at, turn.zone, ages=ages, open_only=True) if r.emergency]
    for_worries = lines_for(content, at, turn.zone, worries=set(worries), ages=ages, prefecture=user.prefecture, open_only=True) if worries else []
    chosen = list({r.id: r for r in crisis[:CRISIS_LINES] + for_worries}.values())[:MAX_LINES]
    lines = [content.messages.emergency]
    for resource in chosen:
        contacts = resource.contacts_for(user.prefecture)
        phones = "、".join(c.value for c in contacts if c.kind == "phone")
        reach = phones or contacts[0].value
        lines.append(f"・{resource.text(content.language).name} {reach}（{resource.hours.describe(content.language)}）")
    return "\n".join(lines)
