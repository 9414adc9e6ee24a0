"""Staff accounts: argon2 passwords, server-side sessions, lock-out after repeated failures.

The session cookie holds a random token; the database keeps only its SHA-256, so a copy of the
database cannot be replayed as a log-in. The console, the CLI and the simulator create accounts here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import AuditEntry, StaffRole, StaffSession, StaffUser, utcnow

SESSION_LIFETIME = timedelta(hours=12)
# Five wrong passwords lock the account for a quarter of an hour: slow enough to stop guessing,
# short enough that a counselor who mistyped is back before their shift is lost.
MAX_FAILED_LOGINS = 5
LOCK_OUT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified against when the login does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("no such user")


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_staff(
    session: AsyncSession, login: str, password: str, role: StaffRole, display_name: str | None = None, max_chats: int = 3
) -> StaffUser:
    """Create a console account (the caller commits)."""
    if len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    existing = (await session.exec(select(StaffUser).where(StaffUser.login == login))).first()
    if existing is not None:
        raise ValueError(f"a user named {login!r} already exists")
    staff = StaffUser(
        login=login, display_name=display_name or login, role=role, password_hash=hash_password(password), max_chats=max_chats
    )
    session.add(staff)
    await session.flush()
    return staff


class LoginRefused(Exception):
    """The log-in failed; the message is safe to show (it never says whether the name exists)."""


async def log_in(session: AsyncSession, login: str, password: str) -> tuple[StaffUser, str, str]:
    """Check the password and open a session. Returns the staff member, the cookie token and the CSRF token.

    Raises:
        LoginRefused: wrong name or password, or the account is locked.
    """
    now = utcnow()
    staff = (await session.exec(select(StaffUser).where(StaffUser.login == login))).first()
    if staff is None:
        _verify(_DUMMY_HASH, password)
        raise LoginRefused("名前かパスワードが違います。")
    if staff.locked_until is not None and staff.locked_until > now:
        raise LoginRefused("ログインの失敗が続いたため、しばらくログインできません。時間をおいてください。")
    if not _verify(staff.password_hash, password):
        staff.failed_logins += 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.locked_until, staff.failed_logins = now + LOCK_OUT, 0
            session.add(AuditEntry(staff_id=staff.id, action="locked_out"))
        session.add(staff)
        raise LoginRefused("名前かパスワードが違います。")
    staff.failed_logins, staff.locked_until = 0, None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(staff)
    session.add(StaffSession(token_hash=_token_hash(token), staff_id=staff.id, csrf_token=csrf, expires_at=now + SESSION_LIFETIME))
    session.add(AuditEntry(staff_id=staff.id, action="logged_in"))
    return staff, token, csrf


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def log_out(session: AsyncSession, token: str) -> None:
    """End the session of this cookie token."""
    await session.exec(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))


async def staff_for(session: AsyncSession, token: str | None) -> tuple[StaffUser, str] | None:
    """The staff member and CSRF token of a live session, if the token names one."""
    if not token:
        return None
    found = await session.get(StaffSession, _token_hash(token))
    if found is None or found.expires_at <= utcnow():
        return None
    staff = await session.get(StaffUser, found.staff_id)
    return (staff, found.csrf_token) if staff is not None else None
