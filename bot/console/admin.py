"""The admin's page: staff accounts (how many chats each may hold, unlocking), the audit log, and the
helplines whose details are due to be checked against their source again.

The audit log answers "who opened or changed what, when" (for a complaint, a leak or a review), so
it can be narrowed to one staff member or one consultation. Changes made here are audited too.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import BUDGET, CONTENT, SESSIONS, SETTINGS
from bot.console import render
from bot.console.actions import audited, find_or_404
from bot.console.auth import STAFF_KEY, requires
from bot.console.counselor import CHAT_ROLES
from bot.consultation.staff import active_sessions, end_sessions, locked_logins, reset_password, reset_second_factor, set_disabled, unlock
from bot.console.words import ROLES
from bot.guidance.content import STALE_AFTER_DAYS
from bot.storage.models import AuditEntry, StaffRole, StaffSession, StaffUser, row_id

routes = web.RouteTableDef()

AUDIT_SHOWN = 200
# More chats at once than this and no one can give each person their attention.
MAX_CHATS_LIMIT = 10
# The audit actions in words; an action not named here shows as written.
ACTION_WORDS = {
    "logged_in": "ログイン",
    "locked_out": "ログイン失敗によるロック",
    "opened_consultation": "相談を開いた",
    "opened_content": "相談者が送った画像・ファイルを開いた",
    "opened_history": "以前の相談を開いた",
    "attention_changed": "通知の設定を変更",
    "opened_record": "相談記録票を開いた",
    "record_draft": "相談記録票を下書き保存",
    "record_filed": "相談記録票を提出",
    "record_corrected": "相談記録票を修正",
    "referral_proposed": "つなぎを提案",
    "opened_referral": "つなぎ（記録票の要約）を開いた",
    "referral_status_changed": "つなぎの状態を変更",
    "organisation_added": "支援機関を追加",
    "organisation_edited": "支援機関を編集",
    "organisation_deactivated": "支援機関の掲載をやめた",
    "organisation_reactivated": "支援機関の掲載を再開",
    "max_chats_changed": "同時対応数を変更",
    "account_unlocked": "アカウントのロックを解除",
    "account_disabled": "アカウントを無効にした",
    "account_enabled": "アカウントを有効に戻した",
    "password_reset": "パスワードをリセット（ワンタイムコード）",
    "password_changed": "パスワードを変更",
    "second_factor_reset": "二段階認証をリセット",
    "second_factor_enrolled": "二段階認証を登録",
    "second_factor_passed": "二段階認証を通過",
    "session_ended": "ログインを終了させた",
    "exported_reviews": "リスク判定の見直しを書き出した",
    "flag_lowered_in_context": "会話の文脈でリスクを下げた",
    "opened_room": "居場所の部屋を開いた",
    "room_claimed": "居場所の回を担当",
    "room_closed_early": "居場所の回を早く閉じた",
    "room_muted": "居場所で発言を止めた",
    "room_removed": "居場所から退室させた",
    "room_changed": "居場所の部屋の設定を変更",
    "took_over": "スーパーバイザーが相談を引き継いだ",
    "person_exported": "本人の記録を開示のために出力",
    "person_forgotten": "本人の希望で記録を削除",
    "inbox_retry": "処理できなかった受信を再試行",
    "inbox_dismiss": "処理できなかった受信を対応済みにした",
    "outbox_retry": "届けられなかった送信を再試行",
    "outbox_dismiss": "届けられなかった送信を対応済みにした",
}


@routes.get("/console/admin")
@requires(StaffRole.ADMIN)
async def admin_page(request: web.Request) -> web.Response:
    """Every account, and the latest audit entries (narrowed by ?staff= and ?consultation=)."""
    return await _admin_page(request)


async def _admin_page(request: web.Request, one_time_code: tuple[str, str] | None = None) -> web.Response:
    staff_filter, consultation_filter = row_id(request.query.get("staff")), row_id(request.query.get("consultation"))
    query = select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(AUDIT_SHOWN)
    if staff_filter is not None:
        query = query.where(AuditEntry.staff_id == staff_filter)
    if consultation_filter is not None:
        query = query.where(AuditEntry.consultation_id == consultation_filter)
    async with request.app[SESSIONS]() as session:
        accounts = list(await session.exec(select(StaffUser).order_by(StaffUser.role, StaffUser.login)))
        entries = list(await session.exec(query))
        locked = await locked_logins(session)
        sessions = await active_sessions(session)
    today = datetime.now(request.app[SETTINGS].timezone).date()
    return render(
        request,
        "admin.html",
        budget=await request.app[BUDGET].read(),
        stale=request.app[CONTENT].stale_resources(today, STALE_AFTER_DAYS),
        stale_days=STALE_AFTER_DAYS,
        today=today,
        accounts=accounts,
        locked=locked,
        sessions=sessions,
        one_time_code=one_time_code,
        takes_chats=CHAT_ROLES,
        max_chats_limit=MAX_CHATS_LIMIT,
        roles=ROLES,
        entries=entries,
        names={s.id: f"{s.display_name}（{s.login}）" for s in accounts},
        words=ACTION_WORDS,
        staff_filter=staff_filter,
        consultation_filter=consultation_filter,
    )


async def _account(request: web.Request, session: AsyncSession) -> StaffUser:
    return await find_or_404(session, StaffUser, request.match_info["sid"], "このアカウントは見つかりません。")


@routes.post("/console/admin/staff/{sid}/max-chats")
@requires(StaffRole.ADMIN)
async def change_max_chats(request: web.Request) -> web.Response:
    """How many chats a counselor (or supervisor) may hold at once; open chats are not taken away."""
    typed = str((await request.post()).get("max_chats", ""))
    chosen = int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 2 else None
    if chosen is None or not 1 <= chosen <= MAX_CHATS_LIMIT:
        raise web.HTTPBadRequest(text=f"同時対応数は1〜{MAX_CHATS_LIMIT}で入力してください。")
    async with audited(request, "max_chats_changed") as audit:
        account = await _account(request, audit.session)
        if account.role not in CHAT_ROLES:
            raise web.HTTPBadRequest(text="同時対応数はチャットを受ける人にだけあります。")
        audit.detail = f"{account.login}: {account.max_chats} → {chosen}"
        account.max_chats = chosen
        audit.session.add(account)
    raise web.HTTPSeeOther("/console/admin")


@routes.post("/console/admin/staff/{sid}/unlock")
@requires(StaffRole.ADMIN)
async def unlock_account(request: web.Request) -> web.Response:
    """Let a locked-out account log in again now (after the admin has checked it was its owner)."""
    async with audited(request, "account_unlocked") as audit:
        account = await _account(request, audit.session)
        await unlock(audit.session, account.login)
        audit.detail = account.login
    raise web.HTTPSeeOther("/console/admin")


@routes.post("/console/admin/staff/{sid}/disabled")
@requires(StaffRole.ADMIN)
async def disable(request: web.Request) -> web.Response:
    """Disable an account (someone left: their open pages stop at once) or enable it again."""
    disabled = (await request.post()).get("disabled") == "yes"
    async with audited(request, "account_disabled" if disabled else "account_enabled") as audit:
        account = await _account(request, audit.session)
        if account.id == request[STAFF_KEY].id:
            raise web.HTTPBadRequest(text="自分のアカウントは無効にできません。")
        await set_disabled(audit.session, account, disabled)
        audit.detail = account.login
    raise web.HTTPSeeOther("/console/admin")


@routes.post("/console/admin/staff/{sid}/password")
@requires(StaffRole.ADMIN)
async def reset(request: web.Request) -> web.Response:
    """Replace the password with a one-time code, shown once on this page only; a new one is chosen at log-in."""
    async with audited(request, "password_reset") as audit:
        account = await _account(request, audit.session)
        code = await reset_password(audit.session, account)
        audit.detail = account.login
    # Answered with the page itself, never a redirect: the code must not travel in a URL or a log.
    return await _admin_page(request, (account.login, code))


@routes.post("/console/admin/staff/{sid}/two-factor")
@requires(StaffRole.ADMIN)
async def forget_second_factor(request: web.Request) -> web.Response:
    """A lost phone: the account enrols a new authenticator at its next log-in."""
    async with audited(request, "second_factor_reset") as audit:
        account = await _account(request, audit.session)
        await reset_second_factor(audit.session, account)
        audit.detail = account.login
    raise web.HTTPSeeOther("/console/admin")


@routes.post("/console/admin/sessions/{token_hash}/end")
@requires(StaffRole.ADMIN)
async def end_session(request: web.Request) -> web.Response:
    """End one log-in session (a shared computer left logged in)."""
    async with audited(request, "session_ended") as audit:
        login_session = await audit.session.get(StaffSession, request.match_info["token_hash"])
        if login_session is None:
            raise web.HTTPNotFound(text="このログインはもう終わっています。")
        await end_sessions(audit.session, login_session.staff_id, login_session.token_hash)
        audit.detail = f"staff {login_session.staff_id}"
    raise web.HTTPSeeOther("/console/admin")
