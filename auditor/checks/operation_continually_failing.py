"""An operation failing run after run is broken now, whatever its long-run rate says."""

from __future__ import annotations

from auditor.analysis.job_owners import AUTODELETE_REASON, BY_TRACES, NOT_MEASURABLE
from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="operation-continually-failing",
    title="Continually failing operation",
    severity="high",
    rationale=(
        "Many consecutive failures of one flow, plug-in step or workflow mean a persistent "
        "cause (a changed schema, an expired connection, a missing record) that retries "
        "cannot fix; every further run is wasted until someone acts."
    ),
    remediation=(
        "Fix the recurring error shown; alert on consecutive failures (for example with the "
        "CoE kit or an Azure Monitor alert) and turn the flow off until it is fixed."
    ),
    learn_url="https://learn.microsoft.com/power-automate/error-reference",
    needs=("flow_runs", "asyncoperations"),
    thresholds=(Threshold("failure_streak", 10, "consecutive failed runs or jobs", "runs"),),
    resource_kind="flow",
)

_JOB_TYPES = (1, 10)  # async plug-in steps and classic workflows


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Flows by their longest streak of failed runs; steps and workflows by failed jobs."""
    streak = int(limits["failure_streak"])
    out = []
    summary = evidence.run_summary
    summary = summary[summary["runs"] > 0].merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], how="left"
    )
    for row in rows(summary):
        failing = row.failure_streak >= streak
        message = f"longest run of consecutive failed runs: {row.failure_streak}"
        if failing and isinstance(row.top_error, str):
            message += f"; commonest error: {row.top_error}"
        out.append(
            make(
                META,
                "fail" if failing else "pass",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name
                if isinstance(row.display_name, str)
                else row.flow_id,
                values={
                    "failure_streak": row.failure_streak,
                    "failed": row.failed,
                    "runs": row.runs,
                },
            )
        )
    owners = evidence.job_owners
    owners = owners[owners["operationtype"].isin(_JOB_TYPES).fillna(False)]
    for row in rows(owners):
        failing = row.max_failure_streak >= streak
        noun = "executions" if row.measured_by == BY_TRACES else f"{row.operation} jobs"
        message = (
            f"longest run of consecutive failed {noun}: {row.max_failure_streak}"
            f" (current {row.current_failure_streak})"
        )
        if row.measured_by == BY_TRACES:
            message += " (from trace logs: its successful jobs are auto-deleted)"
        if failing and isinstance(row.top_error, str):
            message += f"; commonest error: {row.top_error}"
        status = "fail" if failing else "pass"
        if row.measured_by == NOT_MEASURABLE:
            # Its remaining jobs are its failures: any streak among them means nothing.
            status, message = "not-assessed", f"not assessed: {AUTODELETE_REASON}"
        out.append(
            make(
                META,
                status,
                message,
                environment_id=row.environment_id,
                resource_kind=str(row.owner_kind),
                resource_id=row.owner_id,
                resource_name=row.name,
                values={
                    "failure_streak": row.max_failure_streak,
                    "current_streak": row.current_failure_streak,
                    "failed": row.failed,
                    "jobs": row.jobs,
                },
            )
        )
    return out
