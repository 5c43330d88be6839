"""An external call that never retries, and whose failure nothing reacts to, is fragile."""

from __future__ import annotations

from auditor.analysis.flows import retry_none_unreacted
from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-retry-none-unhandled",
    title="Retry policy none on an external call without error handling",
    severity="high",
    rationale=(
        "A connector, HTTP or child-flow action with retry policy None fails on the first "
        "transient fault (a 429, a 503, a timeout). When nothing reacts to that failure (no "
        "failure branch or tolerating run-after on the call or on a scope holding it), one "
        "blip loses the work."
    ),
    remediation=(
        "Use the default or an exponential retry policy on external calls; if the call must "
        "not be repeated, add a failure path that records and reports the failure."
    ),
    learn_url="https://learn.microsoft.com/azure/logic-apps/error-exception-handling#retry-policies",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with an external call (child-flow calls included: they run over HTTP
    and take a retry policy): fail when a call with retry policy none is unreacted."""
    flows = evidence.flows
    chosen = flows[flows["enabled"] & flows["parsed"] & (flows["external_calls"] > 0)]
    actions = evidence.actions
    policy = actions["retry_policy_type"].astype("str").str.lower().eq("none").fillna(False)
    none_of = per_flow(actions[actions["is_external_call"].astype(bool) & policy])
    unreacted_of = per_flow(retry_none_unreacted(actions))
    out = []
    for row in rows(chosen):
        failing = row.retry_none_unreacted > 0
        mine = (unreacted_of if failing else none_of)(row.environment_id, row.flow_id)
        names = ", ".join(f"'{n}'" for n in mine["display_name"].astype(str).head(5))
        if failing:
            message = (
                f"{row.retry_none_unreacted} external call(s) with retry policy none whose "
                f"failure nothing handles ({names})"
            )
        elif row.retry_none_external > 0:
            message = (
                f"{row.retry_none_external} external call(s) with retry policy none ({names}), "
                "each with a failure branch or tolerating run-after"
            )
        else:
            message = f"all {row.external_calls} external call(s) keep a retry policy"
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
                    "retry_none_unreacted": row.retry_none_unreacted,
                },
                evidence=evidence_rows(
                    mine, ["action_name", "display_name", "type", "connector", "operation"]
                ),
            )
        )
    return out
