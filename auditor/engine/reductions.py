"""Every row-level reduction of the analysis, written once as SQL both engines run.

The analysis measures millions of rows (flow runs, plug-in trace logs) but reasons about
thousands of groups (flows, steps). Each function here returns the SQL that turns rows into
those groups: counts, exact percentiles, failure streaks and the few rows read one by one
(failed runs, whose messages are clustered in pandas, and the runs sampled with action
detail). DuckDB runs it over the store, an `auditor export` folder or a lake folder; Spark
runs it over the same tables in a notebook or with `spark-submit`. The pandas analysis
(`auditor.analysis`) finishes the reduced frames: rates, thresholds, names and checks.

Relations are named in braces (`{flow_api_runs}`) and given by the source as a table name
or a parenthesised query, with the store's column names (docs/data-model.md): a lake's
Dataverse columns are renamed by the source, not here.

Ordered windows (failure streaks) order by time, then by the row's id, then by every other
column that could differ, with nulls last written out, so that the same rows give the same
streak on every engine and every run.
"""

# Relations are table names or queries made by a source; values are literals made by
# `auditor.engine.dialect` (quotes doubled) or numbers formatted here.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from auditor.engine.dialect import Dialect, text, texts

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


class Vocabulary(Protocol):
    """The status words of a run source (`auditor.analysis.statuses.RunVocabulary`)."""

    @property
    def unfinished(self) -> frozenset[str]: ...
    @property
    def final(self) -> frozenset[str] | None: ...
    @property
    def failed(self) -> frozenset[str]: ...
    @property
    def cancelled(self) -> frozenset[str]: ...
    @property
    def known(self) -> frozenset[str]: ...


def _among(column: str, words: frozenset[str]) -> str:
    """`column` (already lower-cased) is one of `words`; false for null, as in pandas."""
    if not words:
        return "FALSE"
    return f"coalesce({column} IN {texts(words)}, FALSE)"


def _tally(condition: str) -> str:
    """How many rows of the group meet `condition` (a null condition counts as not met)."""
    return f"CAST(sum(CASE WHEN {condition} THEN 1 ELSE 0 END) AS BIGINT)"


def _number(column: str) -> str:
    """A float, null for nulls and for what is not a number (tenant data is untrusted)."""
    return f"TRY_CAST({column} AS DOUBLE)"


def _span_ms(d: Dialect, start: str, end: str) -> str:
    """Milliseconds from start to end; null when either is missing or the span is negative
    (a clock error, not a fast run). A double on both engines (Spark reads `1000.0` as a
    decimal, and a decimal's maximum comes back as Python `Decimal`)."""
    span = f"({d.epoch_us(end)} - {d.epoch_us(start)})"
    return f"CASE WHEN {span} >= 0 THEN CAST({span} AS DOUBLE) / 1000 END"


def _flags(vocabulary: Vocabulary, end_time: str) -> str:
    """finished, failed, cancelled, known_status columns of a run, from its lower-cased
    status `st`, read with the vocabulary of its source (`analysis.runs` says why)."""
    if vocabulary.final is None:
        final = f"(st IS NOT NULL AND NOT {_among('st', vocabulary.unfinished)})"
    else:
        final = _among("st", vocabulary.final)
    finished = f"({end_time} IS NOT NULL AND {final})"
    return (
        f"{finished} AS finished,"
        f" ({finished} AND {_among('st', vocabulary.failed)}) AS failed,"
        f" ({finished} AND {_among('st', vocabulary.cancelled)}) AS cancelled,"
        f" {_among('st', vocabulary.known)} AS known_status"
    )


def combined_runs(
    d: Dialect, rel: Mapping[str, str], api: Vocabulary, dataverse: Vocabulary
) -> str:
    """Every flow's runs in one shape: the flow API's, and Dataverse `flowruns` for flows the
    API gave none (`analysis.runs.combined_runs`), each read with its source's status words.
    Needs `flow_api_runs`, `flow_ids` (environment_id, workflowid, flow_id: the definitions'
    keys) and `flowruns`, whose `duration` (schema name DurationInMs, milliseconds) stands in
    when the times cannot give one
    (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/flowrun).
    `sort_0` to `sort_2` give the rows the store's key order."""
    return f"""
    WITH api_rows AS (
        SELECT environment_id, flow_name AS flow_id, run_name, start_time, end_time, status,
               error_code, error_message,
               {_span_ms(d, "start_time", "end_time")} AS duration_ms,
               lower(status) AS st
        FROM {rel["flow_api_runs"]} api_in
    ),
    covered AS (SELECT DISTINCT environment_id, flow_id FROM api_rows),
    dv_keyed AS (
        SELECT r.environment_id,
               coalesce(i.flow_id, coalesce(r.workflowid, r.workflow_ref)) AS flow_id,
               coalesce(r.name, r.flowrunid) AS run_name,
               r.starttime AS start_time, r.endtime AS end_time, r.status,
               r.errorcode AS error_code, r.errormessage AS error_message,
               coalesce({_span_ms(d, "r.starttime", "r.endtime")},
                        CASE WHEN {_number("r.duration")} >= 0 THEN {_number("r.duration")} END)
                   AS duration_ms,
               lower(r.status) AS st, r.flowrunid
        FROM {rel["flowruns"]} r
        LEFT JOIN {rel["flow_ids"]} i
          ON i.environment_id = r.environment_id
         AND i.workflowid = coalesce(r.workflowid, r.workflow_ref)
    ),
    dv AS (
        SELECT k.* FROM dv_keyed k
        LEFT JOIN covered c ON c.environment_id = k.environment_id AND c.flow_id = k.flow_id
        WHERE k.flow_id IS NOT NULL AND c.flow_id IS NULL
    )
    SELECT environment_id, flow_id, run_name, start_time, end_time, status, error_code,
           error_message, duration_ms, {_flags(api, "end_time")}, 'flow-api' AS source,
           0 AS sort_0, flow_id AS sort_1, run_name AS sort_2
    FROM api_rows
    UNION ALL
    SELECT environment_id, flow_id, run_name, start_time, end_time, status, error_code,
           error_message, duration_ms, {_flags(dataverse, "end_time")},
           'dataverse' AS source, 1 AS sort_0, flowrunid AS sort_1, '' AS sort_2
    FROM dv
    """


def _failure_blocks(key: str, order: str, rows: str) -> str:
    """Each row of `rows` with its block within its group (environment_id, `key`): the number
    of rows not failed up to it in `order`, so consecutive failures share a block and the
    failures of a block are a streak."""
    return f"""
        SELECT environment_id, {key}, failed,
               sum(CASE WHEN failed THEN 0 ELSE 1 END) OVER (
                   PARTITION BY environment_id, {key} ORDER BY {order}
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS block
        FROM {rows}
    """


def _percentile_columns(d: Dialect, value: str, prefix: str, suffix: str = "") -> str:
    parts = [
        f"{d.percentile(value, level)} AS {prefix}{name}{suffix}" for name, level in PERCENTILES
    ]
    parts.append(f"max({value}) AS {prefix}max{suffix}")
    return ", ".join(parts)


def run_stats(d: Dialect, runs: str) -> str:
    """Per flow: outcome counts, duration percentiles of finished runs and the longest
    streak of consecutive failed runs (by start time, then run name; an unfinished run ends
    a streak). `runs` is a relation of `combined_runs`' shape."""
    order = (
        "start_time ASC NULLS LAST, run_name ASC NULLS LAST, end_time ASC NULLS LAST,"
        " status ASC NULLS LAST, source ASC"
    )
    finished_ms = "CASE WHEN finished THEN duration_ms END"
    return f"""
    WITH keyed AS (
        SELECT * FROM {runs} runs_in
        WHERE environment_id IS NOT NULL AND flow_id IS NOT NULL
    ),
    blocks AS ({_failure_blocks("flow_id", order, "keyed")}),
    streaks AS (
        SELECT environment_id, flow_id, max(n) AS failure_streak FROM (
            SELECT environment_id, flow_id, block,
                   {_tally("failed")} AS n
            FROM blocks GROUP BY environment_id, flow_id, block
        ) b GROUP BY environment_id, flow_id
    ),
    counts AS (
        SELECT environment_id, flow_id, max(source) AS source,
               count(*) AS runs,
               {_tally("finished")} AS finished,
               {_tally("failed")} AS failed,
               {_tally("cancelled")} AS cancelled,
               {_tally("failed AND error_message IS NULL")}
                   AS failed_without_message,
               {_tally("NOT known_status")} AS unknown_status,
               {_percentile_columns(d, finished_ms, "duration_", "_ms")}
        FROM keyed GROUP BY environment_id, flow_id
    )
    SELECT c.*, s.failure_streak
    FROM counts c JOIN streaks s
      ON s.environment_id = c.environment_id AND s.flow_id = c.flow_id
    """


def run_days(runs: str) -> str:
    """Runs and failed runs per UTC day of their start (the report's chart)."""
    return f"""
    SELECT CAST(CAST(start_time AS DATE) AS STRING) AS day, count(*) AS runs,
           {_tally("failed")} AS failed
    FROM {runs} runs_in WHERE start_time IS NOT NULL
    GROUP BY CAST(CAST(start_time AS DATE) AS STRING)
    """


def kept_runs(runs: str, sampled: str) -> str:
    """The runs the analysis reads one by one: failed ones (their messages are clustered)
    and finished flow API runs sampled with action detail (`sampled`: environment_id,
    flow_name, run_name of `flow_run_actions`)."""
    return f"""
    SELECT r.* FROM {runs} r
    LEFT JOIN (SELECT DISTINCT environment_id, flow_name, run_name FROM {sampled} sampled_in) s
      ON s.environment_id = r.environment_id AND s.flow_name = r.flow_id
     AND s.run_name = r.run_name AND r.source = 'flow-api'
    WHERE r.failed OR s.run_name IS NOT NULL
    """


def _trace_rows(d: Dialect, traces: str, step_modes: str) -> str:
    """Trace rows with typed measures and the step's mode where the row has none."""
    duration = _number("t.performanceexecutionduration")
    return f"""
        SELECT t.environment_id, t.pluginstepid AS stepid,
               CASE WHEN {duration} >= 0 THEN {duration} END AS duration,
               {_number("t.depth")} AS depth,
               coalesce({_number("t.mode")}, {_number("m.mode")}) AS mode,
               {d.has_text("t.exceptiondetails")} AS failed
        FROM {traces} t
        LEFT JOIN {step_modes} m
          ON m.environment_id = t.environment_id AND m.stepid = t.pluginstepid
    """


def step_traces(
    d: Dialect,
    traces: str,
    step_modes: str,
    *,
    sync_guideline_ms: float,
    near_timeout_ms: float,
    loop_depth: int,
) -> str:
    """Per step: executions, failures, durations and depths from its trace rows
    (`analysis.plugins.step_stats` says what each count means). `step_modes` is the steps'
    (environment_id, stepid, mode), one row per step."""
    return f"""
    SELECT environment_id, stepid,
           count(*) AS executions,
           {_tally("failed")} AS failures,
           count(duration) AS timed_executions,
           {_tally(f"mode = 0 AND duration > {float(sync_guideline_ms)!r}")}
               AS sync_over_guideline,
           {_tally(f"duration > {float(near_timeout_ms)!r}")} AS near_timeout,
           max(depth) AS max_depth,
           {_tally("depth > 1")} AS nested_executions,
           {_tally(f"depth >= {int(loop_depth)}")} AS loop_executions,
           {_percentile_columns(d, "duration", "", "_ms")}
    FROM ({_trace_rows(d, traces, step_modes)}) r
    GROUP BY environment_id, stepid
    """


def trace_depths(traces: str) -> str:
    """Executions per step and depth."""
    depth = f"round({_number('depth')})"
    return f"""
    SELECT environment_id, pluginstepid AS stepid, {depth} AS depth, count(*) AS executions
    FROM {traces} traces_in GROUP BY environment_id, pluginstepid, {depth}
    """


def trace_owners_near(traces: str, limit_ms: float) -> str:
    """Per step (or plug-in type, for executions without a step): executions, those with a
    usable duration, those longer than `limit_ms`, and the longest."""
    duration = f"CASE WHEN {_number('performanceexecutionduration')} >= 0" + (
        f" THEN {_number('performanceexecutionduration')} END"
    )
    return f"""
    SELECT environment_id, pluginstepid IS NOT NULL AS has_step,
           coalesce(pluginstepid, typename) AS owner,
           count(*) AS executions, count({duration}) AS usable,
           {_tally(f"{duration} > {float(limit_ms)!r}")} AS near,
           max({duration}) AS max_ms
    FROM {traces} traces_in
    GROUP BY environment_id, pluginstepid IS NOT NULL, coalesce(pluginstepid, typename)
    """


def async_trace_outcomes(d: Dialect, traces: str) -> str:
    """Per step, from its asynchronous trace rows (mode 1): executions, failures, the
    longest streak of consecutive failures and the current one (the failures since the last
    success), by execution start, then trace id."""
    order = "started ASC NULLS LAST, plugintracelogid ASC NULLS LAST"
    return f"""
    WITH rows AS (
        SELECT environment_id, pluginstepid AS owner_id,
               {d.has_text("exceptiondetails")} AS failed,
               coalesce(performanceexecutionstarttime, createdon) AS started, plugintracelogid
        FROM {traces} traces_in
        WHERE {_number("mode")} = 1 AND environment_id IS NOT NULL AND pluginstepid IS NOT NULL
    ),
    blocks AS ({_failure_blocks("owner_id", order, "rows")}),
    per_block AS (
        SELECT environment_id, owner_id, block, count(*) AS executions,
               {_tally("failed")} AS n
        FROM blocks GROUP BY environment_id, owner_id, block
    ),
    last_block AS (
        SELECT environment_id, owner_id, max(block) AS block FROM per_block
        GROUP BY environment_id, owner_id
    )
    SELECT p.environment_id, p.owner_id, CAST(sum(p.executions) AS BIGINT) AS executions,
           CAST(sum(p.n) AS BIGINT) AS failures, max(p.n) AS max,
           max(CASE WHEN p.block = l.block THEN p.n ELSE 0 END) AS current
    FROM per_block p JOIN last_block l
      ON l.environment_id = p.environment_id AND l.owner_id = p.owner_id
    GROUP BY p.environment_id, p.owner_id
    """


# Flow run actions (the runs sampled with action detail) -----------------------------------
#
# One row per action of a sampled run, as the flow API gives a run's actions: status, code,
# start and end times and `retryHistory`, each attempt's code kept as `retry_codes`
# (https://learn.microsoft.com/rest/api/logic/workflowrunactions/get).

_ACTION_KEYS = "environment_id IS NOT NULL AND flow_name IS NOT NULL AND action_name IS NOT NULL"

# Codes an attempt is answered with, by name (lower case) and number. A retry's `code` is
# "the status code" as a string (RetryHistory:
# https://learn.microsoft.com/javascript/api/@azure/arm-logic/retryhistory); whether it is a
# name (TooManyRequests) or a number ("429") no page says, so both are read (inferred).
CODE_NUMBERS: dict[str, int] = {
    "toomanyrequests": 429,
    "requesttimeout": 408,
    "internalservererror": 500,
    "notimplemented": 501,
    "badgateway": 502,
    "serviceunavailable": 503,
    "gatewaytimeout": 504,
}


def _code_number(d: Dialect, column: str) -> str:
    """The HTTP status number of a code given as a name (TooManyRequests) or a number
    ("429"); null for anything else. Surrounding spaces are ignored."""
    trimmed = f"trim({column})"
    named = " ".join(f"WHEN {text(name)} THEN {number}" for name, number in CODE_NUMBERS.items())
    # Three digits by length and a prefix: Java's `$` (Spark) also matches before a final
    # line break, RE2's (DuckDB) does not.
    digits = f"length({trimmed}) = 3 AND {d.matches(trimmed, text('^[0-9][0-9][0-9]'))}"
    numeric = f"CASE WHEN {digits} THEN CAST({trimmed} AS INT) END"
    return f"CASE lower({trimmed}) {named} ELSE {numeric} END"


def _ran(status: str) -> str:
    """The action ran: its status is not Skipped (an action without a status counts)."""
    return f"({status} IS NULL OR lower({status}) <> 'skipped')"


def sampled_runs(actions: str, effects: str) -> str:
    """Per run sampled with action detail: how many distinct effect actions of its flow ran.
    `effects` is (environment_id, flow_id, action_name), one row per effect action of a
    flow's definition (`analysis.definitions`)."""
    return f"""
    SELECT a.environment_id, a.flow_name AS flow_id, a.run_name,
           count(DISTINCT CASE WHEN {_ran("a.status")} AND e.action_name IS NOT NULL
                               THEN a.action_name END) AS effects_ran
    FROM {actions} a
    LEFT JOIN {effects} e
      ON e.environment_id = a.environment_id AND e.flow_id = a.flow_name
     AND e.action_name = a.action_name
    WHERE a.environment_id IS NOT NULL AND a.flow_name IS NOT NULL AND a.run_name IS NOT NULL
    GROUP BY a.environment_id, a.flow_name, a.run_name
    """


def action_retries(d: Dialect, actions: str) -> str:
    """Per action of a flow: executions, those retried, retries and their attempts, retried
    executions that then succeeded (recovered) or failed (exhausted), and the attempts
    answered 429 (throttled: each retry's code and the final one), 5xx and 408 (the retries'
    codes)."""
    retries = f"greatest(coalesce({_number('retry_count')}, 0), 0)"
    final = f"coalesce({_code_number(d, 'code')}, {_code_number(d, 'error_code')})"
    number = _code_number(d, "code")
    return f"""
    WITH rows AS (
        SELECT environment_id, flow_name AS flow_id, action_name, {retries} AS retries,
               lower(status) AS st, {final} AS final
        FROM {actions} actions_in WHERE {_ACTION_KEYS}
    ),
    per_action AS (
        SELECT environment_id, flow_id, action_name, count(*) AS executions,
               {_tally("retries > 0")} AS retried,
               CAST(sum(retries) AS BIGINT) AS retries,
               CAST(sum(CASE WHEN retries > 0 THEN retries + 1 ELSE 0 END) AS BIGINT)
                   AS attempts,
               {_tally("retries > 0 AND st = 'succeeded'")} AS recovered,
               {_tally("retries > 0 AND st = 'failed'")} AS exhausted,
               {_tally("final = 429")} AS final_throttled
        FROM rows GROUP BY environment_id, flow_id, action_name
    ),
    codes AS (
        SELECT environment_id, flow_id, action_name, {number} AS n FROM (
            SELECT environment_id, flow_name AS flow_id, action_name,
                   {d.split_rows("retry_codes", ",")} AS code
            FROM {actions} actions_in WHERE {_ACTION_KEYS} AND retry_codes IS NOT NULL
        ) split_codes
    ),
    per_code AS (
        SELECT environment_id, flow_id, action_name,
               {_tally("n = 429")} AS throttled,
               {_tally("n >= 500 AND n < 600")} AS server_errors,
               {_tally("n = 408")} AS timeouts
        FROM codes GROUP BY environment_id, flow_id, action_name
    )
    SELECT a.environment_id, a.flow_id, a.action_name, a.executions, a.retried, a.retries,
           a.attempts, a.recovered, a.exhausted,
           a.final_throttled + coalesce(c.throttled, 0) AS throttled,
           coalesce(c.server_errors, 0) AS server_errors,
           coalesce(c.timeouts, 0) AS timeouts
    FROM per_action a LEFT JOIN per_code c
      ON c.environment_id = a.environment_id AND c.flow_id = a.flow_id
     AND c.action_name = a.action_name
    """


def action_durations(d: Dialect, actions: str) -> str:
    """Per action of a flow: executions that ran (not Skipped) with both times and a span
    that is not negative, and the p50, p95 and longest of those spans."""
    return f"""
    SELECT environment_id, flow_id, action_name, count(*) AS executions,
           {d.percentile("ms", 0.5)} AS p50_ms, {d.percentile("ms", 0.95)} AS p95_ms,
           max(ms) AS max_ms
    FROM (
        SELECT environment_id, flow_name AS flow_id, action_name,
               {_span_ms(d, "start_time", "end_time")} AS ms
        FROM {actions} actions_in WHERE {_ACTION_KEYS} AND {_ran("status")}
    ) timed
    WHERE ms IS NOT NULL
    GROUP BY environment_id, flow_id, action_name
    """


# System jobs (asyncoperation) -------------------------------------------------------------
#
# Columns, states, statuses and operation types as the asyncoperation reference gives them
# (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation).


@dataclass(frozen=True)
class JobCodes:
    """The asyncoperation codes the job reductions read (`analysis.statuses` declares them,
    with their source): statecode values, statuscode values and operationtype values."""

    completed_state: int
    suspended_state: int
    locked_state: int
    succeeded: int
    failed: int
    canceled: int
    waiting: tuple[int, ...]
    final: tuple[int, ...]  # the statuses of the Completed state
    known: tuple[int, ...]  # every documented statuscode
    async_plugin: int  # operationtype of an async plug-in step's job
    expander: int  # operationtype of a CallbackRegistration Expander job


def _ints(values: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(v)) for v in values) + ")"


def _same(left: str, right: str, columns: tuple[str, ...]) -> str:
    """Null-safe equality of `columns` between two relations (a job without an owner, or of
    no readable type, is a group like any other)."""
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in columns)


def _job_rows(d: Dialect, jobs: str, codes: JobCodes) -> str:
    """Job rows typed: the operation type (rounded), state, status and retry count as
    numbers (null when unreadable), whether the message holds text, the queue latency
    (`startedon - createdon`) and run time (`completedon - startedon`) in ms, each clipped
    to 0 when negative (clock skew between queue and host, flagged `clipped`), and the owner:
    the step (`owningextensionid`) of an async plug-in job, else the workflow
    (`workflowactivationid`)."""
    queue_us = f"({d.epoch_us('startedon')} - {d.epoch_us('createdon')})"
    run_us = f"({d.epoch_us('completedon')} - {d.epoch_us('startedon')})"

    def clipped_ms(span: str) -> str:
        return f"CASE WHEN {span} < 0 THEN 0.0 ELSE CAST({span} AS DOUBLE) / 1000 END"

    operation = _operation("operationtype")
    return f"""
        SELECT environment_id, asyncoperationid, name, {operation} AS operationtype,
               {_number("statecode")} AS state, {_number("statuscode")} AS status,
               {_number("retrycount")} AS retrycount, {d.has_text("message")} AS has_message,
               createdon, {clipped_ms(queue_us)} AS queue_latency,
               {clipped_ms(run_us)} AS run_time,
               (coalesce({queue_us} < 0, FALSE) OR coalesce({run_us} < 0, FALSE)) AS clipped,
               {_owner(codes)} AS owner_id
        FROM {jobs} jobs_in
    """


def _operation(column: str) -> str:
    """A job's operation type as a whole number; null when unreadable."""
    return f"round({_number(column)})"


def _owner(codes: JobCodes) -> str:
    """A job's owner: the step (`owningextensionid`) of an async plug-in job, else the
    workflow (`workflowactivationid`)."""
    return (
        f"CASE WHEN {_operation('operationtype')} = {codes.async_plugin}"
        " THEN owningextensionid ELSE workflowactivationid END"
    )


def _completed(codes: JobCodes) -> str:
    """The job has an outcome: the Completed state, or a status only that state has (a
    job whose statecode is missing or undocumented)."""
    return f"(state = {codes.completed_state} OR status IN {_ints(codes.final)})"


def _job_counts(d: Dialect, codes: JobCodes) -> str:
    """The select list of the counts and percentiles of `analysis.jobs.STAT_DTYPES` (but the
    rates, which pandas divides) over `_job_rows`."""
    return f"""
        count(*) AS jobs,
        {_tally(_completed(codes))} AS completed,
        {_tally(f"status = {codes.succeeded}")} AS succeeded,
        {_tally(f"status = {codes.failed}")} AS failed,
        {_tally(f"status = {codes.failed} AND NOT has_message")} AS failed_without_message,
        {_tally(f"status = {codes.canceled}")} AS canceled,
        {_tally(f"state = {codes.suspended_state}")} AS suspended,
        {_tally(f"status IN {_ints(codes.waiting)}")} AS waiting,
        {_tally(f"state = {codes.locked_state}")} AS in_progress,
        {_tally(f"status IS NULL OR status NOT IN {_ints(codes.known)}")} AS unknown_status,
        {_tally("clipped")} AS clipped_durations,
        {_tally("retrycount > 0")} AS retried,
        max(retrycount) AS max_retrycount,
        {_percentile_columns(d, "queue_latency", "queue_latency_", "_ms")},
        {_percentile_columns(d, "run_time", "run_time_", "_ms")}
    """


def job_stats(d: Dialect, jobs: str, codes: JobCodes) -> str:
    """Per environment and operation type: the job counts and percentiles."""
    return f"""
    SELECT environment_id, operationtype, {_job_counts(d, codes)}
    FROM ({_job_rows(d, jobs, codes)}) job_rows
    GROUP BY environment_id, operationtype
    """


def job_owners(d: Dialect, jobs: str, codes: JobCodes) -> str:
    """Per owner (environment, operation type, owning step or workflow): the job counts and
    percentiles, the longest and the current streak of consecutive failed jobs among the
    completed ones (by creation, then id; a queued or running job neither fails nor breaks a
    streak) and the commonest job name (ties: the first in name order)."""
    owner = ("environment_id", "operationtype", "owner_id")
    keys = ", ".join(owner)
    order = "createdon ASC NULLS LAST, asyncoperationid ASC NULLS LAST"
    failed = f"coalesce(status = {codes.failed}, FALSE)"
    return f"""
    WITH rows AS ({_job_rows(d, jobs, codes)}),
    counts AS (SELECT {keys}, {_job_counts(d, codes)} FROM rows GROUP BY {keys}),
    done AS (
        SELECT {keys}, createdon, asyncoperationid, {failed} AS failed FROM rows
        WHERE {_completed(codes)}
    ),
    blocks AS ({_failure_blocks("operationtype, owner_id", order, "done")}),
    per_block AS (
        SELECT {keys}, block, {_tally("failed")} AS n FROM blocks GROUP BY {keys}, block
    ),
    last_block AS (SELECT {keys}, max(block) AS block FROM per_block GROUP BY {keys}),
    streaks AS (
        SELECT {", ".join(f"p.{c}" for c in owner)}, max(p.n) AS max_failure_streak,
               max(CASE WHEN p.block = l.block THEN p.n ELSE 0 END) AS current_failure_streak
        FROM per_block p JOIN last_block l ON {_same("p", "l", owner)}
        GROUP BY {", ".join(f"p.{c}" for c in owner)}
    ),
    named AS (
        SELECT {keys}, name, row_number() OVER (
                   PARTITION BY {keys} ORDER BY n DESC, name ASC) AS name_rank
        FROM (SELECT {keys}, name, count(*) AS n FROM rows WHERE name IS NOT NULL
              GROUP BY {keys}, name) names
    )
    SELECT c.*, s.max_failure_streak, s.current_failure_streak, n.name
    FROM counts c
    LEFT JOIN streaks s ON {_same("c", "s", owner)}
    LEFT JOIN named n ON {_same("c", "n", owner)} AND n.name_rank = 1
    """


def queue_latency_p95(d: Dialect, jobs: str, codes: JobCodes) -> str:
    """Per environment: the p95 queue latency of its completed async plug-in jobs with both
    times (canceled jobs never started, so they drop out)."""
    return f"""
    SELECT environment_id, {d.percentile("queue_latency", 0.95)} AS queue_latency_p95_ms
    FROM ({_job_rows(d, jobs, codes)}) job_rows
    WHERE environment_id IS NOT NULL AND operationtype = {codes.async_plugin}
      AND state = {codes.completed_state} AND queue_latency IS NOT NULL
    GROUP BY environment_id
    """


def expander_counts(jobs: str, codes: JobCodes) -> str:
    """CallbackRegistration Expander jobs per environment and lower-cased
    `workflowactivationid` (null: none)."""
    return f"""
    SELECT environment_id, lower(workflowactivationid) AS workflowid, count(*) AS jobs
    FROM {jobs} jobs_in WHERE {_operation("operationtype")} = {codes.expander}
    GROUP BY environment_id, lower(workflowactivationid)
    """


def unlinked_expanders(jobs: str, linked: str, codes: JobCodes, limit: int) -> str:
    """The first `limit` Expander jobs of each environment, in id order, whose
    `workflowactivationid` is none of `linked` (environment_id, workflowid: lower case)."""
    return f"""
    SELECT * FROM (
        SELECT j.*, row_number() OVER (
                   PARTITION BY j.environment_id ORDER BY j.asyncoperationid ASC NULLS LAST
               ) AS auditor_rank
        FROM {jobs} j
        LEFT JOIN {linked} l
          ON l.environment_id = j.environment_id
         AND l.workflowid = lower(j.workflowactivationid)
        WHERE {_operation("j.operationtype")} = {codes.expander} AND l.workflowid IS NULL
    ) ranked WHERE auditor_rank <= {int(limit)}
    """


def kept_jobs(jobs: str, codes: JobCodes) -> str:
    """The jobs read one by one, with their owner (`owner_id`): all but those that succeeded
    or were canceled (what is queued, waiting, running or stuck, and the failures, whose
    messages are clustered)."""
    settled = (codes.succeeded, codes.canceled)
    return f"""
    SELECT jobs_in.*, {_owner(codes)} AS owner_id FROM {jobs} jobs_in
    WHERE NOT coalesce({_number("statuscode")} IN {_ints(settled)}, FALSE)
    """
