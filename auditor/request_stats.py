"""Request counters: what a unit of work cost in requests, retries, 429s and token refreshes.

Apart from the transport because the auth layer and the collectors count too, each through the
task's `current_stats`, without importing the retry machinery.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestStats:
    """Counters for one unit of work (a query of an environment, or a whole scan)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    throttle_wait_s: float = 0.0
    token_refreshes: int = 0

    def add(self, other: RequestStats) -> None:
        """Fold another set of counters into this one."""
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.throttle_wait_s += other.throttle_wait_s
        self.token_refreshes += other.token_refreshes


# The counters of the task that sends a request: set by collectors around a unit of work,
# updated by the transport and the auth layer, so counting needs no plumbing through calls.
current_stats: ContextVar[RequestStats | None] = ContextVar("current_stats", default=None)


def count(**deltas: float) -> None:
    """Add `deltas` to the counters of the current task, if it has any."""
    stats = current_stats.get()
    if stats is not None:
        for name, delta in deltas.items():
            setattr(stats, name, getattr(stats, name) + delta)
