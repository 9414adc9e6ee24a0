"""The outbox sender against the LINE emulator over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from conftest import SECRET, TOKEN
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy import update
from sqlmodel import select

from bot.devtools.emulator import LineEmulator
from bot.line.messages import texts
from bot.line.outbox import MAX_ATTEMPTS, OutboxSender, cancel_pending_for, enqueue
from bot.runner import running
from bot.storage.db import create_engine, session_factory
from bot.storage.models import LineUser, OutboxMessage, OutboxStatus, utcnow


@dataclass
class Rig:
    line: LineEmulator
    sender: OutboxSender
    engine: AsyncEngine
    url: str

    async def enqueue(self, to: str, text: str, **options: object) -> None:
        async with session_factory(self.engine)() as session:
            enqueue(session, to, texts(text), **options)
            await session.commit()

    async def change(self, row_id: int, **values: object) -> None:
        async with session_factory(self.engine)() as session:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))
            await session.commit()

    async def rows(self) -> list[OutboxMessage]:
        async with session_factory(self.engine)() as session:
            return list(await session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def deliver(self, passes: int = 10) -> None:
        """Drain repeatedly, letting retry delays (tiny here) pass between drains."""
        for _ in range(passes):
            await self.sender.drain()
            if all(r.status != OutboxStatus.PENDING for r in await self.rows()):
                return
            await asyncio.sleep(0.05)

    def statuses(self, endpoint: str) -> list[int]:
        return [r["status"] for r in self.line.requests if r["endpoint"] == endpoint]


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
    line = LineEmulator(SECRET, TOKEN)
    async with running(line.app, "127.0.0.1", 0) as url:
        async with AsyncApiClient(Configuration(host=url, access_token=TOKEN)) as client:
            sender = OutboxSender(session_factory(engine), AsyncMessagingApi(client), base_delay=0.01, request_timeout=0.5, probe_interval=0.1)
            yield Rig(line, sender, engine, url)


def following(rig: Rig) -> str:
    user = rig.line.add_user()
    user.following = True
    return user.user_id


async def test_three_500s_then_delivered_exactly_once_with_one_retry_key(rig: Rig) -> None:
    user = following(rig)
    rig.line.fail("push", 500, times=3)
    await rig.enqueue(user, "こんにちは")
    await rig.deliver()
    assert rig.statuses("push") == [500, 500, 500, 200]
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["こんにちは"]
    keys = {r["retry_key"] for r in rig.line.requests}
    [row] = await rig.rows()
    assert keys == {row.retry_key} and row.status == OutboxStatus.SENT and row.attempts == 4


async def test_a_retry_after_line_accepted_counts_409_as_sent(rig: Rig) -> None:
    user = following(rig)
    await rig.enqueue(user, "一度だけ")
    await rig.deliver()
    # As if the process died after LINE accepted the push but before the row was marked sent (and emptied).
    async with session_factory(rig.engine)() as session:
        row = (await session.exec(select(OutboxMessage))).one()
        assert row.messages == [], "a sent row keeps no words"
        row.status, row.next_attempt_at, row.messages = OutboxStatus.PENDING, utcnow(), texts("一度だけ")
        session.add(row)
        await session.commit()
    await rig.deliver()
    assert rig.statuses("push") == [200, 409]
    assert len(rig.line.messages_for(user)) == 1
    assert (await rig.rows())[0].status == OutboxStatus.SENT


async def test_other_4xx_fails_with_lines_reason(rig: Rig) -> None:
    await rig.enqueue("U" + "f" * 32, "届かない")  # a user LINE does not know
    await rig.deliver()
    [row] = await rig.rows()
    assert row.status == OutboxStatus.FAILED
    assert "LINE 400" in row.last_error and "'to'" in row.last_error
    assert rig.statuses("push") == [400]


async def test_429_backs_off_longer(rig: Rig) -> None:
    user = following(rig)
    rig.line.fail("push", 429)
    await rig.enqueue(user, "あとで")
    await rig.sender.drain()
    [row] = await rig.rows()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and "429" in row.last_error
    assert row.next_attempt_at - utcnow() > timedelta(seconds=25)


async def test_timeout_is_retried_and_delivered_once(rig: Rig) -> None:
    user = following(rig)
    rig.line.delay("push", seconds=1.0)
    await rig.enqueue(user, "おそい")
    await rig.deliver(passes=40)
    [row] = await rig.rows()
    assert row.status == OutboxStatus.SENT and row.attempts >= 2
    await asyncio.sleep(1.0)  # let the slow first request finish at the emulator
    assert len(rig.line.messages_for(user)) == 1


async def test_fresh_reply_token_is_used_and_a_stale_one_falls_back_to_push(rig: Rig) -> None:
    user = following(rig)
    fresh = rig.line.event("message", user)["replyToken"]
    await rig.enqueue(user, "返信", reply_token=fresh, event_time=utcnow())
    stale = rig.line.event("message", user)["replyToken"]
    await rig.enqueue(user, "古い", reply_token=stale, event_time=utcnow() - timedelta(minutes=5))
    used = fresh  # a token LINE has already consumed
    await rig.enqueue(user, "使用済み", reply_token=used, event_time=utcnow())
    await rig.deliver()
    assert [(m["message"]["text"], m["via"]) for m in rig.line.messages_for(user)] == [
        ("返信", "reply"),
        ("古い", "push"),
        ("使用済み", "push"),
    ]
    assert rig.statuses("reply") == [200, 400]


async def test_order_per_user_holds_through_failures(rig: Rig) -> None:
    user, other = following(rig), following(rig)
    rig.line.fail("push", 500, times=1)
    for n in range(5):
        await rig.enqueue(user, f"{n}")
        await rig.enqueue(other, f"other {n}")
    await rig.deliver()
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["0", "1", "2", "3", "4"]
    assert len(rig.line.messages_for(other)) == 5


async def test_unfollow_cancels_pending_and_stops_sending(rig: Rig) -> None:
    user = following(rig)
    await rig.enqueue(user, "前")
    async with session_factory(rig.engine)() as session:
        session.add(LineUser(user_id=user, following=False))
        await cancel_pending_for(session, user)
        await session.commit()
    await rig.enqueue(user, "後")  # written by a handler that had not yet seen the unfollow
    await rig.deliver()
    assert [r.status for r in await rig.rows()] == [OutboxStatus.CANCELLED, OutboxStatus.CANCELLED]
    assert rig.line.requests == []


async def test_more_than_five_messages_are_split_and_multicast_reaches_many(rig: Rig) -> None:
    users = [following(rig) for _ in range(3)]
    async with session_factory(rig.engine)() as session:
        messages = [{"type": "text", "text": str(n)} for n in range(7)]
        enqueue(session, users[0], messages)
        enqueue(session, "room:1", texts("みなさんへ"), recipients=users)
        await session.commit()
    await rig.deliver()
    # A multicast keeps its own order, independent of each person's own messages.
    personal = [m["message"]["text"] for m in rig.line.messages_for(users[0]) if m["via"] == "push"]
    assert personal == [str(n) for n in range(7)]
    assert all([m["message"]["text"] for m in rig.line.messages_for(u) if m["via"] == "multicast"] == ["みなさんへ"] for u in users)
    assert rig.statuses("push") == [200, 200]


async def test_an_unexpected_failure_counts_backs_off_and_is_set_aside_so_later_messages_go(rig: Rig) -> None:
    user = following(rig)
    async with session_factory(rig.engine)() as session:
        enqueue(session, user, [{"type": "no-such-type", "text": "壊れた"}])  # the SDK cannot build this request
        await session.commit()
    await rig.enqueue(user, "あとの返事")
    await rig.deliver(passes=200)  # retry delays are tiny here (5 s in all); each attempt is counted and waited for
    broken, later = await rig.rows()
    assert broken.status == OutboxStatus.FAILED and broken.attempts == MAX_ATTEMPTS and broken.failed_at is not None
    assert f"gave up after {MAX_ATTEMPTS} attempts: ValueError" in broken.last_error
    assert "壊れた" not in broken.last_error and "\\u58ca" not in broken.last_error, "no message text in what supervisors see"
    assert later.status == OutboxStatus.SENT, "the person's later message went once the broken one was set aside"
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["あとの返事"]


async def test_a_row_whose_sender_died_on_its_last_attempt_is_set_aside_unsent(rig: Rig) -> None:
    user = following(rig)
    await rig.enqueue(user, "最後")
    [row] = await rig.rows()
    # Every attempt so far was counted when claimed, and none finished (the process was killed each time).
    await rig.change(row.id, attempts=MAX_ATTEMPTS)
    await rig.deliver()
    [row] = await rig.rows()
    assert row.status == OutboxStatus.FAILED and "never finished" in row.last_error
    assert rig.line.requests == []


async def test_an_unreadable_answer_to_a_reply_counts_as_sent_and_nothing_goes_twice(rig: Rig) -> None:
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    rig.line.garble("reply")
    await rig.enqueue(user, "一回だけ", reply_token=token, event_time=utcnow())
    rig.line.garble("push")
    await rig.enqueue(user, "二通目")
    await rig.deliver()
    assert [(r.status, r.sent_via) for r in await rig.rows()] == [(OutboxStatus.SENT, "reply-unread"), (OutboxStatus.SENT, "push-unread")]
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["一回だけ", "二通目"]
    assert rig.statuses("reply") == [200] and rig.statuses("push") == [200]


class Clock:
    """A clock the test moves (the sender's probe interval is judged on it)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_a_refused_token_pauses_sending_in_every_process_keeps_the_backlog_and_one_probe_resumes_all(
    rig: Rig, database_url: str
) -> None:
    users = [following(rig) for _ in range(3)]
    rig.line.fail("*", 401, seconds=3600)
    for n in range(3):
        for user in users:
            await rig.enqueue(user, f"{n}")
    # Two senders on two engines: two processes, as far as the database can tell.
    clock = Clock()
    other_engine = create_engine(database_url)
    async with AsyncApiClient(Configuration(host=rig.url, access_token=TOKEN)) as client:
        senders = [
            OutboxSender(session_factory(engine), AsyncMessagingApi(client), base_delay=0.01, request_timeout=2.0, probe_interval=10, clock=clock)
            for engine in (rig.engine, other_engine)
        ]
        await senders[0].drain()
        assert senders[0].paused is not None and "401" in senders[0].paused
        refused = len(rig.line.requests)
        assert refused <= len(users), "sending stopped at the first refusals instead of working through the backlog"
        await senders[1].drain()
        assert senders[1].paused == senders[0].paused, "the other process pauses too, without trying LINE"
        assert len(rig.line.requests) == refused
        rows = await rig.rows()
        assert {r.status for r in rows} == {OutboxStatus.PENDING}, "nothing thrown away"
        assert {r.attempts for r in rows} == {0}, "a refused token is not the rows' fault"

        clock.advance(11)  # a probe is due: one process makes it, while LINE still refuses
        await asyncio.gather(senders[0].drain(), senders[1].drain())
        assert rig.statuses("info") == [401], "one probe for both processes"
        rig.line.clear_faults()
        await asyncio.gather(senders[0].drain(), senders[1].drain())
        assert rig.statuses("info") == [401], "no probe before its interval"
        clock.advance(11)
        await senders[1].drain()
        assert rig.statuses("info") == [401, 200] and senders[1].paused is None
        await senders[0].drain()
        assert senders[0].paused is None, "the probe of one process resumed the other"
    await other_engine.dispose()
    assert {r.status for r in await rig.rows()} == {OutboxStatus.SENT}
    for user in users:
        assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["0", "1", "2"]


async def test_a_reply_cut_off_whose_token_went_stale_is_set_aside_not_pushed(rig: Rig) -> None:
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    rig.line.delay("reply", seconds=1.0, after_work=True)  # LINE takes the reply; its answer comes too late
    await rig.enqueue(user, "一度だけ届く", reply_token=token, event_time=utcnow())
    await rig.enqueue(user, "次")
    clock = Clock()
    sender = OutboxSender(session_factory(rig.engine), rig.sender._api, base_delay=0.01, request_timeout=0.5, clock=clock)
    await sender.drain()
    [first, _] = await rig.rows()
    assert first.status == OutboxStatus.PENDING and first.reply_unconfirmed == 1
    clock.advance(120)  # the token is stale before the next attempt (LINE refused sending meanwhile, say)
    await sender.drain()
    first, second = await rig.rows()
    assert first.status == OutboxStatus.FAILED and "not pushed" in first.last_error
    assert second.status == OutboxStatus.SENT, "the person's later messages still go"
    await asyncio.sleep(1.0)
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["一度だけ届く", "次"]
    assert rig.statuses("push") == [200], "only the second row was pushed"


async def test_a_reply_refused_with_a_status_did_not_go_and_is_pushed_once_its_token_is_stale(rig: Rig) -> None:
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    rig.line.fail("reply", 429)
    await rig.enqueue(user, "あとで", reply_token=token, event_time=utcnow())
    clock = Clock()
    sender = OutboxSender(session_factory(rig.engine), rig.sender._api, base_delay=0.01, clock=clock)
    await sender.drain()
    [row] = await rig.rows()
    assert row.status == OutboxStatus.PENDING and row.reply_unconfirmed == 0, "LINE answered: that reply did not go"
    clock.advance(120)
    await sender.drain()
    assert [(m["message"]["text"], m["via"]) for m in rig.line.messages_for(user)] == [("あとで", "push")]


async def test_a_token_with_too_little_life_left_is_not_tried_a_push_goes_instead(rig: Rig) -> None:
    # Were the reply's answer lost, no second reply could tell whether it went before the token went stale.
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    await rig.enqueue(user, "ぎりぎり", reply_token=token, event_time=utcnow() - timedelta(seconds=49.5))
    await rig.deliver()
    assert [(m["message"]["text"], m["via"]) for m in rig.line.messages_for(user)] == [("ぎりぎり", "push")]
    assert rig.statuses("reply") == []


async def test_a_reply_answered_500_may_have_gone_and_is_tried_again_by_reply_while_fresh(rig: Rig) -> None:
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    rig.line.fail("reply", 500)  # LINE's 5xx leaves it open whether the message went (here it did not)
    await rig.enqueue(user, "返信", reply_token=token, event_time=utcnow())
    await rig.deliver()
    [row] = await rig.rows()
    assert (row.status, row.sent_via) == (OutboxStatus.SENT, "reply")
    assert rig.statuses("reply") == [500, 200] and rig.statuses("push") == []


async def test_a_reply_that_timed_out_after_line_took_it_is_not_sent_again(rig: Rig) -> None:
    user = following(rig)
    token = rig.line.event("message", user)["replyToken"]
    rig.line.delay("reply", seconds=1.0, after_work=True)  # LINE takes the reply; its answer comes too late
    await rig.enqueue(user, "一度だけ届く", reply_token=token, event_time=utcnow())
    await rig.sender.drain()
    await asyncio.sleep(1.0)
    await rig.deliver(passes=40)
    [row] = await rig.rows()
    assert (row.status, row.sent_via) == (OutboxStatus.SENT, "reply-before")
    assert [m["message"]["text"] for m in rig.line.messages_for(user)] == ["一度だけ届く"]
    assert rig.statuses("push") == [], "no push of a reply LINE had delivered"
