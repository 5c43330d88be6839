"""Dataverse-style service protection, scaled down: concurrency and request-count limits.

Dataverse evaluates its limits per user and per web server; the simulator evaluates them per
client (the token's `appid`), API and environment, which is what a collector running against
one tenant experiences. Limits and error codes follow
https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
(0x80072326 concurrent requests, 0x80072322 number of requests; 429 with Retry-After).
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


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused and how long the client should wait (seconds)."""

    code: str
    message: str
    retry_after_s: float


class ServiceProtection:
    """Tracks in-flight requests and a sliding window of admitted requests per key."""

    def __init__(
        self,
        max_concurrent: int,
        max_requests: int,
        window_s: float,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_requests = max_requests
        self.window_s = window_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._in_flight: dict[Key, int] = {}
        self._admitted: dict[Key, deque[float]] = {}

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
        window.append(now)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return None

    def release(self, key: Key) -> None:
        """End an admitted request."""
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    def in_flight(self, key: Key) -> int:
        """Requests admitted and not yet released for `key`."""
        return self._in_flight.get(key, 0)
