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

The job rows are reduced where they are held (`auditor.engine.reductions`: counts and
percentiles per type, per owner and per environment, Expander jobs per workflow); the jobs
read one by one are those not settled (all but succeeded and canceled). This module gives
the codes those reductions read and finishes their small frames.

Per-owner figures (each step or workflow, its streaks and its errors) are `job_owners`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from auditor.analysis.common import number, typed
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
from auditor.engine.reducer import JobReduction, Reducer
from auditor.engine.reductions import JobCodes

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
EXPANDER_JOB = 79  # operationtype: CallbackRegistration Expander (a Dataverse flow trigger)

# What the engine's job reductions read, from the declarations above.
JOB_CODES = JobCodes(
    completed_state=COMPLETED_STATE,
    suspended_state=SUSPENDED_STATE,
    locked_state=LOCKED_STATE,
    succeeded=SUCCEEDED,
    failed=FAILED,
    canceled=CANCELED,
    waiting=WAITING_STATUSES,
    final=FINAL_STATUSES,
    known=KNOWN_STATUSES,
    async_plugin=ASYNC_PLUGIN,
    expander=EXPANDER_JOB,
)

# Column names and dtypes of the frames this module returns (`job_owners` extends them),
# declared once.
STAT_DTYPES: dict[str, str] = {
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
    **STAT_DTYPES,
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

_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
# Digits not glued to letters, so "(500)" and "-2147220891" are masked and "cr4f1_x" is not.
_NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?:[.,:]\d+)*(?![A-Za-z_])")
_SPACE = re.compile(r"\s+")


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


def prepared_jobs(kept: pd.DataFrame) -> pd.DataFrame:
    """The columns the message clusters read, typed, from jobs read one by one
    (`JobReduction.kept`, which names each job's owner)."""
    message = kept["message"].astype("str")
    return pd.DataFrame(
        {
            "environment_id": kept["environment_id"].astype("str"),
            "asyncoperationid": kept["asyncoperationid"].astype("str"),
            "operationtype": number(kept["operationtype"]).round(),
            "owner_id": kept["owner_id"].astype("str"),
            "status": number(kept["statuscode"]),
            "message": message.where(message.str.strip() != ""),
        }
    )


def reduce_jobs(jobs: pd.DataFrame) -> JobReduction:
    """The job reductions over rows already in memory (DuckDB in memory runs the same SQL
    as over the store): for the investigation commands and tests."""
    reducer = Reducer.over_frames({"asyncoperations": jobs})
    try:
        return reducer.jobs(JOB_CODES)
    finally:
        reducer.close()


def finished_stats(reduced: pd.DataFrame) -> pd.DataFrame:
    """A reduced frame of job counts (`auditor.engine.reductions.job_stats` or
    `job_owners`) with the operation's label and the rates: failed / completed (NaN
    without a completed job) and retried / jobs."""
    out = reduced.copy()
    operation = number(out["operationtype"])
    out["operationtype"] = operation
    out["operation"] = operation.map(OPERATION_TYPES).fillna("other").astype("str")
    completed = out["completed"].astype("float64")
    out["failure_rate"] = out["failed"] / completed.where(completed > 0)
    out["retried_share"] = out["retried"] / out["jobs"].astype("float64")
    return out


def job_stats_of(by_type: pd.DataFrame) -> pd.DataFrame:
    """Per environment and operation type (`JobReduction.by_type`): volumes, outcomes,
    waits, run times and retries. Job types other than 1, 10 and 79 are kept under their
    own number (labelled "other"), not dropped."""
    if by_type.empty:
        return typed(pd.DataFrame(columns=list(JOB_STATS_DTYPES)), JOB_STATS_DTYPES)
    stats = finished_stats(by_type)
    ordered = stats.sort_values(["environment_id", "operationtype"], kind="stable")
    return typed(ordered, JOB_STATS_DTYPES)


def job_stats(jobs: pd.DataFrame) -> pd.DataFrame:
    """`job_stats_of` the rows of `jobs` (the store's `asyncoperations` columns)."""
    return job_stats_of(reduce_jobs(jobs).by_type)


def message_clusters(rows: pd.DataFrame, max_chars: int, example_chars: int) -> pd.DataFrame:
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
    kept = reduce_jobs(jobs).kept
    clusters = message_clusters(prepared_jobs(kept), max_chars, example_chars)
    return typed(clusters[clusters["rank"] <= top], ERROR_DTYPES)


def queue_latency_of(queue_p95: pd.DataFrame) -> pd.Series:
    """p95 queue latency (ms) of completed async plug-in jobs per environment
    (`JobReduction.queue_p95`).

    The ground truth's definition (auditor/sim/truth/steps_and_jobs.py): operationtype 1,
    statecode 3, both timestamps present; canceled jobs never started, so they drop out.
    Environments without such a job are absent, not 0: no evidence is not a fast queue.
    """
    series = queue_p95.set_index("environment_id")["queue_latency_p95_ms"].astype("float64")
    return series.rename_axis("environment_id").rename("queue_latency_p95_ms")


def queue_latency_p95(jobs: pd.DataFrame) -> pd.Series:
    """`queue_latency_of` the rows of `jobs`."""
    return queue_latency_of(reduce_jobs(jobs).queue_p95)
