"""Plug-in executions close to the 2-minute sandbox limit are about to fail."""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, rows
from auditor.checks.evidence import TRACE_ALL, Evidence

META = CheckMeta(
    id="near-platform-timeout",
    title="Near a platform timeout",
    severity="high",
    rationale=(
        "Plug-ins in the sandbox are stopped after 2 minutes; an execution that already takes "
        "90 % of that fails outright as data or load grows, and the user's operation with it."
    ),
    remediation=(
        "Split the work, move it to an asynchronous pattern (a flow or Azure service), or "
        "reduce what one execution processes."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/analyze-performance",
    needs=("plugintracelogs", TRACE_ALL),
    thresholds=(
        Threshold(
            "near_timeout_ms", 108_000, "an execution longer than this is near the limit", "ms"
        ),
    ),
    resource_kind="step",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each step that ran: how many executions were longer than the limit. Executions
    without a step (custom workflow activities) count too, grouped by plug-in type."""
    limit = float(limits["near_timeout_ms"])
    # A negative duration is a clock error, not a measurement (it is left out of the max).
    counts = evidence.trace_owners_near(limit).sort_values(
        ["environment_id", "has_step", "owner"], na_position="last", kind="stable"
    )
    steps = evidence.steps.dropna(subset=["stepid"])
    names = steps.set_index(["environment_id", "stepid"])["name"]
    out = []
    for row in rows(counts):
        env, owner = row.environment_id, None if pd.isna(row.owner) else str(row.owner)
        name = names.get((env, owner)) if row.has_step else None
        failing = row.near > 0
        # Executions without a duration prove nothing about the limit: not a pass.
        timed = not pd.isna(row.max_ms)
        message = (
            f"{fmt(row.near)} of {fmt(row.executions)} executions took longer than "
            f"{fmt(limit)} ms (max {fmt(row.max_ms)} ms; the limit is 120,000 ms)"
        )
        if row.usable < row.executions:
            untimed = row.executions - row.usable
            message += f"; {fmt(untimed)} without a usable duration (missing or negative)"
        out.append(
            make(
                META,
                "fail" if failing else ("pass" if timed else "not-assessed"),
                message,
                environment_id=env,
                resource_kind="step" if row.has_step else "plugin-type",
                resource_id=owner,
                resource_name=name if isinstance(name, str) else owner or "(no step or type)",
                values={
                    "executions": row.executions,
                    "near_timeout": row.near,
                    "max_ms": row.max_ms,
                    "threshold_ms": limit,
                },
            )
        )
    return out
