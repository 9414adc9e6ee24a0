"""The outbox: handlers add messages here; one sender delivers them to LINE, in order, surviving restarts.

Delivery rules (LINE's own): reply with the reply token while it is fresh, else push (multicast for
several recipients) with an `X-Line-Retry-Key` kept on the row, so a retried request is accepted once.
5xx and timeouts are retried with exponential backoff and jitter, 429 backs off longer, 409 means
LINE already accepted the request, and any other 4xx fails the row with LINE's reason.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    AsyncMessagingApi,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.messaging.exceptions import ApiException
from sqlalchemy import func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.line.inbox import SessionFactory
from bot.line.limits import MESSAGES_PER_REQUEST, REPLY_TOKEN_FRESH_SECONDS
from bot.line.messages import Message
from bot.line.worker import KeyedWorker
from bot.storage.after_commit import note_send_queued
from bot.storage.models import LineUser, OutboxKind, OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# A send whose process died mid-request is taken again after this; the retry key makes it safe.
LEASE = timedelta(seconds=60)
LOADING_SECONDS = 20


def enqueue(
    session: AsyncSession,
    to: str,
    messages: list[Message],
    *,
    reply_token: str | None = None,
    event_time: datetime | None = None,
    recipients: list[str] | None = None,
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
            reply_deadline=token_start + timedelta(seconds=REPLY_TOKEN_FRESH_SECONDS)
            if use_token
            else None,
        )
        session.add(row)
        rows.append(row)
    note_send_queued(session)
    return rows


def enqueue_loading(session: AsyncSession, user_id: str) -> OutboxMessage:
    """Ask LINE to show the typing animation to a user while something takes a moment."""
    row = OutboxMessage(to=user_id, kind=OutboxKind.LOADING)
    session.add(row)
    note_send_queued(session)
    return row


class _Retry(Exception):
    """The attempt failed in a way worth trying again later."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class OutboxSender(KeyedWorker):
    """Delivers pending outbox rows: one recipient's rows in order, recipients concurrently."""

    def __init__(
        self,
        sessions: SessionFactory,
        api: AsyncMessagingApi,
        *,
        request_timeout: float = 10.0,
        base_delay: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        **loop_options: Any,
    ) -> None:
        """Set up the sender.

        Args:
            sessions: where the outbox lives.
            api: the LINE Messaging API client.
            request_timeout: seconds before a request to LINE counts as timed out (the SDK's own is 300).
            base_delay: first retry delay; doubles per attempt.
            clock: the current time (tests move it to expire reply tokens).
            **loop_options: `poll_interval` and `concurrency`, as `KeyedWorker` takes them.
        """
        super().__init__(**loop_options)
        self._sessions = sessions
        self._api = api
        self._request_timeout = request_timeout
        self._base_delay = base_delay
        self._clock = clock

    async def due_keys(self) -> list[str]:
        """Recipients with a pending row that is due."""
        async with self._sessions() as session:
            result = await session.exec(
                select(OutboxMessage.to)
                .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= self._clock())
                .group_by(OutboxMessage.to)
                .order_by(func.min(OutboxMessage.id))
                .limit(200)
            )
            return list(result)

    async def work(self, key: str) -> None:
        """Deliver the recipient's due rows in order, stopping at one that must wait for a retry."""
        while not self.stopping and (claimed := await self._claim(key)) is not None:
            row, may_send = claimed
            if not may_send:
                await self._finish(row, OutboxStatus.CANCELLED, "recipient unfollowed")
            elif not await self._attempt(row):
                return

    async def _claim(self, to: str) -> tuple[OutboxMessage, bool] | None:
        """Lease the oldest pending row of `to` if it is due; also say whether it may still be sent."""
        now = self._clock()
        async with self._sessions() as session:
            oldest = (
                select(OutboxMessage.id)
                .where(OutboxMessage.to == to, OutboxMessage.status == OutboxStatus.PENDING)
                .order_by(OutboxMessage.id)
                .limit(1)
                .scalar_subquery()
            )
            # The lease rides on next_attempt_at: one conditional UPDATE claims the row atomically, in
            # one process or several; a sender that dies mid-request leaves it to be taken again later.
            claimed = await session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == oldest, OutboxMessage.next_attempt_at <= now)
                .values(next_attempt_at=now + LEASE)
                .returning(OutboxMessage.id)
            )
            row_id = claimed.scalar_one_or_none()
            if row_id is None:
                return None
            row = await session.get(OutboxMessage, row_id)
            user = None if row.recipients is not None else await session.get(LineUser, to)
            await session.commit()
        # Users not known yet (a group, or a follow still in the inbox) may be sent to.
        return row, user is None or user.following

    async def _attempt(self, row: OutboxMessage) -> bool:
        """Try one delivery of a claimed row; record the outcome. Returns whether to go on with `to`."""
        now = self._clock()
        try:
            via = await self._send(row, now)
        except _Retry as retry:
            attempts = row.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                await self._finish(row, OutboxStatus.FAILED, f"gave up after {attempts} attempts: {retry}")
                return True
            # Later rows of this recipient wait: order matters more than speed.
            delay = retry.delay * (1 + random.random() * 0.25)
            await self._update(row, attempts=attempts, last_error=str(retry), next_attempt_at=now + timedelta(seconds=delay))
            log.warning("outbox %s: %s; retrying in %.1fs", row.id, retry, delay)
            return False
        except ApiException as exc:
            await self._finish(row, OutboxStatus.FAILED, f"LINE {exc.status}: {_reason(exc)}")
            log.error("outbox %s failed: LINE %s %s", row.id, exc.status, _reason(exc))
            return True
        await self._finish(row, OutboxStatus.SENT, None, sent_via=via)
        return True

    async def _send(self, row: OutboxMessage, now: datetime) -> str:
        """One request to LINE. Returns how it was sent; raises _Retry or ApiException."""
        delay = self._base_delay * 2**row.attempts
        timeout = self._request_timeout
        try:
            if row.kind == OutboxKind.LOADING:
                await self._api.show_loading_animation(
                    ShowLoadingAnimationRequest(chatId=row.to, loadingSeconds=LOADING_SECONDS),
                    _request_timeout=timeout,
                )
                return "loading"
            if row.reply_token and row.reply_deadline and now < row.reply_deadline:
                try:
                    await self._api.reply_message(
                        ReplyMessageRequest.from_dict({"replyToken": row.reply_token, "messages": row.messages}),
                        _request_timeout=timeout,
                    )
                    return "reply"
                except ApiException as exc:
                    if exc.status != 400 or "reply token" not in _reason(exc).lower():
                        raise
                    # The token expired or was used up: fall through to push, as LINE advises.
            if row.recipients is not None:
                await self._api.multicast(
                    MulticastRequest.from_dict({"to": row.recipients, "messages": row.messages}),
                    x_line_retry_key=row.retry_key,
                    _request_timeout=timeout,
                )
                return "multicast"
            await self._api.push_message(
                PushMessageRequest.from_dict({"to": row.to, "messages": row.messages}),
                x_line_retry_key=row.retry_key,
                _request_timeout=timeout,
            )
            return "push"
        except ApiException as exc:
            if exc.status == 409:
                return "accepted-before"  # LINE already accepted this retry key
            if exc.status == 429:
                raise _Retry(f"LINE 429: {_reason(exc)}", max(delay, 30.0)) from exc
            if exc.status is not None and exc.status >= 500:
                raise _Retry(f"LINE {exc.status}", delay) from exc
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}".rstrip(": "), delay) from exc

    async def _finish(self, row: OutboxMessage, status: OutboxStatus, error: str | None, sent_via: str | None = None) -> None:
        await self._update(
            row,
            status=status,
            attempts=row.attempts + 1,
            last_error=error,
            sent_via=sent_via,
            sent_at=self._clock() if status == OutboxStatus.SENT else None,
            # Delivered or given up: the words are not needed any more (content/retention.yaml).
            messages=[],
        )

    async def _update(self, row: OutboxMessage, **values: Any) -> None:
        async with self._sessions() as session:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
            await session.commit()


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
