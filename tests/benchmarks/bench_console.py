"""Console benchmark: how fast a person reaches a counselor's screen, and a counselor's words reach LINE.

Run with `make bench` (or `.venv/bin/python tests/benchmarks/bench_console.py`). `tsunagi serve` runs as
its own process on SQLite (or `--database-url`); this process plays LINE (the emulator, over real HTTP)
and a counselor with the console open (a logged-in client listening to its Server-Sent Events). With
`--people` consultations in flight it measures
  * arrival: from a person's category choice (the signed webhook leaving LINE) until the consultation
    is in the counselor's open queue (the live topic heard and the re-fetched queue showing it);
  * reply: from the counselor's send (the form POST leaving the browser) until LINE receives the push.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from conftest import Console, free_port, start_serve  # noqa: E402

from bot.devtools.emulator import LineEmulator  # noqa: E402
from bot.runner import running  # noqa: E402

SECRET, TOKEN, PASSWORD = "bench-secret", "bench-token", "bench password 1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def listen(client: Console, heard: asyncio.Queue[str]) -> None:
    async with client.http.get(f"{client.base_url}/console/events", timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                heard.put_nowait(line[6:])


async def main(people: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        line = LineEmulator(SECRET, TOKEN)
        async with running(line.app, "127.0.0.1", 0) as line_url:
            port = free_port()
            line.webhook_url = f"http://127.0.0.1:{port}/callback"
            env = {**os.environ, "DATABASE_URL": url, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
                   "LINE_API_BASE": line_url, "CONTENT_DIR": str(REPO / "content"), "CONSOLE_SECURE_COOKIES": "false",
                   "CONSOLE_SECOND_FACTOR_ROLES": "[]"}
            tsunagi = str(Path(sys.executable).parent / "tsunagi")
            subprocess.run([tsunagi, "db", "upgrade"], env=env, check=True, capture_output=True)
            subprocess.run([tsunagi, "user", "add", "bench", "--role", "counselor", "--max-chats", str(people)],
                           env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True)
            server = await start_serve(env, port)
            counselor = Console(f"http://127.0.0.1:{port}")
            try:
                await counselor.login("bench", PASSWORD)
                await counselor.post("/console/availability", {"availability": "available"})
                heard: asyncio.Queue[str] = asyncio.Queue()
                listening = asyncio.create_task(listen(counselor, heard))
                await asyncio.sleep(0.5)
                arrivals, users = [], []
                for n in range(people):
                    user = line.add_user().user_id
                    await line.follow(user)
                    await line.wait_for_messages(user, 1)
                    started = time.perf_counter()
                    await line.send_postback(user, "a=category&id=suicidal")
                    # The page re-fetches its queue on each "queue" topic until this person is in it.
                    while True:
                        while await heard.get() != "queue":
                            pass
                        _, queue = await counselor.get("/console/queue/live")
                        if queue.count("data-consultation=") == n + 1:
                            break
                    arrivals.append(time.perf_counter() - started)
                    users.append(user)
                _, queue = await counselor.get("/console/queue/live")
                ids = [int(part.split('"')[1]) for part in queue.split("data-consultation=")[1:]]
                for consultation_id in ids:
                    await counselor.post(f"/console/c/{consultation_id}/take")
                await asyncio.sleep(1)
                by_consultation = dict(zip(sorted(ids), users, strict=True))
                replies = []
                for consultation_id, user in by_consultation.items():
                    before = len(line.messages_for(user))
                    started = time.perf_counter()
                    await counselor.post(f"/console/c/{consultation_id}/send", {"text": f"こんばんは #{consultation_id}"})
                    await line.wait_for_messages(user, before + 1)
                    replies.append(time.perf_counter() - started)
                listening.cancel()
            finally:
                await counselor.close()
                server.terminate()
                server.wait(timeout=30)
    print(f"console benchmark: {people} consultations in flight, database {url.split(':')[0]}")
    for name, values in (("arrival (choice → in the open queue)", arrivals), ("reply (send → LINE push received)", replies)):
        print(f"  {name:38} p50 {statistics.median(values) * 1000:7.1f} ms   p95 {percentile(values, 0.95) * 1000:7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.people, arguments.database_url))
