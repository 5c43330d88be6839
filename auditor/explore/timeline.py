"""`auditor trace`: one business transaction end to end, from the store (docs/how-a-scan-runs.md).

Dataverse gives every SDK request a correlation id that the whole chain shares: each plug-in
execution's trace row (`plugintracelogs.correlationid`, with its `depth`), the system jobs it
queues (`asyncoperations.correlationid`), and the CallbackRegistration Expander job
(operationtype 79) through which a Dataverse trigger starts a flow. That job's
`workflowactivationid` is taken to be the flow's workflowid, and the run it starts to carry
the correlation id as its client tracking id (`flow_api_runs.client_tracking_id`,
`flowruns.clienttrackingid`). Both links are inferred, see auditor/sim/scenario/system_jobs.py: no
Microsoft page names the column of a type-79 job that says which flow it runs (the
asyncoperation reference describes WorkflowActivationId only as "Unique identifier of the
workflow activation related to the system job";
https://learn.microsoft.com/power-apps/developer/data-platform/bypass-power-automate-flows
says only that the CallbackRegistration expander creates the system jobs), so the timeline
says "inferred" where it names a job's flow. Child flows inherit the client tracking id, so
they show up too, under their parent run.

The result is a list of timeline entries sorted by time, then depth; `indent` says how far
to indent an entry so the chain reads as a tree (a plug-in at depth 3 under the one at 2).
One correlation id holds a handful of rows, so entries are built row by row; the store is
searched in DuckDB.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from auditor.analysis.jobs import OPERATION_TYPES
from auditor.analysis.statuses import ASYNC_STATUSES, SUSPENDED
from auditor.errors import UsageError
from auditor.explore.common import require_scan
from auditor.store import Store

# asyncoperation operationtype: CallbackRegistration Expander (flow trigger); which flow such
# a job runs is inferred from workflowactivationid (analysis.actions.TRIGGER_LINK).
EXPANDER_JOB = 79

# statecode / statuscode labels, declared once in `analysis.statuses`.
JOB_STATUSES: Mapping[int, str] = ASYNC_STATUSES
SUSPENDED_STATE = SUSPENDED
STAGES: Mapping[int, str] = {10: "pre-validation", 20: "pre-operation", 40: "post-operation"}
KIND_ORDER = {"plugin": 0, "system-job": 1, "flow-run": 2}
DETAIL_CHARS = 300

_BRACED = re.compile(r"^\{(.*)\}$")
_MESSAGE_LINE = re.compile(r"^\s*Message:\s*(.*?)\s*(?:Detail:\s*)?$")
_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.DOTALL)


@dataclass(frozen=True)
class Entry:
    """One thing that happened under a correlation id."""

    time: datetime | None  # start (plug-in, run) or creation (system job), UTC
    kind: str  # plugin / system-job / flow-run
    depth: int | None  # Dataverse's execution depth; None for flow runs
    indent: int  # nesting in the displayed tree
    name: str
    duration_ms: float | None
    status: str
    failed: bool
    detail: str
    environment_id: str
    record_id: str  # plugintracelogid / asyncoperationid / flow run name

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        data["time"] = self.time.isoformat() if self.time is not None else None
        return data


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
    entries = [*_trace_entries(traces), *_job_entries(jobs, runs)]
    entries += _run_entries(runs, jobs)
    entries.sort(key=_order)
    envs = sorted({e.environment_id for e in entries})
    names = _environment_names(store, envs)
    return Trace(correlation_id=wanted, entries=tuple(entries), environments=names)


def _order(entry: Entry) -> tuple[Any, ...]:
    # Unknown times last; within a second (trace times are whole seconds) depth decides.
    time = entry.time.timestamp() if entry.time is not None else math.inf
    depth = entry.depth if entry.depth is not None else entry.indent + 1
    return (time, depth, KIND_ORDER[entry.kind], entry.record_id)


# --- reading -------------------------------------------------------------------------------


def _environment_names(store: Store, ids: Sequence[str]) -> dict[str, str]:
    names = store.environment_names()
    return {e: name if (name := names.get(e)) is not None else e for e in ids}


# --- entries -------------------------------------------------------------------------------


def _trace_entries(traces: pd.DataFrame) -> list[Entry]:
    out = []
    for row in _records(traces):
        depth = _int(row["depth"])
        typename = _text(row["typename"])
        failed = _text(row["exceptiondetails"]) is not None
        mode = _int(row["mode"])
        stage = STAGES.get(_int(row["stage"]) or -1)
        what = " ".join(
            p for p in (_text(row["messagename"]), "of", _text(row["primaryentity"])) if p
        )
        parts = [
            what if what != "of" else None,
            {0: "synchronous", 1: "asynchronous"}.get(mode if mode is not None else -1),
            stage,
            # The class, when the step's name does not already say it.
            typename
            if typename and typename not in (_text(row["step_name"]) or typename)
            else None,
        ]
        if failed:
            parts.append(exception_summary(str(row["exceptiondetails"])))
        out.append(
            Entry(
                time=_time(row["time"]),
                kind="plugin",
                depth=depth,
                indent=max((depth or 1) - 1, 0),
                name=_text(row["step_name"]) or _text(row["typename"]) or "(unknown plug-in)",
                duration_ms=_float(row["duration_ms"]),
                status="Failed" if failed else "Succeeded",
                failed=failed,
                detail=_join(parts),
                environment_id=str(row["environment_id"]),
                record_id=str(row["plugintracelogid"]),
            )
        )
    return out


def _job_entries(jobs: pd.DataFrame, runs: pd.DataFrame) -> list[Entry]:
    out = []
    for row in _records(jobs):
        depth = _int(row["depth"])
        operation = _int(row["operationtype"])
        state, status_code = _int(row["statecode"]), _int(row["statuscode"])
        status = (
            "Suspended"
            if state == SUSPENDED_STATE
            else JOB_STATUSES.get(status_code if status_code is not None else -1, "Unknown")
        )
        created, started = _time(row["createdon"]), _time(row["startedon"])
        completed = _time(row["completedon"])
        label = OPERATION_TYPES.get(operation if operation is not None else -1)
        parts = [f"{label} job" if label else f"system job (operationtype {operation})"]
        if operation == EXPANDER_JOB:
            flow = _text(row["flow_display"]) or _text(row["workflow_name"])
            flow = flow or _text(row["workflowactivationid"])
            if flow:
                parts.append(f"starts flow {flow} (link inferred from workflowactivationid)")
            started_runs = _started_runs(runs, row)
            if started_runs.empty:
                parts.append("no run with this client tracking id in the store")
        elif _text(row["step_name"]) and row["step_name"] != row["name"]:
            parts.append(f"step {row['step_name']}")
        if created is not None and started is not None:
            parts.append(f"queued {_span(created, started)}")
        retries = _int(row["retrycount"])
        if retries:
            parts.append(f"{retries} retries")
        error = _text(row["message"]) or _text(row["friendlymessage"])
        if error:
            parts.append(first_line(error))
        duration = (
            (completed - started).total_seconds() * 1000
            if completed is not None and started is not None
            else None
        )
        out.append(
            Entry(
                time=created or started,
                kind="system-job",
                depth=depth,
                indent=max((depth or 1) - 1, 0),
                name=_text(row["name"]) or label or "(unnamed system job)",
                duration_ms=duration if duration is None or duration >= 0 else None,
                status=status,
                failed=status_code == 31 or state == SUSPENDED_STATE,
                detail=_join(parts),
                environment_id=str(row["environment_id"]),
                record_id=str(row["asyncoperationid"]),
            )
        )
    return out


def _started_runs(runs: pd.DataFrame, job: Mapping[str, Any]) -> pd.DataFrame:
    """The runs a trigger job started: of its flow (workflowactivationid, an inferred link),
    in its environment."""
    if runs.empty:
        return runs
    wid = _text(job["workflowactivationid"])
    same_env = runs["environment_id"] == job["environment_id"]
    started: pd.DataFrame = runs[same_env & (runs["workflowid"].astype("str") == (wid or ""))]
    return started


def _run_entries(runs: pd.DataFrame, jobs: pd.DataFrame) -> list[Entry]:
    # A run a trigger job started sits under that job; a child run under its parent.
    triggers: dict[tuple[str, str], int] = {}
    for row in _records(jobs):
        wid = _text(row["workflowactivationid"])
        if _int(row["operationtype"]) == EXPANDER_JOB and wid:
            depth = _int(row["depth"]) or 1
            triggers[(str(row["environment_id"]), wid)] = depth
    rows = _records(runs)
    by_name = {str(r["run_name"]): r for r in rows}
    out = []
    for row in rows:
        indent, parent = _run_indent(row, by_name, triggers)
        start, end = _time(row["start_time"]), _time(row["end_time"])
        duration = (end - start).total_seconds() * 1000 if start and end else None
        if duration is None or duration < 0:
            duration = _float(row["stated_duration"])
        status = _text(row["status"]) or "Unknown"
        failed = status.lower() in ("failed", "timedout")
        trigger = _text(row["trigger_name"])
        parts: list[str | None] = [
            f"run {row['run_name']}",
            f"trigger {trigger}" if trigger else None,
        ]
        if parent:
            parts.append(f"child of run {parent}")
        elif (str(row["environment_id"]), _text(row["workflowid"]) or "") in triggers:
            parts.append("started by the Dataverse trigger job")
        sources = [
            name
            for name, seen in (("flow API", row["from_api"]), ("Dataverse", row["from_dataverse"]))
            if bool(seen)
        ]
        parts.append("from the " + " and ".join(sources))
        error = _text(row["error_message"]) or _text(row["error_code"])
        if failed and error:
            parts.append(first_line(error))
        out.append(
            Entry(
                time=start,
                kind="flow-run",
                depth=None,
                indent=indent,
                name=_text(row["flow_display"]) or _text(row["flow_id"]) or "(unknown flow)",
                duration_ms=duration,
                status=status,
                failed=failed,
                detail=_join(parts),
                environment_id=str(row["environment_id"]),
                record_id=str(row["run_name"]),
            )
        )
    return out


def _run_indent(
    row: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    triggers: Mapping[tuple[str, str], int],
) -> tuple[int, str | None]:
    """(indent, parent run name): one deeper than the parent run or the trigger job."""
    parent = _text(row["parentrunid"])
    seen: set[str] = set()
    level = 0
    current: Mapping[str, Any] = row
    # Walk up the parent runs present in this trace (guarding against a cycle in bad data).
    while True:
        up = _text(current["parentrunid"])
        if up is None or up not in by_name or up in seen:
            break
        seen.add(up)
        level += 1
        current = by_name[up]
    root_trigger = triggers.get(
        (str(current["environment_id"]), _text(current["workflowid"]) or "")
    )
    return level + (root_trigger if root_trigger is not None else 0), parent


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


# --- small helpers -------------------------------------------------------------------------


def exception_summary(details: str) -> str:
    """The message of a plug-in's exception details: the `Message:` line, else the
    fault's `<Message>`, else the first line (the exception type alone says little)."""
    for line in details.splitlines()[:20]:
        match = _MESSAGE_LINE.match(line)
        if match and match.group(1):
            return _cut(match.group(1))
    xml = _XML_MESSAGE.search(details[:20_000])
    if xml and xml.group(1).strip():
        return _cut(xml.group(1).strip())
    return first_line(details)


def first_line(text: str) -> str:
    """The first non-blank line, cut to a readable length."""
    for line in text.splitlines():
        if line.strip():
            return _cut(line.strip())
    return ""


def _cut(text: str) -> str:
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _join(parts: Sequence[str | None]) -> str:
    return " · ".join(p for p in parts if p)


def _span(start: datetime, end: datetime) -> str:
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def _int(value: Any) -> int | None:
    if value is None or pd.isna(value):
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp: datetime = pd.Timestamp(value).to_pydatetime()
    return stamp


__all__ = ["Entry", "Trace", "exception_summary", "first_line", "normalise_id", "trace"]
