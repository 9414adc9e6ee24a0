"""Encrypted at rest: what people and counselors write is nowhere in the database's files, yet the console shows it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from conftest import TEST_KEYS, TSUNAGI, Console, Service, add_account, run_service, settle
from console.test_records import post_fields
from privacy.traces import everything
from rooms.test_rooms import enter, participant, say, scheduled_session, wait_for_status
from sqlalchemy import JSON, LargeBinary, String, Text, column, table, update
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, select

from alembic import command
from bot.appkeys import SESSIONS
from bot.storage.crypto import DecryptionError, EncryptedBytes, EncryptedJSON, EncryptedText, KeyRing, KeysNotSet, generate_key, use_keys
from bot.storage.db import _alembic_config, create_engine, session_factory
from bot.storage.models import AuditEntry, ChatEntry, Consultation, InboxEvent, RoomSessionStatus, StaffRole, UserMessage, utcnow
from bot.storage.rotation import encrypted_columns, not_current

# One sentence per way words enter the database, so a failure names the way that leaked.
WRITTEN = {
    "a person on LINE": "橋の上で消えたいと思う夜がある",
    "a counselor's reply": "話してくれて本当にありがとう、ここにいます",
    "a counselor's note": "父親との関係が悪化しているとのこと",
    "the record's free text": "祖母の介護で眠れない日が続いている",
    "a person in a room": "学校の帰り道がいちばんしんどい時間",
    "staff in a room": "今夜は無理せずゆっくり話しましょう",
    "a moderator's reason": "連絡先の交換を何度も求めたため",
}


OpenConsole = Callable[[Service], Console]


@pytest.fixture
async def open_console() -> AsyncIterator[OpenConsole]:
    """A logged-out console client of a running service; all closed afterwards."""
    made: list[Console] = []

    def make(service: Service) -> Console:
        made.append(Console(service.url))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def restore_keys() -> Iterator[None]:
    """Tests that install other keys give the run's own back."""
    yield
    use_keys(KeyRing.parse(TEST_KEYS))


def raw_database(database_url: str) -> bytes:
    """Every byte the database keeps: the SQLite file with its journal, or a pg_dump of the PostgreSQL database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    if shutil.which("pg_dump") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pg_dump is required under CI (Debian's postgresql-client)")
        pytest.skip("no pg_dump on this machine")
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    where = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    return subprocess.run(["pg_dump", *where, url.database], env=env, capture_output=True, check=True, timeout=120).stdout


async def write_everywhere(service: Service, open_console: OpenConsole, words: dict[str, str] = WRITTEN, *, login: str = "aoi") -> tuple[int, int]:
    """Each sentence written the way its key says: LINE through the emulator's webhook, staff through the console.

    Returns the consultation and the room session.
    """
    line = service.line
    person = line.add_user().user_id
    await line.follow(person)
    await line.send_postback(person, "a=category&id=suicidal")
    await line.send_text(person, words["a person on LINE"])
    await settle(service)
    async with service.app[SESSIONS]() as session:
        consultation_id = (await session.exec(select(Consultation.id).where(Consultation.user_id == person))).one()
    await add_account(service, login)
    counselor = open_console(service)
    await counselor.login(login)
    assert (await counselor.post(f"/console/c/{consultation_id}/take"))[0] == 303
    assert (await counselor.post(f"/console/c/{consultation_id}/send", {"text": words["a counselor's reply"]}))[0] == 303
    assert (await counselor.post(f"/console/c/{consultation_id}/note", {"text": words["a counselor's note"]}))[0] == 303
    assert (await counselor.post(f"/console/c/{consultation_id}/end"))[0] == 303
    draft = [("age_band", "twenties"), ("note", words["the record's free text"]), ("action", "draft")]
    assert (await post_fields(counselor, f"/console/c/{consultation_id}/record", draft))[0] == 303

    room_id = await scheduled_session(service)
    await wait_for_status(service, room_id, RoomSessionStatus.OPEN)
    a, b = await enter(service, room_id), await enter(service, room_id)
    await say(service, a, words["a person in a room"])
    await add_account(service, f"{login}-mod", StaffRole.MODERATOR)
    moderator = open_console(service)
    await moderator.login(f"{login}-mod")
    await moderator.get(f"/console/rooms/{room_id}")
    assert (await moderator.post(f"/console/rooms/{room_id}/post", {"text": words["staff in a room"]}))[0] == 303
    removed = await participant(service, room_id, b)
    assert (await moderator.post(f"/console/rooms/participants/{removed.id}/remove", {"reason": words["a moderator's reason"]}))[0] == 303
    await settle(service)
    return consultation_id, room_id


async def console_shows(service: Service, open_console: OpenConsole, consultation_id: int, room_id: int, *, login: str = "reader") -> str:
    """The chat, its record and the room as a supervisor opens them, as text (risky words are marked up in a chat)."""
    await add_account(service, login, StaffRole.SUPERVISOR)
    reader = open_console(service)
    await reader.login(login)
    pages = [await reader.get(path) for path in (f"/console/c/{consultation_id}", f"/console/c/{consultation_id}/record", f"/console/rooms/{room_id}")]
    assert [status for status, _ in pages] == [200, 200, 200]
    return re.sub(r"<[^>]*>", "", "\n".join(page for _, page in pages))


@pytest.mark.timeout(600)
async def test_words_written_on_line_and_in_the_console_are_nowhere_in_the_database_files(database_url: str, content, open_console) -> None:
    async with run_service(database_url, content) as service:
        consultation_id, room_id = await write_everywhere(service, open_console)
        shown = await console_shows(service, open_console, consultation_id, room_id)
        for way in ("a person on LINE", "a counselor's reply", "a counselor's note", "the record's free text", "a person in a room", "staff in a room"):
            assert WRITTEN[way] in shown, f"the console no longer shows what {way} wrote"
        async with service.app[SESSIONS]() as session:
            flagged = await everything(session)
        assert "消えたい" in flagged, "the risk flag quotes the words (decrypted for the moderator)"
        stored = raw_database(database_url)
    assert "aoiさん".encode() in stored, "the search sees the database's text (a display name is not secret)"
    leaked = [way for way, words in WRITTEN.items() if words.encode() in stored]
    assert leaked == [], f"stored in plain text: what {', '.join(leaked)} wrote"
    assert "消えたい".encode() not in stored, "not even the flag's excerpt"


@pytest.mark.timeout(600)
async def test_rotation_rewrites_every_value_under_the_new_key_while_the_service_runs(database_url: str, content, open_console, restore_keys) -> None:
    old, new = generate_key("old"), generate_key("new")
    async with run_service(database_url, content, keys=old) as service:
        consultation_id, room_id = await write_everywhere(service, open_console)
        # Every process restarted with the new key first (here: the one running service).
        use_keys(KeyRing.parse(f"{new},{old}"))
        env = {**os.environ, "DATABASE_URL": database_url, "ENCRYPTION_KEYS": f"{new},{old}"}
        rotation = await asyncio.create_subprocess_exec(TSUNAGI, "keys", "rotate", "--batch", "3", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The service keeps taking messages meanwhile.
        late = service.line.add_user().user_id
        await service.line.follow(late)
        for n in range(5):
            await service.line.send_text(late, f"ローテーション中のメッセージ{n}")
        stdout, stderr = await rotation.communicate()
        await settle(service)
        assert rotation.returncode == 0, stderr.decode()
        counts = dict(line.rsplit(None, 1) for line in stdout.decode().splitlines() if line.startswith(tuple(c.name for c in encrypted_columns())))
        assert int(counts["usermessage.text"]) >= 2 and int(counts["chatentry.text"]) >= 2 and int(counts["roommessage.text"]) >= 2
        assert "every stored value is under key 'new'" in stdout.decode()

        # Nothing is left under the old key: the new key alone reads everything, and the words are unchanged.
        use_keys(KeyRing.parse(new))
        engine = create_engine(database_url)
        assert [await not_current(engine, KeyRing.parse(new), target) for target in encrypted_columns()] == [0] * len(encrypted_columns())
        await engine.dispose()
        shown = await console_shows(service, open_console, consultation_id, room_id)
        assert WRITTEN["a counselor's note"] in shown and WRITTEN["a person in a room"] in shown
        async with service.app[SESSIONS]() as session:
            assert "ローテーション中のメッセージ4" in await everything(session)
        again = await asyncio.create_subprocess_exec(TSUNAGI, "keys", "rotate", env={**env, "ENCRYPTION_KEYS": new}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, _ = await again.communicate()
        assert again.returncode == 0 and all(line.split()[-1] == "0" for line in stdout.decode().splitlines() if "." in line.split()[0]), "a second run finds nothing"


async def test_an_altered_value_and_an_unknown_key_fail_clearly(engine, restore_keys) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        message = UserMessage(user_id="U" + "1" * 32, line_message_id="1", kind="text", text="変えられてはいけない言葉", sent_at=utcnow())
        session.add(message)
        await session.commit()
    raw = table("usermessage", column("id"), column("text", Text()))
    async with engine.begin() as connection:
        stored = (await connection.execute(raw.select())).one().text
        key_id, sealed = stored.split(":", 1)
        assert key_id == "test"
        flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
        await connection.execute(update(raw).values(text=f"{key_id}:{flipped}"))
    async with sessions() as session:
        with pytest.raises(DecryptionError, match="under key 'test' fails authentication: it was altered"):
            await session.exec(select(UserMessage))
    async with engine.begin() as connection:
        await connection.execute(update(raw).values(text=stored))
    use_keys(KeyRing.parse(generate_key("other")))
    async with sessions() as session:
        with pytest.raises(DecryptionError, match=r"under key 'test', which ENCRYPTION_KEYS does not hold \(it holds other\)"):
            await session.exec(select(UserMessage))
    use_keys(KeyRing.parse(f"{generate_key('other')},{TEST_KEYS}"))
    async with sessions() as session:
        assert (await session.exec(select(UserMessage))).one().text == "変えられてはいけない言葉", "an older key of the ring still reads"


async def test_the_migration_encrypts_rows_written_before_it_and_the_downgrade_restores_them(engine, restore_keys) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_alembic_config(sync), "6c04bd2fb3a2"))
    now = utcnow()
    event = {"type": "message", "message": {"type": "text", "text": "移行前のメッセージ"}}
    before = {
        "inboxevent": {"webhook_event_id": "e1", "source_id": "U1", "event_type": "message", "mode": "active", "is_redelivery": False, "occurred_at": now,
                       "payload": event, "status": "failed", "attempts": 1, "next_attempt_at": now, "received_at": now},
        "usermessage": {"user_id": "U1", "line_message_id": "m1", "kind": "text", "text": "移行前のメッセージ", "sent_at": now},
    }
    async with engine.begin() as connection:
        for name, row in before.items():
            columns = [column(key, JSON() if key == "payload" else None) for key in row]
            await connection.execute(table(name, *columns).insert().values(row))
    use_keys(None)
    with pytest.raises(KeysNotSet, match="set ENCRYPTION_KEYS"):
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
    use_keys(KeyRing.parse(TEST_KEYS))
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
    async with session_factory(engine)() as session:
        assert (await session.exec(select(InboxEvent))).one().payload == event
        assert (await session.exec(select(UserMessage))).one().text == "移行前のメッセージ"
    async with engine.connect() as connection:
        raw = [(await connection.execute(table(name, column(key, String())).select())).scalar_one() for name, key in (("inboxevent", "payload"), ("usermessage", "text"))]
    assert all(value.startswith("test:") and "移行前" not in value for value in raw)
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_alembic_config(sync), "6c04bd2fb3a2"))
    async with engine.connect() as connection:
        assert (await connection.execute(table("usermessage", column("text", String())).select())).scalar_one() == "移行前のメッセージ"
        assert (await connection.execute(table("inboxevent", column("payload", JSON())).select())).scalar_one() == event
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


# Text and JSON columns that hold no one's words: ids, states, names staff chose for the service, settings.
NOT_WORDS = {
    "inboxevent": {"webhook_event_id", "source_id", "event_type", "mode", "status", "last_error", "floor_level"},
    "outboxmessage": {"to", "recipients", "kind", "reply_token", "retry_key", "status", "last_error", "sent_via", "category"},
    "lineuser": {"user_id", "language", "school_year", "age_band", "prefecture"},
    "usermessage": {"user_id", "line_message_id", "kind", "read_token"},
    "messagecontent": {"content_type"},
    "deliverycount": {"category"},
    "consultation": {"user_id", "category", "status", "risk_level"},
    "staffuser": {"login", "display_name", "role", "password_hash", "availability", "attention_from_level"},
    "staffsession": {"token_hash", "csrf_token", "pending", "address"},
    "loginthrottle": {"key"},
    "availabilitychange": {"availability"},
    "chatentry": {"kind"},
    "auditentry": {"action"},
    "consultationrecord": {"age_band", "gender", "worries", "responses"},
    "referral": {"status"},
    "organisation": {"name", "region", "prefecture", "fields", "contact"},
    "riskflag": {"user_id", "level", "source", "state", "reviewed_level", "context_level"},
    "roomchange": {"room_id", "values"},
    "roomsession": {"room_id", "status"},
    # The nickname is not encrypted yet: a room's uniqueness check compares it (README: Keys).
    "roomparticipant": {"user_id", "nickname", "state", "checkin"},
    "roomreminder": {"user_id"},
    "roommessage": {"kind", "held"},
    "demodatabase": {"claimed_by"},
    "sendingpause": {"reason"},
}


def test_every_text_column_is_encrypted_or_known_to_hold_no_ones_words() -> None:
    """A new column of text or bytes must be put on one side or the other, not left plain by default."""
    plain = {
        (t.name, c.name)
        for t in SQLModel.metadata.sorted_tables
        for c in t.columns
        if not isinstance(c.type, (EncryptedText, EncryptedJSON, EncryptedBytes))
        # sqlmodel's AutoString wraps a String; binary content (an image) is someone's too
        and isinstance(getattr(c.type, "impl_instance", c.type), (String, JSON, LargeBinary))
    }
    assert plain == {(name, column_name) for name, columns in NOT_WORDS.items() for column_name in columns}
    assert {c.name for c in encrypted_columns()} >= {
        "inboxevent.payload", "outboxmessage.messages", "usermessage.text", "chatentry.text", "consultationrecord.note",
        "riskflag.tags", "riskflag.drivers", "messagecontent.data", "messagecontent.file_name", "riskflag.review_reason", "emergencyresponse.assessment", "emergencyresponse.contacts",
        "emergencyresponse.closing_note", "referral.history", "roommessage.text", "roomparticipant.removed_reason", "auditentry.detail",
    }


def test_a_key_ring_is_parsed_strictly_and_never_quoted() -> None:
    key = generate_key("k1")
    ring = KeyRing.parse(f"{generate_key('k2')}, {key}")
    assert ring.current == "k2" and set(ring.keys) == {"k1", "k2"}
    for bad, why in [("k1", "not ID:BASE64KEY"), ("k 1:abc", "not ID:BASE64KEY"), (f"{key},{key}", "appears twice"), ("k1:c2hvcnQ=", "not 32 bytes")]:
        with pytest.raises(Exception, match=why) as raised:
            KeyRing.parse(bad)
        assert key.split(":")[1] not in str(raised.value)
    with pytest.raises(TypeError, match="auditentry.detail is encrypted: SQL can only test it for NULL"):
        select(AuditEntry).where(AuditEntry.detail == "aoi")  # would silently match nothing: each value has its own nonce
    sealed = ring.encrypt_text("同じ言葉")
    assert sealed != ring.encrypt_text("同じ言葉"), "a fresh nonce each time: equal words do not look equal"
    assert ring.decrypt(ring.encrypt("画像".encode())) == "画像".encode()
