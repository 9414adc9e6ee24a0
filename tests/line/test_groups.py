"""A consultation account is one to one: added to a group or a multi-person chat, it says so once and leaves,
and nothing said there is kept (through the emulator over real HTTP)."""

from __future__ import annotations

import pytest
from conftest import Service, settle
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import InboxEvent, LineUser, OutboxMessage, UserMessage


@pytest.mark.parametrize("chat_type", ["group", "room"])
async def test_the_bot_says_once_kindly_that_it_is_one_to_one_and_leaves(service: Service, content, chat_type: str) -> None:
    line = service.line
    chat = await line.add_to_group(chat_type)
    await settle(service)
    said = line.messages_for(chat)
    assert [m["message"].get("text") for m in said] == [content.messages.group_not_supported, None]
    assert said[0]["via"] == "reply" and said[1]["via"] == "leave", "the words come first, then the bot leaves"
    assert line.groups[chat].following is False
    assert [r["status"] for r in line.requests if r["endpoint"] == "leave"] == [200]


async def test_nothing_said_in_a_group_is_kept_not_even_in_the_inbox(service: Service) -> None:
    line = service.line
    chat = await line.add_to_group()
    member = "U" + "a" * 32
    # Said before the bot has left (LINE delivers whatever the group writes until then).
    assert await line.send_group_text(chat, member, "グループでの秘密の話") == 200
    async with service.app[SESSIONS]() as session:
        stored = list(await session.exec(select(InboxEvent).where(InboxEvent.event_type == "message")))
    [message_event] = stored
    # Only what de-duplication needs: no words, no member; the event belongs to the group.
    assert message_event.source_id == chat
    assert "message" not in message_event.payload and "userId" not in str(message_event.payload)
    await settle(service)
    async with service.app[SESSIONS]() as session:
        assert list(await session.exec(select(UserMessage))) == []
        assert list(await session.exec(select(LineUser))) == []
        assert all(e.payload == {} for e in await session.exec(select(InboxEvent)))
        rows = list(await session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
    # One kind message and one leave, whatever else the group said.
    assert [(r.to, r.kind, r.sent_via) for r in rows] == [(chat, "messages", "reply"), (chat, "leave", "leave")]


async def test_a_leave_refused_because_the_bot_is_gone_already_counts_as_done(service: Service) -> None:
    line = service.line
    chat = await line.add_to_group()
    line.groups[chat].following = False  # its members removed the bot before it could leave
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [_, leave] = list(await session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert (leave.status, leave.sent_via) == ("sent", "left-before")
