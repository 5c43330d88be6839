"""Each environment's service-protection budget, spent by the client before the service refuses.

Dataverse evaluates its service protection limits per user over a 5-minute sliding window:
6,000 requests and 20 minutes of combined execution time, with at most 52 requests at once;
beyond them it answers 429 with a Retry-After
(https://learn.microsoft.com/power-apps/developer/data-platform/api-limits, "Service
protection API limits"). Every environment is its own Dataverse organization with its own
web servers, so each has its own budget and environments can be read side by side.

The collector keeps its own account of that window per budget key (`budget_key`) and holds a
request back while the window is full, instead of sending it to be refused: a scan runs at the
bound without a burst of 429s each time the window fills. Retry-After stays the authority
when the client's account is wrong (another tool using the same identity, a lower limit).

Inferred, not documented:
- The flow API (`api.flow.microsoft.com`) publishes no service protection numbers for direct
  calls; the collector gives each environment's flow API routes the Dataverse budget, and
  Retry-After corrects it where the service allows less.
- The service measures execution time on its side; the client counts the time from sending a
  request to its response, which includes the network and so never undercounts.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

REQUESTS_PER_WINDOW = 6000  # requests per user in the sliding window (api-limits)
WINDOW_SECONDS = 300.0  # the 5-minute sliding window (api-limits)
EXECUTION_SECONDS = 1200.0  # 20 minutes of combined execution time in the window (api-limits)

# The part of a URL that names one environment's API: a Dataverse organization's Web API
# root, or an environment of the flow API (`.../environments/<name>`).
_ENVIRONMENT_ROOT = re.compile(r"^(.*?/api/data/|.*?/environments/[^/]+)")


def budget_key(url: httpx.URL) -> str:
    """Whose budget a request spends: the host and, on a shared host, the environment."""
    host = url.netloc.decode("ascii")
    match = _ENVIRONMENT_ROOT.match(url.path)
    return host + match.group(1) if match else host


@dataclass
class _Window:
    ended: deque[float] = field(default_factory=deque)  # when each request in the window ended
    open: int = 0  # requests let through and not yet answered (waiting or in flight)
    durations: deque[tuple[float, float]] = field(default_factory=deque)  # (ended, seconds)
    busy: float = 0.0  # the sum of `durations`
    queue: deque[asyncio.Future[None]] = field(default_factory=deque)  # requests held, in order
    changed: asyncio.Future[None] | None = None  # set when an open request ends


class RequestBudget:
    """A sliding window per budget key: requests and their combined duration.

    A request takes its place (`reserve`, waiting while the window is full) and holds it
    while it waits for a connection and while it is in flight; when its answer comes
    (`done`), it stays in the window from that moment, or it gives its place back if it was
    never sent (`release`). The service counted it somewhere between sending and answering,
    so counting it from the answer never lets a request out before the service's own window
    has room.

    Requests held back queue in order and only the first of them waits on the clock (or for
    an open request to end); each hands over to the next once it has its place, so thousands
    of held requests cost one wake-up each, not one per place that frees.
    """

    def __init__(
        self,
        requests: int = REQUESTS_PER_WINDOW,
        window_s: float = WINDOW_SECONDS,
        execution_s: float = EXECUTION_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests < 1 or window_s <= 0 or execution_s <= 0:
            raise ValueError("a request budget needs a positive count, window and time")
        self.requests = requests
        self.window_s = window_s
        self.execution_s = execution_s
        self.clock = clock
        self.sleep = sleep
        self._windows: dict[str, _Window] = {}

    def _window(self, key: str) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        return window

    def _expire(self, window: _Window, now: float) -> None:
        start = now - self.window_s
        while window.ended and window.ended[0] <= start:
            window.ended.popleft()
        while window.durations and window.durations[0][0] <= start:
            window.busy -= window.durations.popleft()[1]

    def wait(self, key: str) -> float:
        """Seconds until a request to `key` fits in its window: 0 when it fits now, infinite
        while requests still open fill it (the time they leave is not known yet)."""
        window = self._window(key)
        now = self.clock()
        self._expire(window, now)
        wait = 0.0
        taken = len(window.ended) + window.open
        if taken >= self.requests:
            leaving = taken - self.requests  # this many of the oldest must leave first
            if leaving >= len(window.ended):
                return math.inf
            wait = window.ended[leaving] + self.window_s - now
        if window.busy >= self.execution_s and window.durations:
            # Until enough of the oldest durations leave the window.
            excess, until = window.busy - self.execution_s, window.durations[0][0]
            for ended, seconds in window.durations:
                until = ended
                excess -= seconds
                if excess < 0:
                    break
            wait = max(wait, until + self.window_s - now)
        return max(0.0, wait)

    async def reserve(self, key: str) -> None:
        """Wait until a request to `key` fits in its window, then hold its place."""
        window = self._window(key)
        if not window.queue and self.wait(key) == 0:
            window.open += 1
            return
        turn = asyncio.get_running_loop().create_future()
        window.queue.append(turn)
        try:
            if window.queue[0] is not turn:
                await turn  # the request ahead hands over once it has its place
            while (wait := self.wait(key)) > 0:
                if math.isinf(wait):
                    if window.changed is None or window.changed.done():
                        window.changed = asyncio.get_running_loop().create_future()
                    await window.changed
                else:
                    await self.sleep(wait)
            window.open += 1
        finally:
            first = window.queue[0] is turn
            window.queue.remove(turn)
            if first and window.queue and not window.queue[0].done():
                window.queue[0].set_result(None)

    def _ended(self, window: _Window) -> None:
        window.open -= 1
        if window.changed is not None and not window.changed.done():
            window.changed.set_result(None)

    def release(self, key: str) -> None:
        """The request that took a place was never sent: give the place back."""
        self._ended(self._window(key))

    def done(self, key: str, seconds: float) -> None:
        """The request that took a place was answered (or failed) after `seconds` in flight:
        it stays in the window from now, and its time counts as execution time."""
        window = self._window(key)
        now = self.clock()
        self._ended(window)
        window.ended.append(now)
        window.durations.append((now, seconds))
        window.busy += seconds
