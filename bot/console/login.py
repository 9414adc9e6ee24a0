"""Log-in, log-out and the start page, which depends on the role."""

from __future__ import annotations

import secrets

import segno
from aiohttp import web
from markupsafe import Markup

from bot.appkeys import SESSIONS, SETTINGS
from bot.console import render
from bot.console.auth import LOGIN_CSRF_COOKIE, LOGIN_SESSION_KEY, SESSION_COOKIE, STAFF_KEY, csrf_ok, requires, set_session_cookie
from bot.consultation.staff import (
    MIN_PASSWORD,
    LoginRefused,
    change_password,
    log_in,
    log_out,
    new_totp_secret,
    second_factor,
    totp_uri,
)
from bot.storage.models import AuditEntry, SessionStep, StaffRole, StaffUser

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
            staff, token, _csrf = await log_in(
                session, str(form.get("login", "")), str(form.get("password", "")), request.remote, request.app[SETTINGS].console_second_factor_roles
            )
        except LoginRefused as refused:
            await session.commit()  # the failure count and any lock-out are kept
            return _login_page(request, str(refused), status=401)
        await session.commit()
    # A session with a step left is sent to it by `requires` from the start page.
    response = web.HTTPSeeOther(START_PAGES[staff.role])
    set_session_cookie(request, response, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console")
    raise response


@routes.get("/console/password")
@requires(*StaffRole, step=(SessionStep.NEW_PASSWORD,))
async def password_form(request: web.Request) -> web.Response:
    """After an admin's reset: choose a new password before anything else."""
    return render(request, "password.html", error=None, minimum=MIN_PASSWORD)


@routes.post("/console/password")
@requires(*StaffRole, step=(SessionStep.NEW_PASSWORD,))
async def password_save(request: web.Request) -> web.Response:
    """Keep the new password; a role that needs a second factor goes on to it."""
    form = await request.post()
    password = str(form.get("password", ""))
    if password != form.get("again"):
        return render(request, "password.html", status=422, error="2回の入力が違います。", minimum=MIN_PASSWORD)
    async with request.app[SESSIONS]() as session:
        staff = await session.get(StaffUser, request[STAFF_KEY].id)
        login_session = await session.merge(request[LOGIN_SESSION_KEY])
        try:
            await change_password(session, staff, login_session, password, request.app[SETTINGS].console_second_factor_roles)
        except ValueError as refused:
            return render(request, "password.html", status=422, error=str(refused), minimum=MIN_PASSWORD)
        session.add(AuditEntry(staff_id=staff.id, action="password_changed"))
        await session.commit()
    raise web.HTTPSeeOther("/console")


@routes.get("/console/two-factor")
@requires(*StaffRole, step=(SessionStep.ENROL, SessionStep.TOTP))
async def two_factor_form(request: web.Request) -> web.Response:
    """The code from the authenticator app; on first use, the QR code to enrol it."""
    return _two_factor_page(request)


@routes.post("/console/two-factor")
@requires(*StaffRole, step=(SessionStep.ENROL, SessionStep.TOTP))
async def two_factor_check(request: web.Request) -> web.Response:
    """Check the code; the session opens (and, when enrolling, the secret is kept)."""
    form = await request.post()
    enrolling = request[LOGIN_SESSION_KEY].pending == SessionStep.ENROL
    secret = str(form.get("secret", "")) if enrolling else None
    async with request.app[SESSIONS]() as session:
        staff = await session.get(StaffUser, request[STAFF_KEY].id)
        if enrolling and not (secret and secret.isalnum() and len(secret) == len(new_totp_secret())):
            raise web.HTTPBadRequest(text="登録をやり直してください。")
        if not second_factor(session, staff, await session.merge(request[LOGIN_SESSION_KEY]), str(form.get("code", "")), secret):
            await session.commit()  # a used step is remembered even when this code was wrong
            return _two_factor_page(request, error="確認コードが違います。アプリの6桁の数字を入れてください。", secret=secret, status=422)
        session.add(AuditEntry(staff_id=staff.id, action="second_factor_enrolled" if enrolling else "second_factor_passed"))
        await session.commit()
    raise web.HTTPSeeOther(START_PAGES[staff.role])


def _two_factor_page(request: web.Request, error: str | None = None, secret: str | None = None, status: int = 200) -> web.Response:
    if request[LOGIN_SESSION_KEY].pending != SessionStep.ENROL:
        return render(request, "two_factor.html", status=status, error=error, secret=None, qr=None)
    secret = secret or new_totp_secret()
    qr = segno.make(totp_uri(request[STAFF_KEY], secret), error="m").svg_inline(scale=4, title="認証アプリで読み取るQRコード")
    return render(request, "two_factor.html", status=status, error=error, secret=secret, qr=Markup(qr))


@routes.post("/console/logout")
@requires(*StaffRole, step=(None, *SessionStep))
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
