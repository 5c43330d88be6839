"""flow-updates-own-trigger: a flow triggered by updates of a table or list that updates the
same table or list starts another run with each update (R-SELF-TRIGGER,
tests/corpus/README.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.checks.builders import (
    corpus_flow,
    dataverse_trigger,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-updates-own-trigger"
DV = "shared_commondataserviceforapps"
SP = "shared_sharepointonline"
SITE = "https://contoso.sharepoint.com/sites/Operations"
LIST = "5e1f3c7a-0d2b-4c8e-9f61-3a7b2c1d0e99"
CONDITION = [{"expression": "@not(equals(triggerOutputs()?['body/Status'], 'Done'))"}]


def action(api: str, operation: str, **parameters: Any) -> dict[str, Any]:
    """An OpenApiConnection action with its parameters."""
    return {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "apiId": f"/providers/Microsoft.PowerApps/apis/{api}",
                "operationId": operation,
            },
            "parameters": parameters,
        },
        "runAfter": {},
    }


def update_row(table: str = "accounts", operation: str = "UpdateRecord", **columns: Any) -> Any:
    """Dataverse 'Update a row' writing `columns` (item/<column>)."""
    items = {f"item/{k}": v for k, v in columns.items()}
    return action(
        DV, operation, entityName=table, recordId="@triggerOutputs()?['body/id']", **items
    )


def sharepoint_trigger(
    operation: str = "GetOnUpdatedItems", site: str = SITE, table: str = LIST
) -> dict[str, Any]:
    """SharePoint 'When an item is created or modified' (or the file variant)."""
    return {
        "type": "OpenApiConnection",
        "recurrence": {"frequency": "Minute", "interval": 5},
        "inputs": {
            "host": {
                "apiId": f"/providers/Microsoft.PowerApps/apis/{SP}",
                "operationId": operation,
            },
            "parameters": {"dataset": site, "table": table},
        },
    }


def patch_item(site: str = SITE, table: str = LIST, operation: str = "PatchItem") -> Any:
    """SharePoint 'Update item'."""
    return action(SP, operation, dataset=site, table=table, id="@triggerBody()?['ID']")


# Dataverse --------------------------------------------------------------------------------------


def test_updating_the_triggering_table_fails() -> None:
    """Every update the flow makes to an account starts another run."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("loop", {"Update_account": update_row(name="x")}, dataverse_trigger(3)),
                flow("other", {"Update_contact": update_row("contacts")}, dataverse_trigger(3)),
            ]
        ),
    )
    assert statuses(found) == {"loop": "fail", "other": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["loop"].message == (
        "'Update account' updates the account table that triggers this flow: each update "
        "starts another run (table matched by its plural entity set name: inferred)"
    )
    assert by_id["loop"].values["table_match"] == (
        "inferred: entity set name as the logical name's plural"
    )
    assert by_id["loop"].evidence[0]["action_name"] == "Update_account"
    assert by_id["loop"].values["updates_firing"] == 1
    assert by_id["other"].message == (
        "no action updates the account table that triggers this flow ('manual')"
    )


@pytest.mark.parametrize(
    ("logical", "entity_set"),
    [
        ("account", "accounts"),
        ("opportunity", "opportunities"),
        ("cr4f1_box", "cr4f1_boxes"),
        ("cr4f1_shipment", "cr4f1_shipments"),
    ],
)
def test_table_names_match_by_plural_rules(logical: str, entity_set: str) -> None:
    """The trigger names the logical name, the action the entity set name (s, es, y -> ies)."""
    trigger = dataverse_trigger(3, entityname=logical)
    found = run(CHECK, frames(flows=[flow("f", {"Update": update_row(entity_set)}, trigger)]))
    assert statuses(found) == {"f": "fail"}


@pytest.mark.parametrize("operation", ["UpdateRecord", "UpdateOnlyRecord"])
def test_every_update_operation_counts(operation: str) -> None:
    """Update a row, with or without upsert."""
    found = run(
        CHECK,
        frames(flows=[flow("f", {"U": update_row(operation=operation)}, dataverse_trigger(4))]),
    )
    assert statuses(found) == {"f": "fail"}


def test_filtering_attributes_left_out_by_the_update_pass() -> None:
    """The trigger watches `statuscode`; an update of `description` does not fire it."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow(
                    "apart",
                    {"Update": update_row(description="x")},
                    dataverse_trigger(3, filteringattributes="statuscode,name"),
                ),
                flow(
                    "overlap",
                    {"Update": update_row(description="x", Name="y")},
                    dataverse_trigger(3, filteringattributes="statuscode, name"),
                ),
                flow(
                    "lookup",
                    {"Update": update_row(**{"parentaccountid@odata.bind": "accounts(1)"})},
                    dataverse_trigger(3, filteringattributes="parentaccountid"),
                ),
            ]
        ),
    )
    assert statuses(found) == {"apart": "pass", "overlap": "fail", "lookup": "fail"}
    by_id = {f.resource_id: f for f in found}
    assert "only in columns outside the trigger's filtering attributes" in by_id["apart"].message
    assert by_id["overlap"].values["watched_columns"] == "name"


def test_upload_to_a_column_the_definition_does_not_name_may_fire() -> None:
    """A file or image upload names no item/ column: with filtering attributes it may fire."""
    upload = update_row(operation="UpdateEntityFileImageFieldContent")
    found = run(
        CHECK,
        frames(
            flows=[flow("f", {"Upload": upload}, dataverse_trigger(3, filteringattributes="x"))]
        ),
    )
    assert statuses(found) == {"f": "fail"}


def test_condition_or_filter_expression_guards_the_loop() -> None:
    """A trigger condition or Filter rows may stop the loop: taken as the owner's guard."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow(
                    "condition",
                    {"U": update_row()},
                    {**dataverse_trigger(3), "conditions": CONDITION},
                ),
                flow(
                    "filter",
                    {"U": update_row()},
                    dataverse_trigger(3, filterexpression="statecode eq 0"),
                ),
            ]
        ),
    )
    assert statuses(found) == {"condition": "pass", "filter": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["condition"].message == (
        "'U' updates the account table that triggers this flow, guarded by 1 trigger "
        "condition(s), not evaluated"
    )
    assert by_id["filter"].message.endswith(
        "guarded by the filter rows expression 'statecode eq 0', not evaluated"
    )


@pytest.mark.parametrize("message", [1, 2, 5])
def test_triggers_without_update_are_not_judged(message: int) -> None:
    """Create and Delete do not fire on updates: an update cannot start another run."""
    found = run(CHECK, frames(flows=[flow("f", {"U": update_row()}, dataverse_trigger(message))]))
    assert found == []


# SharePoint ------------------------------------------------------------------------------------


def test_updating_an_item_of_the_triggering_list_fails() -> None:
    """'When an item is created or modified' and 'Update item' on the same list loop."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("loop", {"Update_item": patch_item()}, sharepoint_trigger()),
                flow("slash", {"Update_item": patch_item(site=SITE + "/")}, sharepoint_trigger()),
                flow(
                    "other", {"Update_item": patch_item(table="other-list")}, sharepoint_trigger()
                ),
            ]
        ),
    )
    assert statuses(found) == {"loop": "fail", "slash": "fail", "other": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["loop"].message == (
        f"'Update item' updates the list {LIST} of {SITE.lower()} that triggers this flow: "
        "each update starts another run"
    )
    assert by_id["loop"].values["operation"] == "GetOnUpdatedItems"


def test_file_properties_update_in_the_triggering_library_fails() -> None:
    """'When a file is created or modified (properties only)' and 'Update file properties'."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow(
                    "f",
                    {"Set_properties": patch_item(operation="PatchFileItem")},
                    sharepoint_trigger("GetOnUpdatedFileItems"),
                )
            ]
        ),
    )
    assert statuses(found) == {"f": "fail"}


def test_created_only_trigger_is_not_judged() -> None:
    """'When an item is created' does not fire on the flow's own update."""
    found = run(
        CHECK, frames(flows=[flow("f", {"U": patch_item()}, sharepoint_trigger("GetOnNewItems"))])
    )
    assert found == []


def test_update_whose_list_is_not_named_is_not_assessed_unless_guarded() -> None:
    """An Update item without a readable list may be the trigger's list: not a pass."""
    unnamed = action(SP, "PatchItem", dataset=SITE, id=1)
    guarded = {**sharepoint_trigger(), "conditions": CONDITION}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("unknown", {"U": unnamed}, sharepoint_trigger()),
                flow("guarded", {"U": unnamed}, guarded),
            ]
        ),
    )
    assert statuses(found) == {"unknown": "not-assessed", "guarded": "pass"}
    assert "may update the list" in found[0].message


# Scope ------------------------------------------------------------------------------------------


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow starts no runs."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", {"U": update_row()}, dataverse_trigger(3), state="Stopped"),
                flow("started", {"U": update_row()}, dataverse_trigger(3)),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}


def test_other_triggers_are_not_judged() -> None:
    """A button or a schedule that updates accounts does not trigger itself."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("button", {"U": update_row()}),
                flow("schedule", {"U": update_row()}, {"type": "Recurrence"}),
            ]
        ),
    )
    assert found == []


# Real flows of tests/corpus ---------------------------------------------------------------------


def test_corpus_flow_writing_the_url_back_to_its_triggering_row_fails() -> None:
    """microsoft__powercat-automation-kit/AutomationCoESatellite/SolutionPackage/src/Workflows/
    SyncDesktopFlowDefinition-9843DB4B-A9C1-EC11-983E-0022480A2EE0.json: the trigger fires on
    every change (message 7) of autocoe_desktopflowdefinition, with no filter or condition;
    Add_Desktop_Flow_URL updates autocoe_desktopflowdefinitions (autocoe_desktopflowurl)."""
    path = (
        "microsoft__powercat-automation-kit/AutomationCoESatellite/SolutionPackage/src/"
        "Workflows/SyncDesktopFlowDefinition-9843DB4B-A9C1-EC11-983E-0022480A2EE0.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("sync", path)]))
    assert statuses(found) == {"sync": "fail"}
    assert found[0].message == (
        "'Add Desktop Flow URL' updates the autocoe_desktopflowdefinition table that triggers "
        "this flow: each update starts another run (table matched by its plural entity set "
        "name: inferred)"
    )
    assert found[0].evidence[0]["written_columns"] == "autocoe_desktopflowurl"


def test_corpus_flow_updating_other_tables_passes() -> None:
    """microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/
    Workflows/BACoreRuntime-UpdateApproval-BF11CA75-9D8D-EC11-8D20-000D3A09D351.json: triggered
    by updates of cat_businessapprovalinstance, it updates only
    cat_businessapprovalruntimenodeinstances."""
    path = (
        "microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/"
        "Workflows/BACoreRuntime-UpdateApproval-BF11CA75-9D8D-EC11-8D20-000D3A09D351.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("approval", path)]))
    assert statuses(found) == {"approval": "pass"}
    assert found[0].message.startswith(
        "no action updates the cat_businessapprovalinstance table that triggers this flow"
    )


def test_corpus_flow_writing_columns_its_trigger_does_not_watch_passes() -> None:
    """microsoft__powercat-automation-kit/AutomationCoEMain/SolutionPackage/src/Workflows/
    CalculateROISavingPotentialforAutomationProject-6DA1EFE0-413A-EC11-8C62-000D3AF47760.json:
    Update_ROI_Calculations writes autocoe_complexityscore and autocoe_roisavingpotential of
    the triggering autocoe_automationproject, neither among the trigger's 13 filtering
    attributes."""
    path = (
        "microsoft__powercat-automation-kit/AutomationCoEMain/SolutionPackage/src/Workflows/"
        "CalculateROISavingPotentialforAutomationProject-6DA1EFE0-413A-EC11-8C62-000D3AF47760.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("roi", path)]))
    assert statuses(found) == {"roi": "pass"}
    assert found[0].message.startswith(
        "'Update ROI Calculations' updates the autocoe_automationproject table that triggers "
        "this flow, only in columns outside the trigger's filtering attributes"
    )


def test_corpus_sharepoint_flow_updating_its_list_behind_a_condition_passes() -> None:
    """pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/
    Workflows/Brokenlinkvalidation-F071EA88-DB8A-EE11-8178-002248C6B93D.json: 'When a broken
    link item is created or modified' (GetOnUpdatedItems) and
    Update_broken_link_item_to_validation_complete (PatchItem) on the same site and list; the
    trigger condition is the owner's guard."""
    path = (
        "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
        "Workflows/Brokenlinkvalidation-F071EA88-DB8A-EE11-8178-002248C6B93D.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("validation", path)]))
    assert statuses(found) == {"validation": "pass"}
    assert found[0].message.startswith(
        "'Update broken link item to validation complete' updates the list "
    )
    assert found[0].message.endswith("guarded by 1 trigger condition(s), not evaluated")


def test_corpus_sharepoint_flow_updating_another_list_passes() -> None:
    """pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/
    Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json: triggered by Site
    Pages (GetOnUpdatedFileItems), Update_item_in_broken_links_list writes the broken links
    list."""
    path = (
        "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
        "Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("links", path)]))
    assert statuses(found) == {"links": "pass"}
    assert found[0].message.startswith("no action updates the list site pages of ")
