"""The `tsunagi` command as a user runs it: a real process, real environment, real exit codes."""

from __future__ import annotations

import json
import shutil
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, TSUNAGI, free_port

from bot.storage.crypto import DEMO_KEYS


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run `tsunagi`; `env` adds variables, or with None as the value removes one (e.g. ENCRYPTION_KEYS)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL"))}
    merged = {k: v for k, v in {**clean, **(env or {})}.items() if v is not None}
    return subprocess.run([TSUNAGI, *args], env=merged, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_and_each_has_help() -> None:
    listing = run("--help")
    assert listing.returncode == 0
    for command in ("serve", "demo", "db", "content"):
        assert command in listing.stdout
    for command in (["serve"], ["demo"], ["db", "upgrade"], ["content", "check"]):
        assert run(*command, "--help").returncode == 0, command


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "LINE_CHANNEL_SECRET is not set"),
        ({"LINE_CHANNEL_SECRET": "s"}, "LINE_CHANNEL_ACCESS_TOKEN is not set"),
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "LINE_API_BASE": "api.line.me"}, "LINE_API_BASE is invalid"),
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "DATABASE_URL": "mysql://x"}, "DATABASE_URL is invalid"),
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "TSUNAGI_TIMEZONE": "Mars/Olympus"}, "TSUNAGI_TIMEZONE is invalid"),
        # What people write is never stored unencrypted, nor under the public demo key, by the real service.
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "ENCRYPTION_KEYS": None}, "ENCRYPTION_KEYS is not set: `tsunagi keys generate`"),
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "ENCRYPTION_KEYS": DEMO_KEYS}, "writes with the public demo key"),
        ({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "ENCRYPTION_KEYS": "k1:c2hvcnQ="}, "ENCRYPTION_KEYS is invalid: Value error, key 'k1' is not 32 bytes"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(env: dict[str, str | None], expected: str, tmp_path: Path) -> None:
    result = run("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_database_behind_the_migrations(tmp_path: Path) -> None:
    env = {
        "LINE_CHANNEL_SECRET": "s",
        "LINE_CHANNEL_ACCESS_TOKEN": "t",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'new.db'}",
        "CONTENT_DIR": str(REPO / "content"),
    }
    result = run("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "tsunagi db upgrade" in result.stderr and "Traceback" not in result.stderr


def test_content_check_lists_problems_with_file_and_line(tmp_path: Path) -> None:
    assert run("content", "check", str(REPO / "content")).returncode == 0
    broken = tmp_path / "content"
    broken.mkdir()
    for name in ("menu.yaml", "resources.yaml"):
        (broken / name).write_text((REPO / "content" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "messages.yaml").write_text("received_sticker: [\n", encoding="utf-8")
    result = run("content", "check", str(broken))
    assert result.returncode == 2
    assert f"{broken / 'messages.yaml'}:" in result.stderr and "YAML syntax" in result.stderr


def test_demo_comes_up_answers_health_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """As from a fresh clone (`make demo`): no key set, the demo encrypts with the public demo key."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if k != "ENCRYPTION_KEYS"} | {"DATABASE_URL": database, "CONTENT_DIR": str(REPO / "content")}
    assert run("db", "upgrade", env={"DATABASE_URL": database, "ENCRYPTION_KEYS": None}).returncode == 0
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [TSUNAGI, "demo", "--port", str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        health = None
        while time.monotonic() - started < 20 and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    health = json.load(response)
            except OSError:
                time.sleep(0.1)
        assert health == {
            "status": "ok", "database": "ok", "inbox_worker": "running", "outbox_sender": "running", "failed": {"inbox": 0, "outbox": 0}
        }
        with urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/", timeout=5) as page:
            assert page.status == 200
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert f"http://127.0.0.1:{port + 1}/" in stdout
    assert "Traceback" not in stderr
    assert "the public demo key encrypts this database of made-up people" in stderr


def test_content_check_stale_lists_an_entry_made_old_and_still_passes(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    local = content / "local" / "yamagata.yaml"
    local.write_text(local.read_text(encoding="utf-8").replace("checked: 2026-12-06", "checked: 2025-01-10", 1), encoding="utf-8")
    fresh = run("content", "check", str(content), "--stale", "180", "--today", "2026-12-06")
    assert fresh.returncode == 0, fresh.stderr
    listed = [line for line in fresh.stdout.splitlines() if line.startswith("stale: ")]
    assert listed == ["stale: yamagata_inochi_no_denwa checked 2025-01-10 (695 days ago) http://www.city.yonezawa.yamagata.jp/5232.html"]
    assert "1 of " in fresh.stdout and "more than 180 days before 2026-12-06" in fresh.stdout
    assert "stale: " not in run("content", "check", str(content)).stdout, "only listed when asked"
