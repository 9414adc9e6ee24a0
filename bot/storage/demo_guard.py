"""Made-up data never goes into a real database: `demo` and `simulate` claim a database first.

A database is theirs when it holds no people yet (then it is marked as a demo database) or when one
of them marked it before. One that holds LINE users or staff accounts they did not create is refused.
"""

from __future__ import annotations

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.models import DemoDatabase, LineUser, StaffUser


class RealDatabaseError(Exception):
    """The database holds people `demo`/`simulate` did not create; the message says so in one line."""


async def claim_for_demo(session: AsyncSession, command: str) -> None:
    """Mark the database as holding made-up data, or refuse one with real people in it (the caller commits).

    Raises:
        RealDatabaseError: naming how many LINE users and staff accounts it holds.
    """
    if await session.get(DemoDatabase, 1) is not None:
        return
    people = (await session.exec(select(func.count()).select_from(LineUser))).one()
    staff = (await session.exec(select(func.count()).select_from(StaffUser))).one()
    if people or staff:
        raise RealDatabaseError(
            f"`tsunagi {command}` writes made-up data, and this database holds {people} LINE user(s) and {staff} staff "
            f"account(s) it did not create; nothing was written. Point DATABASE_URL at a new database for the {command}."
        )
    session.add(DemoDatabase(claimed_by=command))
    await session.flush()
