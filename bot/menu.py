"""The guidance menu: greeting, categories as quick-reply buttons, and what each choice answers."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs

from bot.consult import request_consultation
from bot.content import Content
from bot.messages import Message, postback_data, postback_item, texts
from bot.outbox import enqueue_loading
from bot.router import Turn

# Postback actions the menu sends, with the fields each must carry.
POSTBACK_FIELDS = {"menu": set(), "category": {"id"}, "link": {"id"}}


def menu_messages(content: Content, text: str) -> list[Message]:
    """`text` with every menu entry as a quick-reply button."""
    menu = content.menu
    items = [postback_item(c.label, postback_data("category", id=c.id)) for c in menu.categories]
    items += [postback_item(link.label, postback_data("link", id=link.id)) for link in menu.links]
    return texts(text, quick_reply=items)


def parse_postback(data: str) -> tuple[str, dict[str, str]] | None:
    """Read postback data the menu made; anything else (tampered, stale, foreign) gives None."""
    try:
        fields = parse_qs(data, keep_blank_values=True, strict_parsing=True, max_num_fields=5)
    except ValueError:
        return None
    if any(len(values) != 1 for values in fields.values()):
        return None
    flat = {key: values[0] for key, values in fields.items()}
    action = flat.pop("a", None)
    if action not in POSTBACK_FIELDS or set(flat) != POSTBACK_FIELDS[action]:
        return None
    return action, flat


def around_the_clock_lines(content: Content, at: datetime, turn: Turn) -> str:
    """The emergency sentence and the lines open now, one per line, for out-of-hours and crisis answers."""
    lines = [content.messages.emergency]
    for resource in content.resources:
        if resource.emergency and resource.hours.is_open(at, turn.zone):
            phones = "、".join(c.value for c in resource.contacts if c.kind == "phone")
            lines.append(f"・{resource.name} {phones}（{resource.hours.describe()}）")
    return "\n".join(lines)


async def choose_category(turn: Turn, category_id: str) -> None:
    """The person chose a consultation category: record the request and say what happens next."""
    content = turn.content
    category = content.menu.category(category_id)
    if category is None:
        turn.reply(menu_messages(content, content.messages.unknown_choice))
        return
    at = turn.record.occurred_at
    in_hours = category.hours.is_open(at, turn.zone)
    await request_consultation(turn.session, turn.source_id, category.id, at, in_hours)
    if in_hours:
        turn.reply(texts(f"{category.accepted}\n\n{around_the_clock_lines(content, at, turn)}"))
        # Typing dots while they wait tell them someone is on the other side.
        enqueue_loading(turn.session, turn.source_id)
        return
    closed = content.messages.out_of_hours.format(category=category.label, hours=category.hours.describe())
    turn.reply(menu_messages(content, f"{closed}\n\n{around_the_clock_lines(content, at, turn)}"))


async def choose_link(turn: Turn, link_id: str) -> None:
    """The person chose a non-category entry (the finder, the online ibasho)."""
    link = turn.content.menu.link(link_id)
    text = link.answer if link is not None else turn.content.messages.unknown_choice
    turn.reply(menu_messages(turn.content, text))
