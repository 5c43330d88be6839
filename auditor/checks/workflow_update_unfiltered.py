"""Classic workflows that start on every update of their table.

A background (asynchronous) classic workflow triggered by "Record fields change" creates a
system job for each update that touches one of its listed columns. An empty list, or a list
holding a column that changes on every save (`modifiedon`, `modifiedby`, `versionnumber`,
...), makes it start on every update, the classic-workflow form of an Update step without
filtering attributes. The trigger columns are read from solution files (`auditor lint`:
`<TriggerOnUpdateAttributeList>` in customizations.xml); tenant scans do not read classic
workflows yet, so there this check has nothing to judge.
https://learn.microsoft.com/power-automate/workflow-processes
"""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="workflow-update-unfiltered",
    title="Classic workflow starts on every update",
    severity="medium",
    rationale=(
        "A classic workflow whose update trigger lists no column, or a column that changes on "
        "every save, starts a system job for every update of its table; most of them find "
        "nothing to do and all of them load the asynchronous service."
    ),
    remediation=(
        "In the workflow's 'Record fields change' trigger, select only the columns whose "
        "change matters, never modifiedon/modifiedby; or replace the workflow with a cloud "
        "flow that has filtering attributes."
    ),
    learn_url="https://learn.microsoft.com/power-automate/workflow-processes",
    needs=("workflows",),
    resource_kind="workflow",
)

MODES = {0: "background", 1: "real-time"}
# Columns Dataverse sets on every update: listing one triggers the workflow on every save.
EVERY_SAVE = frozenset(
    {"modifiedon", "modifiedby", "modifiedonbehalfby", "versionnumber", "timezoneruleversionnumber"}
)


def _columns(listed: object) -> list[str]:
    if not isinstance(listed, str):
        return []
    return [c.strip().lower() for c in listed.split(",") if c.strip()]


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each classic workflow with an update trigger: fail when it has no column or lists one
    that changes on every save, pass when it lists only other columns."""
    workflows = evidence.frames.workflows
    classic = workflows[
        workflows["category"].eq(0).fillna(False)
        & workflows["triggeronupdateattributelist"].notna()
    ]
    out = []
    for row in rows(classic):
        columns = _columns(row.triggeronupdateattributelist)
        every_save = sorted(set(columns) & EVERY_SAVE)
        table = row.primaryentity if not pd.isna(row.primaryentity) else "its table"
        if not columns:
            status, message = "fail", f"the update trigger on {table} lists no column"
        elif every_save:
            status = "fail"
            message = f"the update trigger on {table} lists {', '.join(every_save)}"
            message += ", which every save changes"
        else:
            status, message = "pass", f"the update trigger on {table} lists {', '.join(columns)}"
        if status == "fail":
            message += ": every update starts the workflow"
        out.append(
            make(
                META,
                status,
                message,
                environment_id=row.environment_id,
                resource_id=row.workflowid,
                resource_name=row.name,
                values={
                    "table": row.primaryentity,
                    "columns": len(columns),
                    "mode": MODES.get(row.mode) if not pd.isna(row.mode) else None,
                },
            )
        )
    return out
