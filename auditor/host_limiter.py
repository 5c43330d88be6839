"""The cap on requests in flight per environment API, shared by every client of a scan.

A "host" here is a budget key (`auditor.request_budget.budget_key`): a Dataverse organization
(a host of its own) or one environment's routes on the flow API's shared host, so each
environment is read with its own share of the cap, side by side with the others. Inferred for
the flow API, which publishes no concurrency limit: its environments are capped apart like
Dataverse's.

Apart from the retry transport because it is the scan's one piece of shared state: one limiter
per run, handed to every client, whatever API it talks to.

Dataverse service protection: https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
(52 concurrent requests per user and web server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

# The transport's logger: every line the transport writes, wherever its code lives, goes out
# under one name.
log = logging.getLogger("auditor.http")

MAX_CONCURRENCY = 50  # below Dataverse's 52 concurrent requests per user and web server


class _Host:
    """One host's share of the cap: its limit, its requests in flight and its waiters."""

    def __init__(self, cap: int) -> None:
        self.limit = cap
        self.in_flight = 0
        self.peak = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def wake(self) -> None:
        """Hand free slots to waiters, first come first served."""
        while self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                self.in_flight += 1
                waiter.set_result(None)

    def release(self) -> None:
        self.in_flight -= 1
        self.wake()


class HostLimiter:
    """A cap on requests in flight per environment API ("host"), shared by every client.

    A request holds one of its host's slots while it runs. A host's limit starts at the cap
    and comes down when the service refuses concurrency (`lower`); a request-count refusal
    pauses every request of the same budget (one environment's API) until its Retry-After
    (`pause`), because every request sent before then would be refused too and lengthen the
    penalty; other environments go on.
    """

    def __init__(self, cap: int = 16) -> None:
        if not 1 <= cap <= MAX_CONCURRENCY:
            raise ValueError(f"the concurrency cap must be from 1 to {MAX_CONCURRENCY}")
        self.cap = cap
        self._hosts: dict[str, _Host] = {}
        # budget key -> no request starts before this time (a shared Retry-After)
        self._paused: dict[str, float] = {}

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self.cap)
        return state

    @property
    def peak(self) -> dict[str, int]:
        """The most requests that were in flight at once, per environment API."""
        return {host: state.peak for host, state in self._hosts.items()}

    def in_flight(self, host: str) -> int:
        """Requests to `host` in flight now."""
        return self._host(host).in_flight

    def limit(self, host: str) -> int:
        """How many requests to `host` may be in flight (the cap, or lower once refused)."""
        return self._host(host).limit

    def lower(self, host: str, limit: int) -> None:
        """Keep at most `limit` (at least 1) requests to `host` in flight from now on."""
        state = self._host(host)
        if limit < state.limit:
            state.limit = max(1, limit)
            log.info("%s refused concurrent requests: at most %d at once", host, state.limit)

    def pause(self, key: str, until: float) -> None:
        """Start no request of the budget `key` (`auditor.request_budget.budget_key`: one
        environment's API) before `until`, a time of the transport's clock."""
        self._paused[key] = max(self._paused.get(key, 0.0), until)

    def paused_until(self, key: str) -> float:
        """The time before which no request of the budget `key` starts (0 when not paused)."""
        return self._paused.get(key, 0.0)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots for the duration of the block."""
        state = self._host(host)
        if state.waiters or state.in_flight >= state.limit:
            waiter = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # granted, then cancelled
                    state.release()
                raise
        else:
            state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        try:
            yield
        finally:
            state.release()
