"""Room benchmark: fan-out time from a participant's message to every other participant receiving it.

Run with `make bench` (or `.venv/bin/python tests/benchmarks/bench_rooms.py`). `tsunagi serve` runs as its
own process on SQLite (or `--database-url`); this process plays LINE (the emulator, over real HTTP) and
the participants. For rooms of 10, 100 and 500 people it opens a session (through the service's own
scheduler), lets everyone join as on LINE (age band, join, agree to the rules), then times `--messages`
messages: from the signed webhook leaving LINE until the last of the others has the relayed line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlmodel import col

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, start_serve  # noqa: E402

from bot.devtools.emulator import LineEmulator  # noqa: E402
from bot.runner import running  # noqa: E402
from bot.storage.db import create_engine  # noqa: E402
from bot.storage.models import RoomSession, StaffUser  # noqa: E402

SECRET, TOKEN, PASSWORD = "bench-secret", "bench-token", "bench password 1"
ROOM = "young_adult_night"
SIZES = (10, 100, 500)


def content_with_large_rooms(target: Path) -> Path:
    """The repository's content with the benchmark room's capacity raised to the largest size measured."""
    shutil.copytree(REPO / "content", target)
    rooms = target / "rooms.yaml"
    text_ = rooms.read_text(encoding="utf-8")
    start = text_.index(f"id: {ROOM}")
    capacity = text_.index("capacity:", start)
    line_end = text_.index("\n", capacity)
    rooms.write_text(text_[:capacity] + f"capacity: {max(SIZES) + 1}" + text_[line_end:], encoding="utf-8")
    return target


async def add_open_sessions(url: str, count: int) -> list[int]:
    """Sessions that started a moment ago with a facilitator: the scheduler opens them at start-up."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        keeper = (await connection.execute(select(StaffUser.id).where(StaffUser.login == "keeper"))).scalar_one()
        ids = []
        for n in range(count):
            row = {"room_id": ROOM, "starts_at": now - timedelta(minutes=1, seconds=n), "ends_at": now + timedelta(hours=2),
                   "status": "scheduled", "facilitator_id": keeper}
            ids.append((await connection.execute(insert(RoomSession).values(row).returning(RoomSession.id))).scalar_one())
    await engine.dispose()
    return ids


async def wait_until_open(url: str, ids: list[int]) -> None:
    engine = create_engine(url)
    try:
        for _ in range(200):
            async with engine.connect() as connection:
                opened = (await connection.execute(select(func.count()).where(col(RoomSession.id).in_(ids), RoomSession.status == "open"))).scalar_one()
            if opened == len(ids):
                return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise RuntimeError("the scheduler did not open the sessions")


async def fill(line: LineEmulator, session_id: int, size: int) -> list[str]:
    """`size` people join the session as on LINE; returns their user ids once all are in."""
    users = [line.add_user().user_id for _ in range(size)]

    async def join(user: str) -> None:
        await line.follow(user)
        for data in ("a=band&id=age18_29", f"a=room&do=join&id={session_id}", f"a=room&do=agree&id={session_id}"):
            await line.send_postback(user, data)

    for start in range(0, size, 50):
        await asyncio.gather(*(join(user) for user in users[start : start + 50]))
    # Everyone is in when the first has heard all the others come in (the joins are multicast in order).
    await line.wait_for_messages(users[0], 4 + size - 1, timeout=300)
    return users


def heard_last(line: LineEmulator, user: str, text: str) -> bool:
    timeline = line.users[user].timeline
    return bool(timeline) and timeline[-1]["message"].get("text", "").endswith(text)


async def fan_out(line: LineEmulator, users: list[str], messages: int) -> list[float]:
    """Each message timed until the last of the others has it (checked every millisecond, O(1) per person)."""
    timings = []
    for n in range(messages):
        speaker = random.choice(users)
        said = f"ベンチマークの発言 {n}"
        waiting = {user for user in users if user != speaker}
        started = time.perf_counter()
        await line.send_text(speaker, said)
        async with asyncio.timeout(60):
            while waiting:
                waiting = {user for user in waiting if not heard_last(line, user, said)}
                if waiting:
                    await asyncio.sleep(0.001)
        timings.append(time.perf_counter() - started)
    return timings


async def main(messages: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        line = LineEmulator(SECRET, TOKEN)
        results = {}
        async with running(line.app, "127.0.0.1", 0) as line_url:
            port = free_port()
            line.webhook_url = f"http://127.0.0.1:{port}/callback"
            env = {**os.environ, "DATABASE_URL": url, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
                   "LINE_API_BASE": line_url, "CONTENT_DIR": str(content_with_large_rooms(Path(tmp) / "content")),
                   "CONSOLE_SECURE_COOKIES": "false"}
            tsunagi = str(Path(sys.executable).parent / "tsunagi")
            subprocess.run([tsunagi, "db", "upgrade"], env=env, check=True, capture_output=True)
            subprocess.run([tsunagi, "user", "add", "keeper", "--role", "facilitator"], env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True)
            ids = await add_open_sessions(url, len(SIZES))
            server = await start_serve(env, port)
            try:
                await wait_until_open(url, ids)
                for session_id, size in zip(ids, SIZES, strict=True):
                    users = await fill(line, session_id, size)
                    results[size] = await fan_out(line, users, messages)
            finally:
                server.terminate()
                server.wait(timeout=30)
    print(f"room fan-out benchmark: {messages} messages per room, database {url.split(':')[0]}, tsunagi serve as its own process")
    print(f"{'participants':>12} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for size, timings in results.items():
        print(f"{size:>12} {statistics.median(timings) * 1000:9.1f} {statistics.quantiles(timings, n=20)[-1] * 1000:9.1f} {max(timings) * 1000:9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.database_url))
