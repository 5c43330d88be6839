"""An external call that never retries, in a flow that never handles failure, is fragile."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-retry-none-unhandled",
    title="Retry policy none on an external call without error handling",
    answers=("reliable-service",),
    severity="high",
    rationale=(
        "A connector or HTTP action with retry policy None fails on the first transient "
        "fault (a 429, a 503, a timeout). With no failure path either, such a job has "
        "neither a retry nor an error path: one blip loses the work silently."
    ),
    remediation=(
        "Use the default or an exponential retry policy on external calls; if the call must "
        "not be repeated, add a failure path that records and reports the failure."
    ),
    learn_url="https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling#retry-policies",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with an external call: fail when some call has retry policy none
    and the flow has no catch path."""
    flows = evidence.flows
    actions = evidence.actions
    external = actions[actions["is_external_call"]]
    none = external[
        external["retry_policy_type"].astype("str").str.lower().eq("none").fillna(False)
    ]
    callers = external.loc[:, ["environment_id", "flow_id"]].drop_duplicates()
    chosen = flows[flows["enabled"]].merge(callers, on=["environment_id", "flow_id"])
    none_of = per_flow(none)
    out = []
    for row in rows(chosen):
        mine = none_of(row.environment_id, row.flow_id)
        failing = row.retry_none_external > 0 and row.catch_paths == 0
        if failing:
            message = (
                f"{row.retry_none_external} external call(s) with retry policy none "
                f"({', '.join(mine['action_name'].astype(str).head(5))}) and no failure path"
            )
        elif row.retry_none_external > 0:
            message = (
                f"{row.retry_none_external} external call(s) with retry policy none, "
                f"covered by {row.catch_paths} failure path(s)"
            )
        else:
            message = "every external call retries"
        out.append(
            make(
                META,
                "fail" if failing else "pass",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "retry_none_external": row.retry_none_external,
                    "catch_paths": row.catch_paths,
                },
                evidence=evidence_rows(mine, ["action_name", "type", "connector", "operation"]),
            )
        )
    return out
