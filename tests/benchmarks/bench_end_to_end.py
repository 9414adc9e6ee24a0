"""End-to-end benchmark: from the webhook POST to the reply received by the LINE emulator.

Run with `make bench` (or `.venv/bin/python tests/benchmarks/bench_end_to_end.py`); PostgreSQL targets need
the server of the tests (TSUNAGI_TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
People send the menu keyword, which is always answered, at a fixed rate (open loop); each target is timed
until the last reply has arrived. Targets:
  * bare: an aiohttp app that answers 200 and replies at once, with no database (the ceiling here);
  * tsunagi on SQLite, one process; on PostgreSQL, one process and two (deliveries alternate).
Reported: the rate sent, the sustained rate of replies (events / time to the last reply), and the
p50/p99 time from a POST to its reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.devtools.emulator import LineEmulator  # noqa: E402
from bot.runner import running  # noqa: E402
from bot.storage.crypto import generate_key  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SECRET, TOKEN = "bench-channel-secret", "bench-token"
POSTGRES_URL = os.environ.get("TSUNAGI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BARE_BOT = """
import json, sys
from aiohttp import ClientSession, web
async def callback(request):
    body = await request.json()
    for event in body["events"]:
        request.app["replies"].append(event["replyToken"])
        await request.app["client"].post(sys.argv[2] + "/v2/bot/message/reply", json={"replyToken": event["replyToken"],
            "messages": [{"type": "text", "text": "ok"}]}, headers={"Authorization": "Bearer " + sys.argv[3]})
    return web.json_response({})
async def client(app):
    app["client"] = ClientSession()
    yield
    await app["client"].close()
app = web.Application()
app["replies"] = []
app.cleanup_ctx.append(client)
app.router.add_post("/callback", callback)
app.router.add_get("/healthz", lambda request: web.json_response({}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_up(url: str, seconds: float = 120) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def fresh_postgres() -> tuple[str, str]:
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"tsunagi_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", name


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def run_load(line: LineEmulator, urls: list[str], people: int, events: int, rate: int, per_event: int) -> dict[str, float]:
    """Send `events` at `rate` per second, round robin over people and `urls`; wait for every reply
    (`per_event` messages each)."""
    users = [line.add_user(f"U{n:032x}") for n in range(people)]
    for user in users:
        user.following, user.timeline = True, []
    sent_at: dict[str, list[float]] = {user.user_id: [] for user in users}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as client:

        async def post(n: int) -> None:
            user = users[n % people].user_id
            event = line.event("message", user, message={"id": str(n), "type": "text", "text": "メニュー", "quoteToken": "q"})
            body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}, ensure_ascii=False).encode()
            headers = {"content-type": "application/json; charset=utf-8", "x-line-signature": line.sign(body)}
            sent_at[user].append(time.monotonic())
            async with client.post(f"{urls[n % len(urls)]}/callback", data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"webhook answered {response.status}")

        started = time.monotonic()
        tasks = []
        for n in range(events):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(n)))
        await asyncio.gather(*tasks)
        sending = time.monotonic() - started
        deadline = time.monotonic() + 600
        while sum(len(u.timeline) for u in users) < events * per_event and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    latencies = sorted(
        entry["at"] - sent for user in users for sent, entry in zip(sent_at[user.user_id], user.timeline[::per_event])
    )
    last = max(entry["at"] for user in users for entry in user.timeline)
    return {
        "sent_rate": events / sending,
        "reply_rate": events / (last - started),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def target(name: str, line: LineEmulator, line_url: str, processes: int, database_url: str | None, args: argparse.Namespace) -> dict[str, float]:
    bin_dir = Path(sys.executable).parent
    ports = [free_port() for _ in range(processes)]
    if database_url is None:
        servers = [subprocess.Popen([sys.executable, "-c", BARE_BOT, str(ports[0]), line_url, TOKEN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    else:
        env = {**os.environ, "DATABASE_URL": database_url, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
               "LINE_API_BASE": line_url, "CONTENT_DIR": str(REPO / "content"), "RISK_MODEL_DIR": args.model,
               "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or generate_key("bench")}
        subprocess.run([bin_dir / "tsunagi", "db", "upgrade"], env=env, check=True, capture_output=True)
        # With --profile, each process runs under cProfile and leaves its statistics in that folder.
        profile = [sys.executable, "-m", "cProfile", "-o"] if args.profile else []
        servers = [
            subprocess.Popen([*profile, *([f"{args.profile}/{name}-{processes}-{n}.prof"] if profile else []),
                              bin_dir / "tsunagi", "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n, port in enumerate(ports)
        ]
    try:
        for port in ports:
            await wait_until_up(f"http://127.0.0.1:{port}/healthz")
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        # How many messages answer one event: one delivery alone, then a moment for any that follow it.
        probe = line.add_user("U" + "f" * 32)
        probe.following, probe.timeline = True, []
        event = line.event("message", probe.user_id, message={"id": "probe", "type": "text", "text": "メニュー", "quoteToken": "q"})
        body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}, ensure_ascii=False).encode()
        async with aiohttp.ClientSession() as client:
            await client.post(f"{urls[0]}/callback", data=body, headers={"content-type": "application/json", "x-line-signature": line.sign(body)})
        while not probe.timeline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        per_event = len(probe.timeline)
        await run_load(line, urls, args.people, min(100, args.events), args.rate, per_event)  # warm-up
        return await run_load(line, urls, args.people, args.events, args.rate, per_event)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


async def main(args: argparse.Namespace) -> None:
    line = LineEmulator(SECRET, TOKEN)
    results = {}
    async with running(line.app, "127.0.0.1", 0) as line_url:
        only = set(args.only or ["bare", "sqlite", "pg"])
        if "bare" in only:
            results["bare aiohttp"] = await target("bare", line, line_url, 1, None, args)
        if "sqlite" in only:
            with tempfile.TemporaryDirectory() as tmp:
                results["sqlite, 1 process"] = await target("sqlite", line, line_url, 1, f"sqlite+aiosqlite:///{tmp}/bench.db", args)
        for processes in (1, 2) if args.postgres and "pg" in only else ():
            url, name = await fresh_postgres()
            try:
                results[f"postgres, {processes} process{'es' if processes > 1 else ''}"] = await target("pg", line, line_url, processes, url, args)
            finally:
                await drop_postgres(name)
    print(f"end-to-end: {args.events} events from {args.people} people at {args.rate}/s, webhook to reply received")
    print(f"{'target':22} {'sent/s':>8} {'replies/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    for name, r in results.items():
        print(f"{name:22} {r['sent_rate']:8.1f} {r['reply_rate']:10.1f} {r['p50_ms']:9.1f} {r['p99_ms']:9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="SQLite and bare only")
    parser.add_argument("--only", choices=["bare", "sqlite", "pg"], action="append", help="run only these targets (repeatable)")
    parser.add_argument("--profile", metavar="DIR", help="run tsunagi under cProfile, statistics into DIR")
    parser.add_argument("--model", default="no-model", help="RISK_MODEL_DIR for tsunagi (default: the keyword floor alone)")
    asyncio.run(main(parser.parse_args()))
