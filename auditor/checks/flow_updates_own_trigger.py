"""Flows that update the table or list whose updates trigger them start themselves again."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.analysis.triggers import self_updates, update_trigger_kind
from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-updates-own-trigger",
    title="Flow updates the table or list that triggers it",
    severity="high",
    rationale=(
        "A flow triggered when a Dataverse row or a SharePoint item is modified, that then "
        "updates a row of the same table or an item of the same list, starts another run "
        "with each update: at best every change costs two runs, at worst the flow loops until "
        "the platform throttles it."
    ),
    remediation=(
        "Set the trigger's Select columns (filtering attributes) so that the columns the flow "
        "writes are not among them, or add a trigger condition that rejects the flow's own "
        "updates (e.g. on a status column it sets, or on the modifying user)."
    ),
    learn_url="https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger",
    needs=("workflows", "flows"),
)

_EVIDENCE = ["action_name", "display_name", "operation", "target", "written_columns"]


def _trigger_name(row: Any) -> str:
    for value in (row.display_name_trigger, row.trigger_name, row.operation):
        if isinstance(value, str) and value:
            return value
    return "the trigger"


def _what(kind: str, target: Any) -> str:
    """The table or list, for a message."""
    if kind == "dataverse":
        return f"{target} table" if isinstance(target, str) else "table"
    if not isinstance(target, str):
        return "list"
    site, _, name = target.partition("|")
    return f"list {name} of {site}"


def _guards(row: Any) -> list[str]:
    how = []
    if row.has_conditions:
        how.append(f"{row.condition_count} trigger condition(s)")
    if isinstance(row.filter_expression, str) and row.filter_expression:
        how.append(f"the filter rows expression {row.filter_expression!r}")
    return how


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow triggered by updates of a Dataverse table or a SharePoint list
    (R-SELF-TRIGGER): fail when an action updates that table or list and neither the
    trigger's filtering attributes nor a guard (trigger condition, filter rows) stop it."""
    triggers = evidence.triggers
    kinds = pd.Series(
        [update_trigger_kind(t) for t in rows(triggers)], index=triggers.index, dtype="object"
    )
    chosen = triggers.assign(update_kind=kinds)
    chosen = chosen[chosen["update_kind"].notna()]
    chosen = chosen.merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], suffixes=("_trigger", "")
    )
    chosen = chosen[chosen["enabled"]]
    updates_of = per_flow(self_updates(chosen, evidence.actions))
    out = []
    for row in rows(chosen):
        what = _what(str(row.update_kind), row.target)
        trigger = _trigger_name(row)
        updates = updates_of(row.environment_id, row.flow_id)
        same = updates[updates["same_target"].fillna(False).astype(bool)]
        unknown = updates[updates["same_target"].isna()]
        firing = same[same["fires_trigger"].astype(bool)]
        values: dict[str, Any] = {
            "trigger": trigger,
            "operation": row.operation,
            "target": row.target,
            "filtering_attributes": row.filtering_attributes,
            "filter_expression": row.filter_expression,
            "conditions": row.condition_count,
            "updates": len(same),
            "updates_firing": len(firing),
            "updates_unknown_target": len(unknown),
        }
        if row.update_kind == "dataverse" and not same.empty:
            # The trigger names the table by its logical name, the action by its entity set
            # name; the match between them is inferred (analysis.triggers).
            values["table_match"] = "inferred: entity set name as the logical name's plural"
        guards = _guards(row)
        shown = firing
        if not firing.empty or not unknown.empty:
            shown = firing if not firing.empty else unknown
            first = shown.iloc[0]
            more = f" (and {len(shown) - 1} more update(s))" if len(shown) > 1 else ""
            if firing.empty:
                claim = f"may update the {what} that triggers this flow"
            else:
                claim = f"updates the {what} that triggers this flow"
                values["watched_columns"] = first["watched_columns"]
            if guards:
                status = "pass"
                message = (
                    f"'{first['display_name']}'{more} {claim}, guarded by "
                    f"{' and '.join(guards)}, not evaluated"
                )
            elif not firing.empty:
                status = "fail"
                message = f"'{first['display_name']}'{more} {claim}: each update starts another run"
                if row.update_kind == "dataverse":
                    message += " (table matched by its plural entity set name: inferred)"
            else:
                status = "not-assessed"
                message = (
                    f"'{first['display_name']}'{more} {claim}: the trigger's or the action's "
                    "table or list is not named in a form the definition parser reads"
                )
        elif not same.empty:
            shown = same
            status = "pass"
            message = (
                f"'{same.iloc[0]['display_name']}' updates the {what} that triggers this flow, "
                f"only in columns outside the trigger's filtering attributes "
                f"({row.filtering_attributes})"
            )
        else:
            status = "pass"
            message = f"no action updates the {what} that triggers this flow ('{trigger}')"
        out.append(
            make(
                META,
                status,
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values=values,
                evidence=evidence_rows(shown, _EVIDENCE),
            )
        )
    return out
