"""Builders for LINE message objects (as the JSON the Messaging API takes) within LINE's limits."""

from __future__ import annotations

from typing import Any

from bot.line.limits import FLEX_ALT_TEXT_MAX, QUICK_REPLY_LABEL_MAX, QUICK_REPLY_MAX_ITEMS, TEXT_MAX_UTF16

Message = dict[str, Any]


def utf16_length(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_MAX_UTF16) -> list[str]:
    """Split text into pieces LINE accepts, preferring line breaks, never dropping a character."""
    pieces: list[str] = []
    while utf16_length(text) > limit:
        cut, units = 0, 0
        for index, char in enumerate(text):
            units += utf16_length(char)
            if units > limit:
                break
            cut = index + 1
        newline = text.rfind("\n", 0, cut)
        # Break after a newline when one is reasonably close, so paragraphs stay whole.
        if newline >= cut // 2:
            cut = newline + 1
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def postback_item(label: str, data: str, display_text: str | None = None) -> dict[str, Any]:
    """A quick-reply button that sends a postback (and shows `display_text` as the person's words)."""
    if len(label) > QUICK_REPLY_LABEL_MAX:
        raise ValueError(f"quick-reply label {label!r} is longer than {QUICK_REPLY_LABEL_MAX} characters")
    action = {"type": "postback", "label": label, "data": data, "displayText": display_text or label}
    return {"type": "action", "action": action}


def flex(alt_text: str, contents: dict[str, Any], quick_reply: list[dict[str, Any]] | None = None) -> Message:
    """A Flex message; `alt_text` is what notifications and old clients show, so it says it all."""
    message: Message = {"type": "flex", "altText": alt_text[:FLEX_ALT_TEXT_MAX], "contents": contents}
    if quick_reply:
        message["quickReply"] = {"items": quick_reply}
    return message


def texts(text: str, quick_reply: list[dict[str, Any]] | None = None) -> list[Message]:
    """Text messages for `text`, split as needed, with quick-reply buttons on the last one."""
    messages: list[Message] = [{"type": "text", "text": piece} for piece in split_text(text)]
    if quick_reply:
        if len(quick_reply) > QUICK_REPLY_MAX_ITEMS:
            raise ValueError(f"{len(quick_reply)} quick-reply items; LINE takes {QUICK_REPLY_MAX_ITEMS}")
        messages[-1]["quickReply"] = {"items": quick_reply}
    return messages
