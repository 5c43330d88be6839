"""The same run of actions pasted into several flows should be one child flow."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, evidence_rows, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-repeated-block",
    title="Repeated action block across flows",
    answers=("decomposed-steps",),
    severity="medium",
    rationale=(
        "An identical sequence of actions in several flows is one step implemented several "
        "times: a fix or a retry policy must be changed everywhere, and the copies drift."
    ),
    remediation=(
        "Move the repeated sequence into a child flow (in a solution) and call it with Run a "
        "Child Flow from each flow."
    ),
    learn_url="https://learn.microsoft.com/power-automate/create-child-flows",
    needs=("workflows", "flows"),
    thresholds=(
        Threshold(
            "repeated_sequence_length", 5, "consecutive actions that make a block", "actions"
        ),
        Threshold("repeated_sequence_flows", 3, "enabled flows holding the same block", "flows"),
    ),
    resource_kind="action-block",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: each block signature found in enough enabled flows fails; an
    environment without one passes. Blocks are compared by action type and operation."""
    length = int(limits["repeated_sequence_length"])
    min_flows = int(limits["repeated_sequence_flows"])
    names = evidence.flow_names()
    enabled = names[names["enabled"]]
    blocks = evidence.blocks(length).merge(enabled, on=["environment_id", "flow_id"])
    out = []
    repeated_envs: set[str] = set()
    if not blocks.empty:
        spread = blocks.groupby(["environment_id", "signature"])["flow_id"].nunique().reset_index()
        for found in rows(spread[spread["flow_id"] >= min_flows]):
            env, signature, flows = found.environment_id, found.signature, found.flow_id
            members = blocks[(blocks["environment_id"] == env) & (blocks["signature"] == signature)]
            members = members.drop_duplicates("flow_id").sort_values("display_name")
            repeated_envs.add(str(env))
            first = members.iloc[0]
            out.append(
                make(
                    META,
                    "fail",
                    f"the same {length} consecutive actions (from {first['start_action']}) appear "
                    f"in {flows} flows: {', '.join(members['display_name'].astype(str).head(5))}"
                    + (" ..." if flows > 5 else ""),
                    environment_id=env,
                    resource_id=str(signature),
                    resource_name=f"block starting {first['start_action']}",
                    values={"flows": flows, "length": length},
                    evidence=evidence_rows(
                        members, ["flow_id", "display_name", "scope_path", "start_action"]
                    ),
                )
            )
    for env in evidence.environments["environment_id"]:
        if env in repeated_envs:
            continue
        audited = int((enabled["environment_id"] == env).sum())
        out.append(
            make(
                META,
                "pass",
                f"no block of {length} actions repeats in {min_flows} or more of {audited} "
                "enabled flows",
                environment_id=env,
                resource_kind="environment",
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"enabled_flows": audited},
            )
        )
    return out
