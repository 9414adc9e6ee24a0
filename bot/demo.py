"""`tsunagi demo`: the bot and a local LINE emulator on this machine, talking over real HTTP."""

from __future__ import annotations

from contextlib import AsyncExitStack

import typer

from bot.app import init_app
from bot.content import Content
from bot.emulator import LineEmulator
from bot.runner import running, wait_for_stop
from bot.settings import Settings


async def run_demo(settings: Settings, content: Content, host: str, port: int) -> None:
    """Start the emulator, point the bot at it, print where to chat, and run until Ctrl-C."""
    emulator = LineEmulator(settings.line_channel_secret, settings.line_channel_access_token)
    async with AsyncExitStack() as stack:
        emulator_url = await stack.enter_async_context(running(emulator.app, host, port + 1))
        bot_settings = settings.model_copy(update={"line_api_base": emulator_url})
        bot_url = await stack.enter_async_context(running(init_app(bot_settings, content), host, port))
        emulator.webhook_url = f"{bot_url}/callback"
        typer.echo(
            "\n".join(
                [
                    "tsunagi demo is running (Ctrl-C stops it).",
                    f"  Chat as a LINE user:  {emulator_url}/",
                    f"  Bot webhook:          {bot_url}/callback",
                    f"  Bot health:           {bot_url}/healthz",
                    f"  Database:             {settings.database_url}",
                ]
            )
        )
        await wait_for_stop()
