"""Synchronous plug-ins slower than the guideline make users wait."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, rows
from auditor.checks.evidence import TRACE_ALL, Evidence

META = CheckMeta(
    id="plugin-sync-slow",
    title="Synchronous plug-in too slow",
    severity="high",
    rationale=(
        "A synchronous step runs inside the user's (or the caller's) transaction: every "
        "second it takes is a second of waiting, of held locks, and of risk of the 2-minute "
        "limit. Microsoft's guideline is to keep synchronous logic short."
    ),
    remediation=(
        "Move long work to an asynchronous step, a flow or an Azure function; trim the "
        "queries the step makes (columns, filters) and cache what does not change."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/",
    needs=("sdkmessageprocessingsteps", "plugintracelogs", TRACE_ALL),
    thresholds=(
        Threshold("min_executions", 20, "timed executions before a step is judged", "runs"),
        Threshold("sync_p95_ms", 2000, "p95 duration of a synchronous step", "ms"),
    ),
    resource_kind="step",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each synchronous step that ran: its p95 against the limit."""
    min_executions = float(limits["min_executions"])
    limit = float(limits["sync_p95_ms"])
    steps = evidence.steps
    sync = steps[steps["mode"].eq(0).fillna(False) & (steps["timed_executions"] > 0)]
    out = []
    for row in rows(sync):
        judged = row.timed_executions >= min_executions
        failing = judged and row.p95_ms > limit
        message = (
            f"p95 {fmt(row.p95_ms)} ms over {fmt(row.timed_executions)} executions "
            f"(p50 {fmt(row.p50_ms)}, max {fmt(row.max_ms)}; limit {fmt(limit)} ms); "
            f"{fmt(row.sync_over_guideline)} executions over 2 s"
        )
        if not judged:
            message += f"; fewer than {fmt(min_executions)} executions, not judged"
        out.append(
            make(
                META,
                "fail" if failing else "pass",
                message,
                environment_id=row.environment_id,
                resource_id=row.stepid,
                resource_name=row.name if isinstance(row.name, str) else row.stepid,
                values={
                    "executions": row.timed_executions,
                    "p50_ms": row.p50_ms,
                    "p95_ms": row.p95_ms,
                    "p99_ms": row.p99_ms,
                    "max_ms": row.max_ms,
                    "over_2s": row.sync_over_guideline,
                    "threshold_ms": limit,
                    "message": row.message_name,
                    "table": row.primary_entity,
                },
            )
        )
    return out
