"""System jobs per owner, each async plug-in step or workflow: streaks, errors, auto-delete.

A job's owner is its step (`owningextensionid`, operationtype 1) or its workflow
(`workflowactivationid`). The engine reduces the jobs per owner (`reductions.job_owners`: the
statistics of `jobs`, failure streaks counted like failure rates over completed jobs, and the
commonest name); this module adds what the jobs read one by one give, the commonest error,
and whether an owner's outcomes can be measured at all.

A step with `asyncautodelete` has its successful jobs deleted at once ("all successfully
completed jobs to be deleted immediately after completion":
https://learn.microsoft.com/power-platform/admin/manage-storage-asyncoperation-base-table), so
its remaining jobs are its failures: `measured_owners` measures such a step from its plug-in
trace logs when trace logging is All (every execution leaves a row), and otherwise says it
cannot be measured, rather than computing a 100 % failure rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.analysis.common import number, typed
from auditor.analysis.jobs import (
    ASYNC_PLUGIN,
    OPERATION_TYPES,
    STAT_DTYPES,
    finished_stats,
    message_clusters,
    prepared_jobs,
    reduce_jobs,
)
from auditor.engine.reducer import Reducer

# How an owner's outcomes were measured.
BY_JOBS, BY_TRACES, NOT_MEASURABLE = "system jobs", "trace logs", "not measurable"
AUTODELETE_REASON = (
    "successes are auto-deleted; enable trace logging All or turn off auto-delete to measure"
)

OWNER_STATS_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "operationtype": "Int64",
    "operation": "str",
    "owner_kind": "str",  # step (operationtype 1) or workflow
    "owner_id": "str",  # owningextensionid or workflowactivationid; NaN when missing
    "name": "str",  # the most frequent job name
    **STAT_DTYPES,
    "max_failure_streak": "int64",  # consecutive failed jobs, by createdon then id
    "current_failure_streak": "int64",  # failed jobs since the last one that did not fail
    "error_clusters": "int64",  # distinct normalised messages of failed jobs
    "top_error": "str",
    "top_error_count": "int64",
    "autodelete": "bool",  # the step deletes its successful jobs on completion
    "measured_by": "str",  # system jobs / trace logs / not measurable
}
OWNER_STATS_COLUMNS = tuple(OWNER_STATS_DTYPES)


def owner_stats(
    by_owner: pd.DataFrame,
    kept: pd.DataFrame,
    *,
    max_chars: int = 2000,
    example_chars: int = 300,
) -> pd.DataFrame:
    """`job_stats` per owning step (operationtype 1) or workflow, with streaks and errors,
    from `JobReduction.by_owner` and the unsettled jobs read one by one (`kept`, whose
    failures are clustered by message).

    A streak is what a failure rate hides: a step failing every job since yesterday is
    broken now, even if its month looks healthy. Jobs without an owner are grouped under a
    NaN `owner_id` rather than dropped. `recurring_errors` lists the clusters behind
    `top_error`.
    """
    if by_owner.empty:
        return typed(pd.DataFrame(columns=list(OWNER_STATS_DTYPES)), OWNER_STATS_DTYPES)
    merged = finished_stats(by_owner)
    is_step = merged["operationtype"].eq(ASYNC_PLUGIN).fillna(False).astype(bool)
    merged["owner_kind"] = np.where(is_step, "step", "workflow")
    error_keys = ["environment_id", "operationtype", "owner_id"]
    clusters = message_clusters(prepared_jobs(kept), max_chars, example_chars)
    distinct = clusters.groupby(error_keys, dropna=False).size().rename("error_clusters")
    top = clusters[clusters["rank"] == 1].rename(
        columns={"error": "top_error", "count": "top_error_count"}
    )
    merged = merged.merge(distinct.reset_index(), on=error_keys, how="left").merge(
        top[[*error_keys, "top_error", "top_error_count"]], on=error_keys, how="left"
    )
    counts = ["error_clusters", "top_error_count", "max_failure_streak", "current_failure_streak"]
    merged[counts] = merged[counts].fillna(0)
    merged["autodelete"] = False
    merged["measured_by"] = BY_JOBS
    return _ordered_owners(merged)


def job_stats_by_owner(
    jobs: pd.DataFrame, *, max_chars: int = 2000, example_chars: int = 300
) -> pd.DataFrame:
    """`owner_stats` of the rows of `jobs` (the store's `asyncoperations` columns)."""
    reduced = reduce_jobs(jobs)
    return owner_stats(
        reduced.by_owner, reduced.kept, max_chars=max_chars, example_chars=example_chars
    )


def _ordered_owners(owners: pd.DataFrame) -> pd.DataFrame:
    ordered = owners.sort_values(
        ["environment_id", "operationtype", "jobs", "owner_id"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    return typed(ordered, OWNER_STATS_DTYPES)


def measured_owners(
    owners: pd.DataFrame,
    steps: pd.DataFrame,
    traces: pd.DataFrame | None,
    trace_all: set[str],
    *,
    outcomes: pd.DataFrame | None = None,
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
        **{c: 0 for c, t in STAT_DTYPES.items() if t == "int64"},
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
    executed = outcomes if outcomes is not None else _trace_outcomes(traces)
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


def _trace_outcomes(traces: pd.DataFrame | None) -> pd.DataFrame:
    """Per step: asynchronous executions, failures and failure streaks from trace rows
    (`auditor.engine.reductions.async_trace_outcomes`, run by DuckDB over the frame)."""
    reducer = Reducer.over_frames({"plugintracelogs": traces} if traces is not None else {})
    try:
        return reducer.async_trace_outcomes()
    finally:
        reducer.close()
