"""Flows called by an app, an HTTP client, a bot or a parent flow must return a result.

The answer this serves asks for "a well defined and documented status indicator": a caller
that waits must get an answer on every path that ends the run Succeeded, and never a success
for work that failed. A path that ends Failed (or Cancelled) is seen as a failure by the app
or parent flow. Without any Response, an HTTP caller gets 202 Accepted at once and no result
(https://learn.microsoft.com/azure/logic-apps/logic-apps-http-endpoint), an app, bot or
parent flow gets no outputs. The path rules are in `analysis.response_paths`.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.flow_graph import flow_rows
from auditor.analysis.response_paths import response_paths
from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-invoked-no-response",
    title="Invoked flow without a well-defined result on every path",
    severity="high",
    rationale=(
        "A flow started by Power Apps, an HTTP request, a bot or a parent flow returns its "
        "result to that caller. With no Response the caller learns nothing of the outcome "
        "(an HTTP caller gets 202 Accepted at once); a path that ends Succeeded without a "
        "Response leaves the caller waiting until it times out; a success answered after a "
        "failure hides the failure."
    ),
    remediation=(
        "Answer on every path with 'Respond to a PowerApp or flow' or a Response carrying a "
        "status field (and an identifier the caller can use); after a failure answer with "
        "the error (a 4xx/5xx status or status = failed), or end the run with Terminate "
        "Failed. For long work, answer 202 at once with an asynchronous response."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/asychronous-flow-pattern",
    needs=("workflows", "flows"),
)


def _enabled_callers(evidence: Evidence) -> pd.Series:
    """(environment, lower-case workflowid) -> enabled flows calling it as a child flow.

    A stopped parent calls nobody, so only enabled callers make a flow invoked (the
    ground truth's rule); `flows.called_by` counts every caller.
    """
    flows = evidence.flows
    enabled = flows.loc[flows["enabled"], ["environment_id", "flow_id"]]
    actions = evidence.actions
    calls = actions.loc[
        actions["child_flow_id"].notna(), ["environment_id", "flow_id", "child_flow_id"]
    ].merge(enabled, on=["environment_id", "flow_id"])
    counted: pd.Series = calls.drop_duplicates().groupby(["environment_id", "child_flow_id"]).size()
    return counted


def _caller(row: object, called_by: int) -> tuple[str, str]:
    """(who calls, what that caller gets when the flow has no Response)."""
    kind = str(getattr(row, "trigger_kind", "") or "").lower()
    if bool(getattr(row, "invoked_by_trigger", False)):
        if kind in ("", "http"):
            return "an HTTP request", "202 Accepted at once and no result"
        if kind in ("skills", "virtualagent"):
            return "a Copilot agent", "no outputs"
        return "Power Apps", "no outputs"
    return f"{called_by} parent flow(s)", "no outputs"


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled invoked flow whose definition was read."""
    flows = evidence.flows
    callers = _enabled_callers(evidence)
    key = zip(flows["environment_id"], flows["workflowid"].astype("str").str.lower(), strict=True)
    called_by = pd.Series([int(callers.get(k, 0)) for k in key], index=flows.index, dtype="int64")
    flows = flows.assign(called_by=called_by)
    invoked = flows["invoked_by_trigger"] | (flows["called_by"] > 0)
    chosen = flows[flows["enabled"] & invoked & flows["parsed"]]
    actions = evidence.actions
    grouped = flow_rows(actions[actions["flow_id"].isin(chosen["flow_id"])])
    out = []
    for row in rows(chosen):
        found = response_paths(grouped.get((row.environment_id, row.flow_id), []))
        who, without = _caller(row, int(row.called_by))
        problems = []
        if found.responses == 0:
            problems.append(f"has no Response: the caller gets {without}")
        else:
            if found.silent_paths:
                problems.append(
                    "ends Succeeded without a Response at " + ", ".join(found.silent_paths[:3])
                )
            if found.silent_catches:
                problems.append(
                    "a catch ends the run Succeeded without a Response: "
                    + ", ".join(found.silent_catches[:3])
                )
        if found.success_on_failure:
            problems.append(
                "answers success after a failure (" + ", ".join(found.success_on_failure[:3]) + ")"
            )
        out.append(
            make(
                META,
                "fail" if problems else "pass",
                f"invoked by {who}; "
                + (
                    "; ".join(problems)
                    if problems
                    else "answers on every path, and a failure ends Failed or is answered"
                ),
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "trigger_type": row.trigger_type,
                    "trigger_kind": row.trigger_kind,
                    "called_by": row.called_by,
                    "response_actions": found.responses,
                    "paths_without_response": len(found.silent_paths) + len(found.silent_catches),
                    "success_on_failure": len(found.success_on_failure),
                },
            )
        )
    return out
