"""What operators watch: /metrics in Prometheus's format and JSON log lines carrying ids, never text."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import aiohttp
from conftest import REPO, SECRET, TOKEN, TSUNAGI, Service, free_port, settle
from prometheus_client.parser import text_string_to_metric_families

from bot.devtools.emulator import LineEmulator
from bot.runner import running

SERIES = {
    "tsunagi_webhook_seconds", "tsunagi_screening_seconds", "tsunagi_line_api_errors", "tsunagi_backlog",
    "tsunagi_backlog_oldest_seconds", "tsunagi_failed", "tsunagi_queue_waiting", "tsunagi_queue_oldest_wait_seconds",
    "tsunagi_live_connections", "tsunagi_listen_up", "tsunagi_sending_paused", "tsunagi_worker_running",
}


async def scrape(service: Service) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as client, client.get(f"{service.url}/metrics") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
    families = list(text_string_to_metric_families(text))
    assert SERIES <= {f.name for f in families}, SERIES - {f.name for f in families}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


async def test_metrics_show_every_series_an_operator_needs(service: Service) -> None:
    user = service.line.add_user().user_id
    await service.line.follow(user)
    await service.line.send_postback(user, "a=category&id=suicidal")
    await settle(service)
    service.line.fail("*", 500)  # the next call to LINE, whichever
    await service.line.send_text(user, "きいてほしい")
    await settle(service)
    await asyncio.sleep(2.5)  # the request that met a 500 is retried
    await settle(service)
    samples = await scrape(service)
    assert samples[("tsunagi_webhook_seconds_count", ())] >= 3
    assert samples[("tsunagi_screening_seconds_count", ())] >= 1
    assert samples[("tsunagi_line_api_errors_total", (("status", "500"),))] == 1
    # 「死にたいほどつらい気持ち」 starts at its category's floor, medium.
    assert samples[("tsunagi_queue_waiting", (("risk_level", "medium"),))] == 1
    assert samples[("tsunagi_queue_waiting", (("risk_level", "low"),))] == 0
    assert samples[("tsunagi_queue_oldest_wait_seconds", (("risk_level", "medium"),))] > 0
    assert samples[("tsunagi_queue_waiting", (("risk_level", "imminent"),))] == 0
    assert samples[("tsunagi_backlog", (("queue", "inbox"),))] == 0
    assert samples[("tsunagi_failed", (("queue", "outbox"),))] == 0
    assert samples[("tsunagi_listen_up", ())] == 1 and samples[("tsunagi_sending_paused", ())] == 0


async def test_json_log_lines_carry_the_event_id_and_never_the_text(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"
    env = {**os.environ, "DATABASE_URL": database}
    assert subprocess.run([TSUNAGI, "db", "upgrade"], env=env, capture_output=True, timeout=60).returncode == 0
    line = LineEmulator(SECRET, TOKEN)
    async with running(line.app, "127.0.0.1", 0) as line_url:
        port = free_port()
        env |= {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_BASE": line_url,
                "CONTENT_DIR": str(REPO / "content"), "LOG_FORMAT": "json", "RISK_MODEL_DIR": "no-model"}
        log_file = (tmp_path / "serve.log").open("w")
        server = subprocess.Popen([TSUNAGI, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            line.webhook_url = f"http://127.0.0.1:{port}/callback"
            async with aiohttp.ClientSession() as client:
                for _ in range(1200):  # a loaded two-core machine can take most of a minute to start it
                    try:
                        async with client.get(f"http://127.0.0.1:{port}/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
            user = line.add_user().user_id
            # An event type LINE may add later has no handler: the service logs it, by id.
            assert await line.send_events([line.event("futureThing", user, secret="秘密の言葉")]) == 200
            for _ in range(100):
                if "has no handler" in (tmp_path / "serve.log").read_text():
                    break
                await asyncio.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log_file.close()
    records = [json.loads(raw) for raw in (tmp_path / "serve.log").read_text().splitlines() if raw.startswith("{")]
    assert records, "log lines are JSON objects"
    [unhandled] = [r for r in records if "has no handler" in r["message"]]
    assert unhandled["event_id"] == 1 and unhandled["levelname"] == "INFO"
    assert "秘密の言葉" not in (tmp_path / "serve.log").read_text()
