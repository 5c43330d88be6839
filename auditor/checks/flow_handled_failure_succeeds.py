"""A failure path that neither ends the run Failed nor responds reports failure as success."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-handled-failure-succeeds",
    title="Handled failure reported as success",
    answers=("return-results",),
    severity="high",
    rationale=(
        "When a catch path (actions run after Failed / TimedOut) handles an error and then "
        "ends normally, the run's status is Succeeded: run history, alerts and callers all "
        "see success although the work failed."
    ),
    remediation=(
        "End each catch path with Terminate (status Failed, with the error code and message), "
        "or a Response that returns the error to the caller."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with a catch path: fail when some path reports nothing."""
    flows = evidence.flows
    chosen = flows[flows["enabled"] & (flows["catch_paths"] > 0)]
    paths = evidence.catch_paths
    silent = paths[~paths["reports_failure"]]
    silent_of = per_flow(silent)
    out = []
    for row in rows(chosen):
        mine = silent_of(row.environment_id, row.flow_id)
        failing = row.silent_catch_paths > 0
        out.append(
            make(
                META,
                "fail" if failing else "pass",
                f"{row.silent_catch_paths} of {row.catch_paths} failure path(s) end without "
                "Terminate Failed or a Response: the run ends Succeeded"
                if failing
                else f"all {row.catch_paths} failure path(s) report the failure",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "catch_paths": row.catch_paths,
                    "silent_catch_paths": row.silent_catch_paths,
                },
                evidence=evidence_rows(mine, ["catch_action", "scope_path", "member_names"]),
            )
        )
    return out
