"""One way to write a console action: find what the URL names (or 404), change it, audit it, commit.

`audited(request, action)` opens the transaction, and its commit writes the audit entry with the
change, so an action cannot commit without its entry and no entry records a change that was rolled
back. Whatever refuses the action (a bad form, a row that is not there or not this person's to
see, a conflict) raises an HTTP error inside the block, which commits nothing; so does a page shown
instead of the action (a form with its problems), raised as a `refusal`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import SESSIONS
from bot.console import PAGE_HEADERS
from bot.console.auth import STAFF_KEY
from bot.storage.models import AuditEntry, RowT, find_by_id


@dataclass
class Audit:
    """The open transaction of one action, and what its audit entry will say (set during the block)."""

    session: AsyncSession
    action: str
    detail: str | None = None
    consultation_id: int | None = None


@asynccontextmanager
async def audited(request: web.Request, action: str) -> AsyncIterator[Audit]:
    """A transaction for one console action by the logged-in staff member, committed with its audit entry.

    Args:
        request: the request of a handler guarded by `@requires`.
        action: the audit log's name for what is done (`admin.ACTION_WORDS` gives its words); the
            block may make it more precise, e.g. which way a review went.
    """
    async with request.app[SESSIONS]() as session:
        audit = Audit(session, action)
        yield audit
        session.add(AuditEntry(staff_id=request[STAFF_KEY].id, action=audit.action, consultation_id=audit.consultation_id, detail=audit.detail))
        await session.commit()


async def find_or_404(
    session: AsyncSession, model: type[RowT], text: object, missing: str, *, allowed: Callable[[RowT], bool] | None = None, **options: Any
) -> RowT:
    """The row that `text` (from a URL or form) names, or 404 with `missing`.

    A row that exists but `allowed` refuses is also 404, so nobody can probe for what they may not see.
    `options` go to `session.get` (e.g. `with_for_update=True`).
    """
    row = await find_by_id(session, model, text, **options)
    if row is None or (allowed is not None and not allowed(row)):
        raise web.HTTPNotFound(text=missing)
    return row


def refusal(page: web.Response) -> web.HTTPError:
    """`page` (a form shown again with its problems) as an error to `raise` inside `audited`.

    Raised rather than returned, so the action's transaction commits nothing and audits nothing.
    """
    return _REFUSALS[page.status](text=page.text, content_type="text/html", headers=PAGE_HEADERS)


_REFUSALS: dict[int, type[web.HTTPError]] = {400: web.HTTPBadRequest, 409: web.HTTPConflict, 422: web.HTTPUnprocessableEntity}
