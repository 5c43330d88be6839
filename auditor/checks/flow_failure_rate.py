"""Flows that fail often are not a reliable service."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, pct, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-failure-rate",
    title="High flow failure rate",
    severity="high",
    rationale=(
        "A flow whose runs fail often leaves work undone and needs people to notice and "
        "resubmit; the commonest error usually names one cause to fix."
    ),
    remediation=(
        "Fix the commonest error cluster shown; add retry policies for transient errors and a "
        "failure path that reports and compensates for the others."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
    needs=("flow_runs",),
    thresholds=(
        Threshold("min_runs", 20, "runs in the window before a flow is judged", "runs"),
        Threshold("failure_rate", 0.2, "failed runs / runs above which it fails"),
    ),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per flow with runs: failed / all runs in the window against the threshold."""
    min_runs = float(limits["min_runs"])
    threshold = float(limits["failure_rate"])
    summary = evidence.run_summary
    summary = summary[summary["runs"] > 0].merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], how="left"
    )
    out = []
    for row in rows(summary):
        share = row.failed / row.runs
        judged = row.runs >= min_runs
        failing = judged and share > threshold
        message = f"{fmt(row.failed)} of {fmt(row.runs)} runs failed ({pct(share)})"
        if failing and isinstance(row.top_error, str):
            message += f"; commonest error ({row.top_error_count}x): {row.top_error}"
        if row.unknown_status:
            # Counted as runs, not as failures: say so, or an odd status reads as a pass.
            message += f"; {fmt(row.unknown_status)} with a missing or undocumented status"
        if not judged:
            message += f"; fewer than {fmt(min_runs)} runs, not judged"
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
                    "runs": row.runs,
                    "failed": row.failed,
                    "cancelled": row.cancelled,
                    "failure_rate": share,
                    "failure_streak": row.failure_streak,
                    "top_error": row.top_error,
                    "top_error_count": row.top_error_count,
                    "threshold": threshold,
                },
            )
        )
    return out
