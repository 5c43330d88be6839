"""A flow whose external calls can fail needs a path that reports the failure."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-no-error-handling",
    title="No error-handling path",
    severity="low",
    rationale=(
        "Without a path that runs when a step fails or times out and reports it (Terminate "
        "Failed, an error Response, a notification or a log record), a failed call simply "
        "stops the run: nothing is compensated, logged or reported beyond the run history. "
        "An empty catch, a branch that only sets variables nobody reads, or a run-after that "
        "tolerates the failure is not handling."
    ),
    remediation=(
        "Wrap the work in a Try scope and add a Catch scope that runs after Failed and "
        "TimedOut, logs or notifies the error and ends the run with Terminate Failed."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with an external call (connector, HTTP, child flow): does a failure
    branch report the failure? (`analysis.failure_paths` has the rules and sources.)"""
    flows = evidence.flows
    chosen = flows[flows["enabled"] & flows["parsed"] & (flows["external_calls"] > 0)]
    branches_of = per_flow(evidence.catch_paths)
    out = []
    for row in rows(chosen):
        mine = branches_of(row.environment_id, row.flow_id)
        handled = row.reporting_catch_paths > 0
        if handled:
            message = f"{row.reporting_catch_paths} failure path(s) report the failure"
        elif mine.empty:
            message = (
                f"none of its {row.action_count} actions runs only when a step fails or times "
                "out: a failed call stops the run"
            )
        else:
            what = {
                "data": "use it as data",
                "catch": "report nothing or success",
                "empty": "are empty",
            }
            kinds = [str(k) for k in mine["kind"]]
            parts = [f"{kinds.count(k)} {what.get(k, k)}" for k in sorted(set(kinds))]
            message = (
                f"its {len(mine)} failure branch(es) do not report the failure "
                f"({', '.join(parts)}): no Terminate Failed, error Response or notification"
            )
        out.append(
            make(
                META,
                "pass" if handled else "fail",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "reporting_paths": row.reporting_catch_paths,
                    "failure_branches": row.failure_branches,
                    "external_calls": row.external_calls,
                },
                evidence=evidence_rows(
                    mine, ["catch_action", "guarded_action", "kind", "how", "member_names"]
                ),
            )
        )
    return out
