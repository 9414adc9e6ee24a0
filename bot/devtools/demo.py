"""`tsunagi demo`: the bot and a local LINE emulator on this machine, talking over real HTTP."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta

import typer
from aiohttp import web
from sqlmodel import select

from bot.app import StartupError, init_app
from bot.appkeys import ROOM_SCHEDULER, SESSIONS
from bot.consultation.staff import add_staff
from bot.conversation.richmenus import rich_menu_designs
from bot.devtools.emulator import LineEmulator
from bot.line.channel import set_up_channel
from bot.line.richmenu import RichMenuError, alias_id
from bot.guidance.content import Content
from bot.runner import running, stop_requested
from bot.settings import Settings
from bot.storage.db import create_engine, session_factory
from bot.storage.demo_guard import RealDatabaseError, claim_for_demo
from bot.storage.models import RoomSession, StaffRole, StaffUser, utcnow

# One account per role, so every part of the console can be tried; passwords are for this machine only.
DEMO_STAFF = [
    ("counselor", StaffRole.COUNSELOR, "相談員あおい"),
    ("counselor2", StaffRole.COUNSELOR, "相談員みどり"),
    ("supervisor", StaffRole.SUPERVISOR, "スーパーバイザー"),
    ("coordinator", StaffRole.COORDINATOR, "コーディネーター"),
    ("moderator", StaffRole.MODERATOR, "モデレーター"),
    ("facilitator", StaffRole.FACILITATOR, "見守りスタッフ"),
    ("admin", StaffRole.ADMIN, "管理者"),
]
DEMO_PASSWORD = "tsunagi-demo"


async def seed_demo_staff(settings: Settings) -> list[str]:
    """Create the demo accounts that do not exist yet; returns them as lines to print.

    Raises:
        StartupError: the database holds real people (`demo_guard.claim_for_demo`).
    """
    engine = create_engine(settings.database)
    try:
        async with session_factory(engine)() as session:
            try:
                await claim_for_demo(session, "demo")
            except RealDatabaseError as exc:
                raise StartupError(str(exc)) from None
            for login, role, display_name in DEMO_STAFF:
                if (await session.exec(select(StaffUser).where(StaffUser.login == login))).first() is None:
                    await add_staff(session, login, DEMO_PASSWORD, role, display_name)
            await session.commit()
    finally:
        await engine.dispose()
    return [f"    {login:12} {role.value:12} password: {DEMO_PASSWORD}" for login, role, _ in DEMO_STAFF]


async def open_demo_rooms(app: web.Application, content: Content) -> None:
    """A session of every room starting now, kept by the demo facilitator, so the ibasho can be tried at once."""
    now = utcnow()
    async with app[SESSIONS]() as session:
        facilitator = (await session.exec(select(StaffUser).where(StaffUser.login == "facilitator"))).one()
        for room in content.rooms.rooms:
            session.add(RoomSession(room_id=room.id, starts_at=now, ends_at=now + timedelta(minutes=room.duration_minutes), facilitator_id=facilitator.id))
        await session.commit()
    await app[ROOM_SCHEDULER].plan()


async def run_demo(settings: Settings, content: Content, host: str, port: int) -> None:
    """Start the emulator, point the bot at it, print where to chat, and run until Ctrl-C."""
    stop = stop_requested()
    emulator = LineEmulator(settings.line_channel_secret.get_secret_value(), settings.line_channel_access_token.get_secret_value())
    async with AsyncExitStack() as stack:
        emulator_url = await stack.enter_async_context(running(emulator.app, host, port + 1))
        emulator_data_url = await stack.enter_async_context(running(emulator.data_app, host, port + 2))
        bot_settings = settings.model_copy(update={"line_api_base": emulator_url, "line_data_base": emulator_data_url})
        app = init_app(bot_settings, content)
        bot_url = await stack.enter_async_context(running(app, host, port))
        emulator.webhook_url = f"{bot_url}/callback"
        # After the bot is up, which means the database is at the newest migration.
        accounts = await seed_demo_staff(settings)
        # The rich menus, as `tsunagi line setup` makes them on a real channel.
        try:
            designs = rich_menu_designs(content)
            await set_up_channel(bot_settings, designs, f"{bot_url}/callback", default=alias_id("main", content.language), dry_run=False)
        except RichMenuError as exc:
            typer.echo(f"No rich menu on the phone page: {exc}")
        await open_demo_rooms(app, content)
        typer.echo(
            "\n".join(
                [
                    "tsunagi demo is running (Ctrl-C stops it).",
                    f"  Chat as a LINE user:  {emulator_url}/",
                    f"  Counselor console:    {bot_url}/console  (accounts below)",
                    f"  Bot webhook:          {bot_url}/callback",
                    f"  Bot health:           {bot_url}/healthz",
                    f"  Database:             {settings.database_shown}",
                    "  Two-factor log-in:    "
                    + ("on for " + ", ".join(sorted(settings.console_second_factor_roles)) if settings.console_second_factor_roles else "off in this demo"),
                    *accounts,
                ]
            )
        )
        await stop.wait()
