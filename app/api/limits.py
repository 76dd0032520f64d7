"""Limits that keep one client, or one burst, from taking the service down.

* :class:`RateLimitMiddleware`: a token bucket per client address over ``/v1`` (health excepted).
  Past it, ``429 {"detail": ...}`` with ``Retry-After``, before the request body is read.
* :class:`HeavyLimiter`: at most ``max_heavy_requests`` decoding requests (identify, catalog and
  world adds, voice search) at once. More wait their turn for up to ``heavy_wait_seconds``, then
  get 429. Waiting, not refusing at once: a page or a script that sends a handful of uploads
  together should see them answered a little later, not fail; a sustained overload still gets a
  quick, clear answer rather than piling up threads and decoded audio (up to ~300 MB per hour of
  audio) until the machine runs out of memory.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from encore.errors import Busy

#: Buckets kept before idle (full) ones are forgotten: bounds memory whatever the number of clients.
MAX_BUCKETS = 10_000


class TokenBuckets:
    """One token bucket per key: ``per_minute`` tokens a minute, a burst of up to ``per_minute``."""

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds until there is."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now)
        return wait

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket.
        full = [k for k, (tokens, then) in self._buckets.items()
                if tokens + (now - then) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]


class RateLimitMiddleware:
    """Answer 429 with ``Retry-After`` to a client past ``per_minute`` requests to ``/v1``.

    The client is the connection's address (behind a reverse proxy, uvicorn's ``--proxy-headers``
    and ``--forwarded-allow-ips`` make it the real client's). ``/v1/health`` is never limited, so
    a load balancer's checks neither count nor get refused.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, prefix: str = "/v1/",
                 exempt: frozenset[str] = frozenset({"/v1/health"})) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute) if per_minute > 0 else None
        self.per_minute = per_minute
        self.prefix = prefix
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is not None and scope["type"] == "http":
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            if path.startswith(self.prefix) and path not in self.exempt:
                client = scope.get("client")
                wait = self.buckets.take(client[0] if client else "unknown")
                if wait > 0:
                    from app.api.errors import busy_response

                    retry = max(1, math.ceil(wait))
                    response = busy_response(
                        f"too many requests: at most {self.per_minute} a minute from one client; "
                        f"try again in {retry} s", retry_after=retry)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class HeavyLimiter:
    """A counting semaphore for heavy requests, with a bounded wait.

    Not an ``asyncio.Semaphore``: that binds to the first event loop it waits on, and an app may be
    served by more than one (tests start one per client). Waiters are futures of their own loop,
    woken through it.
    """

    def __init__(self, limit: int, *, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handed: set[asyncio.Future[None]] = set()  # woken, not yet running
        self._lock = threading.Lock()

    async def acquire(self) -> None:
        """Take a slot, waiting up to ``wait_s``; raises :class:`Busy` when none frees up."""
        with self._lock:
            if self.active < self.limit and not self._waiters:
                self.active += 1
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=self.wait_s)
        except BaseException as exc:  # the wait ran out, or the request was cancelled while waiting
            with self._lock:
                given = waiter in self._handed  # the slot was handed over just as the wait ended
                self._handed.discard(waiter)
                if not given:
                    self._waiters.remove(waiter)
                    waiter.cancel()
            if given:
                self.release()
            if isinstance(exc, TimeoutError):
                raise Busy(f"the service is busy: {self.limit} requests are decoding audio and none finished "
                           f"within {self.wait_s:g} s; try again shortly",
                           retry_after=max(1, math.ceil(self.wait_s))) from None
            raise
        with self._lock:
            self._handed.discard(waiter)

    def release(self) -> None:
        """Free a slot: hand it to the longest waiter, if any (the count of active slots stays)."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                self._handed.add(waiter)
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)
                return
            self.active -= 1


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def heavy_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the ``max_heavy_requests`` slots for the whole request (no bound when 0)."""
    limiter: HeavyLimiter | None = getattr(request.app.state, "heavy", None)
    if limiter is None or limiter.limit <= 0:
        yield
        return
    await limiter.acquire()
    try:
        yield
    finally:
        limiter.release()


HeavySlotDep = Annotated[None, Depends(heavy_slot)]
