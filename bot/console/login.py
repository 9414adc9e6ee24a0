"""Log-in, log-out and the start page, which depends on the role."""

from __future__ import annotations

import secrets

from aiohttp import web

from bot.appkeys import SESSIONS, SETTINGS
from bot.console import render
from bot.console.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, STAFF_KEY, csrf_ok, requires, set_session_cookie
from bot.consultation.staff import LoginRefused, log_in, log_out
from bot.storage.models import StaffRole

routes = web.RouteTableDef()

START_PAGES = {
    StaffRole.COUNSELOR: "/console/queue",
    StaffRole.SUPERVISOR: "/console/supervisor",
    StaffRole.COORDINATOR: "/console/referrals",
    StaffRole.MODERATOR: "/console/supervisor",
    StaffRole.FACILITATOR: "/console/rooms",
    StaffRole.ADMIN: "/console/admin",
}


def _login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # Before a session exists, the form is protected by a double-submit token (cookie and field).
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, error=error, login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=request.app[SETTINGS].console_secure_cookies, path="/console"
    )
    return response


@routes.get("/console/login")
async def login_form(request: web.Request) -> web.Response:
    """The log-in form."""
    return _login_page(request)


@routes.post("/console/login")
async def login(request: web.Request) -> web.Response:
    """Check the name and password; on success open a session and go to the start page."""
    form = await request.post()
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf")) or not request.cookies.get(LOGIN_CSRF_COOKIE):
        return _login_page(request, "フォームの有効期限が切れました。もう一度入力してください。", status=403)
    async with request.app[SESSIONS]() as session:
        try:
            staff, token, _csrf = await log_in(session, str(form.get("login", "")), str(form.get("password", "")))
        except LoginRefused as refused:
            await session.commit()  # the failure count and any lock-out are kept
            return _login_page(request, str(refused), status=401)
        await session.commit()
    response = web.HTTPSeeOther(START_PAGES[staff.role])
    set_session_cookie(request, response, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console")
    raise response


@routes.post("/console/logout")
@requires(*StaffRole)
async def logout(request: web.Request) -> web.Response:
    """End the session."""
    async with request.app[SESSIONS]() as session:
        await log_out(session, request.cookies[SESSION_COOKIE])
        await session.commit()
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


@routes.get("/console")
@requires(*StaffRole)
async def start(request: web.Request) -> web.Response:
    """Each role starts where its work is."""
    raise web.HTTPSeeOther(START_PAGES[request[STAFF_KEY].role])
