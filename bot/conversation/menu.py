"""The guidance menu: greeting, categories as quick-reply buttons, and what each choice answers."""

from __future__ import annotations

from bot.consultation.queue import place_in_line, switch_rich_menu, waiting_buttons, waiting_messages
from bot.consultation.requests import earlier_level, open_consultation, request_consultation
from bot.conversation.people import get_or_create_user
from bot.conversation.postbacks import MenuTap, Postback
from bot.conversation.router import Router, Turn
from bot.guidance.finder import open_lines, start_finder
from bot.line.messages import Message, postback_item, texts
from bot.line.outbox import enqueue_loading
from bot.privacy.mine import privacy_notice_once, show_records
from bot.rooms.participants import leave_any_room, show_rooms
from bot.storage.models import RiskLevel

router = Router()


class CategoryTap(Postback, action="category"):
    """A consultation category from the menu."""

    id: str


class LinkTap(Postback, action="link"):
    """A menu entry that is not a category (the finder, the online ibasho)."""

    id: str


class LanguageTap(Postback, action="lang"):
    """Another language for everything the bot says."""

    id: str


def menu_messages(turn: Turn, text: str, first: str | None = None) -> list[Message]:
    """`text` with every menu entry, and every other language, as a quick-reply button; the category
    with id `first`, if given, leads."""
    menu = turn.content.menu
    categories = sorted(menu.categories, key=lambda c: c.id != first)
    items = [postback_item(c.label, CategoryTap(id=c.id).pack()) for c in categories]
    items += [postback_item(link.label, LinkTap(id=link.id).pack()) for link in menu.links]
    items += [
        postback_item(other.menu.language_name, LanguageTap(id=other.language).pack())
        for other in turn.all_content.languages()
        if other.language != turn.content.language
    ]
    return texts(text, quick_reply=items)


@router.tap(MenuTap)
async def show_menu(turn: Turn, _tap: MenuTap) -> None:
    """The menu again, as the person asked."""
    turn.reply(menu_messages(turn, turn.content.menu.prompt))


@router.tap(CategoryTap)
async def choose_category(turn: Turn, tap: CategoryTap) -> None:
    """The person chose a consultation category: record the request and say what happens next."""
    content = turn.content
    category = content.menu.category(tap.id)
    if category is None:
        turn.reply(menu_messages(turn, content.messages.unknown_choice))
        return
    at = turn.record.occurred_at
    in_hours = category.hours.is_open(at, turn.zone)
    if in_hours:
        await leave_any_room(turn)  # one conversation at a time: the counselor's
    consultation = await request_consultation(turn.session, turn.source_id, category, at, in_hours)
    # Someone never greeted (an old button, or greeted before the notice existed) reads it here, once.
    notice = privacy_notice_once(turn, await get_or_create_user(turn.session, turn.source_id))
    notice = f"\n\n{notice}" if notice else ""
    if in_hours:
        place = await place_in_line(turn.session, consultation)
        [where] = waiting_messages(content, place)
        turn.reply(texts(f"{category.accepted}\n\n{where['text']}\n\n{await open_lines(turn, at)}{notice}", quick_reply=waiting_buttons(content)))
        # Typing dots while they wait tell them someone is on the other side.
        enqueue_loading(turn.session, turn.source_id)
        await switch_rich_menu(turn.session, turn.all_content, turn.source_id, consulting=True)
        return
    closed = content.messages.out_of_hours.format(category=category.label, hours=category.hours.describe(content.language))
    # Someone whose words were screened high or above should not leave with only a closed door.
    crisis = content.menu.category(turn.all_content.menu.crisis_category or "")
    offer = crisis if crisis and (await earlier_level(turn.session, turn.source_id)).rank >= RiskLevel.HIGH.rank else None
    if offer:
        closed += "\n\n" + content.messages.crisis_offer.format(category=offer.label)
    lines = await open_lines(turn, at, category.worries)
    turn.reply(menu_messages(turn, f"{closed}\n\n{lines}{notice}", first=offer.id if offer else None))


@router.tap(LinkTap)
async def choose_link(turn: Turn, tap: LinkTap) -> None:
    """The person chose a non-category entry (the finder, the online ibasho)."""
    link = turn.content.menu.link(tap.id)
    if link is None:
        turn.reply(menu_messages(turn, turn.content.messages.unknown_choice))
    elif link.opens == "finder":
        await start_finder(turn)
    elif link.opens == "rooms":
        await show_rooms(turn)
    elif link.opens == "records":
        await show_records(turn)
    elif link.opens == "emergency":
        turn.reply(menu_messages(turn, await open_lines(turn, turn.record.occurred_at)))
    else:
        turn.reply(menu_messages(turn, link.answer))


@router.tap(LanguageTap)
async def choose_language(turn: Turn, tap: LanguageTap) -> None:
    """The person chose a language: keep it and show the menu in it."""
    language = tap.id
    if turn.all_content.in_language(language).language != language:
        turn.reply(menu_messages(turn, turn.content.messages.unknown_choice))
        return
    user = await get_or_create_user(turn.session, turn.source_id)
    user.language = language
    turn.language = language
    turn.reply(menu_messages(turn, f"{turn.content.messages.language_chosen}\n{turn.content.menu.prompt}"))
    consulting = await open_consultation(turn.session, turn.source_id) is not None
    await switch_rich_menu(turn.session, turn.all_content, turn.source_id, consulting=consulting)
