"""The loop shared by the inbox worker and the outbox sender: work per key, in order per key, keys concurrently."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class KeyedWorker(ABC):
    """Runs `work(key)` for every key that has due work, never two tasks for one key at once.

    A key is a person (or an audience): one task per key keeps that person's work in order, while
    different people are served side by side. Polling finds work left by a restart or another
    process; `wake()` makes new work start at once, and `wake(key)` starts that key's work without
    searching for it (under load most work arrives that way: one query fewer per unit).
    """

    #: Seconds a stopping worker lets tasks in flight finish before cancelling them.
    STOP_GRACE = 5.0

    def __init__(self, *, poll_interval: float = 1.0, concurrency: int = 8) -> None:
        self._poll_interval = poll_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        self._busy: dict[str, asyncio.Task[None]] = {}
        # Keys woken while their task was running: the task looks again before it ends.
        self._again: set[str] = set()
        self.running = False

    @abstractmethod
    async def due_keys(self) -> list[str]:
        """Keys that have work due now, oldest first."""

    @abstractmethod
    async def work(self, key: str) -> None:
        """Do the due work of one key, in order."""

    def wake(self, *keys: str | None) -> None:
        """Look for work now rather than at the next poll; with keys, start their work directly.

        A key whose task is running is looked at again by that task before it ends, so work that
        arrived during its last look is not left to the next poll. `None` among keys means "search".
        """
        if not keys or None in keys or not self.running or self._stopping:
            self._wake.set()
            return
        for key in keys:
            if key in self._busy:
                self._again.add(key)
            else:
                self._start(key)

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called: `work` should return after the unit in hand."""
        return self._stopping

    def stop(self) -> None:
        """Ask `run` to return after the work in flight (work not started stays for the next start)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Work until `stop()`."""
        self.running = True
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self.start_due()
                except Exception:
                    log.exception("%s pass failed; trying again", type(self).__name__)
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                except TimeoutError:
                    pass
        finally:
            self.running = False
            # Letting a task finish is better than cancelling it inside a database transaction.
            if self._busy:
                await asyncio.wait(list(self._busy.values()), timeout=self.STOP_GRACE)
            for task in list(self._busy.values()):
                task.cancel()

    async def start_due(self) -> None:
        """Start a task for every key with due work that has none running."""
        for key in await self.due_keys():
            if key not in self._busy and not self._stopping:
                self._start(key)

    def _start(self, key: str) -> None:
        task = asyncio.create_task(self._guarded(key))
        self._busy[key] = task
        task.add_done_callback(lambda _task, done=key: self._busy.pop(done, None))

    async def drain(self) -> None:
        """Work until nothing is due (for tests and tools)."""
        while True:
            await self.start_due()
            if not self._busy:
                return
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def _guarded(self, key: str) -> None:
        async with self._slots:
            self._again.discard(key)
            try:
                await self.work(key)
                while key in self._again and not self._stopping:
                    self._again.discard(key)
                    await self.work(key)
            except Exception:
                self._again.discard(key)
                log.exception("%s: work for %s failed; it is tried again later", type(self).__name__, key)
