"""The person's earlier consultations beside the chat, in Chromium: shown when opened, and the read audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import Service, add_account, settle
from sqlmodel import select
from test_console_pages_browser import log_in

from bot.appkeys import SESSIONS
from bot.storage.models import (
    AuditEntry,
    Consultation,
    ConsultationRecord,
    ConsultationStatus,
    Organisation,
    Referral,
    ReferralStatus,
    utcnow,
)

pytestmark = pytest.mark.browser


async def test_earlier_consultations_appear_beside_the_chat_and_are_audited(service: Service, browser) -> None:
    aoi = await add_account(service, "aoi")
    user = service.line.add_user().user_id
    await service.line.follow(user)
    before = utcnow() - timedelta(days=20)
    async with service.app[SESSIONS]() as session:
        earlier = Consultation(user_id=user, category="suicidal", arrived_in_hours=True, status=ConsultationStatus.ENDED, counselor_id=aoi.id, created_at=before, queued_at=before, ended_at=before)
        organisation = Organisation(name="ひらかた相談室", region="大阪府枚方市", contact="072-000-0000")
        session.add_all([earlier, organisation])
        await session.flush()
        session.add(ConsultationRecord(consultation_id=earlier.id, staff_id=aoi.id, age_band="teens_late", worries=["living_money"], responses=["listening"], serious=True, note="アルバイト先の人間関係で眠れない", filed_at=before))
        session.add(Referral(consultation_id=earlier.id, organisation_id=organisation.id, status=ReferralStatus.CONNECTED, proposed_by=aoi.id))
        await session.commit()
    await service.line.send_postback(user, "a=category&id=suicidal")
    await settle(service)
    async with service.app[SESSIONS]() as session:
        now = (await session.exec(select(Consultation).where(Consultation.user_id == user, Consultation.id != earlier.id))).one()

    page = await log_in(browser, service, "aoi")
    await page.get_by_role("button", name=f"#{now.id} に対応する").click()
    await page.wait_for_url(f"**/console/c/{now.id}")
    history = page.locator(f"#pane-{now.id} details.history")
    assert await history.locator("summary").inner_text() == "以前の相談（1件）"

    async def history_reads() -> int:
        async with service.app[SESSIONS]() as session:
            return len(list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_history", AuditEntry.consultation_id == now.id))))

    assert await history_reads() == 0, "nothing is read before the counselor opens it"
    await history.locator("summary").click()
    shown = history.locator(".earlier-consultation")
    await shown.wait_for()
    text = await shown.inner_text()
    for expected in (f"{before:%Y/}", "死にたいほどつらい気持ち", "10代後半", "暮らし・お金", "傾聴", "深刻な相談\nはい", "アルバイト先の人間関係で眠れない", "「ひらかた相談室」つながった"):
        assert expected in text, expected
    assert await history_reads() == 1
