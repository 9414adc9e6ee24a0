"""Retention (content/retention.yaml): words go when their period is over, the report's figures stay."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import REPO, TSUNAGI, run_service, settle
from sqlmodel import select
from traces import UNTIL, everything, report, simulated_period_with_words

from bot.appkeys import SESSIONS
from bot.guidance.content import ContentError, load_content
from bot.privacy import retention
from bot.privacy.retention import apply_retention
from bot.storage.db import create_engine, session_factory
from bot.storage.models import (
    AuditEntry,
    InboxEvent,
    InboxStatus,
    UserMessage,
    clock_at,
)


async def test_a_purge_removes_every_kind_of_words_once_and_the_report_is_unchanged(database_url: str, content, monkeypatch) -> None:
    # Flags and emergency records are stripped a few at a time: every batch must be reached.
    monkeypatch.setattr(retention, "STRIP_BATCH", 3)
    policy = content.retention
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await simulated_period_with_words(session, content)
        session.add(AuditEntry(action="opened_consultation", at=UNTIL))
        await session.commit()
    async with sessions() as session:
        before, words_before = await report(session), await everything(session)
    assert "相談者の言葉" in words_before and "相談員のメモ" in words_before and "記録票の自由記述" in words_before

    # A day after the week only sent messages older than their week go; every other period is still running.
    with clock_at(UNTIL + timedelta(days=1)):
        async with sessions() as session:
            early = await apply_retention(session, policy)
            await session.rollback()
    assert early.pop("outboxmessage: finished messages deleted") > 0 and set(early.values()) == {0}

    # Past the consultations' period but not the record's: chat words and flag excerpts go, notes stay.
    with clock_at(UNTIL + timedelta(days=policy.consultation_text_days + 1)):
        async with sessions() as session:
            counts = await apply_retention(session, policy)
            await session.commit()
        async with sessions() as session:
            again = await apply_retention(session, policy)
            await session.commit()
    assert counts["usermessage: texts deleted"] > 0 and counts["chatentry: texts deleted"] > 0
    assert counts["riskflag: quoted words deleted"] > 0 and counts["roommessage: texts deleted"] > 0
    assert counts["consultationrecord: notes deleted"] == 0 and counts["auditentry: entries deleted"] == 0
    assert set(again.values()) == {0}, "a second run (another process, the next night) finds nothing left"
    async with sessions() as session:
        middle = await everything(session)
        assert await report(session) == before
    for gone in ("相談者の言葉", "相談員の返事", "相談員のメモ", "居場所での言葉"):
        assert gone not in middle
    assert "記録票の自由記述" in middle and "計画の答え" in middle

    # Past every period but the audit log's: the record's and the emergency record's free text go too.
    with clock_at(UNTIL + timedelta(days=max(policy.record_note_days, policy.emergency_note_days) + 2)):
        async with sessions() as session:
            counts = await apply_retention(session, policy)
            await session.commit()
    assert counts["consultationrecord: notes deleted"] > 0 and counts["emergencyresponse: free text deleted"] > 0
    async with sessions() as session:
        after = await everything(session)
        assert await report(session) == before, "the report is made of counts and structured fields only"
        assert (await session.exec(select(AuditEntry))).all(), "the audit log is kept longest"
    for gone in ("記録票の自由記述", "計画の答え", "連絡のメモ", "終わりのメモ"):
        assert gone not in after
    assert "'who': '119'" in after, "who was contacted in an emergency stays"

    with clock_at(UNTIL + timedelta(days=policy.audit_days + 1)):
        async with sessions() as session:
            assert (await apply_retention(session, policy))["auditentry: entries deleted"] == 1
    await engine.dispose()


async def test_a_processed_event_keeps_only_its_id_and_a_redelivery_is_still_recognised(database_url: str, content) -> None:
    async with run_service(database_url, content) as service:
        user = service.line.add_user().user_id
        await service.line.send_text(user, "誰にも言えないこと")
        await settle(service)
        async with service.app[SESSIONS]() as session:
            [event] = list(await session.exec(select(InboxEvent)))
            [message] = list(await session.exec(select(UserMessage)))
        assert event.status == InboxStatus.DONE and event.payload == {} and event.webhook_event_id
        assert message.text == "誰にも言えないこと"
        redelivered = {"type": "message", "webhookEventId": event.webhook_event_id, "timestamp": 1, "mode": "active", "source": {"type": "user", "userId": user},
                       "replyToken": "r", "message": {"id": "1", "type": "text", "text": "誰にも言えないこと"}, "deliveryContext": {"isRedelivery": False}}
        await service.line.redeliver(redelivered)
        await settle(service)
        async with service.app[SESSIONS]() as session:
            assert len(list(await session.exec(select(InboxEvent)))) == 1
            assert len(list(await session.exec(select(UserMessage)))) == 1


def test_the_command_prints_what_it_removes_by_table_and_a_dry_run_removes_nothing(tmp_path: Path, sqlite_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url, "CONTENT_DIR": str(REPO / "content")}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TSUNAGI, "retention", "run", *arguments], env=env, capture_output=True, text=True, timeout=120, check=False)

    async def old_words() -> None:
        engine = create_engine(sqlite_url)
        async with session_factory(engine)() as session:
            session.add(UserMessage(user_id="U" + "0" * 32, line_message_id="1", kind="text", text="むかしの言葉", sent_at=UNTIL - timedelta(days=400)))
            await session.commit()
        await engine.dispose()

    asyncio.run(old_words())
    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert any(line.split() == ["usermessage:", "texts", "deleted", "1"] for line in dry.stdout.splitlines())
    assert "dry run: nothing was removed" in dry.stdout
    done = run()
    assert "usermessage: texts deleted" in done.stdout and "removed 1 in all" in done.stdout
    assert "removed 0 in all" in run().stdout


def test_content_check_refuses_an_audit_log_kept_shorter_than_what_it_names(tmp_path: Path) -> None:
    folder = tmp_path / "content"
    shutil.copytree(REPO / "content", folder)
    policy = folder / "retention.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("audit_days: 1825", "audit_days: 30"), encoding="utf-8")
    with pytest.raises(ContentError) as problem:
        load_content(folder)
    assert any(p.startswith(f"{policy}:") and "audit_days must be the longest" in p for p in problem.value.problems)
