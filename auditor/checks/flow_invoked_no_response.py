"""Flows called by an app, an HTTP client or a parent flow must answer on every path."""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-invoked-no-response",
    title="Invoked flow with a path that sends no response",
    answers=("return-results",),
    severity="high",
    rationale=(
        "A flow started by Power Apps, an HTTP request or a parent flow is waited on. If it "
        "has no Response action, or its failure path sends none (and does not end the run "
        "Failed), the caller waits until its timeout and learns nothing about the outcome."
    ),
    remediation=(
        "End every path with 'Respond to a PowerApp or flow' or a Response action; on the "
        "failure path (a scope run after Failed / TimedOut) respond with the error, or "
        "Terminate with status Failed and a message."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
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


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled invoked flow: it needs a Response and a catch path that reports."""
    flows = evidence.flows
    callers = _enabled_callers(evidence)
    key = zip(flows["environment_id"], flows["workflowid"].astype("str").str.lower(), strict=True)
    called_by = pd.Series([int(callers.get(k, 0)) for k in key], index=flows.index, dtype="int64")
    flows = flows.assign(called_by=called_by)
    invoked = flows["invoked_by_trigger"] | (flows["called_by"] > 0)
    chosen = flows[flows["enabled"] & invoked & flows["parsed"]]
    paths = evidence.catch_paths
    paths_of = per_flow(paths)
    out = []
    for row in rows(chosen):
        how = "its trigger" if row.invoked_by_trigger else f"{row.called_by} parent flow(s)"
        problems = []
        if row.response_actions == 0:
            problems.append("has no Response action")
        if row.reporting_catch_paths == 0:
            problems.append(
                "has no failure path that responds or ends the run Failed"
                if row.catch_paths == 0
                else "has failure paths, none of which responds or ends the run Failed"
            )
        mine = paths_of(row.environment_id, row.flow_id)
        out.append(
            make(
                META,
                "fail" if problems else "pass",
                f"invoked by {how}; "
                + (" and ".join(problems) if problems else "responds on success and failure"),
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "trigger_type": row.trigger_type,
                    "trigger_kind": row.trigger_kind,
                    "called_by": row.called_by,
                    "response_actions": row.response_actions,
                    "catch_paths": row.catch_paths,
                    "reporting_catch_paths": row.reporting_catch_paths,
                },
                evidence=evidence_rows(
                    mine, ["catch_action", "scope_path", "reports_failure", "member_names"]
                ),
            )
        )
    return out
