"""Read receipts: a person sees 既読 only once the counselor holding their chat has it open, never by the
bot alone (console and emulator over real HTTP; the phone page in a real browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Service, add_account, settle
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.line.outbox import enqueue_mark_read
from bot.storage.models import Consultation, OutboxMessage, StaffRole, UserMessage


async def person_with_a_counselor(service: Service, console) -> tuple[str, int, object]:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_text(user, "ねむれない")
    # A tap whose label shows in the chat, as LINE shows it (a line of the person's without a message id).
    await line.send_postback(user, "a=category&id=suicidal", display_text="死にたいほどつらい気持ち")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        consultation = (await session.exec(select(Consultation).where(Consultation.user_id == user))).one()
    await add_account(service, "aoi")
    counselor = console()
    await counselor.login("aoi")
    return user, consultation.id, counselor


async def test_the_person_sees_read_only_when_the_counselor_holding_the_chat_opens_it(service: Service, console) -> None:
    line = service.line
    user, consultation_id, counselor = await person_with_a_counselor(service, console)
    assert line.read_by_bot(user) == [False, False], "the bot alone never marks a message read"
    # A supervisor watching silently does not either.
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    assert (await supervisor.get(f"/console/c/{consultation_id}"))[0] == 200
    await settle(service)
    assert line.read_by_bot(user) == [False, False]

    status, _, _ = await counselor.post(f"/console/c/{consultation_id}/take")
    assert status == 303
    assert (await counselor.get(f"/console/c/{consultation_id}"))[0] == 200
    await settle(service)
    # LINE marks up to the latest message that carries a token: a tap's label shown after it waits for the next.
    assert line.read_by_bot(user) == [True, False]
    # A message arriving while the chat is open is read when the page shows it (its live re-fetch).
    await line.send_text(user, "まだ起きています")
    await settle(service)
    assert line.read_by_bot(user) == [True, False, False]
    assert (await counselor.get(f"/console/c/{consultation_id}/live"))[0] == 200
    await settle(service)
    assert line.read_by_bot(user) == [True, True, True]
    async with service.app[SESSIONS]() as session:
        rows = list(await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "mark_read")))
        tokens = [m.read_token for m in await session.exec(select(UserMessage).where(UserMessage.user_id == user))]
    # One request per reading, each sent; a token once used is not kept.
    assert [(r.status, r.sent_via, r.messages) for r in rows] == [("sent", "read", [])] * 2
    assert tokens == [None, None]
    # Opening it again with nothing new asks LINE for nothing.
    await counselor.get(f"/console/c/{consultation_id}")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        assert len(list(await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "mark_read")))) == 2


async def test_an_unknown_read_token_is_refused_as_line_does(service: Service) -> None:
    async with service.app[SESSIONS]() as session:
        user = service.line.add_user().user_id
        enqueue_mark_read(session, user, "not-a-token-line-gave")
        await session.commit()
    await settle(service)
    async with service.app[SESSIONS]() as session:
        [row] = list(await session.exec(select(OutboxMessage)))
    assert row.status == "failed" and "invalid markAsReadToken" in row.last_error


@pytest.mark.browser
async def test_the_phone_page_shows_read(service: Service, console, browser, tmp_path: Path) -> None:
    user, consultation_id, counselor = await person_with_a_counselor(service, console)
    page = await browser.new_page(viewport={"width": 420, "height": 820})
    await page.add_init_script(f'localStorage.setItem("tsunagi-emulator-users", JSON.stringify([{{id: "{user}", name: "ユーザー1"}}]))')
    await page.goto(f"{service.line_url}/")
    await page.locator(".bubble.user", has_text="ねむれない").wait_for(timeout=10_000)
    assert await page.locator(".read").count() == 0
    await counselor.post(f"/console/c/{consultation_id}/take")
    await counselor.get(f"/console/c/{consultation_id}")
    await settle(service)
    await page.locator(".read", has_text="既読").wait_for(timeout=10_000)
    await page.screenshot(path=str(tmp_path / "read.png"))
