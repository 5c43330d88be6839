"""The timeline entries of `auditor trace`, one builder per source: plug-in trace rows,
system jobs and flow runs. Apart from `timeline`, which finds the rows of one correlation id
and orders what these build.

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

One correlation id holds a handful of rows, so entries are built row by row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

# EXPANDER_JOB: the asyncoperation operationtype of the CallbackRegistration Expander (flow
# trigger); which flow such a job runs is inferred from workflowactivationid (TRIGGER_LINK).
from auditor.analysis.actions import EXPANDER_JOB
from auditor.analysis.jobs import OPERATION_TYPES
from auditor.analysis.statuses import ASYNC_STATUSES, SUSPENDED
from auditor.explore.common import row_dicts

# statecode / statuscode labels, declared once in `analysis.statuses`.
JOB_STATUSES: Mapping[int, str] = ASYNC_STATUSES
SUSPENDED_STATE = SUSPENDED
STAGES: Mapping[int, str] = {10: "pre-validation", 20: "pre-operation", 40: "post-operation"}
KIND_ORDER = {"plugin": 0, "system-job": 1, "flow-run": 2}
DETAIL_CHARS = 300

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


def trace_entries(traces: pd.DataFrame) -> list[Entry]:
    """One entry per plug-in execution's trace row."""
    out = []
    for row in row_dicts(traces):
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


def job_entries(jobs: pd.DataFrame, runs: pd.DataFrame) -> list[Entry]:
    """One entry per system job; a trigger job says which flow it starts (inferred)."""
    out = []
    for row in row_dicts(jobs):
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


def run_entries(runs: pd.DataFrame, jobs: pd.DataFrame) -> list[Entry]:
    """One entry per flow run, indented under the trigger job or parent run that started it."""
    # A run a trigger job started sits under that job; a child run under its parent.
    triggers: dict[tuple[str, str], int] = {}
    for row in row_dicts(jobs):
        wid = _text(row["workflowactivationid"])
        if _int(row["operationtype"]) == EXPANDER_JOB and wid:
            depth = _int(row["depth"]) or 1
            triggers[(str(row["environment_id"]), wid)] = depth
    rows = row_dicts(runs)
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


__all__ = [
    "KIND_ORDER",
    "Entry",
    "exception_summary",
    "first_line",
    "job_entries",
    "run_entries",
    "trace_entries",
]
