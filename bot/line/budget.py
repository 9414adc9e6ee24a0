"""The month's message budget: pushes and multicasts count against LINE's monthly quota, replies are free.

`MessageBudget` reads the quota and its consumption from LINE at most once per `max_age` (supervisors'
pages re-fetch often; LINE's figures move slowly), and at once when asked for a fresh reading: the
outbox sender does so while LINE refuses pushes for the quota, to know when to send again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from linebot.v3.messaging import AsyncMessagingApi
from linebot.v3.messaging.exceptions import ApiException

from bot.storage.models import utcnow

log = logging.getLogger(__name__)

# Shares of the quota at which supervisors are warned, then warned again.
ALERT_SHARES = (0.8, 0.95)
# LINE's 429 body when the month's quota is spent (other 429s are rate limits, retried later).
QUOTA_SPENT_MESSAGE = "monthly limit"


@dataclass(frozen=True)
class Budget:
    """One reading: the month's quota (None: no limit, as on plans without one) and what is used of it."""

    limit: int | None
    used: int
    read_at: datetime

    @property
    def share(self) -> float | None:
        """The share used, or None without a limit."""
        return None if not self.limit else self.used / self.limit

    @property
    def alert(self) -> float | None:
        """The highest alert share reached (0.8 or 0.95), or None below the first."""
        share = self.share
        return max((a for a in ALERT_SHARES if share is not None and share >= a), default=None)

    @property
    def spent(self) -> bool:
        """Whether LINE would refuse another push."""
        return self.limit is not None and self.used >= self.limit


class MessageBudget:
    """The month's budget, read from LINE and kept for `max_age`."""

    def __init__(self, api: AsyncMessagingApi, *, max_age: timedelta = timedelta(minutes=5), clock: Callable[[], datetime] = utcnow) -> None:
        self._api, self._max_age, self._clock = api, max_age, clock
        self._last: Budget | None = None

    async def read(self, *, fresh: bool = False) -> Budget | None:
        """The budget, from the cache unless it is older than `max_age` (or `fresh`); None if LINE never answered."""
        if fresh or self._last is None or self._clock() - self._last.read_at > self._max_age:
            try:
                quota = await self._api.get_message_quota(_request_timeout=10)
                consumption = await self._api.get_message_quota_consumption(_request_timeout=10)
            except (ApiException, OSError, TimeoutError) as exc:
                log.warning("the message budget could not be read from LINE: %s", type(exc).__name__)
                return self._last
            previous = self._last.alert if self._last else None
            limit = quota.value if quota.type == "limited" else None
            self._last = Budget(limit, consumption.total_usage, self._clock())
            if self._last.alert is not None and self._last.alert != previous:
                log.warning("LINE message budget: %d of %d used this month", self._last.used, limit)
        return self._last
