"""System jobs (`asyncoperations`): queue latency, run time, states, retries, recurring errors.

Async plug-in steps run as system jobs of operationtype 1 (`owningextensionid` is the step),
classic workflows as 10 and Dataverse flow triggers as 79 (`workflowactivationid` is the
workflow);
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation.
Queue latency is `startedon - createdon`, run time `completedon - startedon`; both are
reported in milliseconds with numpy's "linear" percentiles.

A start before the creation (or an end before the start) can only be clock skew between the
queue and the host: such a duration is clipped to 0, so it still counts as "no wait" in the
percentiles, and the number of clipped values is reported so skew stays visible.

Jobs change state (the store keeps each job's latest, read by `modifiedon`): outcomes are
those of completed jobs (statecode 3); a job still queued, waiting or in progress is counted
as such, never as a failure. Failure rates and streaks are per completed job.

A step with `asyncautodelete` has its successful jobs deleted at once ("all successfully
completed jobs to be deleted immediately after completion":
https://learn.microsoft.com/power-platform/admin/manage-storage-asyncoperation-base-table), so
its remaining jobs are its failures: `measured_owners` measures such a step from its plug-in
trace logs when trace logging is All (every execution leaves a row), and otherwise says it
cannot be measured, rather than computing a 100 % failure rate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from auditor.analysis.common import number, percentiles, typed
from auditor.analysis.statuses import (
    ASYNC_STATUSES,
    CANCELED,
    COMPLETED,
    FAILED,
    LOCKED,
    SUCCEEDED,
    SUSPENDED,
    WAITING,
    WAITING_FOR_RESOURCES,
)

# operationtype values the auditor reads; any other value is kept and labelled "other".
OPERATION_TYPES: Mapping[int, str] = {1: "async plug-in", 10: "workflow", 79: "flow trigger"}
ASYNC_PLUGIN = 1

# statecode / statuscode: declared once, with their source, in `analysis.statuses`.
SUSPENDED_STATE = SUSPENDED
LOCKED_STATE = LOCKED
COMPLETED_STATE = COMPLETED
WAITING_STATUSES = (WAITING_FOR_RESOURCES, WAITING)
FINAL_STATUSES = (SUCCEEDED, FAILED, CANCELED)  # the statuses of the Completed state
KNOWN_STATUSES = tuple(ASYNC_STATUSES)
# How an owner's outcomes were measured.
BY_JOBS, BY_TRACES, NOT_MEASURABLE = "system jobs", "trace logs", "not measurable"
AUTODELETE_REASON = (
    "successes are auto-deleted; enable trace logging All or turn off auto-delete to measure"
)

_PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

# Column names and dtypes of the frames this module returns, declared once.
_STAT_DTYPES: dict[str, str] = {
    "jobs": "int64",
    "completed": "int64",  # statecode 3: jobs with an outcome
    "succeeded": "int64",
    "failed": "int64",  # statuscode 31
    "failed_without_message": "int64",
    "failure_rate": "float64",  # failed / completed; NaN without a completed job
    "canceled": "int64",  # statuscode 32
    "suspended": "int64",  # statecode 1
    "waiting": "int64",  # statuscode 0 or 10
    "in_progress": "int64",  # statecode 2
    "unknown_status": "int64",  # a statuscode that is not documented
    "queue_latency_p50_ms": "float64",
    "queue_latency_p95_ms": "float64",
    "queue_latency_p99_ms": "float64",
    "queue_latency_max_ms": "float64",
    "run_time_p50_ms": "float64",
    "run_time_p95_ms": "float64",
    "run_time_p99_ms": "float64",
    "run_time_max_ms": "float64",
    "clipped_durations": "int64",  # negative latencies or run times set to 0
    "retried": "int64",  # jobs with retrycount > 0
    "retried_share": "float64",
    "max_retrycount": "Int64",
}
JOB_STATS_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "operationtype": "Int64",
    "operation": "str",  # async plug-in / workflow / flow trigger / other
    **_STAT_DTYPES,
}
OWNER_STATS_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "operationtype": "Int64",
    "operation": "str",
    "owner_kind": "str",  # step (operationtype 1) or workflow
    "owner_id": "str",  # owningextensionid or workflowactivationid; NaN when missing
    "name": "str",  # the most frequent job name
    **_STAT_DTYPES,
    "max_failure_streak": "int64",  # consecutive failed jobs, by createdon then id
    "current_failure_streak": "int64",  # failed jobs since the last one that did not fail
    "error_clusters": "int64",  # distinct normalised messages of failed jobs
    "top_error": "str",
    "top_error_count": "int64",
    "autodelete": "bool",  # the step deletes its successful jobs on completion
    "measured_by": "str",  # system jobs / trace logs / not measurable
}
ERROR_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "operationtype": "Int64",
    "owner_id": "str",
    "error": "str",  # normalised message
    "count": "int64",
    "rank": "int64",  # 1 = the most frequent of its owner
    "example": "str",  # one original message, shortened
}
JOB_STATS_COLUMNS = tuple(JOB_STATS_DTYPES)
OWNER_STATS_COLUMNS = tuple(OWNER_STATS_DTYPES)

_JOB_COLUMNS = [
    "environment_id",
    "asyncoperationid",
    "name",
    "operationtype",
    "statecode",
    "statuscode",
    "retrycount",
    "message",
    "friendlymessage",
    "createdon",
    "startedon",
    "completedon",
    "owningextensionid",
    "workflowactivationid",
]
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
# Digits not glued to letters, so "(500)" and "-2147220891" are masked and "cr4f1_x" is not.
_NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?:[.,:]\d+)*(?![A-Za-z_])")
_SPACE = re.compile(r"\s+")


def _time(series: pd.Series) -> pd.Series:
    """UTC timestamps, NaT for nulls and unparseable values."""
    return pd.to_datetime(series, utc=True, errors="coerce")


def _span_ms(start: pd.Series, end: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Milliseconds from start to end (NaN if either is missing) and which were negative."""
    span = (_time(end) - _time(start)).dt.total_seconds() * 1000.0
    span = span.astype("float64")
    negative = span < 0
    return span.clip(lower=0), negative


def normalise_messages(messages: pd.Series, *, max_chars: int = 2000) -> pd.Series:
    """Messages with GUIDs, hex codes and numbers masked, so one error's variants cluster.

    Only the first `max_chars` characters are read: the cause is stated first, and a 1 MB
    message must not cost more than a short one. Blank messages become NaN.
    """
    text = messages.astype("str").str.slice(0, max_chars)
    text = text.str.replace(_GUID, "<guid>", regex=True)
    text = text.str.replace(_HEX, "<hex>", regex=True)
    text = text.str.replace(_NUMBER, "<n>", regex=True)
    text = text.str.replace(_SPACE, " ", regex=True).str.strip()
    return text.where(text != "")


def _prepared(jobs: pd.DataFrame) -> pd.DataFrame:
    """The columns the statistics need, typed, plus the owner of each job."""
    jobs = jobs.reindex(columns=_JOB_COLUMNS)
    operation = number(jobs["operationtype"]).round()
    is_step = operation == ASYNC_PLUGIN
    queue, queue_negative = _span_ms(jobs["createdon"], jobs["startedon"])
    run, run_negative = _span_ms(jobs["startedon"], jobs["completedon"])
    message = jobs["message"].astype("str")
    message = message.where(message.str.strip() != "")
    return pd.DataFrame(
        {
            "environment_id": jobs["environment_id"].astype("str"),
            "asyncoperationid": jobs["asyncoperationid"].astype("str"),
            "name": jobs["name"].astype("str"),
            "operationtype": operation,
            "operation": operation.map(OPERATION_TYPES).fillna("other").astype("str"),
            "owner_kind": is_step.map({True: "step", False: "workflow"}).astype("str"),
            "owner_id": jobs["owningextensionid"]
            .where(is_step, jobs["workflowactivationid"])
            .astype("str"),
            "state": number(jobs["statecode"]),
            "status": number(jobs["statuscode"]),
            "retrycount": number(jobs["retrycount"]),
            "message": message,
            "createdon": _time(jobs["createdon"]),
            "queue_latency": queue,
            "run_time": run,
            "clipped": queue_negative | run_negative,
        }
    )


def _percentiles(values: pd.Series, keys: list[pd.Series], prefix: str) -> pd.DataFrame:
    """p50 / p95 / p99 / max per group, nulls ignored."""
    return percentiles(
        values.groupby(keys, dropna=False, sort=False),
        {f"{prefix}_{name}_ms": level for name, level in _PERCENTILES.items()},
        maximum=f"{prefix}_max_ms",
    )


def _stats(rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The counts and percentiles of `_STAT_DTYPES` per group of `keys`."""
    status, state = rows["status"], rows["state"]
    flags = pd.DataFrame(
        {
            # Statuses 30-32 exist only in the Completed state: a job with one has an outcome
            # even if its statecode is missing or undocumented.
            "completed": (state == COMPLETED_STATE) | status.isin(FINAL_STATUSES),
            "succeeded": status == SUCCEEDED,
            "failed": status == FAILED,
            "failed_without_message": (status == FAILED) & rows["message"].isna(),
            "canceled": status == CANCELED,
            "suspended": state == SUSPENDED_STATE,
            "waiting": status.isin(WAITING_STATUSES),
            "in_progress": state == LOCKED_STATE,
            "unknown_status": ~status.isin(KNOWN_STATUSES),
            "clipped_durations": rows["clipped"],
            "retried": rows["retrycount"] > 0,
        }
    )
    groups = [rows[k] for k in keys]
    counts = flags.groupby(groups, dropna=False, sort=False).sum()
    counts["jobs"] = rows.groupby(groups, dropna=False, sort=False).size()
    counts["max_retrycount"] = rows["retrycount"].groupby(groups, dropna=False, sort=False).max()
    completed = counts["completed"].astype("float64")
    counts["failure_rate"] = counts["failed"] / completed.where(completed > 0)
    counts["retried_share"] = counts["retried"] / counts["jobs"]
    return counts.join(
        [
            _percentiles(rows["queue_latency"], groups, "queue_latency"),
            _percentiles(rows["run_time"], groups, "run_time"),
        ]
    ).reset_index()


def job_stats(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per environment and operation type: volumes, outcomes, waits, run times and retries.

    `jobs` has the columns of the store's `asyncoperations`. Job types other than 1, 10 and
    79 are kept under their own number (labelled "other"), not dropped.
    """
    rows = _prepared(jobs)
    stats = _stats(rows, ["environment_id", "operationtype", "operation"])
    ordered = stats.sort_values(["environment_id", "operationtype"], kind="stable")
    return typed(ordered, JOB_STATS_DTYPES)


def _streaks(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Longest and current run of consecutive failed jobs per group, in creation order.

    Only completed jobs have an outcome: a queued or running job neither fails nor breaks a
    streak.
    """
    rows = rows[(rows["state"] == COMPLETED_STATE) | rows["status"].isin(FINAL_STATUSES)]
    group = rows.groupby(keys, dropna=False, sort=False).ngroup().rename("group")
    ordered = pd.DataFrame(
        {
            "group": group,
            "createdon": rows["createdon"],
            "asyncoperationid": rows["asyncoperationid"],
            "failed": rows["status"] == FAILED,
        }
    ).sort_values(["group", "createdon", "asyncoperationid"], na_position="last", kind="stable")
    per_group = _failure_streaks(ordered["group"], ordered["failed"]).rename(
        columns={"max": "max_failure_streak", "current": "current_failure_streak"}
    )
    keyed = rows[keys].assign(group=group).drop_duplicates("group").set_index("group")
    return keyed.join(per_group).reset_index(drop=True)


def _failure_streaks(group: pd.Series, failed: pd.Series) -> pd.DataFrame:
    """Longest (`max`) and last (`current`) run of consecutive failures per group, the rows
    being in order within each group."""
    changed = (group.diff() != 0) | (failed != failed.shift())
    sizes = pd.DataFrame({"group": group, "failed": failed, "block": changed.cumsum()})
    sizes = sizes.groupby("block").agg(
        group=("group", "first"), failed=("failed", "first"), size=("failed", "size")
    )
    failing = sizes["size"].where(sizes["failed"], 0)
    return pd.DataFrame(
        {
            "max": failing.groupby(sizes["group"]).max(),
            "current": failing.groupby(sizes["group"]).last(),
        }
    )


def _clusters(rows: pd.DataFrame, max_chars: int, example_chars: int) -> pd.DataFrame:
    """Every normalised message of failed jobs per owner, counted and ranked (1 = commonest)."""
    failed = rows[(rows["status"] == FAILED) & rows["message"].notna()]
    failed = failed.assign(
        error=normalise_messages(failed["message"], max_chars=max_chars),
        example=failed["message"].str.slice(0, example_chars),
    )
    keys = ["environment_id", "operationtype", "owner_id", "error"]
    clusters = failed.groupby(keys, dropna=False, sort=False).agg(
        count=("asyncoperationid", "size"), example=("example", "first")
    )
    clusters = clusters.reset_index().sort_values(
        ["environment_id", "operationtype", "owner_id", "count", "error"],
        ascending=[True, True, True, False, True],
        kind="stable",
    )
    clusters["rank"] = clusters.groupby(keys[:3], dropna=False, sort=False).cumcount() + 1
    return clusters


def recurring_errors(
    jobs: pd.DataFrame, *, top: int = 5, max_chars: int = 2000, example_chars: int = 300
) -> pd.DataFrame:
    """The `top` most frequent normalised messages of failed jobs, per step or workflow.

    One cause failing again and again is one fix; counting it by its masked text separates
    it from one-off failures. Failed jobs without a message are left out here (they are
    `failed_without_message` in the statistics).
    """
    clusters = _clusters(_prepared(jobs), max_chars, example_chars)
    return typed(clusters[clusters["rank"] <= top], ERROR_DTYPES)


def _commonest_name(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The most frequent job name per group (ties: the first in name order)."""
    counts = rows.groupby([*keys, "name"], dropna=False, sort=False).size().rename("n")
    ranked = counts.reset_index().sort_values(["n", "name"], ascending=[False, True])
    return ranked.dropna(subset=["name"]).drop_duplicates(keys)[[*keys, "name"]]


def job_stats_by_owner(
    jobs: pd.DataFrame, *, max_chars: int = 2000, example_chars: int = 300
) -> pd.DataFrame:
    """`job_stats` per owning step (operationtype 1) or workflow, with streaks and errors.

    A streak is what a failure rate hides: a step failing every job since yesterday is
    broken now, even if its month looks healthy. Jobs without an owner are grouped under a
    NaN `owner_id` rather than dropped. `recurring_errors` lists the clusters behind
    `top_error`.
    """
    rows = _prepared(jobs)
    keys = ["environment_id", "operationtype", "operation", "owner_kind", "owner_id"]
    error_keys = ["environment_id", "operationtype", "owner_id"]
    clusters = _clusters(rows, max_chars, example_chars)
    distinct = clusters.groupby(error_keys, dropna=False).size().rename("error_clusters")
    top = clusters[clusters["rank"] == 1].rename(
        columns={"error": "top_error", "count": "top_error_count"}
    )
    merged = (
        _stats(rows, keys)
        .merge(_streaks(rows, keys), on=keys, how="left")
        .merge(_commonest_name(rows, keys), on=keys, how="left")
        .merge(distinct.reset_index(), on=error_keys, how="left")
        .merge(top[[*error_keys, "top_error", "top_error_count"]], on=error_keys, how="left")
    )
    counts = ["error_clusters", "top_error_count", "max_failure_streak", "current_failure_streak"]
    merged[counts] = merged[counts].fillna(0)
    merged["autodelete"] = False
    merged["measured_by"] = BY_JOBS
    return _ordered_owners(merged)


def _ordered_owners(owners: pd.DataFrame) -> pd.DataFrame:
    ordered = owners.sort_values(
        ["environment_id", "operationtype", "jobs", "owner_id"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    return typed(ordered, OWNER_STATS_DTYPES)


def measured_owners(
    owners: pd.DataFrame, steps: pd.DataFrame, traces: pd.DataFrame, trace_all: set[str]
) -> pd.DataFrame:
    """`job_stats_by_owner` with the async steps that auto-delete successful jobs measured
    from their trace logs where trace logging is All (`trace_all`: environment ids), and
    marked `not measurable` elsewhere; a step whose every job was deleted still gets its row.

    From traces, an execution is a trace row of the step in asynchronous mode, a failure one
    with exception details, a streak consecutive failures by execution start.
    """
    step_rows = steps.reindex(
        columns=["environment_id", "stepid", "name", "mode", "asyncautodelete"]
    ).astype({"environment_id": "str", "stepid": "str"})
    deleting = step_rows[
        (number(step_rows["mode"]) == 1)
        & step_rows["asyncautodelete"].astype("boolean").fillna(False).astype(bool)
    ].drop_duplicates(["environment_id", "stepid"])
    if deleting.empty:
        return owners
    keys = ["environment_id", "owner_id"]
    target = deleting.rename(columns={"stepid": "owner_id"})[[*keys, "name"]]
    is_step = owners["owner_kind"].eq("step") & owners["operationtype"].eq(ASYNC_PLUGIN)
    known = owners[is_step].merge(target[keys], on=keys)
    missing = target.merge(known[keys], on=keys, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    added = missing.assign(
        operationtype=ASYNC_PLUGIN,
        operation=OPERATION_TYPES[ASYNC_PLUGIN],
        owner_kind="step",
        **{c: 0 for c, t in _STAT_DTYPES.items() if t == "int64"},
        max_failure_streak=0,
        current_failure_streak=0,
        error_clusters=0,
        top_error_count=0,
    )
    merged = pd.concat([owners, added], ignore_index=True)
    flag = (
        pd.MultiIndex.from_frame(merged[keys].astype("str")).isin(
            pd.MultiIndex.from_frame(target[keys])
        )
        & merged["operationtype"].eq(ASYNC_PLUGIN).fillna(False).to_numpy()
    )
    merged["autodelete"] = flag
    measurable = flag & merged["environment_id"].isin(trace_all).to_numpy()
    merged.loc[flag & ~measurable, "measured_by"] = NOT_MEASURABLE
    merged.loc[flag & ~measurable, "failure_rate"] = np.nan
    merged.loc[measurable, "measured_by"] = BY_TRACES
    executed = _trace_outcomes(traces)
    if measurable.any():
        chosen = merged.loc[measurable, keys].merge(executed, on=keys, how="left")
        chosen = chosen.fillna({c: 0 for c in ("executions", "failures", "max", "current")})
        merged.loc[measurable, "jobs"] = chosen["executions"].to_numpy()
        merged.loc[measurable, "completed"] = chosen["executions"].to_numpy()
        merged.loc[measurable, "failed"] = chosen["failures"].to_numpy()
        merged.loc[measurable, "succeeded"] = (chosen["executions"] - chosen["failures"]).to_numpy()
        runs = chosen["executions"].astype("float64")
        merged.loc[measurable, "failure_rate"] = (
            chosen["failures"] / runs.where(runs > 0)
        ).to_numpy()
        merged.loc[measurable, "max_failure_streak"] = chosen["max"].to_numpy()
        merged.loc[measurable, "current_failure_streak"] = chosen["current"].to_numpy()
    return _ordered_owners(merged)


def _trace_outcomes(traces: pd.DataFrame) -> pd.DataFrame:
    """Per step: asynchronous executions, failures and failure streaks from trace rows."""
    traces = traces.reindex(
        columns=[
            "environment_id",
            "pluginstepid",
            "plugintracelogid",
            "mode",
            "exceptiondetails",
            "performanceexecutionstarttime",
            "createdon",
        ]
    )
    rows = traces[number(traces["mode"]) == 1]
    details = rows["exceptiondetails"].astype("str")
    frame = pd.DataFrame(
        {
            "environment_id": rows["environment_id"].astype("str"),
            "owner_id": rows["pluginstepid"].astype("str"),
            "start": _time(rows["performanceexecutionstarttime"]).fillna(_time(rows["createdon"])),
            "id": rows["plugintracelogid"].astype("str"),
            "failed": rows["exceptiondetails"].notna() & (details.str.strip() != ""),
        }
    ).sort_values(["environment_id", "owner_id", "start", "id"], kind="stable")
    if frame.empty:
        columns = ["environment_id", "owner_id", "executions", "failures", "max", "current"]
        return pd.DataFrame(columns=columns)
    group = frame.groupby(["environment_id", "owner_id"], sort=False).ngroup()
    per_group = _failure_streaks(group, frame["failed"])
    counts = (
        frame.assign(group=group)
        .groupby("group")
        .agg(
            environment_id=("environment_id", "first"),
            owner_id=("owner_id", "first"),
            executions=("failed", "size"),
            failures=("failed", "sum"),
        )
    )
    return counts.join(per_group).reset_index(drop=True)


def queue_latency_p95(jobs: pd.DataFrame) -> pd.Series:
    """p95 queue latency (ms) of completed async plug-in jobs per environment.

    The ground truth's definition (auditor/sim/truth/steps_and_jobs.py): operationtype 1,
    statecode 3, both timestamps present; canceled jobs never started, so they drop out.
    Environments without such a job are absent, not 0: no evidence is not a fast queue.
    """
    rows = _prepared(jobs)
    done = rows[
        (rows["operationtype"] == ASYNC_PLUGIN)
        & (rows["state"] == COMPLETED_STATE)
        & rows["queue_latency"].notna()
    ]
    grouped = done.groupby("environment_id")["queue_latency"]
    p95 = percentiles(grouped, {"queue_latency_p95_ms": 0.95})["queue_latency_p95_ms"]
    return p95.astype("float64")
