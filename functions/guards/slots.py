"""The bounded queue in front of the engine's concurrency, with optional session hold.

``SlotPool`` grants at most ``limit`` concurrent slots; up to ``max_queue`` callers wait (FIFO) for
one, at most ``timeout_s`` each; more are refused at once (``QueueFullError``). With ``hold_s > 0`` a
session (any string id) that finishes a request keeps its slot reserved for ``hold_s`` seconds (seed
001 holds one for 120 s): its next request takes it without queueing, while other callers may only
use the slots nobody holds. At most ``max_held`` slots are held and one slot always stays shared.
asyncio only (one event loop); hold expiry is computed from the monotonic clock when asked.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from core.errors import InputError, LlmfnError


class QueueFullError(LlmfnError):
    """No slot and no room (or no time left) to wait for one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SlotPool:
    """Concurrency slots + bounded FIFO queue + session hold (see module docstring)."""

    def __init__(
        self,
        limit: int,
        max_queue: int,
        timeout_s: float,
        hold_s: float = 0.0,
        max_held: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise InputError(f"limit: must be >= 1, got {limit}")
        self.limit = limit
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.hold_s = hold_s
        self.max_held = min(max_held, limit - 1) if hold_s > 0 else 0
        self._clock = clock
        self._in_use = 0
        self._active_sessions: dict[str, int] = {}
        self._held: OrderedDict[str, float] = OrderedDict()  # session -> hold expiry (monotonic s)
        self._waiters: deque[tuple[asyncio.Future[None], str | None]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def held_sessions(self) -> int:
        """Sessions whose slot is held now (idle or busy)."""
        self._expire()
        return len(self._held)

    def _expire(self) -> None:
        now = self._clock()
        while self._held:
            session, expiry = next(iter(self._held.items()))
            if expiry > now:
                break
            del self._held[session]

    def _idle_reserved(self) -> int:
        return sum(1 for s in self._held if s not in self._active_sessions)

    def _can_take(self, session: str | None) -> bool:
        if self._in_use >= self.limit:
            return False
        if session is not None and session in self._held and session not in self._active_sessions:
            return True  # its own reserved slot
        return self._in_use + self._idle_reserved() < self.limit

    def _take(self, session: str | None) -> None:
        self._in_use += 1
        if session is not None:
            self._active_sessions[session] = self._active_sessions.get(session, 0) + 1

    async def acquire(self, session: str | None = None) -> None:
        """Take a slot, waiting in the queue if needed; raise ``QueueFullError`` when refused."""
        self._expire()
        if not self._waiters and self._can_take(session):
            self._take(session)
            return
        if len(self._waiters) >= self.max_queue:
            raise QueueFullError("queue_full")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (future, session)
        self._waiters.append(entry)
        deadline = self._clock() + self.timeout_s
        try:
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise QueueFullError("queue_timeout")
                wait_s = remaining
                if self._held:  # a hold may expire before anyone releases: look again then
                    wait_s = min(wait_s, max(0.001, next(iter(self._held.values())) - self._clock()))
                try:
                    await asyncio.wait_for(asyncio.shield(future), wait_s)
                    return  # granted by _grant (slot already taken for us)
                except TimeoutError:
                    self._grant()
                    if future.done():
                        return
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(session)  # granted while we were giving up: hand it on
            else:
                future.cancel()
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def release(self, session: str | None = None) -> None:
        """Give back a slot; the session (if any) then holds it for ``hold_s`` seconds."""
        self._in_use -= 1
        if session is not None:
            count = self._active_sessions.get(session, 1) - 1
            if count:
                self._active_sessions[session] = count
            else:
                self._active_sessions.pop(session, None)
            if self.max_held > 0:
                self._held.pop(session, None)
                self._held[session] = self._clock() + self.hold_s
                self._expire()
                while len(self._held) > self.max_held:
                    self._held.popitem(last=False)  # the oldest hold goes first
        self._grant()

    def _grant(self) -> None:
        """Wake waiters in FIFO order while they can take a slot (a held session may jump ahead)."""
        self._expire()
        for entry in list(self._waiters):
            future, session = entry
            if future.done():
                continue
            if self._can_take(session):
                self._take(session)
                future.set_result(None)
                self._waiters.remove(entry)
            elif self._in_use >= self.limit:
                break
