"""`auditor trace`: one business transaction end to end, from the store (docs/how-a-scan-runs.md).

Dataverse gives every SDK request a correlation id that the whole chain shares: plug-in
executions, the system jobs they queue, and the flow runs a Dataverse trigger starts, which
carry it as their client tracking id. `trace_entries` turns each source's rows into entries
(and says which of its links are inferred); this module finds the rows of one id, orders the
entries and, when nothing matches, names close ids.

The result is a list of timeline entries sorted by time, then depth; `indent` says how far
to indent an entry so the chain reads as a tree (a plug-in at depth 3 under the one at 2).
One correlation id holds a handful of rows; the store is searched in DuckDB.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.errors import UsageError
from auditor.explore.common import environment_names, require_scan
from auditor.explore.trace_entries import (
    KIND_ORDER,
    Entry,
    job_entries,
    run_entries,
    trace_entries,
)
from auditor.store import Store

_BRACED = re.compile(r"^\{(.*)\}$")


@dataclass(frozen=True)
class Trace:
    """Everything the store holds for one correlation id, as a timeline."""

    correlation_id: str
    entries: tuple[Entry, ...]
    environments: Mapping[str, str]  # id -> name, of the environments involved

    def counts(self) -> dict[str, int]:
        """Entries per kind, for a one-line summary."""
        return {kind: sum(e.kind == kind for e in self.entries) for kind in KIND_ORDER}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "correlation_id": self.correlation_id,
            "environments": dict(self.environments),
            "counts": self.counts(),
            "entries": [e.as_dict() for e in self.entries],
        }


def normalise_id(text: str) -> str:
    """A correlation id as the store keeps GUIDs: trimmed, lower case, without braces."""
    value = text.strip()
    match = _BRACED.match(value)
    return (match.group(1) if match else value).strip().lower()


def trace(store: Store, correlation_id: str) -> Trace:
    """The plug-in chain, system jobs and flow runs of one correlation id, in time order.

    Raises UsageError naming close ids (and one with a chain to try) when nothing matches.
    """
    require_scan(store)
    wanted = normalise_id(correlation_id)
    if not wanted:
        raise UsageError("give a correlation id", hint=_example_hint(store))
    traces = store.correlation_traces(wanted)
    jobs = store.correlation_jobs(wanted)
    runs = store.correlation_runs(wanted)
    if traces.empty and jobs.empty and runs.empty:
        raise _unknown(store, correlation_id, wanted)
    entries = [*trace_entries(traces), *job_entries(jobs, runs)]
    entries += run_entries(runs, jobs)
    entries.sort(key=_order)
    envs = sorted({e.environment_id for e in entries})
    stored = environment_names(store)
    names = {e: stored.get(e, e) for e in envs}
    return Trace(correlation_id=wanted, entries=tuple(entries), environments=names)


def _order(entry: Entry) -> tuple[Any, ...]:
    # Unknown times last; within a second (trace times are whole seconds) depth decides.
    time = entry.time.timestamp() if entry.time is not None else math.inf
    depth = entry.depth if entry.depth is not None else entry.indent + 1
    return (time, depth, KIND_ORDER[entry.kind], entry.record_id)


# --- unknown ids ---------------------------------------------------------------------------


def _unknown(store: Store, given: str, wanted: str) -> UsageError:
    close: list[str] = []
    if len(wanted) >= 4:
        # A truncated or mistyped id: ids starting with what was given.
        close = store.correlation_ids_starting(wanted[: max(4, len(wanted) - 4)])
    return UsageError(
        f"no plug-in trace, system job or flow run with correlation id {given.strip()!r} "
        "in the store" + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""),
        hint=_example_hint(store),
    )


def _example_hint(store: Store) -> str:
    """Where correlation ids come from, with one from the store that has a chain."""
    best = store.longest_trace_chain()
    what = "a chain of {n} plug-in executions"
    if best is None:
        best = store.busiest_job_correlation()
        what = "{n} system jobs"
    hint = (
        "Correlation ids are in plug-in trace logs (correlationid), system jobs and flow runs "
        "(client tracking id)"
    )
    if best is None:
        return hint + "; this store holds none: collect an environment with Dataverse."
    example, n = best
    count = what.format(n=n)
    return hint + f"; e.g. `auditor trace {example}` ({count})."


__all__ = ["Trace", "normalise_id", "trace"]
