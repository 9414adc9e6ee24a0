"""Staff accounts: argon2 passwords, server-side sessions, a second factor, throttled log-in, a lifecycle.

The session cookie holds a random token; the database keeps only its SHA-256, so a copy of the
database cannot be replayed as a log-in. A session opens in steps: the password first, then (for
the roles that need it) a TOTP code, or enrolment when the account has none yet, and a new password
when an admin's reset left a one-time code. Failed log-ins are counted per name typed and per
address with atomic updates, so parallel guesses on PostgreSQL lock out after exactly the allowed
number, and a name that does not exist locks out like one that does. Password hashing runs off the
event loop. The console, the CLI and the simulator create accounts here.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.after_commit import announce
from bot.storage.models import AuditEntry, LoginThrottle, SessionStep, StaffRole, StaffSession, StaffUser, utcnow

SESSION_LIFETIME = timedelta(hours=12)
# Five wrong passwords for one name lock it for a quarter of an hour: slow enough to stop guessing,
# short enough that a counselor who mistyped is back before their shift is lost. One address may
# fail more often (an office shares one), but not without end.
MAX_FAILED_LOGINS = 5
MAX_FAILED_FROM_ADDRESS = 20
LOCK_OUT = timedelta(minutes=15)
MIN_PASSWORD = 8
TOTP_ISSUER = "tsunagi"

WRONG = "名前かパスワードが違います。"
LOCKED = "ログインの失敗が続いたため、しばらくログインできません。時間をおいてください。"

_hasher = PasswordHasher()
# Verified against when the login does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("no such user")


class LoginRefused(Exception):
    """The log-in failed; the message is safe to show (it never says whether the name exists)."""


def staff_topic(staff_id: int) -> str:
    """The live topic that tells a staff member's open pages to check their session again."""
    return f"staff:{staff_id}"


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`, computed off the event loop."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_staff(
    session: AsyncSession, login: str, password: str, role: StaffRole, display_name: str | None = None, max_chats: int = 3
) -> StaffUser:
    """Create a console account (the caller commits)."""
    existing = (await session.exec(select(StaffUser).where(StaffUser.login == login))).first()
    if existing is not None:
        raise ValueError(f"a user named {login!r} already exists")
    staff = StaffUser(
        login=login, display_name=display_name or login, role=role, password_hash=await hash_password(password), max_chats=max_chats
    )
    session.add(staff)
    await session.flush()
    return staff


# --- Throttling ---


async def _claim(session: AsyncSession, key: str, limit: int, now: datetime) -> int | None:
    """Count one attempt under `key` before it is checked; None when the key is locked out.

    One conditional UPDATE: on PostgreSQL a parallel attempt waits for the row and then re-reads it,
    so no more than `limit` attempts are ever checked before the lock-out.
    """
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    await session.exec(insert(LoginThrottle).values(key=key, failures=0).on_conflict_do_nothing())
    lapsed = col(LoginThrottle.locked_until) <= now
    claimed = await session.exec(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .where(((col(LoginThrottle.locked_until).is_(None)) & (LoginThrottle.failures < limit)) | lapsed)
        .values(failures=case((lapsed, 1), else_=LoginThrottle.failures + 1), locked_until=None)
        .returning(LoginThrottle.failures)
    )
    return claimed.scalar_one_or_none()


async def _failed(session: AsyncSession, key: str, claimed: int, limit: int, now: datetime) -> bool:
    """The claimed attempt was wrong; the last one allowed locks the key. Returns whether it did."""
    if claimed < limit:
        return False
    await session.exec(update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=now + LOCK_OUT, failures=0))
    return True


async def _succeeded(session: AsyncSession, key: str) -> None:
    await session.exec(update(LoginThrottle).where(LoginThrottle.key == key).values(failures=0, locked_until=None))


def _name_key(login: str) -> str:
    return f"name:{login[:100]}"


async def locked_logins(session: AsyncSession) -> dict[str, datetime]:
    """The names locked out now, with when the lock ends (for the admin's page)."""
    now = utcnow()
    rows = await session.exec(select(LoginThrottle).where(col(LoginThrottle.key).startswith("name:"), col(LoginThrottle.locked_until) > now))
    return {row.key.removeprefix("name:"): row.locked_until for row in rows}


async def unlock(session: AsyncSession, login: str) -> None:
    """Let a locked-out name log in again now."""
    await _succeeded(session, _name_key(login))


# --- Log-in and sessions ---


async def log_in(
    session: AsyncSession, login: str, password: str, address: str | None, second_factor: Collection[StaffRole]
) -> tuple[StaffUser, str, str]:
    """Check the password and open a session. Returns the staff member, the cookie token and the CSRF token.

    The session still has a step to do (`StaffSession.pending`) when the password is a one-time code
    or the role needs a second factor. The caller commits, also on `LoginRefused` (the count is kept).

    Raises:
        LoginRefused: wrong name or password, a disabled account, or a lock-out.
    """
    now = utcnow()
    keys = [(_name_key(login), MAX_FAILED_LOGINS), *([(f"address:{address}", MAX_FAILED_FROM_ADDRESS)] if address else [])]
    claims = [await _claim(session, key, limit, now) for key, limit in keys]
    if None in claims:
        raise LoginRefused(LOCKED)
    staff = (await session.exec(select(StaffUser).where(StaffUser.login == login))).first()
    right = await _verify(staff.password_hash if staff else _DUMMY_HASH, password)
    if staff is None or not right or staff.disabled_at is not None:
        locked = [await _failed(session, key, claimed, limit, now) for (key, limit), claimed in zip(keys, claims, strict=True)]
        if staff is not None and locked[0]:
            session.add(AuditEntry(staff_id=staff.id, action="locked_out"))
        raise LoginRefused(WRONG)
    await _succeeded(session, keys[0][0])
    pending = _step_after_password(staff, second_factor)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        StaffSession(token_hash=_token_hash(token), staff_id=staff.id, csrf_token=csrf, pending=pending, address=address, expires_at=now + SESSION_LIFETIME)
    )
    session.add(AuditEntry(staff_id=staff.id, action="logged_in"))
    return staff, token, csrf


def _step_after_password(staff: StaffUser, second_factor: Collection[StaffRole]) -> SessionStep | None:
    if staff.must_change_password:
        return SessionStep.NEW_PASSWORD
    if staff.role in second_factor:
        return SessionStep.TOTP if staff.totp_secret else SessionStep.ENROL
    return None


async def log_out(session: AsyncSession, token: str) -> None:
    """End the session of this cookie token."""
    await session.exec(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))


async def session_for(session: AsyncSession, token: str | None) -> tuple[StaffUser, StaffSession] | None:
    """The staff member and their session, if the token names a live one of an enabled account."""
    if not token:
        return None
    found = await session.get(StaffSession, _token_hash(token))
    if found is None or found.expires_at <= utcnow():
        return None
    staff = await session.get(StaffUser, found.staff_id)
    return (staff, found) if staff is not None and staff.disabled_at is None else None


async def end_sessions(session: AsyncSession, staff_id: int, token_hash: str | None = None) -> None:
    """End every session of a staff member (or the one named); their open pages stop at once."""
    query = delete(StaffSession).where(StaffSession.staff_id == staff_id)
    if token_hash is not None:
        query = query.where(StaffSession.token_hash == token_hash)
    await session.exec(query)
    announce(session, staff_topic(staff_id))


async def active_sessions(session: AsyncSession) -> list[StaffSession]:
    """Every session not yet expired, newest first."""
    return list(await session.exec(select(StaffSession).where(StaffSession.expires_at > utcnow()).order_by(col(StaffSession.created_at).desc())))


# --- The account's lifecycle ---


async def set_disabled(session: AsyncSession, staff: StaffUser, disabled: bool) -> None:
    """Disable an account (its sessions end now) or enable it again."""
    staff.disabled_at = utcnow() if disabled else None
    session.add(staff)
    if disabled:
        await end_sessions(session, staff.id)


async def reset_password(session: AsyncSession, staff: StaffUser) -> str:
    """Replace the password with a one-time code (returned, to be given to the person); sessions end."""
    code = secrets.token_urlsafe(9)
    staff.password_hash, staff.must_change_password = await hash_password(code), True
    session.add(staff)
    await end_sessions(session, staff.id)
    await unlock(session, staff.login)
    return code


async def change_password(
    session: AsyncSession, staff: StaffUser, login_session: StaffSession, password: str, second_factor: Collection[StaffRole]
) -> None:
    """The person chose a new password; the session goes on to its next step (the second factor, if the role needs it).

    Raises:
        ValueError: too short, or the same as the one-time code.
    """
    if await _verify(staff.password_hash, password):
        raise ValueError("ワンタイムコードとは違うパスワードにしてください。")
    staff.password_hash, staff.must_change_password = await hash_password(password), False
    session.add(staff)
    login_session.pending = _step_after_password(staff, second_factor)
    session.add(login_session)


def new_totp_secret() -> str:
    """A fresh TOTP secret for enrolment."""
    return pyotp.random_base32()


def totp_uri(staff: StaffUser, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=staff.login, issuer_name=TOTP_ISSUER)


def _accept_code(staff: StaffUser, secret: str, code: str) -> bool:
    """Whether `code` is right now (one step of clock drift either way) and not used before."""
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * totp.interval)
        step = totp.timecode(at)
        if totp.verify(code.strip(), for_time=at) and (staff.totp_last_step is None or step > staff.totp_last_step):
            staff.totp_last_step = step
            return True
    return False


def second_factor(session: AsyncSession, staff: StaffUser, login_session: StaffSession, code: str, enrolling: str | None = None) -> bool:
    """Check a TOTP code (against `enrolling`, the secret being set up, if given); on success the session opens."""
    secret = enrolling or staff.totp_secret
    if secret is None or not _accept_code(staff, secret, code):
        return False
    staff.totp_secret = secret
    login_session.pending = None
    session.add_all([staff, login_session])
    return True


async def reset_second_factor(session: AsyncSession, staff: StaffUser) -> None:
    """Forget the account's TOTP secret (a lost phone): it enrols again at the next log-in; sessions end."""
    staff.totp_secret, staff.totp_last_step = None, None
    session.add(staff)
    await end_sessions(session, staff.id)
