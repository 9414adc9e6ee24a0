"""`tsunagi report` as a user runs it: a real process, its files, and one clear line when asked wrongly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, TSUNAGI
from report_sample import fill

from bot.storage.db import create_engine


def run(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "TSUNAGI_"))}
    env = {**clean, "DATABASE_URL": database_url, "CONTENT_DIR": str(REPO / "content")}
    return subprocess.run([TSUNAGI, "report", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
async def filled_url(sqlite_url: str) -> str:
    engine = create_engine(sqlite_url)
    await fill(engine)
    await engine.dispose()
    return sqlite_url


def test_report_writes_html_and_csvs(filled_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("--from", "2026-11-23", "--to", "2026-11-26", "--category", "poverty", "--out", str(out), database_url=filled_url)
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").exists() and (out / "by_category.csv").exists()
    assert "report.html" in result.stdout
    assert "生活困窮" in (out / "by_category.csv").read_text(encoding="utf-8-sig")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--from", "2026-13-01", "--to", "2026-12-02"), "--from '2026-13-01' is not a date"),
        (("--from", "2026-11-01", "--to", "tomorrow"), "--to 'tomorrow' is not a date"),
        (("--from", "2026-11-02", "--to", "2026-11-02"), "must end after it starts"),
        (("--from", "2026-11-03", "--to", "2026-11-02"), "must end after it starts"),
        (("--from", "2026-11-01", "--to", "2026-12-01", "--category", "nosuch"), "unknown category 'nosuch'"),
    ],
)
def test_a_bad_request_is_one_line_and_exit_2(filled_url: str, tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = run(*args, "--out", str(tmp_path / "out"), database_url=filled_url)
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_category_of_the_menu_with_no_requests_yet_is_known(filled_url: str, tmp_path: Path) -> None:
    result = run("--from", "2026-11-23", "--to", "2026-11-26", "--category", "women", "--out", str(tmp_path), database_url=filled_url)
    assert result.returncode == 0, result.stderr
