"""What each role is told to notice (/console/attention), over real HTTP: the right items, never a person's words."""

from __future__ import annotations

import json

from conftest import Console, Service, add_account, run_service, settle
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.storage.models import Consultation, StaffRole


async def person(service: Service, *texts: str, category: str = "suicidal") -> int:
    """A LINE user who writes `texts`, then asks for a counselor in `category`; returns the consultation."""
    user = service.line.add_user().user_id
    await service.line.follow(user)
    for text in texts:
        await service.line.send_text(user, text)
    await service.line.send_postback(user, f"a=category&id={category}")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        return (await session.exec(select(Consultation).where(Consultation.user_id == user))).one().id


async def attention(client) -> dict:
    status, body = await client.get("/console/attention")
    assert status == 200
    return json.loads(body)


async def test_each_role_hears_what_it_must_and_no_words(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        clients = [Console(service.url) for _ in range(3)]
        try:
            await told_what_to_notice(service, *clients)
        finally:
            for client in clients:
                await client.close()


async def told_what_to_notice(service: Service, counselor: Console, supervisor: Console, coordinator: Console) -> None:
    await add_account(service, "aoi")
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    await add_account(service, "coord", StaffRole.COORDINATOR)
    for client, login in ((counselor, "aoi"), (supervisor, "boss"), (coordinator, "coord")):
        await client.login(login)

    await person(service, "ちょっと話したい")  # low: below the counselor's default level (high)
    assert (await attention(counselor))["items"] == []
    await person(service, "死にたい。毎日死ぬことばかり考えてる")
    heard = await attention(counselor)
    assert [i["title"] for i in heard["items"]] == ["待機中の相談者（リスク高）"]
    assert (heard["sound"], heard["desktop"], heard["title"]) == (True, True, True)
    # The queue row says why (issue 21.4): the level in Japanese and the words that drove it, marked.
    _, queue = await counselor.get("/console/queue/live")
    assert "の発言で高に" in queue and "<mark>死にたい</mark>" in queue

    # An imminent message alerts supervisors; counselors hear of the person waiting.
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_text(user, "もう無理。今から飛び降りる")
    await settle(service)
    told = await attention(supervisor)
    assert any(i["title"] == "アラート（リスク緊急）" for i in told["items"])
    assert "待機中の相談者（リスク緊急）" in [i["title"] for i in (await attention(counselor))["items"]]
    assert (await attention(coordinator))["items"] == [], "a coordinator has nothing of the queue to notice"

    # Only the level is raised for counselors who ask for it: imminent only now.
    status, _, _ = await counselor.post("/console/attention/settings", {"from_level": "imminent", "title": "yes"})
    assert status == 303
    heard = await attention(counselor)
    assert [i["title"] for i in heard["items"]] == ["待機中の相談者（リスク緊急）"]
    assert (heard["sound"], heard["desktop"]) == (False, False)
    everything = json.dumps([await attention(c) for c in (counselor, supervisor)], ensure_ascii=False)
    for words in ("飛び降りる", "毎日死ぬこと", "ちょっと話したい"):
        assert words not in everything, "what is announced never carries what a person wrote"


async def test_the_chat_says_which_message_raised_the_level(service: Service, console) -> None:
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    consultation = await person(service, "今日は寒い", "死にたい。毎日死ぬことばかり考えてる", "ごめん")
    supervisor = console()
    await supervisor.login("boss")
    _, page = await supervisor.get(f"/console/c/{consultation}")
    header = page.split("<header>")[1].split("</header>")[0]
    assert "の発言</a>で高に" in header and "<mark>死にたい</mark>" in header and 'href="#m-' in header
    raised = page.split('class="line line-person raised"')[1].split("</div>")[0]
    assert "（この発言でリスク高）" in raised and "<mark>死にたい</mark>。毎日<mark>死ぬことばかり考え</mark>てる" in raised
    assert page.count(" raised\"") == 1, "only the message that raised the level is marked"
