"""The console's side of log-in: the session cookie, CSRF tokens and `@requires(role)`.

Accounts, passwords and sessions themselves are `bot.consultation.staff`. Every state-changing
request carries the session's CSRF token; every handler states the roles it admits with
`@requires`, checked on every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from bot.appkeys import SESSIONS, SETTINGS
from bot.consultation.staff import SESSION_LIFETIME, session_for
from bot.storage.models import SessionStep, StaffRole, StaffSession, StaffUser

SESSION_COOKIE = "tsunagi_session"
LOGIN_CSRF_COOKIE = "tsunagi_login_csrf"

# What `requires` leaves on the request for the handler.
STAFF_KEY = web.RequestKey("staff", StaffUser)
CSRF_KEY = web.RequestKey("csrf_token", str)
LOGIN_SESSION_KEY = web.RequestKey("login_session", StaffSession)
# Where a session that still has a step to do is sent, whatever page it asked for.
STEP_PAGES = {SessionStep.NEW_PASSWORD: "/console/password", SessionStep.ENROL: "/console/two-factor", SessionStep.TOTP: "/console/two-factor"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, and Secure unless the operator serves plain HTTP."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS].console_secure_cookies,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/console",
    )


def csrf_ok(expected: str, given: str | None) -> bool:
    """Whether the token a form or header carried is the session's (compared in constant time)."""
    return given is not None and hmac.compare_digest(expected, given)


def requires(*roles: StaffRole, step: tuple[SessionStep | None, ...] = ()) -> Callable[[Handler], Handler]:
    """Admit only logged-in staff with one of `roles`; state-changing requests also need the CSRF token.

    A session with a step still to do (a new password, the second factor) is admitted only by the
    pages of that `step`, and sent there from any other page. The handler finds the staff member in
    `request[STAFF_KEY]`, the token in `request[CSRF_KEY]` and the session in `request[LOGIN_SESSION_KEY]`.
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            async with request.app[SESSIONS]() as session:
                found = await session_for(session, request.cookies.get(SESSION_COOKIE))
            if found is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther("/console/login")
                raise web.HTTPUnauthorized(text="ログインが必要です。")
            staff, login_session = found
            csrf = login_session.csrf_token
            if staff.role not in roles:
                raise web.HTTPForbidden(text="この画面を使う権限がありません。")
            if login_session.pending not in (step or (None,)):
                if request.method == "GET":
                    raise web.HTTPSeeOther(STEP_PAGES.get(login_session.pending, "/console"))
                raise web.HTTPForbidden(text="ログインの手続きを先に済ませてください。")
            if request.method != "GET":
                given = request.headers.get("X-CSRF-Token")
                if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    given = (await request.post()).get("csrf")
                if not csrf_ok(csrf, given if isinstance(given, str) else None):
                    raise web.HTTPForbidden(text="フォームの有効期限が切れました。ページを読み込み直してください。")
            request[STAFF_KEY], request[CSRF_KEY], request[LOGIN_SESSION_KEY] = staff, csrf, login_session
            return await handler(request)

        return guarded

    return decorate
