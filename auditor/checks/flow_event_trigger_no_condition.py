"""Event triggers of other connectors without a trigger condition run on every event."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-event-trigger-no-condition",
    title="Event trigger without a trigger condition",
    answers=("trigger-conditions",),
    severity="medium",
    rationale=(
        "A connector trigger (new email, new file, item modified...) with no trigger "
        "condition starts a run for every event; runs that then decide to do nothing count "
        "against the flow's request limits and hide the useful runs."
    ),
    remediation=(
        "Add a trigger condition (trigger Settings > Trigger conditions) that admits only the "
        "events the flow acts on."
    ),
    learn_url="https://learn.microsoft.com/power-automate/triggers-introduction#add-a-trigger-condition",
    needs=("workflows", "flows"),
)

# Triggers that are not events: started by a caller or a schedule, or the Dataverse trigger
# (which `flow-update-trigger-unfiltered` judges with its own filters).
_NOT_EVENTS = frozenset({"request", "recurrence"})


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow whose trigger is neither Request, Recurrence nor Dataverse."""
    triggers = evidence.triggers
    kind = triggers["type"].astype("str").str.lower()
    chosen = triggers[
        triggers["type"].notna() & ~kind.isin(_NOT_EVENTS) & ~triggers["is_dataverse"]
    ]
    chosen = chosen.merge(evidence.flow_names(), on=["environment_id", "flow_id"])
    chosen = chosen[chosen["enabled"]]
    out = []
    for row in rows(chosen):
        what = row.operation if isinstance(row.operation, str) else row.type
        ok = bool(row.has_conditions)
        out.append(
            make(
                META,
                "pass" if ok else "fail",
                f"{what} trigger has {row.condition_count} trigger condition(s)"
                if ok
                else f"{what} trigger has no trigger condition: every event starts a run",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "trigger_type": row.type,
                    "connector": row.connector,
                    "operation": row.operation,
                    "conditions": row.condition_count,
                },
            )
        )
    return out
