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
    sent: deque[float] = field(default_factory=deque)  # when each request in the window went
    durations: deque[tuple[float, float]] = field(default_factory=deque)  # (ended, seconds)
    busy: float = 0.0  # the sum of `durations`


class RequestBudget:
    """A sliding window per budget key: requests sent and their combined duration."""

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
        self.held_s = 0.0  # seconds requests were held back, summed over requests
        self._windows: dict[str, _Window] = {}

    def _expire(self, window: _Window, now: float) -> None:
        start = now - self.window_s
        while window.sent and window.sent[0] <= start:
            window.sent.popleft()
        while window.durations and window.durations[0][0] <= start:
            window.busy -= window.durations.popleft()[1]

    def wait(self, key: str) -> float:
        """Seconds until a request to `key` fits in its window (0 when it fits now)."""
        window = self._windows.setdefault(key, _Window())
        now = self.clock()
        self._expire(window, now)
        wait = 0.0
        if len(window.sent) >= self.requests:
            wait = window.sent[len(window.sent) - self.requests] + self.window_s - now
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

    async def spend(self, key: str) -> None:
        """Wait until a request to `key` fits in its window, then count it as sent."""
        while (wait := self.wait(key)) > 0:
            self.held_s += wait
            await self.sleep(wait)
        self._windows[key].sent.append(self.clock())

    def done(self, key: str, seconds: float) -> None:
        """Count the time a request to `key` took against the window's execution time."""
        window = self._windows.setdefault(key, _Window())
        window.durations.append((self.clock(), seconds))
        window.busy += seconds
