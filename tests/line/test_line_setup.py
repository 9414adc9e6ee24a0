"""`tsunagi line setup` against the emulator over real HTTP: rich menus made once, per language, with
LINE's limits; each person's menu following their language and consultation; the webhook set and tested."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import REPO, SECRET, TOKEN, Service, settle
from PIL import Image

from bot.appkeys import SETTINGS
from bot.conversation.richmenus import rich_menu_designs
from bot.line import richmenu
from bot.line.channel import set_up_channel
from bot.line.limits import RICH_MENU_IMAGE_MAX_BYTES
from bot.line.richmenu import RichMenuError, alias_id, draw, find_font


async def set_up(service: Service, content, *, dry_run: bool = False):
    return await set_up_channel(
        service.app[SETTINGS], rich_menu_designs(content), f"{service.url}/callback", default=alias_id("main", content.language), dry_run=dry_run
    )


async def test_running_the_set_up_twice_makes_each_menu_once(service: Service, content) -> None:
    line = service.line
    line.webhook_url = None  # a channel nobody has pointed at the service yet
    first = await set_up(service, content)
    menus = {body["name"].split()[1] for body in (m.body for m in line.rich_menus.values())}
    assert menus == {"tsunagi-main-ja", "tsunagi-consultation-ja", "tsunagi-main-en", "tsunagi-consultation-en"}
    assert set(line.rich_menu_aliases) == menus
    assert line.default_rich_menu == line.rich_menu_aliases["tsunagi-main-ja"]
    assert line.webhook_url == f"{service.url}/callback"
    assert "LINE's webhook test succeeded" in first.steps
    created = [r for r in line.requests if r["endpoint"] == "richmenu-image"]

    second = await set_up(service, content)
    assert len(line.rich_menus) == 4, "a second run makes no new menu"
    assert [r for r in line.requests if r["endpoint"] == "richmenu-image"] == created
    assert all("is there already" in step for step in second.steps if "rich menu" in step and "default" not in step)
    assert not any(step.startswith(("alias", "default", "delete", "webhook endpoint (")) for step in second.steps)
    # What only LINE's consoles change is listed every time; Chat is on in the emulator (manual read).
    assert any("redelivery" in item for item in second.to_do) and not any("'Chat' on" in item for item in second.to_do)


async def test_a_changed_design_replaces_the_old_menu(service: Service, content) -> None:
    await set_up(service, content)
    old = service.line.rich_menu_aliases["tsunagi-main-ja"]
    changed = content.model_copy(update={"messages": content.messages.model_copy(update={"rich_menu_consult_label": "話す"})})
    steps = (await set_up(service, changed)).steps
    assert service.line.rich_menu_aliases["tsunagi-main-ja"] != old and old not in service.line.rich_menus
    assert any(step.startswith("delete old rich menu 'tsunagi tsunagi-main-ja") for step in steps)
    assert len(service.line.rich_menus) == 4


async def test_a_dry_run_changes_nothing(service: Service, content) -> None:
    report = await set_up(service, content, dry_run=True)
    assert service.line.rich_menus == {} and service.line.rich_menu_aliases == {}
    assert sum(step.startswith("create rich menu") for step in report.steps) == 4


def test_the_images_are_within_line_s_sizes_and_byte_limit(content) -> None:
    font = find_font()
    for design in rich_menu_designs(content):
        data = draw(design, font)
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("PNG", (2500, 843))
        assert len(data) <= RICH_MENU_IMAGE_MAX_BYTES


def test_without_a_japanese_font_the_set_up_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(richmenu.shutil, "which", lambda name: None)
    monkeypatch.setattr(richmenu, "FONT_PATHS", (Path("/nonexistent/ipag.ttf"),))
    with pytest.raises(RichMenuError, match="fonts-ipafont-gothic"):
        find_font()


async def test_the_emulator_refuses_images_line_refuses(service: Service, content) -> None:
    await set_up(service, content, dry_run=True)
    line = service.line
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        body = {"size": {"width": 2500, "height": 843}, "selected": False, "name": "t", "chatBarText": "メニュー",
                "areas": [{"bounds": {"x": 0, "y": 0, "width": 2500, "height": 843}, "action": {"type": "postback", "data": "a=menu"}}]}
        async with http.post(f"{service.line_url}/v2/bot/richmenu", json=body) as response:
            menu_id = (await response.json())["richMenuId"]
        upload = f"{service.line_data_url}/v2/bot/richmenu/{menu_id}/content"

        def png(size: tuple[int, int], noise: bool = False) -> bytes:
            out = io.BytesIO()
            (Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "white")).save(out, "PNG")
            return out.getvalue()

        too_big = png((2500, 843), noise=True)
        assert len(too_big) > RICH_MENU_IMAGE_MAX_BYTES
        async with http.post(upload, data=too_big, headers={"Content-Type": "image/png"}) as response:
            assert response.status == 413
        async with http.post(upload, data=png((1200, 405)), headers={"Content-Type": "image/png"}) as response:
            assert response.status == 400, "the image must be the menu's size"
        async with http.post(upload, data=b"GIF89a", headers={"Content-Type": "image/gif"}) as response:
            assert response.status == 415
        # The data host is its own: the API host does not take images.
        async with http.post(f"{service.line_url}/v2/bot/richmenu/{menu_id}/content", data=png((2500, 843)), headers={"Content-Type": "image/png"}) as response:
            assert response.status in (404, 405)
        async with http.post(upload, data=png((2500, 843)), headers={"Content-Type": "image/png"}) as response:
            assert response.status == 200
        async with http.post(upload, data=png((2500, 843)), headers={"Content-Type": "image/png"}) as response:
            assert response.status == 400, "LINE takes one image per menu"
    assert line.rich_menus[menu_id].image is not None


async def test_each_person_s_menu_follows_their_consultation_and_language(service: Service, content) -> None:
    await set_up(service, content)
    line = service.line
    aliases = line.rich_menu_aliases
    user = line.add_user().user_id
    await line.follow(user)
    await settle(service)
    assert line.shown_rich_menu(user) == aliases["tsunagi-main-ja"], "the default until they do something"
    await line.send_postback(user, "a=category&id=suicidal")
    await settle(service)
    assert line.shown_rich_menu(user) == aliases["tsunagi-consultation-ja"]
    await line.send_postback(user, "a=queue&do=cancel")
    await settle(service)
    assert line.shown_rich_menu(user) == aliases["tsunagi-main-ja"]
    await line.send_postback(user, "a=lang&id=en")
    await settle(service)
    assert line.shown_rich_menu(user) == aliases["tsunagi-main-en"]


async def test_every_tile_sends_a_tap_the_guidance_menu_answers(service: Service, content) -> None:
    await set_up(service, content)
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await settle(service)
    main = line.rich_menus[line.rich_menu_aliases["tsunagi-main-ja"]].body
    assert [a["action"]["label"] for a in main["areas"]] == ["相談する", "支援制度・窓口をさがす", "オンライン居場所", "緊急のとき"]
    answers = []
    for area in main["areas"]:
        before = len(line.messages_for(user))
        await line.send_postback(user, area["action"]["data"])
        await settle(service)
        answers.append(line.messages_for(user)[before]["message"])
    assert answers[0]["text"] == content.menu.prompt
    assert content.messages.emergency in answers[3]["text"]
    assert all(a.get("text") != content.messages.unknown_choice for a in answers), "every tile is a route the bot knows"


async def test_the_command_prints_the_plan_and_the_to_do(service: Service) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "LINE_API_BASE": service.line_url,
        "LINE_DATA_BASE": service.line_data_url,
    }
    command = [sys.executable, "-c", "from bot.cli import app; app()", "line", "setup", "--webhook-url", f"{service.url}/callback", "--dry-run"]
    done = await _run(command, env)
    assert done.returncode == 0, done.stderr
    assert "Would do:" in done.stdout and "create rich menu 'tsunagi tsunagi-main-ja" in done.stdout
    assert "Auto-reply messages' off" in done.stdout and "Greeting message' off" in done.stdout
    assert service.line.rich_menus == {}


async def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(*command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, out.decode(), err.decode())
