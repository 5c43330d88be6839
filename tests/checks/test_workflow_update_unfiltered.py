"""workflow-update-unfiltered: a classic workflow's update trigger must list columns that
do not change on every save."""

from __future__ import annotations

from typing import Any

from tests.checks.builders import ENV, frames, run, statuses

CHECK = "workflow-update-unfiltered"


def classic(workflowid: str, columns: str | None, *, category: int = 0) -> dict[str, Any]:
    """A `workflows` row of a background classic workflow on account."""
    return {
        "environment_id": ENV,
        "workflowid": workflowid,
        "name": f"Workflow {workflowid}",
        "category": category,
        "type": 1,
        "statecode": 1,
        "primaryentity": "account",
        "mode": 0,
        "triggeronupdateattributelist": columns,
    }


def test_no_column_or_an_every_save_column_fails_and_a_real_list_passes() -> None:
    found = run(
        CHECK,
        frames(
            workflows=[
                classic("empty", ""),
                classic("modified", "name, ModifiedOn"),
                classic("listed", "name,creditlimit"),
            ]
        ),
    )
    assert statuses(found) == {"empty": "fail", "modified": "fail", "listed": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert "lists no column" in by_id["empty"].message
    assert "modifiedon" in by_id["modified"].message
    assert by_id["listed"].values["columns"] == 2
    assert by_id["listed"].values["mode"] == "background"


def test_workflows_without_an_update_trigger_and_cloud_flows_are_not_judged() -> None:
    found = run(
        CHECK,
        frames(workflows=[classic("create-only", None), classic("flow", "", category=5)]),
    )
    assert found == []
