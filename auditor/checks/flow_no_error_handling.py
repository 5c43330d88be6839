"""A flow with no action run after a failure has nothing that reacts when a step fails."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-no-error-handling",
    title="No error-handling path",
    answers=("reliable-service",),
    severity="low",
    rationale=(
        "Without an action configured to run after Failed or TimedOut, a failed step simply "
        "stops the run: nothing is compensated, logged or reported beyond the run history."
    ),
    remediation=(
        "Wrap the work in a Try scope and add a Catch scope that runs after Failed and "
        "TimedOut, logs the error and ends the run Failed."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with actions: does any action run after a failure?"""
    flows = evidence.flows
    chosen = flows[flows["enabled"] & flows["parsed"] & (flows["action_count"] > 0)]
    out = []
    for row in rows(chosen):
        handled = row.catch_paths > 0
        out.append(
            make(
                META,
                "pass" if handled else "fail",
                f"{row.catch_paths} action(s) run after a failure"
                if handled
                else f"none of its {row.action_count} actions runs after Failed or TimedOut",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={"catch_paths": row.catch_paths, "actions": row.action_count},
            )
        )
    return out
