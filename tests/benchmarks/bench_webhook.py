"""Webhook benchmark: `tsunagi serve` on SQLite beside a bare aiohttp endpoint that only answers 200.

Run with `make bench` (or `.venv/bin/python tests/benchmarks/bench_webhook.py`). Three processes on this
machine: the bare endpoint (which also plays LINE's API for the bot's replies, answering 200 to everything),
the bot, and this load generator. For each target it measures
  * sustained load: signed single-event deliveries at a fixed rate (default 200/s) for a while,
    reporting p50/p99 time to the 200 and the rate achieved;
  * throughput: as many deliveries as a fixed number of concurrent senders can push, per second.
The bot's figure is reported as a ratio of the bare endpoint's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bot.storage.crypto import generate_key  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SECRET = "bench-channel-secret"
BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.json_response({})
app = web.Application()
app.router.add_route("*", "/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signed_event(user: int) -> tuple[bytes, str]:
    now = int(time.time() * 1000)
    body = json.dumps(
        {
            "destination": "Ubench",
            "events": [
                {
                    "type": "message",
                    "mode": "active",
                    "timestamp": now,
                    "source": {"type": "user", "userId": f"U{user:032x}"},
                    "webhookEventId": uuid.uuid4().hex[:26].upper(),
                    "deliveryContext": {"isRedelivery": False},
                    "replyToken": uuid.uuid4().hex,
                    "message": {"id": uuid.uuid4().hex[:18], "quoteToken": "q", "type": "text", "text": "こんばんは、ちょっと話したい"},
                }
            ],
        },
        ensure_ascii=False,
    ).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, signature


async def post(session: aiohttp.ClientSession, url: str, user: int) -> float:
    body, signature = signed_event(user)
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"content-type": "application/json", "x-line-signature": signature}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return time.perf_counter() - started


async def sustained(url: str, rate: int, seconds: float) -> dict[str, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        tasks = []
        started = time.perf_counter()
        for n in range(int(rate * seconds)):
            # Open loop: requests leave on schedule whether or not earlier ones were answered.
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, url, n % 500)))
        latencies = sorted(await asyncio.gather(*tasks))
        elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def throughput(url: str, concurrency: int, seconds: float) -> float:
    count = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        deadline = time.perf_counter() + seconds

        async def sender(user: int) -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await post(session, url, user)
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(sender(n) for n in range(concurrency)))
        return count / (time.perf_counter() - started)


async def wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        # Up to a minute: importing torch takes long on a busy 2-core machine.
        for _ in range(1200):
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def main(rate: int, seconds: float, concurrency: int) -> None:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, bot_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": "bench",
            "LINE_API_BASE": f"http://127.0.0.1:{bare_port}",
            "CONTENT_DIR": str(REPO / "content"),
            # A key made for this run: what people write is stored encrypted, as in production.
            "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or generate_key("bench"),
        }
        subprocess.run([bin_dir / "tsunagi", "db", "upgrade"], env=env, check=True, capture_output=True)
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bot = subprocess.Popen(
            [bin_dir / "tsunagi", "serve", "--host", "127.0.0.1", "--port", str(bot_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            targets = {"bare": f"http://127.0.0.1:{bare_port}/callback", "tsunagi": f"http://127.0.0.1:{bot_port}/callback"}
            await wait_until_up(f"http://127.0.0.1:{bare_port}/")
            await wait_until_up(f"http://127.0.0.1:{bot_port}/healthz")
            results = {}
            for name, url in targets.items():
                await sustained(url, rate, 1.0)  # warm-up
                results[name] = await sustained(url, rate, seconds)
                results[name]["max_rate"] = await throughput(url, concurrency, seconds)
        finally:
            for process in (bot, bare):
                process.terminate()
                process.wait(timeout=30)
    print(f"webhook benchmark: {rate} events/s for {seconds:.0f} s, then {concurrency} concurrent senders for {seconds:.0f} s")
    print(f"{'target':10} {'rate/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max/s':>8}")
    for name, figures in results.items():
        print(f"{name:10} {figures['rate']:8.1f} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} {figures['max_rate']:8.1f}")
    print(f"throughput ratio tsunagi/bare: {results['tsunagi']['max_rate'] / results['bare']['max_rate']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rate, arguments.seconds, arguments.concurrency))
