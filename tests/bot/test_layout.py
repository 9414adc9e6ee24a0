"""The arrows of the layout run one way: console and CLI → capabilities → line/storage; moderation/ stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPABILITIES = ("conversation", "consultation", "rooms", "guidance", "reporting", "privacy")
# What only wires or drives the service: nothing below it may import these.
OUTER = ("bot.app", "bot.cli", "bot.console", "bot.devtools", "bot.runner")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def files_of(package: str) -> list[Path]:
    return sorted((REPO / package.replace(".", "/")).rglob("*.py"))


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


@pytest.mark.parametrize("package", [f"bot.{name}" for name in (*CAPABILITIES, "line", "storage")])
def test_no_capability_imports_the_console_the_cli_or_the_dev_tools(package: str) -> None:
    wrong = {f"{path.relative_to(REPO)}: {m}" for path in files_of(package) for m in imports_of(path) if within(m, *OUTER)}
    assert not wrong


@pytest.mark.parametrize("package", ["bot.line", "bot.storage"])
def test_line_and_storage_import_no_capability(package: str) -> None:
    # `bot.appkeys` is allowed: the webhook finds the inbox writer in the app under its typed key.
    wrong = {
        f"{path.relative_to(REPO)}: {m}"
        for path in files_of(package)
        for m in imports_of(path)
        if within(m, "bot") and not within(m, "bot.line", "bot.storage", "bot.settings", "bot.appkeys")
    }
    assert not wrong


def test_moderation_imports_nothing_of_bot() -> None:
    wrong = {f"{path.relative_to(REPO)}: {m}" for path in files_of("moderation") for m in imports_of(path) if within(m, "bot")}
    assert not wrong


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    """The parser finds imports however they are written, so a wrong arrow cannot hide."""
    sample = tmp_path / "sample.py"
    sample.write_text("import bot.console.auth\ndef later():\n    from bot.devtools import emulator\n", encoding="utf-8")
    assert {m for m in imports_of(sample) if within(m, *OUTER)} == {"bot.console.auth", "bot.devtools", "bot.devtools.emulator"}
