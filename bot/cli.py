"""The `tsunagi` command: serve, demo, database and content tools."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import date, datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import typer
from moderation.cli import app as risk_app
from pydantic import SecretStr

from bot.guidance.content import Content, ContentError, load_content
from bot.settings import Settings, SettingsError, SettingsT, StorageSettings, load_settings
from bot.storage.crypto import DEMO_KEYS, BadKeyRing, DecryptionError, generate_key, use_keys
from bot.storage.models import StaffRole

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

app = typer.Typer(help="tsunagi: a LINE text-consultation service and online ibasho.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
content_app = typer.Typer(help="Content files (menus, messages, helplines).", no_args_is_help=True)
user_app = typer.Typer(help="Console accounts.", no_args_is_help=True)
retention_app = typer.Typer(help="Removing what has outlived content/retention.yaml.", no_args_is_help=True)
person_app = typer.Typer(help="Disclosure and deletion requests from a person on LINE.", no_args_is_help=True)
inbox_app = typer.Typer(help="Webhook events the service gave up on: list, retry, dismiss.", no_args_is_help=True)
outbox_app = typer.Typer(help="Messages to LINE the service gave up on: list, retry, dismiss.", no_args_is_help=True)
keys_app = typer.Typer(help="The keys what people wrote is encrypted with: generate, rotate.", no_args_is_help=True)
line_app = typer.Typer(help="The LINE channel: what it needs from the service, set up through the Messaging API.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(risk_app, name="risk")
app.add_typer(content_app, name="content")
app.add_typer(user_app, name="user")
app.add_typer(retention_app, name="retention")
app.add_typer(person_app, name="person")
app.add_typer(inbox_app, name="inbox")
app.add_typer(outbox_app, name="outbox")
app.add_typer(keys_app, name="keys")
app.add_typer(line_app, name="line")


def fail(message: str) -> typer.Exit:
    """Print one clear line to stderr and give the exit code for a usage/config problem."""
    typer.secho(f"tsunagi: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


Keys = Literal["required", "real", "demo", "optional"]


def settings_or_exit(kind: type[SettingsT] = Settings, *, keys: Keys = "required", **overrides: object) -> SettingsT:
    """The settings with their encryption keys installed, or one line naming the bad setting and exit 2.

    `keys`: "required" by every command that reads or writes the database; "real" by `serve` (not the
    public demo key); "demo" by `demo` and `simulate`, which write only made-up people and fall back
    to the demo key; "optional" by `db upgrade` (an empty database needs none).
    """
    try:
        settings = load_settings(kind, **overrides)
        if keys == "demo" and settings.encryption_keys is None:
            typer.echo("ENCRYPTION_KEYS is not set: the public demo key encrypts this database of made-up people", err=True)
            settings = settings.model_copy(update={"encryption_keys": SecretStr(DEMO_KEYS)})
        if keys != "optional" or settings.encryption_keys is not None:
            use_keys(settings.key_ring(real=keys == "real"))
        return settings
    except SettingsError as exc:
        raise fail(str(exc)) from None


def content_or_exit(directory: str) -> Content:
    """The validated content, or every problem as `file:line: what is wrong` and exit 2."""
    try:
        return load_content(directory)
    except ContentError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise fail(f"content in {directory} has {len(exc.problems)} problem(s); nothing was started") from None


def _logging(log_format: str = "text") -> None:
    """Log lines as text, or with LOG_FORMAT=json as JSON objects whose ids (`extra=`) are fields; never message text."""
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The room scheduler logs each transition itself; APScheduler's own line per job added or run is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run the service for the real LINE platform: webhook at POST /callback, health at GET /healthz."""
    from bot.app import StartupError, init_app
    from bot.runner import running, stop_requested

    settings = settings_or_exit(keys="real")
    content = content_or_exit(settings.content_dir)
    _logging(settings.log_format)

    async def run() -> None:
        stop = stop_requested()
        async with running(init_app(settings, content), host, port) as url:
            typer.echo(f"tsunagi is listening: webhook {url}/callback, health {url}/healthz")
            await stop.wait()

    try:
        asyncio.run(run())
    except StartupError as exc:
        raise fail(str(exc)) from None


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the bot; the LINE emulator takes the next one.")] = 8080,
    simulate: Annotated[bool, typer.Option("--simulate", help="First fill the database with a synthetic week (see `tsunagi simulate`).")] = False,
) -> None:
    """Run everything on this machine with no LINE account: the bot and a LINE emulator to chat in."""
    from bot.app import StartupError
    from bot.devtools.demo import run_demo

    # The demo's accounts log in with a password alone, unless CONSOLE_SECOND_FACTOR_ROLES asks otherwise.
    second_factor = {} if "CONSOLE_SECOND_FACTOR_ROLES" in os.environ else {"console_second_factor_roles": frozenset()}
    settings = settings_or_exit(
        line_channel_secret="demo-channel-secret",
        line_channel_access_token="demo-token",
        console_secure_cookies=False,
        keys="demo",
        **second_factor,
    )
    content = content_or_exit(settings.content_dir)
    if simulate:
        from bot.reporting.simulate import simulate_database

        try:
            summary = asyncio.run(simulate_database(settings.database, content, settings.timezone, days=7))
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"simulated a week: {summary}; open the console's 分析 page or run `tsunagi report`")
    _logging(settings.log_format)
    try:
        asyncio.run(run_demo(settings, content, host, port))
    except StartupError as exc:
        raise fail(str(exc)) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration not yet applied (Alembic `upgrade head`)."""
    from bot.storage.db import upgrade_to_head

    settings = settings_or_exit(StorageSettings, keys="optional")
    try:
        _on_engine(settings, upgrade_to_head)
    except Exception as exc:
        raise fail(f"upgrade of {settings.database_shown} failed: {exc}") from None
    typer.echo(f"database at {settings.database_shown} is up to date")


@content_app.command("check")
def content_check(
    directory: Annotated[Path, typer.Argument(help="Content folder.")] = Path("content"),
    stale: Annotated[int | None, typer.Option(help="Also list helplines whose `checked` date is older than this many days.", min=0)] = None,
    today: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Count --stale days back from this day (default: today).")] = None,
) -> None:
    """Validate every content file; print each problem as `file:line: what is wrong`.

    With --stale, also list each helpline not checked against its source for that many days; they
    are listed, not refused, so a build can warn without failing.
    """
    content = content_or_exit(str(directory))
    typer.echo(f"{directory}: content is valid")
    if stale is None:
        return
    day = today.date() if today else date.today()
    old = content.stale_resources(day, stale)
    for resource in old:
        typer.echo(f"stale: {resource.id} checked {resource.checked} ({(day - resource.checked).days} days ago) {resource.source}")
    typer.echo(f"{len(old)} of {len(content.all_resources())} helplines were checked more than {stale} days before {day}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Log-in name.")],
    role: Annotated[StaffRole, typer.Option(help="What the account may do.")],
    display_name: Annotated[str | None, typer.Option(help="Name LINE users see (default: the log-in name).")] = None,
    max_chats: Annotated[int, typer.Option(min=1, help="Chats a counselor holds at once.")] = 3,
) -> None:
    """Create a console account. The password is asked on a terminal, or read from the first line of stdin."""
    from bot.consultation.staff import add_staff

    settings = settings_or_exit(StorageSettings)
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")

    try:
        _in_session(settings, lambda session: add_staff(session, name, password, role, display_name, max_chats))
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"added {role.value} {name!r}")


@risk_app.command("export-reviews")
def export_reviews(
    out: Annotated[Path, typer.Option(help="JSONL file to write ({text, level, tags} per line).")] = Path("reviewed.jsonl"),
) -> None:
    """Write the moderators' reviewed flags as training examples for the next `tsunagi risk train` (audited: people's words leave the database)."""
    from bot.consultation.reviews import reviewed_examples
    from bot.storage.models import AuditEntry

    settings = settings_or_exit(StorageSettings)

    async def export(session: AsyncSession) -> list[dict]:
        examples = await reviewed_examples(session)
        session.add(AuditEntry(action="exported_reviews", detail=f"{len(examples)} example(s) to {out}"))
        return examples

    examples = _in_session(settings, export)
    out.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
    typer.echo(f"wrote {len(examples)} reviewed example(s) to {out}")


def _day(text: str, option: str) -> date:
    """A day given as YYYY-MM-DD, or one line naming the option and exit 2."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (use YYYY-MM-DD)") from None


@app.command()
def report(
    first_day: Annotated[str, typer.Option("--from", help="First day counted, YYYY-MM-DD, on the service's clock.")],
    end_day: Annotated[str, typer.Option("--to", help="Day the period ends, YYYY-MM-DD (not counted).")],
    category: Annotated[str | None, typer.Option(help="Count only this category (its id in content/menu.yaml).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for report.html and one CSV per table.")] = Path("report"),
) -> None:
    """Write the analysis report (response rates by category and hour, waits, records) as HTML and CSV."""
    from sqlalchemy.exc import SQLAlchemyError
    from tqdm import tqdm

    from bot.reporting import html as report_html
    from bot.reporting.figures import STEPS, Period, Report, build_report, known_categories

    settings = settings_or_exit(StorageSettings)
    try:
        period = Period(_day(first_day, "--from"), _day(end_day, "--to"), settings.timezone)
    except ValueError as exc:
        raise fail(str(exc)) from None
    # The content only names things; a report of the database alone is still worth writing without it.
    try:
        labels = report_html.labels_from_content(load_content(settings.content_dir))
    except (ContentError, OSError):
        labels = None

    # The bar appears only when the work takes longer than a second.
    with tqdm(total=len(STEPS) + len(report_html.STEPS), desc="report", unit="step", delay=1.0, leave=False) as bar:

        async def figures(session: AsyncSession) -> Report:
            if category is not None:
                known = set((labels or {}).get("categories", {})) | await known_categories(session)
                if category not in known:
                    raise fail(f"unknown category {category!r} (known: {', '.join(sorted(known)) or 'none'})")
            return await build_report(session, period, category, tick=bar.update)

        try:
            figured = _in_session(settings, figures, commit=False)
        except SQLAlchemyError as exc:
            raise fail(f"cannot read {settings.database_shown}: {str(exc).splitlines()[0]}") from None
        path = report_html.write_report(figured, out, labels, tick=bar.update)
    typer.echo(f"wrote {path} and its tables as CSV in {out}")


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days before now to fill.")] = 7,
    per_day: Annotated[int, typer.Option(min=1, max=2000, help="People arriving per day.")] = 60,
    seed: Annotated[int, typer.Option(help="Same seed, same period.")] = 7,
) -> None:
    """Fill the configured database with a realistic synthetic period, through the service's own code."""
    from bot.reporting.simulate import simulate_database

    settings = settings_or_exit(StorageSettings, keys="demo")
    content = content_or_exit(settings.content_dir)
    try:
        summary = asyncio.run(simulate_database(settings.database, content, settings.timezone, days, per_day=per_day, seed=seed))
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"simulated {days} day(s): {summary}")


def _on_engine(settings: StorageSettings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` with an engine on the configured database, disposed of afterwards."""
    from bot.storage.db import create_engine

    async def run() -> T:
        engine = create_engine(settings.database)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _in_session(settings: StorageSettings, work: Callable[[AsyncSession], Awaitable[T]], *, commit: bool = True) -> T:
    """Run `work` in one session on the configured database; commit after it unless told not to."""
    from bot.storage.db import session_factory

    async def run(engine: AsyncEngine) -> T:
        async with session_factory(engine)() as session:
            result = await work(session)
            await (session.commit() if commit else session.rollback())
            return result

    return _on_engine(settings, run)


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed, remove nothing.")] = False,
) -> None:
    """Remove now what has outlived content/retention.yaml (the service does it every night), by table and count."""
    from bot.privacy.retention import apply_retention

    settings = settings_or_exit(StorageSettings)
    policy = content_or_exit(settings.content_dir).retention
    counts = _in_session(settings, lambda session: apply_retention(session, policy), commit=not dry_run)
    width = max(map(len, counts))
    for name, count in counts.items():
        typer.echo(f"{name:{width}}  {count}")
    typer.echo("dry run: nothing was removed" if dry_run else f"removed {sum(counts.values())} in all")


@person_app.command("export")
def person_export(
    line_user_id: Annotated[str, typer.Argument(help="The person's LINE user id (U followed by 32 hex digits).")],
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of standard output.")] = None,
) -> None:
    """Everything stored about a person, as JSON, for a disclosure request (audited)."""
    from bot.privacy.erasure import export_person

    settings = settings_or_exit(StorageSettings)
    export = _in_session(settings, lambda session: export_person(session, line_user_id, asked_by="operator command"))
    text = json.dumps(export, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote everything stored about the person to {out}", err=True)


@person_app.command("forget")
def person_forget(
    line_user_id: Annotated[str, typer.Argument(help="The person's LINE user id.")],
) -> None:
    """Delete a person's words and identifiers everywhere; the report's counts stay (audited).

    Refused while their consultation is open or an emergency record about them is in progress.
    """
    from bot.privacy.erasure import Refusal, forget_person, why_not_forget

    settings = settings_or_exit(StorageSettings)

    async def forget(session: AsyncSession) -> Refusal | None:
        refusal = await why_not_forget(session, line_user_id)
        if refusal is None:
            await forget_person(session, line_user_id, asked_by="operator command")
        return refusal

    refusal = _in_session(settings, forget)
    if refusal is not None:
        reason = "a consultation of theirs is open" if refusal is Refusal.OPEN_CONSULTATION else "an emergency record about them is in progress"
        raise fail(f"not deleted: {reason}; try again once it has ended")
    typer.echo("deleted: their words and identifiers are gone; the report's counts are unchanged")


def _list_failures(kind: str) -> None:
    from bot.line.deadletters import failures

    listed = [f for f in _in_session(settings_or_exit(StorageSettings), failures) if f.kind == kind]
    for f in listed:
        alarm = f" floor={f.floor_level}" if f.floor_level else ""
        typer.echo(f"{f.id}\t{f.since:%Y-%m-%d %H:%M:%S}Z\t{f.what}\t{f.whose}\t{f.attempts} attempt(s){alarm}\t{f.why}")
    typer.echo(f"{len(listed)} failed {kind} item(s)", err=True)


def _retry(kind: str, item: int | None, every: bool) -> None:
    from bot.line.deadletters import retry_inbox, retry_outbox

    if (item is None) == (not every):
        raise fail("give one ID or --all")
    retry = retry_inbox if kind == "inbox" else retry_outbox
    count = _in_session(settings_or_exit(StorageSettings), lambda session: retry(session, item))
    if item is not None and count == 0:
        raise fail(f"{kind} item {item} is not failed (see `tsunagi {kind} failed`)")
    typer.echo(f"put {count} failed {kind} item(s) back in line; a running service takes them within seconds")


def _dismiss(kind: str, item: int) -> None:
    from bot.line.deadletters import dismiss_inbox, dismiss_outbox

    dismiss = dismiss_inbox if kind == "inbox" else dismiss_outbox
    if _in_session(settings_or_exit(StorageSettings), lambda session: dismiss(session, item)) == 0:
        raise fail(f"{kind} item {item} is not failed (see `tsunagi {kind} failed`)")
    typer.echo(f"dismissed failed {kind} item {item}")


ItemId = Annotated[int | None, typer.Argument(help="The item's id, as `failed` lists it.")]
EveryItem = Annotated[bool, typer.Option("--all", help="Every failed item.")]


@inbox_app.command("failed")
def inbox_failed() -> None:
    """List webhook events given up: id, since, type, whose, attempts, keyword-floor level, why (never text)."""
    _list_failures("inbox")


@inbox_app.command("retry")
def inbox_retry(event_id: ItemId = None, every: EveryItem = False) -> None:
    """Put one failed webhook event (or --all) back in the inbox with fresh attempts."""
    _retry("inbox", event_id, every)


@inbox_app.command("dismiss")
def inbox_dismiss(event_id: Annotated[int, typer.Argument(help="The event's id.")]) -> None:
    """Set a failed webhook event aside for good, once someone has dealt with it."""
    _dismiss("inbox", event_id)


@outbox_app.command("failed")
def outbox_failed() -> None:
    """List messages to LINE given up: id, since, kind, to whom, attempts, why (never text)."""
    _list_failures("outbox")


@outbox_app.command("retry")
def outbox_retry(row_id: ItemId = None, every: EveryItem = False) -> None:
    """Send one failed outbox row (or --all) again, as a push with its own retry key."""
    _retry("outbox", row_id, every)


@outbox_app.command("dismiss")
def outbox_dismiss(row_id: Annotated[int, typer.Argument(help="The row's id.")]) -> None:
    """Set a failed outbox row aside for good, once someone has dealt with it."""
    _dismiss("outbox", row_id)


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[str | None, typer.Option("--id", help="The key's id (default: today's date and a random suffix).")] = None,
) -> None:
    """Print a new key as ID:BASE64KEY, the form ENCRYPTION_KEYS takes (nothing is stored)."""
    try:
        entry = generate_key(key_id)
    except BadKeyRing as exc:
        raise fail(str(exc)) from None
    typer.echo(entry)
    typer.echo(
        "Put it first in ENCRYPTION_KEYS (a new installation: alone; a rotation: before the old keys, which stay until "
        "`tsunagi keys rotate` has run) and keep a copy where the database backups are not: without it the data cannot be read.",
        err=True,
    )


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 200,
) -> None:
    """Re-encrypt every stored value under the first key of ENCRYPTION_KEYS, a small batch at a time, while the service runs.

    Run it after every process has been restarted with the new key first in ENCRYPTION_KEYS; it can be
    run again at any time (it rewrites only what is not under the first key). Prints the count per column.
    """
    from bot.storage.rotation import encrypted_columns, not_current, rotate_keys

    settings = settings_or_exit(StorageSettings)
    ring = settings.key_ring()

    async def rotate(engine: AsyncEngine) -> int:
        await rotate_keys(engine, ring, batch, progress=lambda name, count: typer.echo(f"{name:34}  {count}"))
        return sum([await not_current(engine, ring, target) for target in encrypted_columns()])

    try:
        left = _on_engine(settings, rotate)
    except DecryptionError as exc:
        raise fail(f"rotation stopped: {exc}") from None
    if left:
        raise fail(f"{left} value(s) were written under another key meanwhile: is every process running with {ring.current!r} first? Run this again after restarting them.")
    typer.echo(f"every stored value is under key {ring.current!r}; older keys can now leave ENCRYPTION_KEYS")


@line_app.command("setup")
def line_setup(
    webhook_url: Annotated[str, typer.Option(help="Where LINE posts events: this service's public HTTPS address + /callback.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only read the channel and print what would be done.")] = False,
) -> None:
    """Rich menus (one per language, and a consultation's), the webhook endpoint and its test, and what is left to do by hand.

    Safe to run again: what is there already is kept (a menu is known by a hash of its design and image).
    """
    from linebot.v3.messaging.exceptions import ApiException

    from bot.conversation.richmenus import rich_menu_designs
    from bot.line.channel import set_up_channel
    from bot.line.richmenu import RichMenuError, alias_id

    settings = settings_or_exit()
    content = content_or_exit(settings.content_dir)
    try:
        report = asyncio.run(
            set_up_channel(settings, rich_menu_designs(content), webhook_url, default=alias_id("main", content.language), dry_run=dry_run)
        )
    except RichMenuError as exc:
        raise fail(str(exc)) from None
    except ApiException as exc:
        raise fail(f"LINE answered {exc.status}: {exc.body or exc.reason}") from None
    typer.echo(f"Bot: {report.bot}")
    typer.echo("Would do:" if dry_run else "Done:")
    for step in report.steps:
        typer.echo(f"  - {step}")
    typer.echo("Still to do by hand in LINE's consoles:")
    for item in report.to_do:
        typer.echo(f"  [ ] {item}")
