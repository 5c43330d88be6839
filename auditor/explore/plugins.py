"""`plugins top` and `plugin show`: which plug-in steps run most, fail, take longest, or run on
every update of their table.

The trace log gives executions, failures, durations and depth per step; the step registration
gives what the trace log lacks (stage, mode, filtering attributes, assembly); system jobs give
an asynchronous step's queue, retries and failure streaks. The three are shown side by side
with the trace-logging setting, because with logging Off or on Exception only an idle-looking
step proves nothing ("not being able to see is a result", docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditor.analysis.jobs import normalise_messages, recurring_errors
from auditor.analysis.plugins import depth_distribution
from auditor.checks.evidence import Evidence
from auditor.explore.common import (
    check_by,
    checks_by_resource,
    environment_ids,
    findings_for,
    one_match,
    rank,
    records,
    to_change,
    unknown_name,
    value,
)

_KEYS = ["environment_id", "stepid"]

# `plugins top --by`: the value ranked on (descending), then the tie-breakers. "unfiltered"
# keeps the order of `Evidence.unfiltered_steps` (busiest first) instead.
PLUGIN_RANKINGS: dict[str, tuple[str, ...]] = {
    "executions": ("executions", "failures"),
    "failures": ("failures_seen", "failures", "jobs_failed"),
    "duration": ("p95_ms", "max_ms"),
    "unfiltered": ("executions",),
}

# sdkmessageprocessingstep stage and mode, https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
STAGES: Mapping[int, str] = {10: "Pre-validation", 20: "Pre-operation", 40: "Post-operation"}
MODES: Mapping[int, str] = {0: "Synchronous", 1: "Asynchronous"}
ASYNC_PLUGIN_JOB = 1  # asyncoperation operationtype of an asynchronous step's job
TOP_ERRORS = 3
_ERROR_CHARS = 300

_REGISTRATION = [
    "filteringattributes",
    "statecode",
    "customizationlevel",
    "ismanaged",
    "rank",
    "asyncautodelete",
    "plugintype_typename",
    "assembly_name",
    "assembly_version",
    "isolationmode",
]

TOP_COLUMNS = [
    "environment_id",
    "environment",
    "stepid",
    "name",
    "message",
    "table",
    "stage",
    "mode",
    "enabled",
    "filtering_attributes",
    "trace_logging",
    "executions",
    "failures",
    "failure_rate",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "sync_over_guideline",
    "near_timeout",
    "max_depth",
    "jobs",
    "jobs_failed",
    "max_failure_streak",
]


def _step_jobs(evidence: Evidence) -> pd.DataFrame:
    """System jobs per asynchronous step, keyed by the step id in lower case."""
    owners = evidence.job_owners
    steps = owners[(owners["operationtype"] == ASYNC_PLUGIN_JOB).fillna(False).astype(bool)]
    steps = steps.dropna(subset=["owner_id"])
    return (
        steps.assign(step_key=steps["owner_id"].astype("str").str.lower())
        .groupby(["environment_id", "step_key"])
        .agg(
            jobs=("jobs", "sum"),
            jobs_failed=("failed", "sum"),
            max_failure_streak=("max_failure_streak", "max"),
        )
        .reset_index()
    )


def _step_table(evidence: Evidence) -> pd.DataFrame:
    """Every step the registration or the trace log knows, with its measured values."""
    registration = evidence.frames.plugin_steps.reindex(columns=[*_KEYS, *_REGISTRATION])
    registration = registration.astype({"environment_id": "str", "stepid": "str"})
    registration = registration.drop_duplicates(_KEYS, keep="last")
    table = evidence.steps.merge(registration, on=_KEYS, how="left")
    table = table.assign(step_key=table["stepid"].astype("str").str.lower())
    table = table.merge(_step_jobs(evidence), on=["environment_id", "step_key"], how="left")
    counts = ["jobs", "jobs_failed", "max_failure_streak"]
    table[counts] = table[counts].fillna(0).astype("int64")
    # The same failure can leave a trace row and a failed job, and either may be missing
    # (trace logging off, a synchronous step has no job): rank on the larger.
    table["failures_seen"] = table[["failures", "jobs_failed"]].max(axis=1)
    table["enabled"] = table["statecode"].astype("Float64").eq(0).astype("boolean")
    table["name"] = table["name"].fillna(table["stepid"]).fillna("(no step id)")
    table["environment"] = table["environment_id"].map(evidence.environment_names)
    table["environment"] = table["environment"].fillna(table["environment_id"])
    settings = {e: s[0] for e, s in evidence.traces_setting.items()}
    table["trace_logging"] = table["environment_id"].map(settings).fillna("unknown")
    return table.rename(
        columns={
            "message_name": "message",
            "primary_entity": "table",
            "filteringattributes": "filtering_attributes",
        }
    )


def plugins_top(
    evidence: Evidence,
    findings: pd.DataFrame,
    by: str,
    environment: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The `limit` steps that rank highest `by` executions, failures (the larger of failed
    trace rows and failed system jobs), duration (p95), or `unfiltered`: the enabled custom
    Update steps without filtering attributes, busiest first, idle ones included (they fire
    on every update all the same). Each row names the checks that fail for the step."""
    check_by(by, PLUGIN_RANKINGS, "auditor plugins top")
    table = _step_table(evidence)
    envs = environment_ids(evidence, environment, "auditor environments")
    if envs is not None:
        table = table[table["environment_id"].isin(envs)]
    if by == "unfiltered":
        order = evidence.unfiltered_steps.loc[:, _KEYS].reset_index(drop=True)
        order = order.assign(_order=range(len(order)))
        top = table.merge(order, on=_KEYS, how="inner").sort_values("_order", kind="stable")
        top = top.drop(columns="_order").head(max(limit, 0)).reset_index(drop=True)
    else:
        top = rank(table, PLUGIN_RANKINGS[by], ["environment_id", "name", "stepid"], limit)
    rows = records(top, TOP_COLUMNS)
    checks = checks_by_resource(findings, top, ("stepid",))
    for position, (row, failing) in enumerate(zip(rows, checks, strict=True), start=1):
        row["rank"] = position
        row["stage_name"] = STAGES.get(row["stage"]) if isinstance(row["stage"], int) else None
        row["mode_name"] = MODES.get(row["mode"]) if isinstance(row["mode"], int) else None
        row["failing_checks"] = failing
    return rows


def find_step(evidence: Evidence, name_or_id: str, environment: str | None = None) -> pd.Series:
    """The step a user named: its id, else its name (any case); a shared name is refused."""
    table = _step_table(evidence)
    envs = environment_ids(evidence, environment, "auditor environments")
    if envs is not None:
        table = table[table["environment_id"].isin(envs)]
    wanted = name_or_id.strip().lower()
    matches = table[table["step_key"] == wanted]
    if matches.empty:
        matches = table[table["name"].astype("str").str.strip().str.lower() == wanted]
    if matches.empty:
        candidates = [str(n) for n in table.loc[table["known_step"], "name"]]
        raise unknown_name(
            "plug-in step", name_or_id, candidates, "auditor plugins top --by executions"
        )
    return one_match(matches, evidence, "plug-in step", "stepid", name_or_id)


def _trace_errors(traces: pd.DataFrame) -> list[dict[str, Any]]:
    """The commonest causes of the step's failed executions: the exception's `Message:` line
    (else its first line) with ids and numbers masked, so one cause counts once."""
    details = traces["exceptiondetails"].astype("str")
    failed = details[details.notna() & (details.str.strip() != "")]
    if failed.empty:
        return []
    message = failed.str.extract(r"Message:[ \t]*([^\r\n]*)", expand=False)
    first = failed.str.strip().str.split(r"[\r\n]", n=1, regex=True).str[0]
    line = message.where(message.notna() & (message.str.strip() != ""), first)
    # Dataverse glues the fault's "Detail:" block to the message line.
    line = line.str.replace(r"\s*Detail:.*$", "", regex=True).str.strip().str.slice(0, _ERROR_CHARS)
    frame = pd.DataFrame(
        {"error": normalise_messages(line, max_chars=_ERROR_CHARS), "example": line}
    )
    counts = frame.groupby("error", sort=False).agg(
        count=("example", "size"), example=("example", "first")
    )
    counts = counts.reset_index().sort_values(
        ["count", "error"], ascending=[False, True], kind="stable"
    )
    return records(counts.head(TOP_ERRORS), ["error", "count", "example"])


def plugin_show(
    evidence: Evidence,
    findings: pd.DataFrame,
    name_or_id: str,
    environment: str | None = None,
) -> dict[str, Any]:
    """One step: registration, executions, failures and their causes, duration percentiles,
    executions over the 2 s guideline and near the 2-minute timeout, depth distribution, its
    system jobs (streaks, top errors), its findings and what to change."""
    step = find_step(evidence, name_or_id, environment)
    env, stepid = str(step["environment_id"]), str(step["stepid"])
    key = str(step["step_key"])
    row = {str(k): value(v) for k, v in step.items()}
    traces = evidence.frames.plugintracelogs
    mine = traces[
        (traces["environment_id"] == env)
        & traces["pluginstepid"].astype("str").str.lower().eq(key).fillna(False).astype(bool)
    ]
    depths = depth_distribution(mine).sort_values("depth", kind="stable")
    owners = evidence.job_owners
    jobs = owners[
        (owners["environment_id"] == env)
        & owners["owner_id"].astype("str").str.lower().eq(key).fillna(False).astype(bool)
    ]
    errors = recurring_errors(
        evidence.frames.asyncoperations[
            evidence.frames.asyncoperations["owningextensionid"]
            .astype("str")
            .str.lower()
            .eq(key)
            .fillna(False)
            .astype(bool)
            & (evidence.frames.asyncoperations["environment_id"] == env)
        ],
        top=TOP_ERRORS,
    )
    setting = evidence.traces_setting.get(env, ("unknown", False, False))
    coverage = evidence.trace_coverage
    explained = coverage.loc[coverage["environment_id"] == env, "evidence"]
    found = findings_for(findings, env, [stepid])
    stage, mode = row.get("stage"), row.get("mode")
    return {
        "step": {
            "environment_id": env,
            "environment": evidence.environment_name(env),
            "stepid": stepid,
            "name": row["name"],
            "registered": row["known_step"],
            "message": row.get("message"),
            "table": row.get("table"),
            "stage": stage,
            "stage_name": STAGES.get(stage) if isinstance(stage, int) else None,
            "mode": mode,
            "mode_name": MODES.get(mode) if isinstance(mode, int) else None,
            "rank": row.get("rank"),
            "filtering_attributes": row.get("filtering_attributes"),
            "enabled": row.get("enabled"),
            "custom": row.get("customizationlevel") == 1,
            "managed": row.get("ismanaged"),
            "plugin_type": row.get("plugintype_typename"),
            "assembly": row.get("assembly_name"),
            "assembly_version": row.get("assembly_version"),
            "isolation_mode": row.get("isolationmode"),
            "async_auto_delete": row.get("asyncautodelete"),
        },
        "window": {
            "start": evidence.frames.window.start.isoformat(),
            "end": evidence.frames.window.end.isoformat(),
        },
        "trace_logging": {
            "setting": setting[0],
            "executions_visible": setting[1],
            "failures_visible": setting[2],
            "evidence": str(explained.iloc[0]) if not explained.empty else None,
        },
        "executions": {
            name: row.get(name)
            for name in (
                "executions",
                "failures",
                "failure_rate",
                "timed_executions",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "sync_over_guideline",
                "near_timeout",
                "max_depth",
                "nested_executions",
                "loop_executions",
            )
        },
        "depths": records(depths, ["depth", "executions"]),
        "trace_errors": _trace_errors(mine),
        "system_jobs": records(
            jobs,
            [
                "operation",
                "name",
                "jobs",
                "succeeded",
                "failed",
                "failure_rate",
                "canceled",
                "suspended",
                "waiting",
                "in_progress",
                "retried",
                "max_retrycount",
                "queue_latency_p95_ms",
                "run_time_p95_ms",
                "max_failure_streak",
                "current_failure_streak",
                "top_error",
                "top_error_count",
            ],
        ),
        "job_errors": records(errors, ["error", "count", "example"]),
        "findings": found,
        "to_change": to_change(found),
    }


__all__ = ["MODES", "PLUGIN_RANKINGS", "STAGES", "find_step", "plugin_show", "plugins_top"]
