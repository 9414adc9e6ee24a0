"""The outbox: handlers add messages here; one sender delivers them to LINE, in order, surviving restarts.

Delivery rules (LINE's own): reply with the reply token while it is fresh, else push (multicast for
several recipients) with an `X-Line-Retry-Key` kept on the row, so a retried request is accepted once.
5xx, timeouts and anything unforeseen are retried with exponential backoff and jitter, 429 backs off
longer, 409 means LINE already accepted the request, a 2xx whose body cannot be read counts as sent,
401/403 pause all sending (in every process) until a probe finds the token working, a 429 for the
month's quota holds pushes and multicasts (replies are free and go on) until a probe finds the budget
back, and any other 4xx sets the row aside with LINE's reason (a dead letter, `bot.line.deadletters`).

A reply has no retry key, so a reply attempt whose outcome is unknown (cut off, timed out, 5xx: LINE may
have delivered it) is only ever tried again by reply, while its token is fresh: LINE then refuses the
used token, which tells that the earlier attempt went. Once the token is stale that can no longer be
known, and the row is set aside rather than pushed (it could arrive twice).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    MarkMessagesAsReadByTokenRequest,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.messaging.exceptions import ApiException
from sqlalchemy import delete, exists, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.line.budget import QUOTA_SPENT_MESSAGE, MessageBudget
from bot.line.deadletters import FAILURES_TOPIC, describe
from bot.line.inbox import SessionFactory
from bot.line.limits import MESSAGES_PER_REQUEST, REPLY_TOKEN_FRESH_SECONDS
from bot.line.messages import Message
from bot.line.worker import KeyedWorker
from bot.storage.after_commit import announce, note_send_queued
from bot.storage.models import (
    DeliveryCount, LineUser, MessageContent, OutboxKind, OutboxMessage, OutboxStatus, SendingPause, utcnow,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# The longest wait between two attempts at one row (its recipient's later rows wait behind it).
MAX_DELAY = 300.0
# A send whose process died mid-request is taken again after this (twice the request timeout); the
# retry key makes a push safe to repeat.
LEASE = timedelta(seconds=20)
# Attempts at recording an outcome already known (LINE took the message) while the database is away.
RECORD_TRIES = 6
LOADING_SECONDS = 20
# The report's name for messages that belong to no consultation or room: the bot's own guidance.
GUIDANCE = "guidance"


def enqueue(
    session: AsyncSession,
    to: str,
    messages: list[Message],
    *,
    reply_token: str | None = None,
    event_time: datetime | None = None,
    recipients: list[str] | None = None,
    category: str | None = None,
) -> list[OutboxMessage]:
    """Add messages for one user (or, with `recipients`, many) to the outbox, in order.

    The caller commits, so the messages become durable together with whatever caused them.

    Args:
        session: the handler's session.
        to: the user id, or for multicast a key that orders the audience's messages.
        messages: LINE message objects; more than five are split over several requests.
        reply_token: the event's reply token; used for the first request while it is fresh.
        event_time: when the event happened, from which the reply token's freshness is counted.
        recipients: user ids for a multicast.
        category: what the messages belong to (`OutboxMessage.category`), for the report.
    """
    # The token's minute runs from the event; a clock-skewed future timestamp must not stretch it.
    token_start = min(event_time or utcnow(), utcnow())
    rows = []
    for start in range(0, len(messages), MESSAGES_PER_REQUEST):
        use_token = reply_token if start == 0 and recipients is None else None
        row = OutboxMessage(
            to=to,
            recipients=recipients,
            messages=messages[start : start + MESSAGES_PER_REQUEST],
            reply_token=use_token,
            category=category,
            reply_deadline=token_start + timedelta(seconds=REPLY_TOKEN_FRESH_SECONDS)
            if use_token
            else None,
        )
        session.add(row)
        rows.append(row)
    note_send_queued(session, to)
    return rows


def enqueue_loading(session: AsyncSession, user_id: str) -> OutboxMessage:
    """Ask LINE to show the typing animation to a user while something takes a moment."""
    return _enqueue_call(session, user_id, OutboxKind.LOADING, None)


def enqueue_leave(session: AsyncSession, chat_id: str, chat_type: str) -> OutboxMessage:
    """Leave a group (`chat_type` "group") or a multi-person chat ("room") after what is queued for it."""
    return _enqueue_call(session, chat_id, OutboxKind.LEAVE, {"type": chat_type})


def enqueue_mark_read(session: AsyncSession, user_id: str, read_token: str) -> OutboxMessage:
    """Have LINE show the person 既読 on the message of `read_token` and every one before it."""
    return _enqueue_call(session, user_id, OutboxKind.MARK_READ, {"markAsReadToken": read_token})


def enqueue_rich_menu(session: AsyncSession, user_id: str, alias: str) -> OutboxMessage:
    """Show the person the rich menu LINE keeps under `alias` (`richmenu.alias_id`), after what is queued for them."""
    return _enqueue_call(session, user_id, OutboxKind.RICH_MENU, {"alias": alias})


def enqueue_content_fetch(session: AsyncSession, user_id: str, line_message_id: str, content_id: int) -> OutboxMessage:
    """Fetch what a person sent (LINE's message id) from the content API into `MessageContent` `content_id`."""
    return _enqueue_call(session, user_id, OutboxKind.CONTENT, {"messageId": line_message_id, "content": content_id})


def _enqueue_call(session: AsyncSession, to: str, kind: OutboxKind, request: dict[str, Any] | None) -> OutboxMessage:
    """A request to LINE other than messages, in order with what is queued for `to` (`request` in `messages`)."""
    row = OutboxMessage(to=to, kind=kind, messages=[] if request is None else [request])
    session.add(row)
    note_send_queued(session, to)
    return row


class _Retry(Exception):
    """The attempt failed in a way worth trying again later."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class _Refused(Exception):
    """LINE refused the channel itself (401/403): no row can go until the token works again."""


class _Unconfirmed(Exception):
    """An earlier reply attempt may have reached LINE and its token is stale: sending again could duplicate it."""


class _QuotaSpent(Exception):
    """The month's quota is spent (LINE's 429): no push or multicast can go until it is raised or renewed."""


class OutboxSender(KeyedWorker):
    """Delivers pending outbox rows: one recipient's rows in order, recipients concurrently.

    Fails safe: every attempt is counted when the row is claimed (before the request), so even a
    process that dies mid-send stops trying after `MAX_ATTEMPTS`; a row given up is set aside as a
    dead letter and the person's later rows go on. When LINE refuses the token (401/403) nothing is
    given up: sending pauses in every process (a `SendingPause` row), the backlog waits, and one probe
    every `probe_interval`, by whichever process claims it, resumes them all.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        api: AsyncMessagingApi,
        *,
        request_timeout: float = 10.0,
        base_delay: float = 1.0,
        probe_interval: float = 10.0,
        budget: MessageBudget | None = None,
        blob: AsyncMessagingApiBlob | None = None,
        on_api_error: Callable[[int], None] = lambda status: None,
        clock: Callable[[], datetime] = utcnow,
        **loop_options: Any,
    ) -> None:
        """Set up the sender.

        Args:
            sessions: where the outbox lives.
            api: the LINE Messaging API client.
            request_timeout: seconds before a request to LINE counts as timed out (the SDK's own is 300).
            base_delay: first retry delay; doubles per attempt, up to `MAX_DELAY`.
            probe_interval: seconds between checks of the token while sending is paused, or of the
                month's budget while pushes are held.
            budget: the month's message budget, read to know when pushes may go again.
            blob: LINE's data host (images and files people send), for `CONTENT` rows.
            on_api_error: told the status of every answer from LINE outside 2xx (for `/metrics`).
            clock: the current time (tests move it to expire reply tokens).
            **loop_options: `poll_interval` and `concurrency`, as `KeyedWorker` takes them.
        """
        super().__init__(**loop_options)
        self._sessions = sessions
        self._api = api
        self._request_timeout = request_timeout
        self._reply_margin = timedelta(seconds=2 * request_timeout)
        self._base_delay = base_delay
        self._probe_interval = timedelta(seconds=probe_interval)
        self._on_api_error = on_api_error
        self._clock = clock
        #: Why sending is paused (LINE refused the token), or None while it runs, as of the last pass.
        self.paused: str | None = None
        #: Why pushes and multicasts are held (LINE's 429 for the month's quota), or None; replies go on.
        #: Held in this process only: each process learns it from its own first refused push.
        self.quota_spent: str | None = None
        self._budget = budget or MessageBudget(api)
        self._blob = blob
        self._quota_probe_at = clock()

    async def due_keys(self) -> list[str]:
        """Recipients with a pending row that is due (none while paused, unless a probe finds LINE back)."""
        now = self._clock()
        if self.quota_spent is not None and now >= self._quota_probe_at:
            await self._probe_quota()  # rows held for the quota come due at each probe, and go if it lifted the hold
        async with self._sessions() as session:
            pause = (await session.exec(select(SendingPause))).first()
            if pause is None:
                if self.paused is not None:
                    log.warning("outbox: sending resumed (another process found the token working)")
                    self.paused = None
                # A recipient is due when its oldest pending row is: later rows wait behind it.
                earlier = aliased(OutboxMessage)
                result = await session.exec(
                    select(OutboxMessage.to)
                    .where(
                        OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.next_attempt_at <= now,
                        ~exists().where(
                            earlier.to == OutboxMessage.to, earlier.status == OutboxStatus.PENDING, earlier.id < OutboxMessage.id
                        ),
                    )
                    .order_by(OutboxMessage.id)
                    .limit(200)
                )
                return list(result)
            self.paused = pause.reason
            # One process probes per interval: the one whose conditional update moves the time on.
            probing = await session.exec(
                update(SendingPause).where(SendingPause.probe_at <= now).values(probe_at=now + self._probe_interval)
            )
            await session.commit()
        # The probe goes outside the transaction: a request to LINE must not hold the database.
        if probing.rowcount == 1 and await self._probe():
            return await self.due_keys()
        return []

    async def work(self, key: str) -> None:
        """Deliver the recipient's due rows in order, stopping at one that must wait for a retry."""
        while not self.stopping and self.paused is None and (claimed := await self._claim(key)) is not None:
            row, may_send, now, replying = claimed
            if not may_send:
                await self._finish(row, OutboxStatus.CANCELLED, "recipient unfollowed")
            elif row.attempts > MAX_ATTEMPTS:
                await self._give_up(row, "the last attempt never finished (the process stopped)")
            elif not await self._attempt(row, now, replying):
                return

    async def _claim(self, to: str) -> tuple[OutboxMessage, bool, datetime, bool] | None:
        """Lease the oldest pending row of `to` if it is due, counting the attempt.

        Returns the row as claimed, whether it may still be sent, the time of the claim and whether
        the attempt replies.
        """
        now = self._clock()
        async with self._sessions() as session:
            row = (
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.to == to, OutboxMessage.status == OutboxStatus.PENDING)
                    .order_by(OutboxMessage.id)
                    .limit(1)
                )
            ).first()
            if row is None or row.next_attempt_at > now:
                return None
            replying = self._replying(row, now)
            lease_end = now + LEASE
            if replying:
                # Ends before the token goes stale, so a reply cut off is tried again while LINE can still
                # tell whether it went (two replies with one token are safe: LINE takes only the first).
                lease_end = min(lease_end, max(now + timedelta(seconds=1), row.reply_deadline - self._reply_margin / 2))
            # The lease rides on next_attempt_at, and `attempts` changes with every claim: this conditional
            # UPDATE claims the row only if nobody did since it was read, in one process or several; a
            # sender that dies mid-request leaves it to be taken again when the lease ends.
            claimed = await session.exec(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row.id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.attempts == row.attempts,
                    OutboxMessage.next_attempt_at <= now,
                )
                .values(
                    next_attempt_at=lease_end,
                    attempts=OutboxMessage.attempts + 1,
                    reply_unconfirmed=OutboxMessage.reply_unconfirmed + int(replying),
                )
                .returning(OutboxMessage)
                .execution_options(populate_existing=True)
            )
            row = claimed.scalar_one_or_none()
            if row is None:
                return None
            user = None if row.recipients is not None else await session.get(LineUser, to)
            await session.commit()
        # Users not known yet (a group, or a follow still in the inbox) may be sent to.
        return row, user is None or user.following, now, replying

    def _replying(self, row: OutboxMessage, now: datetime) -> bool:
        """Whether an attempt at `now` sends the row by reply.

        A first reply needs time left for its answer and, should that be lost, for one more reply to
        learn whether it went; later, too little time left means a push instead, and no doubt. A
        reply whose outcome is unknown is tried again while the token lives at all.
        """
        if row.reply_token is None or row.reply_deadline is None:
            return False
        return now < row.reply_deadline - (self._reply_margin if row.reply_unconfirmed == 0 else timedelta(0))

    async def _attempt(self, row: OutboxMessage, now: datetime, replying: bool) -> bool:
        """Try one delivery of a claimed row; record the outcome. Returns whether to go on with `to`."""
        try:
            via = await self._send(row, now, replying)
        except _Refused as refused:
            # Not the row's fault: it keeps its place and its attempts, and goes when LINE takes the token.
            await self._update(
                row, attempts=row.attempts - 1, reply_unconfirmed=row.reply_unconfirmed, last_error=str(refused), next_attempt_at=now
            )
            await self._pause(str(refused))
            return False
        except _Unconfirmed:
            await self._give_up(
                row,
                "a reply may have reached LINE (its answer was lost) and its token went stale before that could be"
                " checked; not pushed, so it cannot arrive twice (retry pushes it)",
            )
            return True
        except _QuotaSpent as spent:
            # Nor here: kept with its attempts, it comes due again at the next probe of the budget.
            await self._hold_pushes(str(spent))
            await self._update(
                row, attempts=row.attempts - 1, last_error=str(spent), reply_token=row.reply_token,
                reply_unconfirmed=row.reply_unconfirmed, next_attempt_at=self._quota_probe_at,
            )
            return False
        except ApiException as exc:
            await self._give_up(row, f"LINE {exc.status}: {_reason(exc)}")
            return True
        except Exception as exc:
            # A 5xx, a timeout, or anything unforeseen (a malformed stored message, a bug): counted,
            # retried later, and set aside after the last attempt so later rows are not held forever.
            delay = exc.delay if isinstance(exc, _Retry) else self._delay(row.attempts)
            reason = str(exc) if isinstance(exc, _Retry) else describe(exc)
            if row.attempts >= MAX_ATTEMPTS:
                await self._give_up(row, f"gave up after {row.attempts} attempts: {reason}")
                return True
            # Later rows of this recipient wait: order matters more than speed.
            delay *= 1 + random.random() * 0.25
            if row.reply_unconfirmed and now < row.reply_deadline:
                # Only a fresh token can tell whether the reply went: try again while it is.
                delay = min(delay, max(0.0, (row.reply_deadline - now).total_seconds() / 2))
            await self._update(
                row,
                last_error=reason,
                reply_token=row.reply_token,
                reply_unconfirmed=row.reply_unconfirmed,
                next_attempt_at=now + timedelta(seconds=delay),
            )
            log.warning("outbox %s: %s; retrying in %.1fs", row.id, reason, delay, extra={"outbox_id": row.id})
            return False
        await self._finish(row, OutboxStatus.SENT, None, sent_via=via)
        return True

    def _delay(self, attempts: int) -> float:
        return min(self._base_delay * 2 ** (attempts - 1), MAX_DELAY)

    async def _send(self, row: OutboxMessage, now: datetime, replying: bool) -> str:
        """One request to LINE. Returns how it was sent; raises _Retry, _Refused or ApiException."""
        delay = self._delay(row.attempts)
        timeout = self._request_timeout
        try:
            if row.kind == OutboxKind.LOADING:
                request = ShowLoadingAnimationRequest(chatId=row.to, loadingSeconds=LOADING_SECONDS)
                return await _answered("loading", self._api.show_loading_animation(request, _request_timeout=timeout))
            if row.kind == OutboxKind.MARK_READ:
                request = MarkMessagesAsReadByTokenRequest.from_dict(row.messages[0])
                return await _answered("read", self._api.mark_messages_as_read_by_token(request, _request_timeout=timeout))
            if row.kind == OutboxKind.CONTENT:
                return await self._fetch_content(row.messages[0], timeout)
            if row.kind == OutboxKind.RICH_MENU:
                return await self._link_rich_menu(row.to, row.messages[0]["alias"], timeout)
            if row.kind == OutboxKind.LEAVE:
                leave = self._api.leave_group if row.messages[0]["type"] == "group" else self._api.leave_room
                try:
                    return await _answered("leave", leave(row.to, _request_timeout=timeout))
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    return "left-before"  # removed by its members, or an earlier attempt's answer was lost
            if replying:
                request = ReplyMessageRequest.from_dict({"replyToken": row.reply_token, "messages": row.messages})
                try:
                    return await _answered("reply", self._api.reply_message(request, _request_timeout=timeout))
                except (ApiException, aiohttp.ClientConnectorError) as exc:
                    if isinstance(exc, aiohttp.ClientConnectorError) or (exc.status or 500) < 500:
                        # LINE answered, or was never reached: this reply did not go.
                        row.reply_unconfirmed -= 1
                    if isinstance(exc, aiohttp.ClientConnectorError) or exc.status != 400 or "reply token" not in _reason(exc).lower():
                        raise
                    if row.reply_unconfirmed:
                        # A fresh token is refused only once used, and only this row holds it: an earlier
                        # attempt whose outcome was lost (a timeout, a killed process) delivered it.
                        return "reply-before"
                    # The token was never good (expired or used elsewhere): push, as LINE advises, and
                    # never reply again with it.
                    row.reply_token = None
            elif row.reply_token and row.reply_unconfirmed:
                raise _Unconfirmed
            if self.quota_spent is not None:
                raise _QuotaSpent(self.quota_spent)  # LINE would refuse it: not asked until the hold lifts
            if row.recipients is not None:
                request = MulticastRequest.from_dict({"to": row.recipients, "messages": row.messages})
                sending = self._api.multicast(request, x_line_retry_key=row.retry_key, _request_timeout=timeout)
                return await _answered("multicast", sending)
            request = PushMessageRequest.from_dict({"to": row.to, "messages": row.messages})
            sending = self._api.push_message(request, x_line_retry_key=row.retry_key, _request_timeout=timeout)
            return await _answered("push", sending)
        except ApiException as exc:
            self._on_api_error(exc.status or 0)
            if exc.status == 409:
                return "accepted-before"  # LINE already accepted this retry key
            if exc.status in (401, 403):
                raise _Refused(f"LINE {exc.status}: {_reason(exc)}") from exc
            if exc.status == 429 and QUOTA_SPENT_MESSAGE in _reason(exc).lower():
                raise _QuotaSpent(f"LINE 429: {_reason(exc)}") from exc
            if exc.status == 429:
                raise _Retry(f"LINE 429: {_reason(exc)}", max(delay, 30.0)) from exc
            if exc.status is not None and exc.status >= 500:
                raise _Retry(f"LINE {exc.status}", delay) from exc
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}".rstrip(": "), delay) from exc

    async def _fetch_content(self, wanted: dict[str, Any], timeout: float) -> str:
        """Fetch a person's image or file from LINE's data host into its `MessageContent` (gone already if
        the person unsent it or asked for deletion meanwhile: then nothing is written)."""
        response = await self._blob.get_message_content_with_http_info(wanted["messageId"], _request_timeout=timeout)
        data = bytes(response.data)
        async with self._sessions() as session:
            await session.exec(
                update(MessageContent)
                .where(MessageContent.id == wanted["content"], col(MessageContent.fetched_at).is_(None))
                .values(data=data, size=len(data), content_type=(response.headers or {}).get("Content-Type"), fetched_at=self._clock())
            )
            await session.commit()
        return "content"

    async def _link_rich_menu(self, user_id: str, alias: str, timeout: float) -> str:
        """Link the menu an alias names to the person (the alias is read each time: `line setup` moves it)."""
        try:
            menu = await self._api.get_rich_menu_alias(alias, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status not in (400, 404):
                raise
            return "no-menu"  # `tsunagi line setup` has not made this menu: the person keeps the one they have
        return await _answered("menu", self._api.link_rich_menu_id_to_user(user_id, menu.rich_menu_id, _request_timeout=timeout))

    async def _pause(self, reason: str) -> None:
        """Stop sending in every process; supervisors' pages hear of it at once (they show `paused`)."""
        self.paused = reason
        now = self._clock()
        async with self._sessions() as session:
            dialect = (await session.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            paused = await session.exec(
                insert(SendingPause)
                .values(id=1, reason=reason[:255], since=now, probe_at=now + self._probe_interval)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            if paused.rowcount == 1:
                log.error("outbox: LINE refused the channel access token (%s); sending paused, backlog kept", reason)
                announce(session, FAILURES_TOPIC)
            await session.commit()

    async def _probe(self) -> bool:
        """While paused, this process's turn to ask LINE about the bot; if the token works, resume everyone."""
        try:
            await self._api.get_bot_info(_request_timeout=self._request_timeout)
        except Exception as exc:
            log.warning("outbox: still paused; the probe failed: %s", _reason(exc) if isinstance(exc, ApiException) else describe(exc))
            return False
        log.warning("outbox: LINE takes the token again; sending resumed")
        self.paused = None
        async with self._sessions() as session:
            await session.exec(delete(SendingPause))
            announce(session, FAILURES_TOPIC)
            await session.commit()
        return True

    async def _hold_pushes(self, reason: str) -> None:
        """Hold pushes and multicasts for the month's quota (replies go on); supervisors' pages hear of it at once."""
        self._quota_probe_at = self._clock() + self._probe_interval
        if self.quota_spent is not None:
            return
        self.quota_spent = reason
        log.error("outbox: LINE refused a push for the month's quota (%s); pushes held, replies go on", reason)
        async with self._sessions() as session:
            announce(session, FAILURES_TOPIC)
            await session.commit()

    async def _probe_quota(self) -> None:
        """Read the month's budget afresh; lift the hold on pushes if LINE has room again."""
        self._quota_probe_at = self._clock() + self._probe_interval
        try:
            budget = await self._budget.read(fresh=True)
        except Exception as exc:
            log.warning("outbox: pushes still held; reading the budget failed: %s", _reason(exc) if isinstance(exc, ApiException) else describe(exc))
            return
        if budget is None or budget.spent:
            return
        log.warning("outbox: LINE takes pushes again; sending resumed")
        self.quota_spent = None
        async with self._sessions() as session:
            announce(session, FAILURES_TOPIC)
            await session.commit()

    async def _give_up(self, row: OutboxMessage, reason: str) -> None:
        await self._finish(row, OutboxStatus.FAILED, reason)
        log.error("outbox %s set aside: %s", row.id, reason, extra={"outbox_id": row.id})

    async def _finish(self, row: OutboxMessage, status: OutboxStatus, error: str | None, sent_via: str | None = None) -> None:
        """Record a row's outcome, trying again while the database is away: only this process knows it.

        A sent row left unrecorded would be sent again once its lease ran out.
        """
        now = self._clock()
        values = {
            "status": status,
            "last_error": error,
            "sent_via": sent_via,
            "reply_token": row.reply_token,
            "sent_at": now if status == OutboxStatus.SENT else None,
            "failed_at": now if status == OutboxStatus.FAILED else None,
        }
        if status != OutboxStatus.FAILED:
            # Delivered or cancelled: the words are not needed any more (content/retention.yaml); a row
            # given up keeps them until it is retried or dismissed.
            values["messages"] = []
        counted = status == OutboxStatus.SENT and row.kind == OutboxKind.MESSAGES
        for attempt in range(RECORD_TRIES):
            try:
                await self._update(row, announcing=status == OutboxStatus.FAILED, counting=(sent_via or "") if counted else None, **values)
                return
            except Exception:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("outbox %s: recording its outcome failed; trying again", row.id, extra={"outbox_id": row.id})
                await asyncio.sleep(0.5 * 2**attempt)

    async def _update(self, row: OutboxMessage, *, announcing: bool = False, counting: str | None = None, **values: Any) -> None:
        """Change the row; with `counting` (how it was sent), also count its messages for the report, in the same commit."""
        async with self._sessions() as session:
            updated = await session.exec(
                update(OutboxMessage).where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.PENDING).values(**values)
            )
            if counting is not None and updated.rowcount:
                await session.exec(_count_delivery(session.bind.dialect.name, row, counting, self._clock()))
            if announcing:
                announce(session, FAILURES_TOPIC)
            await session.commit()


def _count_delivery(dialect: str, row: OutboxMessage, via: str, now: datetime) -> Any:
    """Add a sent row's messages to its hour's count: free if it went as a reply, else counted by LINE
    once per recipient ("accepted-before" was a push or multicast LINE had taken already)."""
    charged = not via.startswith("reply")
    messages = len(row.messages) * (len(row.recipients) if charged and row.recipients is not None else 1)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    hour = now.replace(minute=0, second=0, microsecond=0)
    return (
        insert(DeliveryCount)
        .values(hour=hour, category=row.category or GUIDANCE, charged=charged, messages=messages)
        .on_conflict_do_update(index_elements=["hour", "category", "charged"], set_={"messages": DeliveryCount.messages + messages})
    )


async def _answered(via: str, request: Awaitable[object]) -> str:
    """Await one request to LINE; `via` if LINE took it, even when its answer could not be read.

    The SDK raises ApiException for every answer outside 2xx and aiohttp's errors for the transport;
    anything else it raises comes from reading a 2xx answer. LINE has accepted that message, so
    trying again would deliver it twice (a reply cannot carry a retry key): it counts as sent.
    """
    try:
        await request
    except (ApiException, aiohttp.ClientError, TimeoutError):
        raise
    except Exception as exc:
        log.warning("LINE accepted a %s but its answer could not be read (%s); counted as sent", via, type(exc).__name__)
        return f"{via}-unread"
    return via


async def cancel_pending_for(session: AsyncSession, user_id: str) -> None:
    """Stop every unsent message to a user (after an unfollow nothing more may reach them)."""
    await session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.to == user_id, OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED, last_error="recipient unfollowed", messages=[])
    )


def _reason(exc: ApiException) -> str:
    """LINE's own error message from the response body, or the HTTP reason."""
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.reason)
