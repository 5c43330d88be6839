"""Event triggers whose events the flow filters with its first Condition, not the trigger."""

from __future__ import annotations

from typing import Any

from auditor.analysis.triggers import gates
from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-event-trigger-no-condition",
    title="Event trigger filtered inside the flow instead of by the trigger",
    severity="medium",
    rationale=(
        "A connector trigger (new email, item created or modified, row changed...) whose "
        "flow starts with a Condition on trigger data that ends the run on one branch starts "
        "a run for every event only to drop some of them: those runs do nothing, count "
        "against the flow's request limits and hide the useful runs. A trigger condition "
        "evaluates the same expression before a run starts."
    ),
    remediation=(
        "Move the Condition's expression to a trigger condition (trigger Settings > Trigger "
        "conditions), or narrow the trigger's own parameters (folder, subject filter, Select "
        "columns, Filter rows), and remove the Condition."
    ),
    learn_url="https://learn.microsoft.com/power-automate/customize-triggers",
    needs=("workflows", "flows"),
)

_PARAMETER_PREFIX = "subscriptionRequest/"


def _name(row: Any) -> str:
    """The trigger as the designer shows it, else its type."""
    for value in (row.display_name_trigger, row.trigger_name, row.type):
        if isinstance(value, str) and value:
            return value
    return "the trigger"


def _narrowed_by(row: Any) -> list[str]:
    """The trigger's own filters, for a pass message."""
    how = []
    if isinstance(row.filter_parameters, str) and row.filter_parameters:
        names = [
            p.strip().removeprefix(_PARAMETER_PREFIX) for p in row.filter_parameters.split(",")
        ]
        how.append(f"its parameters {', '.join(n for n in names if n)}")
    if row.has_conditions:
        how.append(f"{row.condition_count} trigger condition(s)")
    return how


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with an event trigger (R-EVENT, the Dataverse trigger included):
    fail when its first action is a gate on trigger data."""
    triggers = evidence.triggers
    chosen = triggers[triggers["is_event"].astype(bool)]
    chosen = chosen.merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], suffixes=("_trigger", "")
    )
    chosen = chosen[chosen["enabled"]]
    found = gates(chosen, evidence.actions)
    gate_of = per_flow(found)
    out = []
    for row in rows(chosen):
        trigger = _name(row)
        values: dict[str, Any] = {
            "trigger": trigger,
            "trigger_type": row.type,
            "connector": row.connector,
            "operation": row.operation,
            "filter_parameters": row.filter_parameters,
            "conditions": row.condition_count,
        }
        gate = gate_of(row.environment_id, row.flow_id)
        if not gate.empty:
            first = gate.iloc[0]
            values |= {
                "gate": first["action_name"],
                "gate_branch": first["branch"],
                "gate_ends_with": first["ends_with"],
                "expression": first["expression"],
                "trigger_condition": first["trigger_condition"],
            }
            status = "fail"
            message = (
                f"'{first['display_name']}' checks trigger data and ends the run on one "
                f"branch: move its expression to a trigger condition of '{trigger}'"
            )
        else:
            status = "pass"
            how = _narrowed_by(row)
            if how:
                message = (
                    f"'{trigger}' is narrowed by {' and '.join(how)}; no first Condition on "
                    "trigger data ends runs"
                )
            else:
                message = (
                    f"'{trigger}' has no filter parameters or trigger conditions and no first "
                    "Condition on trigger data ends runs: the flow acts on every event it "
                    "receives"
                )
        out.append(
            make(
                META,
                status,
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values=values,
                evidence=evidence_rows(
                    gate, ["action_name", "display_name", "branch", "ends_with", "expression"]
                ),
            )
        )
    return out
