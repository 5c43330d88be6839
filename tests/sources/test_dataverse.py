"""Dataverse rows: annotations dropped, lookups renamed, the step inventory flattened."""

from __future__ import annotations

from auditor.sources.dataverse import flowrun_row, plain_row, step_row


def test_plain_rows_drop_annotations_and_rename_lookups() -> None:
    row = plain_row(
        {
            "@odata.etag": 'W/"1"',
            "mode": 0,
            "mode@OData.Community.Display.V1.FormattedValue": "Synchronous",
            "_owningextensionid_value": "step-1",
        }
    )
    assert row == {"mode": 0, "owningextensionid": "step-1"}


def test_flowrun_keeps_the_workflow_lookup_apart() -> None:
    row = flowrun_row({"_workflow_value": "w-ref", "workflowid": "w-text", "name": "run"})
    assert (row["workflow_ref"], row["workflowid"]) == ("w-ref", "w-text")


def test_step_inventory_is_flattened_and_survives_odd_expansions() -> None:
    row = step_row(
        {
            "sdkmessageprocessingstepid": "s-1",
            "name": "Plugins.Account: Update of account",
            "stage": 40,
            "filteringattributes": None,
            "_plugintypeid_value": "t-1",
            "sdkmessageid": {"name": "Update"},
            "sdkmessagefilterid": {"primaryobjecttypecode": "account"},
            "plugintypeid": {
                "typename": "Plugins.Account",
                "pluginassemblyid": {"name": "Plugins", "version": "1.0.0.0", "isolationmode": 2},
            },
        }
    )
    assert row["stepid"] == "s-1"
    assert (row["message_name"], row["primary_entity"]) == ("Update", "account")
    assert (row["assembly_name"], row["isolationmode"]) == ("Plugins", 2)
    odd = step_row({"sdkmessageprocessingstepid": "s-2", "sdkmessageid": [], "plugintypeid": "x"})
    assert odd["message_name"] is None
    assert odd["assembly_name"] is None
