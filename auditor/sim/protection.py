"""Dataverse-style service protection: concurrency, request-count and execution-time limits.

Dataverse evaluates its limits per user and per web server; the simulator evaluates them per
client (the token's `appid`), API and environment, which is what a collector running against
one tenant experiences. Limits and error codes follow
https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
(0x80072326 concurrent requests, 0x80072322 number of requests, 0x80072321 combined execution
time; 429 with Retry-After). The execution time of a request here is the time from its
admission to its answer (latency included), the simulator's stand-in for the server's work.
The server runs on one event loop, so no locking is needed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, str]  # (client id, "<API>:<environment id>", "admin:" for the tenant-wide API)

CONCURRENCY_CODE = "0x80072326"
REQUEST_COUNT_CODE = "0x80072322"
EXECUTION_TIME_CODE = "0x80072321"


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused and how long the client should wait (seconds)."""

    code: str
    message: str
    retry_after_s: float


class ServiceProtection:
    """Tracks in-flight requests and a sliding window of admitted requests and of their
    execution time per key."""

    def __init__(
        self,
        max_concurrent: int,
        max_requests: int,
        window_s: float,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_execution_s: float = 1200.0,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_requests = max_requests
        self.window_s = window_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._in_flight: dict[Key, int] = {}
        self._admitted: dict[Key, deque[float]] = {}
        self.max_execution_s = max_execution_s
        self._started: dict[Key, deque[float]] = {}  # admission times of requests in flight
        self._executed: dict[Key, deque[tuple[float, float]]] = {}  # (ended, seconds)
        self._busy: dict[Key, float] = {}  # the sum of each key's `_executed` seconds

    def acquire(self, key: Key) -> Rejection | None:
        """Admit the request (call `release` when it ends) or say why not.

        Rejected requests are not counted in the window, so a client that honours
        Retry-After gets through once the window has room.
        """
        if self._in_flight.get(key, 0) >= self.max_concurrent:
            return Rejection(
                CONCURRENCY_CODE,
                f"Number of concurrent requests exceeded the limit of {self.max_concurrent}.",
                self.retry_after_s,
            )
        now = self._clock()
        window = self._admitted.setdefault(key, deque())
        while window and window[0] <= now - self.window_s:
            window.popleft()
        if len(window) >= self.max_requests:
            # Wait at least until the oldest admitted request leaves the window.
            wait = math.ceil(window[0] + self.window_s - now)
            return Rejection(
                REQUEST_COUNT_CODE,
                f"Number of requests exceeded the limit of {self.max_requests} over time "
                f"window of {self.window_s:g} seconds.",
                max(self.retry_after_s, wait),
            )
        executed = self._executed.setdefault(key, deque())
        while executed and executed[0][0] <= now - self.window_s:
            self._busy[key] -= executed.popleft()[1]
        if executed and self._busy[key] >= self.max_execution_s:
            return Rejection(
                EXECUTION_TIME_CODE,
                "Combined execution time of incoming requests exceeded limit of "
                f"{self.max_execution_s * 1000:,.0f} milliseconds over time window of "
                f"{self.window_s:g} seconds. Decrease number of concurrent requests or reduce "
                "the duration of requests and try again later.",
                max(self.retry_after_s, math.ceil(executed[0][0] + self.window_s - now)),
            )
        window.append(now)
        self._started.setdefault(key, deque()).append(now)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return None

    def release(self, key: Key) -> None:
        """End an admitted request; its time since admission counts as execution time.

        Requests of a key end in any order; pairing each end with the oldest admission still
        open gives every request a time no shorter than its own and the window the same sum.
        """
        started = self._started.get(key)
        if started:
            now = self._clock()
            seconds = now - started.popleft()
            self._executed.setdefault(key, deque()).append((now, seconds))
            self._busy[key] = self._busy.get(key, 0.0) + seconds
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    def in_flight(self, key: Key) -> int:
        """Requests admitted and not yet released for `key`."""
        return self._in_flight.get(key, 0)
