"""Plug-in Update steps without filtering attributes run on every update of their table."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, fmt, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="plugin-update-unfiltered",
    title="Plug-in Update step without filtering attributes",
    answers=("trigger-conditions",),
    severity="high",
    rationale=(
        "An Update step with no filtering attributes runs on every update of its table, "
        "whatever column changed: most executions do nothing useful and all of them cost time "
        "in the user's transaction or the async queue."
    ),
    remediation=(
        "Register the step with the columns its logic reads as filtering attributes "
        "(Plug-in Registration Tool > Update Step > Filtering Attributes)."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/include-filtering-attributes-plugin-registration",
    needs=("sdkmessageprocessingsteps",),
    resource_kind="step",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Fail each enabled custom Update step without filtering attributes, busiest first;
    pass the other enabled custom Update steps."""
    steps = evidence.frames.plugin_steps
    update = steps[
        steps["message_name"].astype("str").str.strip().str.lower().eq("update").fillna(False)
        & steps["statecode"].eq(0).fillna(False)
        & steps["customizationlevel"].eq(1).fillna(False)
    ]
    unfiltered = evidence.unfiltered_steps
    failing = set(zip(unfiltered["environment_id"], unfiltered["stepid"], strict=True))
    out = []
    for row in rows(unfiltered):
        # Executions are known where trace logs were read (a scan), not from files (lint).
        executed = not evidence.gaps(row.environment_id, ("plugintracelogs",))
        out.append(
            make(
                META,
                "fail",
                f"Update step on {row.primary_entity} has no filtering attributes; "
                + (
                    f"it ran {fmt(row.executions)} times in the window (p95 {fmt(row.p95_ms)} ms)"
                    if executed
                    else "every update of the table runs it"
                ),
                environment_id=row.environment_id,
                resource_id=row.stepid,
                resource_name=row.name,
                values={
                    "executions": row.executions,
                    "failures": row.failures,
                    "p95_ms": row.p95_ms,
                    "mode": row.mode,
                    "stage": row.stage,
                    "table": row.primary_entity,
                },
            )
        )
    for row in rows(update):
        if (row.environment_id, row.stepid) in failing:
            continue
        out.append(
            make(
                META,
                "pass",
                f"Update step on {row.primary_entity} filters on {row.filteringattributes}",
                environment_id=row.environment_id,
                resource_id=row.stepid,
                resource_name=row.name,
                values={"filtering_attributes": row.filteringattributes},
            )
        )
    return out
