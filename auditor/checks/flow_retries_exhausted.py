"""Actions that use up their retries, and throttling, show a dependency that is not coping."""

from __future__ import annotations

from auditor.analysis.definition_values import display_name
from auditor.checks.base import (
    CheckMeta,
    Finding,
    Limits,
    Threshold,
    evidence_rows,
    make,
    per_flow,
    rows,
)
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-retries-exhausted",
    title="Retries exhausted or throttling",
    severity="high",
    rationale=(
        "Retries recover transient faults; an action that fails after all its retries again "
        "and again meets a fault that is not transient, or a service that throttles it "
        "(429) for longer than the retry policy waits."
    ),
    remediation=(
        "Find the failing dependency from the codes shown; for 429, spread the load (lower "
        "concurrency, batch, schedule off-peak) or raise the limits; give the action an "
        "exponential retry policy and a failure path."
    ),
    learn_url="https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling#retry-policies",
    needs=("flow_runs", "flow_run_actions"),
    thresholds=(
        Threshold(
            "exhausted_retry_runs",
            5,
            "sampled runs in which one action exhausted its retries",
            "runs",
        ),
    ),
    resource_kind="action",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Fail each action that exhausted its retries often enough; pass each other flow whose
    actions were read. Throttling and 5xx counts are in the values of both."""
    limit = int(limits["exhausted_retry_runs"])
    retries = evidence.action_results["retries"].merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], how="left"
    )
    failing = retries[retries["exhausted"] >= limit]
    out = []
    for row in rows(failing):
        out.append(
            make(
                META,
                "fail",
                f"action '{display_name(row.action_name)}' exhausted its retries in "
                f"{row.exhausted} of "
                f"{row.executions} sampled runs ({row.retries} retries; {row.throttled} "
                f"throttled, {row.server_errors} server errors, {row.timeouts} timeouts)",
                environment_id=row.environment_id,
                resource_id=f"{row.flow_id}/{row.action_name}",
                resource_name=f"{row.display_name} / {display_name(row.action_name)}",
                values={
                    "flow_id": row.flow_id,
                    "action": row.action_name,
                    "executions": row.executions,
                    "retried": row.retried,
                    "recovered": row.recovered,
                    "exhausted": row.exhausted,
                    "throttled": row.throttled,
                    "server_errors": row.server_errors,
                    "timeouts": row.timeouts,
                },
            )
        )
    flagged = set(zip(failing["environment_id"], failing["flow_id"], strict=True))
    totals = retries.groupby(["environment_id", "flow_id", "display_name"], dropna=False)[
        ["executions", "retried", "recovered", "exhausted", "throttled"]
    ].sum()
    # Each flow's retried actions, most retried first: filtered and sorted once, not per flow.
    retried = retries[retries["retried"] > 0].sort_values("retried", ascending=False, kind="stable")
    retries_of = per_flow(retried)
    for row in rows(totals.reset_index()):
        env, flow_id, name = row.environment_id, row.flow_id, row.display_name
        if (env, flow_id) in flagged:
            continue
        top = retries_of(env, flow_id)
        out.append(
            make(
                META,
                "pass",
                f"{row.retried} retried action executions, {row.recovered} recovered, "
                f"{row.exhausted} exhausted, {row.throttled} throttled",
                environment_id=env,
                resource_kind="flow",
                resource_id=flow_id,
                resource_name=name if isinstance(name, str) else flow_id,
                values={
                    "executions": row.executions,
                    "retried": row.retried,
                    "recovered": row.recovered,
                    "exhausted": row.exhausted,
                    "throttled": row.throttled,
                },
                evidence=evidence_rows(
                    top, ["action_name", "retried", "exhausted", "throttled"], 5
                ),
            )
        )
    return out
