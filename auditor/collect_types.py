"""What a collection scan is asked and what it reports: its options, the outcomes per
environment, the summary, the progress protocol, and the tenant's clock it reads its end from.

Apart from the scan's flow (`auditor.collect`) so the command line can name them, and the flow
reads as the steps of a scan.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from auditor.request_stats import RequestStats
from auditor.sources.base import Environment, QueryOutcome


@dataclass(frozen=True)
class CollectOptions:
    """What to collect (the `auditor collect` flags)."""

    environments: tuple[str, ...] = ()
    since: timedelta | None = None
    action_sample: int = 50
    fresh: bool = False  # abandon an interrupted scan instead of resuming it

    def arguments(self) -> dict[str, Any]:
        """The options as stored with the scan (and read back to resume it)."""
        return {
            "environments": list(self.environments),
            "since_seconds": self.since.total_seconds() if self.since else None,
            "action_sample": self.action_sample,
        }

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> CollectOptions:
        """The options of a stored scan."""
        since = arguments.get("since_seconds")
        return cls(
            environments=tuple(arguments.get("environments") or ()),
            since=timedelta(seconds=float(since)) if since else None,
            action_sample=int(arguments.get("action_sample", 50)),
        )


@dataclass
class EnvironmentResult:
    """The outcomes of one environment."""

    environment: Environment
    outcomes: list[QueryOutcome] = field(default_factory=list)


@dataclass
class CollectSummary:
    """What a scan did: per environment and query, rows, requests, retries, status."""

    scan_id: int
    resumed: bool
    status: str  # completed | partial | failed
    window_start: datetime
    window_end: datetime
    results: list[EnvironmentResult]
    seconds: float

    @property
    def outcomes(self) -> list[QueryOutcome]:
        """Every query outcome of the scan."""
        return [o for result in self.results for o in result.outcomes]

    @property
    def stats(self) -> RequestStats:
        """Requests, retries and throttling of the whole scan."""
        total = RequestStats()
        for outcome in self.outcomes:
            total.add(outcome.stats)
        return total


class Progress(Protocol):
    """Where the collector reports what it does (a rich display, or nothing)."""

    def rows(self, environment: str, query_id: str, count: int) -> None:
        """Rows read by a query."""

    def done(self, outcome: QueryOutcome) -> None:
        """A query finished."""


class Silent:
    """The progress of a caller that shows none."""

    def rows(self, environment: str, query_id: str, count: int) -> None:
        pass

    def done(self, outcome: QueryOutcome) -> None:
        pass


class ServerClock:
    """The tenant's time, from the `Date` header of its answers."""

    def __init__(self) -> None:
        self.first: datetime | None = None

    async def observe(self, response: httpx.Response) -> None:
        """Response hook: keep the first parseable `Date`."""
        if self.first is None and "date" in response.headers:
            try:
                moment = email.utils.parsedate_to_datetime(response.headers["date"])
            except (TypeError, ValueError):
                return
            if moment.tzinfo is not None:
                self.first = moment.astimezone(UTC)
