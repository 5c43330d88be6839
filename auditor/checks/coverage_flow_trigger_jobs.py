"""Trigger-execution counts hold only if flow-trigger system jobs can be tied to flows."""

from __future__ import annotations

from auditor.analysis.actions import TRIGGER_LINK, TRIGGER_LINK_INFERRED
from auditor.checks.base import MAX_EVIDENCE_ROWS, CheckMeta, Finding, Limits, evidence_rows, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="coverage-flow-trigger-jobs",
    title="Flow-trigger system jobs not linked to flows",
    severity="medium",
    rationale=(
        "Dataverse runs flows triggered by 'When a row is added, modified or deleted' through "
        "CallbackRegistration Expander system jobs (operationtype 79). Trigger executions per "
        "flow, the evidence of runs a trigger condition could have kept from starting, are "
        "counted from those jobs; the column tying a job to its flow (workflowactivationid = "
        "the flow's workflowid) is inferred, as no Microsoft page names it. When no job links "
        "to a known flow, every count reads zero without being true."
    ),
    remediation=(
        "Collect the flows and their definitions (the workflows query, and the flow API with "
        "apis.flow_enabled = true) so the jobs' flows are known. If jobs still link to none, "
        "compare a few CallbackRegistration Expander jobs with their flows (admin center > "
        "Settings > System Jobs) and report which column names the flow."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/bypass-power-automate-flows",
    needs=("asyncoperations",),
    resource_kind="environment",
    coverage=True,
)

# The job rows a finding shows when jobs link to no flow.
_JOB_COLUMNS = ["asyncoperationid", "name", "workflowactivationid", "statuscode", "createdon"]
_INFERRED = f" (link inferred: {TRIGGER_LINK})" if TRIGGER_LINK_INFERRED else ""


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: how many type-79 jobs in the window link to a known flow, by the rule
    `analysis.actions` counts trigger executions with. Jobs with none of them linked leave
    the counts unknown: not-assessed, never a pass."""
    expanders = evidence.expanders
    unlinked_rows = evidence.unlinked_expanders(MAX_EVIDENCE_ROWS)
    flows = evidence.definitions
    out = []
    for env in evidence.environments["environment_id"]:
        mine = expanders[expanders["environment_id"] == env]
        total = int(mine["jobs"].sum())
        linked = int(mine.loc[mine["linked"].to_numpy(dtype=bool), "jobs"].sum())
        known = int(flows.loc[flows["environment_id"] == env, "workflowid"].notna().sum())
        if not total:
            status, message = "pass", "no flow-trigger jobs in the window"
        elif linked:
            status = "pass"
            message = f"{linked} of {total} flow-trigger jobs linked to flows{_INFERRED}"
        else:
            status = "not-assessed"
            message = (
                f"{total} flow-trigger jobs (operationtype 79) in the window, and none could be "
                f"linked to any of the {known} known flows{_INFERRED}: trigger-execution "
                "counts are unknown"
            )
        unlinked = unlinked_rows[unlinked_rows["environment_id"] == env]
        out.append(
            make(
                META,
                status,
                message,
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={
                    "trigger_jobs": total,
                    "linked": linked,
                    "known_flows": known,
                    "link_inferred": TRIGGER_LINK_INFERRED,
                },
                evidence=evidence_rows(unlinked, _JOB_COLUMNS),
            )
        )
    return out
