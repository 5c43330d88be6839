"""The collectors' interface: what a source is given, and what it gives back.

Sources talk to one API each and never touch the store: they hand pages to a `Sink` (the
orchestrator binds it to the store, one per scan and environment), ask it where an interrupted
scan stopped, and return one `QueryOutcome` per query, so a query that fails is a result
(`not-collected`, with the reason and what to do), never a silent gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from auditor.errors import AuditorError
from auditor.request_stats import RequestStats, current_stats

log = logging.getLogger(__name__)

COLLECTED = "collected"
PARTIAL = "partial"
NOT_COLLECTED = "not-collected"

# First scan of an environment: this far back. Later scans start at the query's watermark
# minus the overlap (rows committed late are caught again; keys deduplicate them).
DEFAULT_LOOKBACK = timedelta(days=7)
OVERLAP = timedelta(hours=1)

Row = dict[str, Any]


@dataclass(frozen=True)
class Environment:
    """An environment to collect: its id (the admin API `name`) and its Dataverse URL."""

    id: str
    display_name: str
    dataverse_url: str | None  # None: the environment has no Dataverse database
    sku: str | None = None
    discovered_by: str = "configuration"  # or "admin API"


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted unit of work (one nextLink chain) stopped."""

    next_link: str | None
    done: bool


@dataclass
class QueryOutcome:
    """How one query of one environment went."""

    query_id: str
    environment_id: str
    status: str = COLLECTED
    rows: int = 0
    stats: RequestStats = field(default_factory=RequestStats)
    reason: str | None = None  # why it is not collected, or a warning about what it holds
    hint: str | None = None
    watermark: datetime | None = None  # set the query's watermark to this when collected
    resumed: bool = False  # completed before the scan was interrupted: already recorded


class Sink(Protocol):
    """Where a source puts what it read (the store, for one scan and one environment)."""

    def resume_point(self, query_id: str, unit: str) -> ResumePoint | None:
        """How far this unit got in an interrupted run of the same scan, if at all."""

    async def write(
        self,
        query_id: str,
        unit: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        next_link: str | None,
        done: bool,
        plan: Sequence[str] = (),
    ) -> int:
        """Store a page and the unit's progress together (all or nothing); rows written.

        `plan` names units of the same query that take over from this one (the windows a
        first page was cut into), recorded in the same transaction so a resumed scan reads
        them."""

    def units(self, query_id: str) -> Mapping[str, ResumePoint]:
        """Every unit of a query an interrupted run of this scan recorded, and how far it got."""

    async def write_units(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        units: Sequence[tuple[str, str, int]],
        also: tuple[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> int:
        """Store the rows of several finished units and mark each done, all or nothing.

        `units` holds (query id, unit, rows of that unit); `also` is (table, rows) stored in
        the same transaction."""

    async def replace(self, query_id: str, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Replace the environment's rows of a table read in full (deletions show)."""

    def watermark(self, query_id: str) -> datetime | None:
        """The end of the last complete read of this query, if any."""

    def finished(self, query_id: str) -> bool:
        """Whether this query already completed in this scan (before an interruption)."""

    def runs(self, start: datetime, end: datetime) -> dict[str, list[tuple[str, str]]]:
        """Per flow, (run name, status) of its stored runs that started in `[start, end)` and
        whose actions are not stored yet (an overlap must not sample a run twice)."""

    def flow_activity(self, start: datetime, end: datetime) -> FlowActivity:
        """What the store already knows about flows, to read only what may have changed."""

    def progress(self, query_id: str, rows: int) -> None:
        """Report rows read, for the progress display."""


@dataclass(frozen=True)
class FlowActivity:
    """Signals from the store that decide which flows an incremental scan pages again."""

    # workflowid (lower case) of solution flows with Dataverse `flowruns` in the window
    active_workflows: frozenset[str] = frozenset()
    # flow name -> start of its oldest stored run still `Running` (it must be read again)
    running_since: Mapping[str, datetime] = field(default_factory=dict)
    # Dataverse reported flow-run ingestion gaps in the window: its run history is incomplete
    ingestion_gaps: bool = False
    # flow name -> (last modified, definition JSON) as stored, to reuse unchanged definitions
    definitions: Mapping[str, tuple[datetime | None, str | None]] = field(default_factory=dict)
    # whether the Dataverse `flowruns` of this scan were read (else there is no signal)
    flowruns_collected: bool = False
    # flow name -> start of its newest stored run
    last_run: Mapping[str, datetime] = field(default_factory=dict)
    # workflowid (lower case) -> clientdata of solution flows (to find scheduled ones)
    solution_definitions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanWindow:
    """The time range of a scan: up to `until` (the tenant's clock), from `since` if given."""

    until: datetime
    since: datetime | None = None  # --since; else each query starts at its watermark

    def start_for(self, watermark: datetime | None) -> datetime:
        """Where a windowed query starts: --since, else its watermark minus the overlap."""
        if self.since is not None:
            return self.since
        if watermark is not None:
            return min(watermark - OVERLAP, self.until)
        return self.until - DEFAULT_LOOKBACK

    def new_since(self, watermark: datetime | None) -> datetime:
        """Where new data starts: --since, else the watermark itself (no overlap), else the
        lookback. What came before the watermark belonged to an earlier scan's population."""
        if self.since is not None:
            return self.since
        if watermark is not None:
            return min(watermark, self.until)
        return self.until - DEFAULT_LOOKBACK


async def run_query(
    query_id: str,
    environment_id: str,
    read: Callable[[QueryOutcome], Awaitable[None]],
    *,
    explain: Callable[[AuditorError, QueryOutcome], None] | None = None,
) -> QueryOutcome:
    """Run one query, counting its requests, and turn any failure into its outcome.

    An `AuditorError` (403, retries exhausted, ...) becomes `not-collected` (or `partial` when
    some rows were stored) with the error's message and hint, which `explain` may sharpen; any
    other exception is a bug, logged with its traceback, and must not stop the other queries.
    """
    outcome = QueryOutcome(query_id, environment_id, stats=RequestStats())
    token = current_stats.set(outcome.stats)
    try:
        await read(outcome)
    except AuditorError as exc:
        outcome.status = PARTIAL if outcome.rows else NOT_COLLECTED
        outcome.reason, outcome.hint = exc.message, exc.hint
        if explain is not None:
            explain(exc, outcome)
    except Exception as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Interrupted (Ctrl-C, SIGTERM, a failed store): what the cancellation broke on
            # its way is not the query's failure.
            raise asyncio.CancelledError from exc
        log.exception("query %s of %s failed", query_id, environment_id)
        outcome.status = PARTIAL if outcome.rows else NOT_COLLECTED
        outcome.reason = f"unexpected error: {type(exc).__name__}: {exc}"
        outcome.hint = "This is a bug in the auditor; run with --debug and report it."
    finally:
        current_stats.reset(token)
    return outcome


def resumed(query_id: str, environment_id: str) -> QueryOutcome:
    """The outcome of a query that completed before the scan was interrupted."""
    return QueryOutcome(query_id, environment_id, resumed=True)


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (tenant JSON is untrusted)."""
    return value if isinstance(value, dict) else {}
