"""Flow actions that take many minutes hold runs open and push them towards limits."""

from __future__ import annotations

from auditor.analysis.definition_values import display_name
from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-action-slow",
    title="Long-running flow action",
    severity="medium",
    rationale=(
        "An action whose p95 duration is many minutes (a slow connector, a big loop, a long "
        "wait) makes the whole run slow, holds concurrency slots, and for invoked flows "
        "exceeds the caller's timeout."
    ),
    remediation=(
        "Page or filter the data the action reads, run loops in parallel (concurrency "
        "control) or in batches, and move long waits to asynchronous patterns."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/optimize-power-automate-performance",
    needs=("flow_runs", "flow_run_actions"),
    thresholds=(Threshold("action_p95_ms", 600_000, "p95 duration of one action", "ms"),),
    resource_kind="action",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Fail each action whose p95 duration is above the limit; pass each other flow."""
    limit = float(limits["action_p95_ms"])
    durations = evidence.action_results["durations"].merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], how="left"
    )
    slow = durations[durations["p95_ms"] > limit]
    out = []
    for row in rows(slow):
        out.append(
            make(
                META,
                "fail",
                f"action '{display_name(row.action_name)}': p95 {fmt(row.p95_ms / 1000, 1)} s over "
                f"{row.executions} executions (max {fmt(row.max_ms / 1000, 1)} s; limit "
                f"{fmt(limit / 1000)} s)",
                environment_id=row.environment_id,
                resource_id=f"{row.flow_id}/{row.action_name}",
                resource_name=f"{row.display_name} / {display_name(row.action_name)}",
                values={
                    "flow_id": row.flow_id,
                    "action": row.action_name,
                    "executions": row.executions,
                    "p50_ms": row.p50_ms,
                    "p95_ms": row.p95_ms,
                    "max_ms": row.max_ms,
                    "threshold_ms": limit,
                },
            )
        )
    flagged = set(zip(slow["environment_id"], slow["flow_id"], strict=True))
    slowest = durations.sort_values("p95_ms", ascending=False).drop_duplicates(
        ["environment_id", "flow_id"]
    )
    for row in rows(slowest):
        if (row.environment_id, row.flow_id) in flagged:
            continue
        out.append(
            make(
                META,
                "pass",
                f"slowest action '{display_name(row.action_name)}': "
                f"p95 {fmt(row.p95_ms / 1000, 1)} s",
                environment_id=row.environment_id,
                resource_kind="flow",
                resource_id=row.flow_id,
                resource_name=row.display_name
                if isinstance(row.display_name, str)
                else row.flow_id,
                values={"slowest_action": row.action_name, "p95_ms": row.p95_ms},
            )
        )
    return out
