"""flow-sequential-loop: an Apply to each without concurrency whose body calls out (a
connector, HTTP or a child flow) and sets no variable is reported (low severity) when it
iterates a whole collection (R-LOOP, tests/corpus/README.md); over one record's children, a
fixed array or an output the analysis cannot size it passes, saying what it iterates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.analysis.definition_actions import ACTION_DTYPES
from auditor.analysis.definitions import parse_definition
from auditor.analysis.loop_operations import is_list_operation, is_list_path
from auditor.analysis.loops import loop_sources
from auditor.lint.run import lint
from auditor.settings import Settings
from tests.checks.builders import connector_action, flow, frames, run, statuses

CHECK = "flow-sequential-loop"
CORPUS = Path(__file__).parents[1] / "corpus"
SUBSCRIPTION_REMINDER = (
    CORPUS / "pnp__powerplatform-samples/samples/gym-management-app/sourcecode/src/Workflows/"
    "SubscriptionReminder-CD7AD75F-F442-EF11-8409-0022480BF39E.json"
)
MAIL_ARCHIVE = (
    CORPUS / "pnp__powerplatform-samples/samples/mail-archive-pdf/sourcecode/Workflows/"
    "AutomatedPDFArchivingforEmailsandAttachments-D9DD717E-72BB-B645-7C1F-7BBD486627D4.json"
)
SHARE_APP = (
    CORPUS / "pnp__powerplatform-samples/samples/power-automate-flow-to-share-an-app/src/"
    "Workflows/ShareApp-C78D51CF-E9F1-EF11-BE20-000D3AC7B386.json"
)
BROKEN_LINKS = (
    CORPUS / "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
    "Workflows/Brokenlinkvalidation-F071EA88-DB8A-EE11-8178-002248C6B93D.json"
)
LIST_ROWS = {"List_rows": connector_action("ListRecords", entityName="accounts")}


def loop(
    body: dict[str, Any],
    repetitions: int | None = None,
    source: Any = "@outputs('List_rows')?['body/value']",
    after: str | None = "List_rows",
) -> dict[str, Any]:
    """An Apply to each over `source` (the rows of List rows unless given), with concurrency
    control when given."""
    action: dict[str, Any] = {
        "type": "Foreach",
        "foreach": source,
        "actions": body,
        "runAfter": {after: ["Succeeded"]} if after else {},
    }
    if repetitions is not None:
        action["runtimeConfiguration"] = {"concurrency": {"repetitions": repetitions}}
    return action


def with_rows(**actions: Any) -> dict[str, Any]:
    """List rows followed by `actions`."""
    return {**LIST_ROWS, **actions}


def child_flow_call() -> dict[str, Any]:
    return {
        "type": "Workflow",
        "inputs": {"host": {"workflowReferenceName": "0b3c5a40-0000-0000-0000-000000000001"}},
        "runAfter": {},
    }


def sources(actions: dict[str, Any], trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    """loop_sources of one flow's definition, by loop name."""
    definition = {"triggers": {"manual": trigger or {"type": "Request", "kind": "Button"}}}
    definition["actions"] = actions
    text = json.dumps({"properties": {"definition": definition}})
    parsed = parse_definition(text, flow_id="f", environment_id="e")
    frame = pd.DataFrame(parsed.actions, columns=list(ACTION_DTYPES)).astype(ACTION_DTYPES)
    definitions = pd.DataFrame([{"environment_id": "e", "flow_id": "f", "definition_text": text}])
    found = loop_sources(frame, definitions)
    return {row["action_name"]: row for row in found.to_dict("records")}


def test_a_sequential_loop_calling_out_fails_and_the_others_pass() -> None:
    update = {"Update_a_row": connector_action()}
    nested = {"Scope": {"type": "Scope", "actions": update, "runAfter": {}}}
    variable = {
        "Update_a_row": connector_action(),
        "Count": {"type": "IncrementVariable", "inputs": {"name": "n"}, "runAfter": {}},
    }
    found = run(
        CHECK,
        frames(
            flows=[
                flow("sequential", with_rows(Each_row=loop(update))),
                flow("nested-call", with_rows(Each_row=loop(nested, repetitions=1))),
                flow("child-flow", with_rows(Each_row=loop({"Run_child": child_flow_call()}))),
                flow("parallel", with_rows(Each_row=loop(update, repetitions=20))),
                flow(
                    "no-call",
                    with_rows(Each_row=loop({"Note": {"type": "Compose", "inputs": 1}})),
                ),
                flow("variables", with_rows(Each_row=loop(variable))),
                flow("no-loop", {"Update_a_row": connector_action()}),
            ]
        ),
    )
    assert statuses(found) == {
        "sequential": "fail",
        "nested-call": "fail",
        "child-flow": "fail",
        "parallel": "pass",
        "no-call": "pass",
        "variables": "pass",
    }
    failing = next(f for f in found if f.resource_id == "sequential")
    assert failing.severity == "low"
    # Loops and sources by the designer's names, the operation id in values and evidence.
    assert "Each row iterates List rows (ListRecords)" in failing.message
    assert failing.values == {
        "sequential_loops": 1,
        "sequential_calling_loops": 1,
        "source_operations": "ListRecords",
    }
    row = failing.evidence[0]
    assert (row["action_name"], row["display_name"], row["calls"]) == ("Each_row", "Each row", 1)
    assert (row["kind"], row["source_action"], row["source_operation"]) == (
        "collection",
        "List_rows",
        "ListRecords",
    )
    assert row["fails"] is True
    quiet = next(f for f in found if f.resource_id == "parallel")
    assert "run concurrently" in quiet.message
    assert quiet.evidence == ()


def test_loops_over_one_records_children_or_fixed_arrays_pass_and_say_what_they_iterate() -> None:
    """Attachments of the trigger's mail, a split string, a literal array, a row's child
    array and an outer loop's item are few items: the loop passes, its kind in evidence."""
    send = {"Send": connector_action("SendEmailV2", "shared_office365")}
    get_row = {"Get_a_row": connector_action("GetItem", entityName="accounts")}
    found = run(
        CHECK,
        frames(
            flows=[
                flow(
                    "attachments",
                    {"For_each": loop(send, source="@triggerOutputs()?['body/attachments']")},
                    trigger={"type": "OpenApiConnectionNotification", "inputs": {}},
                ),
                flow(
                    "split",
                    {
                        "For_each": loop(
                            send, source="@split(triggerBody()?['to'], ';')", after=None
                        )
                    },
                ),
                flow("literal", {"For_each": loop(send, source=["a", "b"], after=None)}),
                flow(
                    "child-array",
                    {
                        **get_row,
                        "For_each": loop(
                            send,
                            source="@outputs('Get_a_row')?['body/contacts']",
                            after="Get_a_row",
                        ),
                    },
                ),
                flow(
                    "nested",
                    with_rows(
                        Each_row=loop(
                            {
                                "Each_line": loop(
                                    send, source="@items('Each_row')?['lines']", after=None
                                )
                            },
                            repetitions=10,
                        )
                    ),
                ),
            ]
        ),
    )
    assert set(statuses(found).values()) == {"pass"}
    said = {f.resource_id: f for f in found}
    assert "For each iterates the trigger's attachments: few items" in said["attachments"].message
    assert "For each iterates a fixed array, split(): few items" in said["split"].message
    assert "a literal array: few items" in said["literal"].message
    assert "a child array of one record, Get a row (GetItem)" in said["child-array"].message
    assert "a child array of the current item of Each row" in said["nested"].message
    kinds = {rid: f.evidence[0]["kind"] for rid, f in said.items()}
    assert kinds == {
        "attachments": "record_children",
        "split": "fixed",
        "literal": "fixed",
        "child-array": "record_children",
        "nested": "record_children",
    }
    assert said["child-array"].evidence[0]["source_operation"] == "GetItem"
    assert all(f.values["sequential_loops"] == 0 for f in found)


def test_collections_are_followed_through_data_actions_and_variables() -> None:
    """Filter array / Select over Get items, a variable appended in a loop over List rows,
    an HTTP GET and a legacy ApiConnection GET of list items are collections."""
    send = {"Send": connector_action("SendEmailV2", "shared_office365")}
    get_items = {
        "Get_items": connector_action("GetItems", "shared_sharepointonline"),
        "Filter_array": {
            "type": "Query",
            "inputs": {"from": "@outputs('Get_items')?['body/value']", "where": "@true"},
            "runAfter": {"Get_items": ["Succeeded"]},
        },
        "Select": {
            "type": "Select",
            "inputs": {"from": "@body('Filter_array')", "select": {"id": "@item()?['ID']"}},
            "runAfter": {"Filter_array": ["Succeeded"]},
        },
    }
    ids = {
        "Initialize_ids": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "ids", "type": "array", "value": []}]},
            "runAfter": {},
        },
        **LIST_ROWS,
        "Collect": loop(
            {
                "Append_id": {
                    "type": "AppendToArrayVariable",
                    "inputs": {"name": "ids", "value": "@items('Collect')?['accountid']"},
                    "runAfter": {},
                }
            }
        ),
    }
    found = sources(
        {
            **get_items,
            "Each_selected": loop(send, source="@body('Select')", after="Select"),
            **ids,
            "Each_id": loop(send, source="@variables('ids')", after="Collect"),
            "HTTP": {"type": "Http", "inputs": {"method": "GET", "uri": "https://x"}},
            "Each_page": loop(send, source="@body('HTTP')?['items']", after="HTTP"),
            "Legacy_items": {
                "type": "ApiConnection",
                "inputs": {
                    "host": {"connection": {"name": "@parameters('$connections')['sp']['id']"}},
                    "method": "get",
                    "path": "/datasets/@{encodeURIComponent('https://x')}/tables/@{'l'}/items",
                },
            },
            "Each_legacy": loop(send, source="@body('Legacy_items')?['value']", after=None),
        }
    )
    assert found["Each_selected"]["source_kind"] == "collection"
    assert found["Each_selected"]["source_operation"] == "GetItems"
    assert found["Each_selected"]["description"] == (
        "Select (Select), built from Get items (GetItems)"
    )
    assert found["Each_id"]["source_kind"] == "collection"
    assert found["Each_id"]["description"] == "variable ids, filled from List rows (ListRecords)"
    assert found["Each_page"]["source_kind"] == "collection"
    assert found["Each_page"]["source_operation"] == "GET"
    assert found["Each_legacy"]["source_kind"] == "collection"
    assert found["Collect"]["source_kind"] == "collection"


def test_unknown_sources_pass_and_the_walk_is_bounded() -> None:
    """A child flow's output is unknown; a chain of Composes longer than the bound, or one
    reading itself, ends unknown instead of looping."""
    send = {"Send": connector_action("SendEmailV2", "shared_office365")}
    chain: dict[str, Any] = {**LIST_ROWS}
    previous = "List_rows"
    for i in range(8):
        chain[f"Compose_{i}"] = {
            "type": "Compose",
            "inputs": f"@outputs('{previous}')",
            "runAfter": {previous: ["Succeeded"]},
        }
        previous = f"Compose_{i}"
    found = sources(
        {
            **chain,
            "Long": loop(send, source="@outputs('Compose_7')", after="Compose_7"),
            "Child": {**child_flow_call(), "runAfter": {"Long": ["Succeeded"]}},
            "Each_result": loop(send, source="@body('Child')?['items']", after="Child"),
            "Self": {"type": "Compose", "inputs": "@outputs('Self')", "runAfter": {}},
            "Each_self": loop(send, source="@outputs('Self')", after="Self"),
        }
    )
    assert found["Long"]["source_kind"] == "unknown"
    assert found["Each_result"]["source_kind"] == "unknown"
    assert found["Each_self"]["source_kind"] == "unknown"


@pytest.mark.parametrize(
    ("operation", "lists"),
    [
        ("ListRecords", True),
        ("GetItems_V2", True),
        ("GetFileItems", True),
        ("ListFolderV2", True),
        ("SearchUserV2", True),
        ("V4CalendarGetItems", True),
        ("GetAllTeams", True),
        ("GetItem", False),
        ("UpdateRecord", False),
        (None, False),
    ],
)
def test_list_operations(operation: str | None, lists: bool) -> None:
    assert is_list_operation(operation) is lists


@pytest.mark.parametrize(
    ("path", "lists"),
    [
        ("/datasets/@{encodeURIComponent('https://x/sites/a')}/tables/@{'l'}/items", True),
        ("/ListFeedItems", True),
        ("/v2/v1.0/planner/plans/@{encodeURIComponent('p')}/tasks", True),
        ("/datasets/@{'s'}/tables/@{'l'}/items/@{triggerBody()?['ID']}", False),
        ("/datasets/@{'s'}/tables/@{'l'}/items/@{triggerBody()?['ID']}/getfileitem", False),
        (None, False),
    ],
)
def test_legacy_list_paths(path: str | None, lists: bool) -> None:
    assert is_list_path(path) is lists


# Real flows of tests/corpus ----------------------------------------------------------------


def test_corpus_loops_over_get_items_fail() -> None:
    """tests/corpus/pnp__powerplatform-samples/samples/gym-management-app/sourcecode/src/
    Workflows/SubscriptionReminder-CD7AD75F-F442-EF11-8409-0022480BF39E.json: For_each >
    For_each_1 > For_each_2 iterate Get_items_3_days and For_each_3 iterates Get_items_7_days
    (SharePoint GetItems, body/value), no concurrency, Send_an_email_(V2) in the body and no
    variable: all four fail; linted, the finding sits on the first loop's line."""
    model = lint([SUBSCRIPTION_REMINDER], Settings()).model.to_json()
    (finding,) = [f for f in model["findings"] if f["check_id"] == CHECK]
    assert finding["status"] == "fail"
    assert finding["values"]["sequential_loops"] == 4
    assert finding["values"]["source_operations"] == "GetItems"
    assert "For each 3 iterates Get items 7 days (GetItems)" in finding["message"]
    by_loop = {row["action_name"]: row for row in finding["evidence"]}
    assert set(by_loop) == {"For_each", "For_each_1", "For_each_2", "For_each_3"}
    assert {row["kind"] for row in by_loop.values()} == {"collection"}
    assert by_loop["For_each_3"]["source_action"] == "Get_items_7_days"
    text = SUBSCRIPTION_REMINDER.read_text(encoding="utf-8").splitlines()
    assert '"For_each": {' in text[finding["location"]["line"] - 1]


def test_corpus_loop_over_a_mails_attachments_passes() -> None:
    """tests/corpus/pnp__powerplatform-samples/samples/mail-archive-pdf/sourcecode/Workflows/
    AutomatedPDFArchivingforEmailsandAttachments-D9DD717E-72BB-B645-7C1F-7BBD486627D4.json:
    Apply_to_each_-_email_attachment iterates Filter_array_-_attachment_with_allowed_extension,
    which filters the trigger mail's attachments; sequential, it creates files in its body and
    sets no variable, yet passes: one mail's few attachments."""
    found = run(CHECK, frames(flows=[flow("mail", text=MAIL_ARCHIVE.read_text("utf-8"))]))
    (finding,) = found
    assert finding.status == "pass"
    assert (
        "Apply to each - email attachment iterates Filter array - attachment with allowed "
        "extension (Query), from the trigger's data: few items"
    ) in finding.message
    (row,) = finding.evidence
    assert (row["kind"], row["source_operation"], row["calls"]) == ("record_children", "Query", 2)


def test_corpus_loop_over_a_trigger_list_passes_and_a_split_string_makes_no_call() -> None:
    """tests/corpus/pnp__powerplatform-samples/samples/power-automate-flow-to-share-an-app/src/
    Workflows/ShareApp-C78D51CF-E9F1-EF11-BE20-000D3AC7B386.json: Apply_to_each iterates
    @array(triggerOutputs()?['body/Users']) (the app's caller passes the users) and calls
    out twice per user: passes, a trigger item's list.
    tests/corpus/pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/
    src/Workflows/Brokenlinkvalidation-F071EA88-DB8A-EE11-8178-002248C6B93D.json:
    Loop_through_links_and_append_to_links_array iterates @split(triggerOutputs()?['body/Links'],
    ';'): a fixed array, and its body only appends to a variable."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("share", text=SHARE_APP.read_text("utf-8")),
                flow("links", text=BROKEN_LINKS.read_text("utf-8")),
            ]
        ),
    )
    assert statuses(found) == {"share": "pass", "links": "pass"}
    share = next(f for f in found if f.resource_id == "share")
    assert "Apply to each iterates the trigger's Users: few items" in share.message
    assert share.evidence[0]["kind"] == "record_children"
    links = next(f for f in found if f.resource_id == "links")
    assert links.evidence == ()
    parsed = parse_definition(BROKEN_LINKS.read_text("utf-8"), flow_id="f", environment_id="e")
    frame = pd.DataFrame(parsed.actions, columns=list(ACTION_DTYPES)).astype(ACTION_DTYPES)
    (kind,) = loop_sources(frame)["source_kind"]
    assert kind == "fixed"
