"""Images and files from the person: fetched through LINE's content API (the emulator's data host), kept
like their words, shown to the counselor blurred until chosen (audited), files as downloads with their size."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Service, add_account, held_chat, log_in, settle
from sqlmodel import select

from bot.appkeys import CONTENT, SESSIONS
from bot.privacy.erasure import forget_person, forget_unsent
from bot.privacy.retention import apply_retention
from bot.storage.models import AuditEntry, Consultation, ConsultationStatus, MessageContent, UserMessage, clock_at, utcnow

PHOTO = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "phone-rich-menu.png"


async def contents(service: Service) -> list[MessageContent]:
    async with service.app[SESSIONS]() as session:
        return list(await session.exec(select(MessageContent).order_by(MessageContent.id)))


async def test_an_image_is_fetched_blurred_then_shown_and_audited(service: Service, console) -> None:
    user, consultation_id, counselor = await held_chat(service, console)
    photo = PHOTO.read_bytes()
    await service.line.send_image(user, photo)
    await settle(service)
    [kept] = await contents(service)
    assert (kept.data, kept.content_type, kept.size) == (photo, "image/png", len(photo))
    assert [r["status"] for r in service.line.requests if r["endpoint"] == "content"] == [200]

    _, page = await counselor.get(f"/console/c/{consultation_id}")
    href = f"/console/c/{consultation_id}/content/{kept.id}"
    assert f'data-reveal="{href}"' in page and f'src="{href}/blurred"' in page
    async with counselor.http.get(service.url + href + "/blurred") as response:
        blurred = await response.read()
    assert response.status == 200 and blurred != photo
    async with service.app[SESSIONS]() as session:
        assert not list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_content"))), "a blurred look is not an opening"
    async with counselor.http.get(service.url + href) as response:
        shown = await response.read()
        assert response.headers["Content-Type"] == "image/png" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert shown == photo
    async with service.app[SESSIONS]() as session:
        [entry] = list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_content")))
    assert (entry.consultation_id, entry.detail) == (consultation_id, f"content #{kept.id}")
    # Another counselor, not holding the chat, cannot open it.
    await add_account(service, "midori")
    other = console()
    await other.login("midori")
    async with other.http.get(service.url + href) as response:
        assert response.status == 404


async def test_a_file_is_a_download_with_its_size_never_shown_in_the_page(service: Service, console) -> None:
    user, consultation_id, counselor = await held_chat(service, console)
    await service.line.send_file(user, b"%PDF-1.4 " + b"x" * 300_000, "診断書.pdf")
    await settle(service)
    [kept] = await contents(service)
    _, page = await counselor.get(f"/console/c/{consultation_id}")
    assert "診断書.pdf（0.3 MB）をダウンロード" in page and "data-reveal" not in page
    async with counselor.http.get(f"{service.url}/console/c/{consultation_id}/content/{kept.id}") as response:
        assert response.headers["Content-Disposition"] == "attachment"
        assert response.headers["Content-Type"] == "application/octet-stream"


async def test_images_go_with_unsend_deletion_and_retention(service: Service, console) -> None:
    user, consultation_id, _ = await held_chat(service, console)
    for _ in range(2):
        await service.line.send_image(user)
    await settle(service)
    assert len(await contents(service)) == 2
    async with service.app[SESSIONS]() as session:
        first = (await session.exec(select(UserMessage).where(UserMessage.kind == "image").order_by(UserMessage.id))).first()
        await forget_unsent(session, user, first.line_message_id)
        await session.commit()
    assert len(await contents(service)) == 1
    policy = service.app[CONTENT].retention
    async with service.app[SESSIONS]() as session:
        consultation = await session.get(Consultation, consultation_id)
        consultation.status, consultation.ended_at = ConsultationStatus.ENDED, utcnow()
        session.add(consultation)
        await session.commit()
        with clock_at(utcnow() + timedelta(days=policy.consultation_text_days - 1)):
            assert (await apply_retention(session, policy))["messagecontent: images and files deleted"] == 0
        with clock_at(utcnow() + timedelta(days=policy.consultation_text_days + 1)):
            assert (await apply_retention(session, policy))["messagecontent: images and files deleted"] == 1
        await session.rollback()
        await forget_person(session, user, asked_by="test")
        await session.commit()
    assert await contents(service) == []


@pytest.mark.browser
async def test_an_image_from_the_phone_page_reaches_the_console_blurred_then_shown(service: Service, console, browser, tmp_path: Path) -> None:
    user, consultation_id, _ = await held_chat(service, console)
    phone = await browser.new_page(viewport={"width": 420, "height": 820})
    await phone.add_init_script(f'localStorage.setItem("tsunagi-emulator-users", JSON.stringify([{{id: "{user}", name: "ユーザー1"}}]))')
    await phone.goto(f"{service.line_url}/")
    await phone.locator("#image-file").set_input_files(str(PHOTO))
    await phone.locator(".bubble.user", has_text="（画像）").wait_for(timeout=10_000)
    await settle(service)
    page = await log_in(browser, service, "aoi")
    await page.goto(f"{service.url}/console/c/{consultation_id}")
    button = page.locator("[data-reveal]")
    await button.wait_for(timeout=10_000)
    assert await page.locator("img.revealed").count() == 0
    await button.click()
    await page.locator("img.revealed").wait_for(timeout=10_000)
    assert await page.locator("img.revealed").evaluate("img => img.naturalWidth") == 420
    await page.screenshot(path=str(tmp_path / "revealed.png"))
    async with service.app[SESSIONS]() as session:
        assert len(list(await session.exec(select(AuditEntry).where(AuditEntry.action == "opened_content")))) == 1
