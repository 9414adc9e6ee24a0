"""`tsunagi line setup`: what a LINE channel needs from the service, done through the Messaging API.

Reads the bot's info, makes LINE hold the rich menus (`richmenu.sync_menus`), sets the webhook
endpoint and runs LINE's webhook test, then lists what only LINE's own consoles can change. Every
step reads first and changes only what differs, so running it again changes nothing; `dry_run`
only reads and says what it would do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    SetWebhookEndpointRequest,
    TestWebhookEndpointRequest,
)

from bot.line.richmenu import MenuDesign, find_font, sync_menus
from bot.settings import Settings

# What the Messaging API cannot change: LINE Official Account Manager's response settings and the
# LINE Developers console's webhook settings. Printed after every run.
BY_HAND = (
    "LINE Developers console > Messaging API: turn 'Webhook redelivery' on (nothing is lost while tsunagi restarts)",
    "LINE Official Account Manager > Response settings: turn 'Auto-reply messages' off (tsunagi answers)",
    "LINE Official Account Manager > Response settings: turn 'Greeting message' off (tsunagi greets, with its privacy notice)",
)
# Only while the bot's info says LINE marks every message read on arrival.
CHAT_ON = "LINE Official Account Manager > Response settings: turn 'Chat' on, so a message shows 既読 only when a counselor has read it"


@dataclass(frozen=True)
class SetupReport:
    """What the set-up found, did (or would do), and what is left to do by hand."""

    bot: str
    steps: list[str]
    to_do: list[str]


@asynccontextmanager
async def line_clients(settings: Settings) -> AsyncIterator[tuple[AsyncMessagingApi, AsyncMessagingApiBlob]]:
    """The Messaging API and its data host (images and files), each at the configured base URL."""
    token = settings.line_channel_access_token.get_secret_value()
    async with (
        AsyncApiClient(Configuration(host=settings.line_api_base, access_token=token)) as api_client,
        AsyncApiClient(Configuration(host=settings.line_data_base, access_token=token)) as data_client,
    ):
        yield AsyncMessagingApi(api_client), AsyncMessagingApiBlob(data_client)


async def set_up_channel(settings: Settings, designs: list[MenuDesign], webhook_url: str, *, default: str, dry_run: bool) -> SetupReport:
    """Bring the channel to what tsunagi needs; see the module's description."""
    font = find_font()
    async with line_clients(settings) as (api, blob):
        info = await api.get_bot_info()
        to_do = [*BY_HAND, *([] if info.mark_as_read_mode == "manual" else [CHAT_ON])]
        steps = await sync_menus(api, blob, designs, font, default=default, dry_run=dry_run)
        endpoint = await api.get_webhook_endpoint()
        if endpoint.endpoint != webhook_url:
            steps.append(f"webhook endpoint {endpoint.endpoint or '(none)'} -> {webhook_url}")
            if not dry_run:
                await api.set_webhook_endpoint(SetWebhookEndpointRequest(endpoint=webhook_url))
        else:
            steps.append(f"webhook endpoint is {webhook_url} already")
        if not endpoint.active:
            to_do.insert(0, "LINE Developers console > Messaging API: turn 'Use webhook' on")
        if dry_run:
            steps.append(f"test the webhook at {webhook_url}")
        else:
            test = await api.test_webhook_endpoint(TestWebhookEndpointRequest(endpoint=webhook_url))
            outcome = "succeeded" if test.success else f"FAILED: {test.status_code} {test.reason} {test.detail or ''}".rstrip()
            steps.append(f"LINE's webhook test {outcome}")
            if not test.success:
                to_do.insert(0, f"make {webhook_url} reachable from LINE (is `tsunagi serve` running behind HTTPS?), then run this again")
    bot = f"{info.display_name} ({info.basic_id}), chat mode {info.chat_mode}, read {info.mark_as_read_mode}"
    return SetupReport(bot, steps, to_do)
