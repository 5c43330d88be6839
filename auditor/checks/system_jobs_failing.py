"""Async plug-in steps and workflows whose system jobs fail often."""

from __future__ import annotations

from auditor.analysis.job_owners import AUTODELETE_REASON, BY_JOBS, BY_TRACES, NOT_MEASURABLE
from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, pct, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="system-jobs-failing",
    title="System jobs failing",
    severity="high",
    rationale=(
        "An asynchronous plug-in or workflow whose system jobs fail often drops the work it "
        "was queued to do; Dataverse retries only some errors, and failed jobs are easy to "
        "miss in the System Jobs view."
    ),
    remediation=(
        "Fix the commonest error shown; make the step idempotent so retries are safe, and "
        "monitor failed system jobs (Settings > System Jobs, or the asyncoperation table)."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service",
    needs=("asyncoperations",),
    thresholds=(
        Threshold("min_jobs", 20, "jobs in the window before a step is judged", "jobs"),
        Threshold("async_failure_rate", 0.2, "failed jobs / jobs above which it fails"),
    ),
    resource_kind="step",
)

_JOB_TYPES = (1, 10)  # async plug-in steps, classic workflows


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per owning step or workflow: failed (statuscode 31) / completed jobs against the
    threshold. A step that auto-deletes its successful jobs is measured from its trace logs
    (trace logging All), or not assessed: its remaining jobs are only its failures."""
    min_jobs = float(limits["min_jobs"])
    threshold = float(limits["async_failure_rate"])
    owners = evidence.job_owners
    owners = owners[owners["operationtype"].isin(_JOB_TYPES).fillna(False)]
    out = []
    for row in rows(owners):
        values = {
            "jobs": row.jobs,
            "completed": row.completed,
            "failed": row.failed,
            "failure_rate": None,
            "retried": row.retried,
            "suspended": row.suspended,
            "top_error": row.top_error,
            "threshold": threshold,
            "measured_by": row.measured_by,
        }
        where = dict(
            environment_id=row.environment_id,
            resource_kind=str(row.owner_kind),
            resource_id=row.owner_id,
            resource_name=row.name,
        )
        if row.measured_by == NOT_MEASURABLE:
            message = (
                f"not assessed: {AUTODELETE_REASON} ({fmt(row.failed)} failed "
                f"{row.operation} jobs remain)"
            )
            out.append(make(META, "not-assessed", message, values=values, **where))
            continue
        share = row.failed / row.completed if row.completed else 0.0
        values["failure_rate"] = share
        judged = row.completed >= min_jobs
        failing = judged and share > threshold
        noun = "executions" if row.measured_by == BY_TRACES else f"finished {row.operation} jobs"
        message = f"{fmt(row.failed)} of {fmt(row.completed)} {noun} failed ({pct(share)})"
        if row.measured_by == BY_TRACES:
            message += " (from trace logs: its successful jobs are auto-deleted)"
        if failing and isinstance(row.top_error, str):
            message += f"; commonest error ({row.top_error_count}x): {row.top_error}"
        unfinished = row.jobs - row.completed
        if row.measured_by == BY_JOBS and unfinished:
            message += f"; {fmt(unfinished)} not finished yet"
        if row.unknown_status:
            # Counted as jobs, not as failures: say so, or an odd status reads as a pass.
            message += f"; {fmt(row.unknown_status)} with a missing or undocumented statuscode"
        if not judged:
            message += f"; fewer than {fmt(min_jobs)} finished, not judged"
        out.append(make(META, "fail" if failing else "pass", message, values=values, **where))
    return out
