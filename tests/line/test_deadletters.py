"""Dead letters: what the service gave up on is screened, shown, counted and recoverable."""

from __future__ import annotations

import asyncio
import os
from asyncio.subprocess import PIPE
from datetime import timedelta
from functools import partial

import aiohttp
from conftest import REPO, TSUNAGI, Service, add_account, settle
from moderation.lexicon import load_lexicon
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.consultation.risk import alarm_for_unhandled
from bot.line.inbox import InboxWorker, store_events
from bot.storage.db import create_engine, session_factory
from bot.storage.models import AuditEntry, Consultation, InboxEvent, InboxStatus, OutboxMessage, OutboxStatus, StaffRole, utcnow

LEXICON = load_lexicon(REPO / "content" / "risk" / "lexicon.yaml")
SECRET_TEXT = "今から飛び降りる"


def text_event(user: str, timestamp: int, text: str) -> dict:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": timestamp,
        "source": {"type": "user", "userId": user},
        "webhookEventId": f"01DEAD{user}{timestamp:014d}",
        "replyToken": "r" * 32,
        "deliveryContext": {"isRedelivery": False},
        "message": {"id": str(timestamp), "type": "text", "text": text, "quoteToken": "q"},
    }


async def test_a_text_given_up_is_screened_by_the_floor_and_raises_the_alarm(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add(Consultation(user_id="UDANGER", category="life", arrived_in_hours=True))
        session.add(Consultation(user_id="UCALM", category="life", arrived_in_hours=True))
        await session.commit()
    async with engine.begin() as connection:
        await store_events(connection, [text_event("UDANGER", 1000, SECRET_TEXT), text_event("UCALM", 1000, "今日の夕飯なに")])

    async def broken(session, record) -> None:
        raise RuntimeError("handler bug")

    worker = InboxWorker(sessions, broken, give_up=partial(alarm_for_unhandled, lexicon=LEXICON), retry_delays=[timedelta(0)])
    await worker.drain()
    await worker.drain()
    async with sessions() as session:
        events = {e.source_id: e for e in await session.exec(select(InboxEvent))}
        consultations = {c.user_id: c for c in await session.exec(select(Consultation))}
    assert {e.status for e in events.values()} == {InboxStatus.FAILED}
    assert (events["UDANGER"].floor_level, events["UCALM"].floor_level) == ("imminent", "low")
    assert consultations["UDANGER"].escalated_at is not None, "the person in danger is on the supervisors' alerts"
    assert consultations["UCALM"].escalated_at is None
    await engine.dispose()


async def tsunagi(*args: str, database_url: str) -> tuple[int, str]:
    """Run the command beside the service without blocking its loop (its sessions must go on)."""
    env = {**os.environ, "DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(TSUNAGI, *args, env=env, stdout=PIPE, stderr=PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert b"Traceback" not in stderr, stderr.decode()
    return process.returncode, stdout.decode()


async def health(service: Service) -> dict:
    async with aiohttp.ClientSession() as client, client.get(f"{service.url}/healthz") as response:
        assert response.status == 200
        return await response.json()


async def test_failures_show_in_healthz_and_the_console_and_the_cli_puts_them_back(
    service: Service, console, sqlite_url: str
) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await settle(service)
    assert (await health(service))["status"] == "ok"
    async with service.app[SESSIONS]() as session:
        event = InboxEvent(
            webhook_event_id="01FAILED00000000000000000", source_id=user, event_type="message", occurred_at=utcnow(),
            payload=text_event(user, 5000, SECRET_TEXT), status=InboxStatus.FAILED, attempts=8,
            last_error="RuntimeError: handler bug", failed_at=utcnow() - timedelta(hours=1), floor_level="imminent",
        )
        row = OutboxMessage(
            to=user, messages=[{"type": "text", "text": "届かなかった返事"}], status=OutboxStatus.FAILED, attempts=10,
            last_error="gave up after 10 attempts: LINE 500", failed_at=utcnow(),
        )
        session.add_all([event, row])
        await session.commit()
        event_id, row_id = event.id, row.id

    body = await health(service)
    assert body["status"] == "degraded" and body["failed"] == {"inbox": 1, "outbox": 1}

    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    _, live = await supervisor.get("/console/supervisor/live")
    assert "受信 1 件・送信 1 件" in live and "level-imminent" in live and f"受信 #{event_id}" in live
    status, page = await supervisor.get("/console/supervisor/failures")
    assert status == 200
    assert f"#{event_id}" in page and f"#{row_id}" in page and "message/text" in page and "handler bug" in page
    assert SECRET_TEXT not in page and "届かなかった返事" not in page, "never what was written"
    counselor_status, _ = await (await _logged_in(service, console, "c1")).get("/console/supervisor/failures")
    assert counselor_status == 403

    code, listed = await tsunagi("inbox", "failed", database_url=sqlite_url)
    assert code == 0 and f"{event_id}\t" in listed and "floor=imminent" in listed
    assert SECRET_TEXT not in listed
    assert (await tsunagi("inbox", "retry", database_url=sqlite_url))[0] == 2, "an id or --all is required"
    assert (await tsunagi("inbox", "retry", "999", database_url=sqlite_url))[0] == 2
    assert (await tsunagi("inbox", "retry", str(event_id), database_url=sqlite_url))[0] == 0
    assert (await tsunagi("outbox", "retry", "--all", database_url=sqlite_url))[0] == 0
    await settle(service)
    async with service.app[SESSIONS]() as session:
        event = await session.get(InboxEvent, event_id)
        row = await session.get(OutboxMessage, row_id)
    assert event.status == InboxStatus.DONE, "the retried event was handled"
    assert (row.status, row.sent_via) == (OutboxStatus.SENT, "push")
    delivered = [m["message"].get("text", "") for m in service.line.messages_for(user)]
    assert "届かなかった返事" in delivered
    assert (await health(service))["status"] == "ok"


async def test_a_failure_dismissed_stops_counting(service: Service, sqlite_url: str) -> None:
    async with service.app[SESSIONS]() as session:
        row = OutboxMessage(to="Ugone", messages=[], status=OutboxStatus.FAILED, last_error="LINE 400: bad", failed_at=utcnow())
        session.add(row)
        await session.commit()
    assert (await health(service))["failed"]["outbox"] == 1
    assert (await tsunagi("outbox", "dismiss", str(row.id), database_url=sqlite_url))[0] == 0
    assert (await health(service))["status"] == "ok"
    assert (await tsunagi("outbox", "dismiss", str(row.id), database_url=sqlite_url))[0] == 2


async def _logged_in(service: Service, console, login: str):
    await add_account(service, login)
    client = console()
    await client.login(login)
    return client



async def test_a_refused_token_shows_as_paused_in_healthz_and_to_supervisors(service: Service, console) -> None:
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    service.line.fail("*", 401, seconds=60)
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await settle(service)
    body = await health(service)
    assert body["status"] == "degraded" and body["outbox_sender"].startswith("paused: LINE 401")
    _, live = await supervisor.get("/console/supervisor/live")
    assert "LINE への送信を止めています" in live
    async with service.app[SESSIONS]() as session:
        [greeting] = list(await session.exec(select(OutboxMessage)))
    assert greeting.status == OutboxStatus.PENDING, "the backlog is kept"


async def test_a_supervisor_retries_and_dismisses_from_the_console_and_each_is_audited(service: Service, console) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await settle(service)
    async with service.app[SESSIONS]() as session:
        retried = OutboxMessage(to=user, messages=[{"type": "text", "text": "もう一度"}], status=OutboxStatus.FAILED, last_error="LINE 500", failed_at=utcnow())
        dismissed = OutboxMessage(to=user, messages=[{"type": "text", "text": "不要"}], status=OutboxStatus.FAILED, last_error="LINE 400", failed_at=utcnow())
        session.add_all([retried, dismissed])
        await session.commit()
    await add_account(service, "boss", StaffRole.SUPERVISOR)
    supervisor = console()
    await supervisor.login("boss")
    await supervisor.get("/console/supervisor/failures")
    assert (await supervisor.post(f"/console/supervisor/failures/outbox/{retried.id}/retry"))[0] == 303
    assert (await supervisor.post(f"/console/supervisor/failures/outbox/{dismissed.id}/dismiss"))[0] == 303
    assert (await supervisor.post(f"/console/supervisor/failures/outbox/{dismissed.id}/dismiss"))[0] == 404, "only a failed item"
    assert (await supervisor.post(f"/console/supervisor/failures/outbox/{retried.id}/erase"))[0] == 404
    await settle(service)
    assert [m["message"]["text"] for m in service.line.messages_for(user)][-1] == "もう一度"
    assert (await health(service))["status"] == "ok"
    async with service.app[SESSIONS]() as session:
        audited = [(e.action, e.detail) for e in await session.exec(select(AuditEntry).where(AuditEntry.action.startswith("outbox_")))]
    assert audited == [("outbox_retry", f"outbox #{retried.id}"), ("outbox_dismiss", f"outbox #{dismissed.id}")]
