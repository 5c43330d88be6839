"""Dataverse update triggers without any filter start a run on every update of the table."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-update-trigger-unfiltered",
    title="Dataverse update trigger without filtering attributes, filter or condition",
    severity="high",
    rationale=(
        "A 'When a row is added, modified or deleted' trigger that fires on Update with no "
        "Select columns, no Filter rows expression and no trigger condition starts a run on "
        "every change to every row of its table, most of which the flow then ignores."
    ),
    remediation=(
        "Set the trigger's Select columns (filtering attributes) to the columns the flow "
        "needs, add a Filter rows expression, or a trigger condition."
    ),
    learn_url="https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with a Dataverse trigger on a message that includes Update (a
    message that cannot be read is not-assessed)."""
    triggers = evidence.triggers
    unreadable = triggers["is_dataverse"] & triggers["dataverse_message"].isna()
    chosen = triggers[triggers["is_dataverse"] & (triggers["fires_on_update"] | unreadable)]
    chosen = chosen.rename(columns={"display_name": "trigger_display"}).merge(
        evidence.flow_names(), on=["environment_id", "flow_id"]
    )
    chosen = chosen[chosen["enabled"]]
    out = []
    for row in rows(chosen[chosen["dataverse_message"].isna()]):
        # A message we cannot read may be Update: it is not audited, so it is not a pass.
        out.append(
            make(
                META,
                "not-assessed",
                "the Dataverse trigger's message (subscriptionRequest/message) is missing or "
                "not one of 1-7: whether it fires on updates is unknown",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
            )
        )
    chosen = chosen[chosen["dataverse_message"].notna()]
    for row in rows(chosen):
        values = {
            "table": row.dataverse_entity,
            "message": row.dataverse_message,
            "filtering_attributes": row.filtering_attributes,
            "filter_expression": row.filter_expression,
            "conditions": row.condition_count,
        }
        filtered = row.has_filter or row.has_conditions
        if filtered:
            how = [
                name
                for name, present in (
                    ("filtering attributes", isinstance(row.filtering_attributes, str)),
                    ("a filter expression", isinstance(row.filter_expression, str)),
                    ("trigger conditions", row.has_conditions),
                )
                if present
            ]
            message = f"update trigger on {row.dataverse_entity} has {', '.join(how)}"
        else:
            message = (
                f"update trigger on {row.dataverse_entity} has no filtering attributes, filter "
                "expression or trigger condition: every update of the table starts a run"
            )
        out.append(
            make(
                META,
                "pass" if filtered else "fail",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values=values,
            )
        )
    return out
