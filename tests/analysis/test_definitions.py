"""Flow definitions: facts from real-shaped exports, and no exception from hostile ones."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auditor.analysis.block_signatures import BLOCK_COLUMNS, block_signatures
from auditor.analysis.definition_actions import ACTION_COLUMNS
from auditor.analysis.definition_effects import is_effect
from auditor.analysis.definition_triggers import TRIGGER_COLUMNS
from auditor.analysis.definitions import (
    ERROR_COLUMNS,
    ParsedFlow,
    definition_frames,
    parse_definition,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _parse(text: str | None, flow_id: str = "flow-1") -> ParsedFlow:
    return parse_definition(text, flow_id=flow_id, environment_id="env-1")


def _fixture(name: str) -> ParsedFlow:
    parsed = _parse(_text(name))
    assert parsed.error is None, parsed.error
    return parsed


def _actions(parsed: ParsedFlow) -> dict[str, dict[str, Any]]:
    return {row["action_name"]: row for row in parsed.actions}


# Real-shaped exports (the repositories in tests/corpus/README.md) ----------------------------


def test_dataverse_update_trigger_with_filters_and_runas() -> None:
    parsed = _fixture("BACoreApprovalTime-out-A696980C-5FD0-EC11-A7B5-0022486DABEE.json")
    trig = parsed.trigger
    assert trig is not None
    assert trig["trigger_name"] == "Running_Approval_Instance_Time-Out_Counter_has_reached_0"
    assert trig["type"] == "OpenApiConnectionWebhook"
    assert trig["connector"] == "shared_commondataserviceforapps"
    assert trig["operation"] == "SubscribeWebhookTrigger"
    assert trig["is_dataverse"] is True
    assert trig["dataverse_message"] == 3
    assert trig["dataverse_entity"] == "cat_businessapprovalinstance"
    assert trig["dataverse_scope"] == 4
    assert trig["filtering_attributes"] == "cat_timeoutcounter"
    assert trig["filter_expression"] == (
        "cat_timeoutcounter eq 0 and cat_instancestatus eq 809060001"
    )
    assert trig["run_as"] == 1
    assert trig["is_event"] is True
    assert trig["fires_on_update"] is True
    assert trig["has_filter"] is True
    assert trig["has_conditions"] is False
    assert trig["is_invoked"] is False


def test_try_catch_scopes_foreach_concurrency_and_child_flow_call() -> None:
    parsed = _fixture("BACoreApprovalTime-out-A696980C-5FD0-EC11-A7B5-0022486DABEE.json")
    rows = _actions(parsed)
    assert [r["action_name"] for r in parsed.actions] == [
        "Scope_try",
        "List_pending_approvers",
        "Apply_to_each_approver",
        "Mark_approver_timed_out",
        "Set_instance_timed_out",
        "Scope_catch",
        "Log_the_failure",
    ]
    loop = rows["Apply_to_each_approver"]
    assert loop["foreach_concurrency"] == 20
    assert (loop["is_loop"], loop["is_scope_like"], loop["is_effect"]) == (True, True, False)
    assert (loop["parent"], loop["scope_path"], loop["depth"], loop["order"]) == (
        "Scope_try",
        "Scope_try",
        2,
        2,
    )
    inner = rows["Mark_approver_timed_out"]
    assert inner["scope_path"] == "Scope_try/Apply_to_each_approver"
    assert inner["depth"] == 3
    assert (inner["is_effect"], inner["is_external_call"]) == (True, True)
    assert rows["List_pending_approvers"]["is_effect"] is False  # ListRecords is a read
    catch = rows["Scope_catch"]
    assert catch["runs_after_failure"] is True
    assert json.loads(catch["run_after"]) == {"Scope_try": ["failed"]}
    log = rows["Log_the_failure"]
    assert log["type"] == "Workflow"
    assert log["child_flow_id"] == "613b8c18-5ad4-ec11-a7b5-000d3af4ac06"
    assert log["is_effect"] is True
    # A child-flow call runs over HTTP and takes a retry policy: an external call.
    assert log["is_external_call"] is True
    assert parsed.notes == ()


def test_create_or_update_trigger_without_filtering_attributes_but_with_condition() -> None:
    parsed = _fixture("AutomationProject-Approvals-FEFEC70D-BF3C-EC11-B6E5-00224805CC2D.json")
    trig = parsed.trigger
    assert trig is not None
    # "shared_commondataserviceforapps_1" is a second connection key to the same API.
    assert trig["connector"] == "shared_commondataserviceforapps"
    assert trig["dataverse_message"] == 4
    assert trig["filtering_attributes"] is None  # "" in the export
    assert trig["filter_expression"] is None
    assert trig["has_filter"] is False
    assert trig["fires_on_update"] is True
    assert trig["run_as"] is None
    assert trig["conditions"] == [
        "@equals(triggerOutputs()?['body/_autocoe_automationprojectstatus_label'], 'Submitted')"
    ]
    assert json.loads(trig["conditions_json"]) == trig["conditions"]
    assert trig["condition_count"] == 1
    assert trig["has_conditions"] is True


def test_upper_case_runafter_retry_policy_and_if_with_empty_else() -> None:
    rows = _actions(
        _fixture("AutomationProject-Approvals-FEFEC70D-BF3C-EC11-B6E5-00224805CC2D.json")
    )
    condition = rows["Condition_requestor_has_email"]
    assert json.loads(condition["run_after"]) == {"Get_the_requestor": ["succeeded"]}
    assert condition["runs_after_failure"] is False
    assert condition["order"] == 2
    get = rows["Get_the_requestor"]
    assert (get["retry_policy_type"], get["retry_count"], get["retry_interval"]) == (
        "exponential",
        10,
        "PT10S",
    )
    assert get["is_effect"] is False
    send = rows["Send_an_email_(V2)"]
    assert (send["parent"], send["branch"], send["scope_path"]) == (
        "Condition_requestor_has_email",
        "then",
        "Condition_requestor_has_email/then",
    )
    assert send["connector"] == "shared_office365"
    assert send["is_effect"] is True
    assert send["retry_policy_type"] is None  # absent = the default policy
    assert len(rows) == 3  # the empty else adds nothing


def test_legacy_sharepoint_polling_trigger_with_recurrence_spliton_condition() -> None:
    parsed = _fixture("sharepoint-move-list-item-to-folder.definition.json")
    trig = parsed.trigger
    assert trig is not None
    assert trig["type"] == "ApiConnection"
    assert trig["connector"] == "shared_sharepointonline"  # from host.connection.name
    assert trig["operation"] is None
    assert (trig["recurrence_frequency"], trig["recurrence_interval"]) == ("Minute", 1)
    assert trig["split_on"] == "@triggerBody()?['value']"
    assert trig["conditions"] == ["@equals(triggerBody()?['{IsFolder}'],false)"]
    assert trig["is_event"] is True
    assert trig["is_dataverse"] is False
    assert trig["fires_on_update"] is True  # .../onupdateditems
    rows = _actions(parsed)
    get, post = rows["Get_item"], rows["Send_an_HTTP_request_to_SharePoint"]
    assert (get["connector"], get["method"], get["is_effect"]) == (
        "shared_sharepointonline",
        "GET",
        False,
    )
    # A second connection key ("..._1") with no reference of its own.
    assert (post["connector"], post["method"], post["is_effect"]) == (
        "shared_sharepointonline",
        "POST",
        True,
    )


def test_recurrence_flow_calling_a_child_flow() -> None:
    parsed = _fixture(
        "AutomationProjects-ScheduledSyncfromCoECore-44F7220E-BF3B-EC11-B6E5-00224809BAE4.json"
    )
    trig = parsed.trigger
    assert trig is not None
    assert (trig["type"], trig["recurrence_frequency"], trig["recurrence_interval"]) == (
        "Recurrence",
        "Hour",
        1,
    )
    assert (trig["is_event"], trig["fires_on_update"]) == (False, False)
    assert trig["is_invoked"] is False
    (child,) = parsed.actions
    assert child["child_flow_id"] == "3593353e-c33b-ec11-b6e5-00224809bae4"  # lower-cased
    assert child["is_effect"] is True


def test_powerappv2_child_flow_with_response_after_any_outcome() -> None:
    parsed = _fixture("BACoreChildGetDynamicApprover-DCB75FEF-35D6-EC11-A7B5-000D3AF46350.json")
    trig = parsed.trigger
    assert trig is not None
    assert (trig["type"], trig["kind"], trig["is_invoked"], trig["is_event"]) == (
        "Request",
        "PowerAppV2",
        True,
        False,
    )
    rows = _actions(parsed)
    response = rows["Respond_to_a_PowerApp_or_flow"]
    assert response["response_kind"] == "PowerApp"
    assert response["response_status_code"] == 200
    assert json.loads(response["run_after"]) == {"Try": ["succeeded", "failed", "timedout"]}
    assert response["runs_after_failure"] is True
    assert response["is_effect"] is True
    http = rows["Get_manager_from_directory"]
    assert (http["method"], http["retry_policy_type"], http["is_external_call"]) == (
        "GET",
        "none",
        True,
    )
    assert http["is_effect"] is False  # HTTP GET is a read
    assert rows["Find_delegate"]["is_effect"] is False
    assert rows["Set_approver"]["is_effect"] is False
    assert rows["Log_error"]["runs_after_failure"] is True
    top = [r for r in parsed.actions if r["depth"] == 1]
    assert [(r["action_name"], r["order"]) for r in top] == [
        ("Initialize_approver", 1),
        ("Try", 2),
        ("Log_error", 3),
        ("Respond_to_a_PowerApp_or_flow", 4),
    ]


def test_try_catch_finally_in_a_legacy_package() -> None:
    parsed = _fixture("Try-Catch-Finally.definition.json")
    trig = parsed.trigger
    assert trig is not None
    assert (trig["kind"], trig["is_invoked"]) == ("Button", False)  # Button: caller decides
    rows = _actions(parsed)
    assert json.loads(rows["Catch"]["run_after"]) == {"Try": ["failed"]}
    assert json.loads(rows["Finally"]["run_after"]) == {
        "Catch": ["succeeded", "failed", "skipped", "timedout"]
    }
    assert rows["Finally"]["runs_after_failure"] is True
    assert [rows[n]["order"] for n in ("Try", "Catch", "Finally")] == [1, 2, 3]
    assert {rows[n]["scope_path"] for n in ("Compose", "Compose_2", "Compose_3")} == {
        "Try",
        "Catch",
        "Finally",
    }
    assert not any(r["is_effect"] for r in parsed.actions)


def test_error_handling_scope_with_terminate_failed_and_run_error() -> None:
    parsed = _fixture("AdminAddMakertoGroup-E57EB48A-F9E5-EE11-904C-6045BD045863.json")
    trig = parsed.trigger
    assert trig is not None
    assert (trig["dataverse_message"], trig["dataverse_entity"], trig["has_filter"]) == (
        1,
        "admin_maker",
        False,
    )
    assert trig["fires_on_update"] is False  # Create only
    rows = _actions(parsed)
    failed = rows["Terminate"]
    assert (failed["terminate_status"], failed["terminate_has_error"]) == ("Failed", True)
    assert failed["parent"] == "Error_Handling"
    assert failed["is_effect"] is False
    ok = rows["Terminate_2"]
    assert (ok["terminate_status"], ok["terminate_has_error"]) == ("Succeeded", False)
    assert json.loads(rows["Success"]["run_after"]) == {"Error_Handling": ["skipped"]}
    assert rows["Success"]["runs_after_failure"] is False
    listing = rows["List_environments"]
    assert (listing["retry_policy_type"], listing["retry_count"], listing["retry_interval"]) == (
        "exponential",
        20,
        "PT20S",
    )
    assert rows["Add_member_to_group"]["is_effect"] is True
    assert rows["Add_member_to_group"]["connector"] == "shared_office365groups"


def test_bare_definition_with_foreach_sequential_switch_until_and_concurrency() -> None:
    parsed = _fixture("controls.bare-definition.json")
    trig = parsed.trigger
    assert trig is not None
    assert (trig["kind"], trig["is_invoked"], trig["concurrency_runs"]) == ("Http", True, 10)
    rows = _actions(parsed)
    assert rows["Apply_to_each_order"]["foreach_concurrency"] == 20
    assert rows["Apply_to_each_line"]["foreach_concurrency"] == 1  # operationOptions Sequential
    post = rows["Post_order_to_ERP"]
    assert (post["method"], post["retry_policy_type"], post["timeout"], post["is_effect"]) == (
        "POST",
        "fixed",
        "PT2M",
        True,
    )
    assert rows["Append_to_lines"]["is_effect"] is False
    assert rows["Delay"]["branch"] == "then"
    assert rows["Delay"]["is_effect"] is False  # Wait
    assert (rows["Compose_high"]["branch"], rows["Compose_high"]["scope_path"]) == (
        "Case_High",
        "Switch_priority/Case_High",
    )
    assert rows["Post_to_Teams"]["order"] == 2
    assert rows["Post_to_Teams"]["is_effect"] is True
    default = rows["Terminate_unknown_priority"]
    assert (default["branch"], default["scope_path"], default["terminate_status"]) == (
        "default",
        "Switch_priority/default",
        "Cancelled",
    )
    until = rows["Until_acknowledged"]
    assert (until["is_loop"], until["timeout"]) == (True, "PT1H")
    assert rows["Check_status"]["is_effect"] is False  # HTTP GET
    response = rows["Response"]
    assert (response["response_kind"], response["response_status_code"]) == ("Http", 202)
    top = [r["action_name"] for r in parsed.actions if r["depth"] == 1]
    assert top == [
        "Apply_to_each_order",
        "Apply_to_each_line",
        "Condition_has_lines",
        "Switch_priority",
        "Until_acknowledged",
        "Response",
    ]


def test_legacy_notification_trigger_wait_and_terminate() -> None:
    parsed = _fixture("planner-task-from-flagged-email.definition.json")
    trig = parsed.trigger
    assert trig is not None
    assert (trig["type"], trig["connector"], trig["split_on"]) == (
        "ApiConnectionNotification",
        "shared_office365",
        "@triggerBody()?['value']",
    )
    assert (trig["is_event"], trig["fires_on_update"]) == (True, False)
    assert trig["has_conditions"] is False
    rows = _actions(parsed)
    assert (rows["Create_a_task"]["connector"], rows["Create_a_task"]["is_effect"]) == (
        "shared_planner",
        True,
    )
    assert rows["Terminate"]["runs_after_failure"] is True
    assert rows["Terminate"]["terminate_has_error"] is True


def test_order_replays_the_engine_passes_when_the_document_is_out_of_order() -> None:
    """B comes first in the document but runs after A, so the engine's passes give A, C, B."""
    actions = {
        "B": {"type": "Compose", "runAfter": {"A": ["Succeeded"]}},
        "A": {"type": "Compose", "runAfter": {}},
        "C": {"type": "Compose"},
        "D": {"type": "Compose", "runAfter": {"B": ["Skipped"], "C": ["Succeeded"]}},
    }
    parsed = _parse(json.dumps({"triggers": _MANUAL, "actions": actions}))
    assert [(r["action_name"], r["order"]) for r in parsed.actions] == [
        ("A", 1),
        ("C", 2),
        ("B", 3),
        ("D", 4),
    ]


# Effect classification (docs/how-a-scan-runs.md) --------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"type": "OpenApiConnection", "operation": "CreateRecord"}, True),
        ({"type": "OpenApiConnection", "operation": "UpdateRecord"}, True),
        ({"type": "OpenApiConnection", "operation": "SendEmailV2"}, True),
        ({"type": "OpenApiConnection", "operation": "ListRecords"}, False),
        ({"type": "OpenApiConnection", "operation": "GetItem"}, False),
        ({"type": "OpenApiConnection", "operation": "SearchUserV2"}, False),
        ({"type": "OpenApiConnection", "operation": "RetrieveRecord"}, False),
        ({"type": "OpenApiConnection", "operation": "FindRows"}, False),
        ({"type": "OpenApiConnection", "operation": "HttpRequestGet"}, False),
        ({"type": "OpenApiConnection", "operation": "UpdateAndGetRow"}, True),
        ({"type": "OpenApiConnection", "operation": "UserProfile_V2"}, True),  # not named a read
        ({"type": "OpenApiConnectionWebhook", "operation": "StartAndWaitForAnApproval"}, True),
        ({"type": "OpenApiConnection", "operation": None}, True),
        ({"type": "ApiConnection", "method": "GET"}, False),
        ({"type": "ApiConnection", "method": "PATCH"}, True),
        ({"type": "Http", "method": "GET"}, False),
        ({"type": "Http", "method": "get"}, False),
        ({"type": "Http", "method": "DELETE"}, True),
        ({"type": "Http"}, True),  # no method: cannot tell, so an effect
        ({"type": "Workflow"}, True),
        ({"type": "Response"}, True),
        ({"type": "Terminate"}, False),
        ({"type": "Scope"}, False),
        ({"type": "Foreach"}, False),
        ({"type": "Compose"}, False),
        ({"type": "AppendToStringVariable"}, False),
        ({"type": "IncrementVariable"}, False),
        ({"type": "Expression", "kind": "CurrentTime"}, False),
        ({"type": "Wait"}, False),
        ({"type": "InlineCode"}, True),  # unknown: conservative
        ({"type": None}, True),
        ({}, True),
    ],
)
def test_is_effect(row: Mapping[str, Any], expected: bool) -> None:
    assert is_effect(row) is expected


def test_effects_agree_with_the_simulator_ground_truth() -> None:
    """The unnecessary-run count is exact only if both sides call the same actions effects."""
    from auditor.sim.scenario import generate
    from auditor.sim.truth import is_effect as truth_is_effect

    def walk(container: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        todo = [container]
        while todo:
            for name, action in todo.pop().items():
                yield name, action
                for key in ("else", "default"):
                    todo.append((action.get(key) or {}).get("actions") or {})
                todo.extend(
                    (c or {}).get("actions") or {} for c in action.get("cases", {}).values()
                )
                todo.append(action.get("actions") or {})

    checked = 0
    for env in generate(7, "tiny").environments:
        for flow_id, definition in zip(env.flows["name"], env.flows["definition"], strict=True):
            parsed = parse_definition(definition, flow_id=flow_id, environment_id=env.env_id)
            assert parsed.error is None
            raw = dict(walk(json.loads(definition)["actions"]))
            assert len(raw) == len(parsed.actions)
            for row in parsed.actions:
                assert row["is_effect"] == truth_is_effect(raw[row["action_name"]]), row
                checked += 1
    assert checked > 100


# Hostile and malformed definitions ----------------------------------------------------------


def _definition(triggers: Any = None, actions: Any = None, **extra: Any) -> str:
    body: dict[str, Any] = {"triggers": triggers or {}, "actions": actions or {}, **extra}
    return json.dumps({"properties": {"definition": body}, "schemaVersion": "1.0.0.0"})


def _nested(levels: int) -> str:
    text = '{"type": "Compose"}'
    for i in reversed(range(levels)):
        text = f'{{"type": "Scope", "actions": {{"Leaf_{i}": {text}}}}}'
    return '{"triggers": {}, "actions": {"Root": ' + text + "}}"


_MANUAL = {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {}}}}
_GOOD = _text("Try-Catch-Finally.definition.json")

Check = Callable[[ParsedFlow], None]


def _expect_actions(count: int) -> Check:
    def check(parsed: ParsedFlow) -> None:
        assert len(parsed.actions) == count

    return check


def _check_trigger_without_inputs(parsed: ParsedFlow) -> None:
    assert parsed.trigger is not None
    assert (parsed.trigger["connector"], parsed.trigger["is_event"]) == (None, True)


def _check_no_trigger(parsed: ParsedFlow) -> None:
    assert parsed.trigger is None
    assert "the definition has no trigger" in parsed.notes


def _check_several_triggers(parsed: ParsedFlow) -> None:
    assert parsed.trigger is not None
    assert (parsed.trigger["trigger_name"], parsed.trigger["trigger_count"]) == ("first", 3)
    assert "the definition has 3 triggers; the first is used" in parsed.notes


def _check_unknown_type(parsed: ParsedFlow) -> None:
    (row,) = parsed.actions
    assert (row["type"], row["is_effect"]) == ("ServiceProvider", True)


def _check_cycle(parsed: ParsedFlow) -> None:
    rows = _actions(parsed)
    assert [rows[n]["order"] for n in ("Start", "A", "B", "C")] == [1, 2, 3, 4]
    assert rows["Start"]["note"] is None
    assert all("runAfter cycle" in rows[n]["note"] for n in ("A", "B", "C"))


def _check_self_cycle(parsed: ParsedFlow) -> None:
    assert "runAfter cycle" in parsed.actions[0]["note"]


def _check_unknown_pred(parsed: ParsedFlow) -> None:
    (row,) = parsed.actions
    assert row["note"] == "runAfter references unknown action(s): Ghost"
    assert (row["order"], row["runs_after_failure"]) == (1, True)


def _check_action_not_object(parsed: ParsedFlow) -> None:
    rows = _actions(parsed)
    assert rows["Junk"]["note"] == "action is not an object (it is a list)"
    assert rows["Junk"]["is_effect"] is True  # unknown: conservative
    assert rows["Fine"]["type"] == "Compose"


def _check_nulls(parsed: ParsedFlow) -> None:
    assert parsed.trigger is not None
    assert parsed.trigger["type"] is None
    rows = _actions(parsed)
    assert set(rows) == {"a", "b"}
    assert rows["b"]["run_after"] == "{}"


def _check_wrong_types(parsed: ParsedFlow) -> None:
    trig = parsed.trigger
    assert trig is not None
    assert trig["type"] == "OpenApiConnectionWebhook"
    assert trig["is_dataverse"] is True
    assert trig["dataverse_message"] == 3  # "3" as text still counts
    assert trig["dataverse_scope"] is None  # true is not a scope
    assert trig["run_as"] is None  # 99.5
    assert trig["filtering_attributes"] is None  # a list, not text
    row = parsed.actions[0]
    assert (row["type"], row["kind"], row["is_effect"]) == (None, None, True)
    assert row["retry_count"] is None  # 1e300
    assert row["retry_policy_type"] is None  # 1
    assert row["run_after"] == '{"": ["succeeded"]}'


def _check_unknown_message(parsed: ParsedFlow) -> None:
    assert parsed.trigger is not None
    assert parsed.trigger["dataverse_message"] is None
    assert parsed.trigger["fires_on_update"] is False


def _check_huge(parsed: ParsedFlow) -> None:
    assert parsed.trigger is not None
    assert len(parsed.trigger["filter_expression"]) == 1_000_000
    assert len(parsed.actions[0]["action_name"]) == 1_000_000


def _check_surrogates(parsed: ParsedFlow) -> None:
    assert parsed.actions[0]["action_name"] == "A?"
    assert parsed.trigger is not None
    assert parsed.trigger["conditions"] == ["@equals(1, ?)"]


def _check_deep_but_parsable(parsed: ParsedFlow) -> None:
    assert len(parsed.actions) == 101  # Root and Leaf_0..Leaf_99
    leaf = parsed.actions[-1]
    assert (leaf["action_name"], leaf["type"], leaf["depth"]) == ("Leaf_99", "Compose", 101)
    assert leaf["scope_path"].count("/") == 99


def _check_odd_containers(parsed: ParsedFlow) -> None:
    rows = _actions(parsed)
    assert "nested actions" in rows["S"]["note"]
    assert rows["Inside"]["branch"] == "Case_1"
    assert rows["Inside"]["scope_path"] == "S/Case_1"


def _check_odd_conditions(parsed: ParsedFlow) -> None:
    trig = parsed.trigger
    assert trig is not None
    assert trig["conditions"] == ["@true", '{"and": [1]}', "@bare"]
    assert trig["condition_count"] == 3


def _check_odd_run_after(parsed: ParsedFlow) -> None:
    rows = _actions(parsed)
    assert json.loads(rows["B"]["run_after"]) == {"A": ["failed"]}
    assert rows["B"]["runs_after_failure"] is True
    assert rows["C"]["run_after"] == "{}"


MALFORMED: list[tuple[str, Any, str | Check]] = [
    (
        "invalid json",
        '{"properties": {"definition": {"triggers": {}, "actions": {} "outputs": {}}}}',
        "clientdata is not valid JSON: Expecting ',' delimiter at line 1 column 62",
    ),
    ("truncated export", _GOOD[: len(_GOOD) // 2], "clientdata is not valid JSON: "),
    (
        "non-string keys",
        '{1: {"definition": {}}}',
        "clientdata is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 2",
    ),
    ("single quotes", "{'properties': {}}", "clientdata is not valid JSON: "),
    ("empty text", "", "clientdata is empty"),
    ("blank text", " \n\t ", "clientdata is empty"),
    ("null clientdata", None, "clientdata is empty"),
    ("NaN from pandas", float("nan"), "clientdata is empty"),
    ("not text", 42, "clientdata is not text (int)"),
    ("bad UTF-8 bytes", b'{"a": "\xff"}', "clientdata is not UTF-8 text"),
    ("JSON list", "[1, 2]", "clientdata is not a JSON object (it is a list)"),
    ("JSON string", '"hello"', "clientdata is not a JSON object (it is a string)"),
    ("JSON null", "null", "clientdata is not a JSON object (it is null)"),
    ("JSON number", "3.5", "clientdata is not a JSON object (it is a number)"),
    ("empty object", "{}", "no `definition` object"),
    ("unrelated object", '{"name": "x", "type": "Microsoft.Flow/flows"}', "no `definition` object"),
    ("missing definition", '{"properties": {"displayName": "x"}}', "no `definition` object"),
    ("null definition", '{"properties": {"definition": null}}', "no `definition` object"),
    ("properties not an object", '{"properties": "x"}', "`properties` is not an object"),
    (
        "definition not an object",
        '{"properties": {"definition": [1]}}',
        "`definition` is not an object (it is a list)",
    ),
    (
        "triggers not an object",
        '{"triggers": ["manual"], "actions": {}}',
        "`triggers` is not an object (it is a list)",
    ),
    (
        "actions not an object",
        _definition(_MANUAL, "oops"),
        "`actions` is not an object (it is a string)",
    ),
    ("nesting 1000 deep", _nested(1000), "clientdata is nested too deeply to parse"),
    (
        "integer literal of 5000 digits",
        '{"triggers": {}, "retry": ' + "9" * 5000 + "}",
        "clientdata is not valid JSON: Exceeds the limit",
    ),
    # Parsed, with what could be read:
    ("byte-order mark", "\ufeff" + _GOOD, _expect_actions(6)),
    ("bytes", _GOOD.encode("utf-8"), _expect_actions(6)),
    ("definition at the top", json.dumps({"definition": {"actions": {}}}), _expect_actions(0)),
    ("empty definition", '{"properties": {"definition": {}}}', _check_no_trigger),
    (
        "trigger without inputs",
        _definition({"t": {"type": "OpenApiConnectionWebhook"}}),
        _check_trigger_without_inputs,
    ),
    ("no trigger", _definition({}, {"A": {"type": "Compose"}}), _check_no_trigger),
    (
        "several triggers",
        _definition({"first": {"type": "Recurrence"}, "second": {}, "third": None}),
        _check_several_triggers,
    ),
    (
        "unknown action type",
        _definition(_MANUAL, {"X": {"type": "ServiceProvider", "inputs": {}}}),
        _check_unknown_type,
    ),
    (
        "runAfter cycle",
        _definition(
            _MANUAL,
            {
                "C": {"type": "Compose", "runAfter": {"B": ["Succeeded"]}},
                "B": {"type": "Compose", "runAfter": {"A": ["Succeeded"]}},
                "A": {"type": "Compose", "runAfter": {"C": ["Succeeded"], "Start": []}},
                "Start": {"type": "Compose"},
            },
        ),
        _check_cycle,
    ),
    (
        "runAfter on itself",
        _definition(_MANUAL, {"A": {"type": "Compose", "runAfter": {"A": ["Succeeded"]}}}),
        _check_self_cycle,
    ),
    (
        "runAfter an unknown action",
        _definition(_MANUAL, {"A": {"type": "Compose", "runAfter": {"Ghost": ["Failed"]}}}),
        _check_unknown_pred,
    ),
    (
        "action not an object",
        _definition(_MANUAL, {"Junk": [1, 2], "Fine": {"type": "Compose"}}),
        _check_action_not_object,
    ),
    (
        "null everywhere",
        _definition(
            {"t": None},
            {
                "a": None,
                "b": {
                    "type": None,
                    "inputs": None,
                    "runAfter": None,
                    "actions": None,
                    "else": None,
                    "cases": None,
                    "limit": None,
                    "runtimeConfiguration": None,
                },
            },
        ),
        _check_nulls,
    ),
    (
        "wrong value types",
        _definition(
            {
                "t": {
                    "type": "OpenApiConnectionWebhook",
                    "kind": 5,
                    "inputs": {
                        "host": {
                            "apiId": "/providers/Microsoft.PowerApps/apis/"
                            "shared_commondataserviceforapps",
                            "operationId": "SubscribeWebhookTrigger",
                        },
                        "parameters": {
                            "subscriptionRequest/message": "3",
                            "subscriptionRequest/scope": True,
                            "subscriptionRequest/runas": 99.5,
                            "subscriptionRequest/filteringattributes": ["name"],
                        },
                    },
                    "recurrence": "often",
                    "conditions": "not a list",
                    "runtimeConfiguration": {"concurrency": {"runs": "many"}},
                }
            },
            {
                "A": {
                    "type": 7,
                    "kind": [],
                    "inputs": {"retryPolicy": {"type": 1, "count": 1e300}, "host": []},
                    "runAfter": {"": "Succeeded"},
                }
            },
        ),
        _check_wrong_types,
    ),
    (
        "unknown Dataverse message",
        _definition(
            {
                "t": {
                    "type": "OpenApiConnectionWebhook",
                    "inputs": {
                        "host": {
                            "connectionName": "shared_commondataserviceforapps",
                            "operationId": "SubscribeWebhookTrigger",
                        },
                        "parameters": {"subscriptionRequest/message": 42},
                    },
                }
            }
        ),
        _check_unknown_message,
    ),
    (
        "1 MB strings",
        _definition(
            {
                "t": {
                    "type": "OpenApiConnectionWebhook",
                    "inputs": {
                        "host": {
                            "connectionName": "shared_commondataserviceforapps",
                            "operationId": "SubscribeWebhookTrigger",
                        },
                        "parameters": {"subscriptionRequest/filterexpression": "x" * 1_000_000},
                    },
                }
            },
            {"N" * 1_000_000: {"type": "Compose", "inputs": "y" * 1_000_000}},
        ),
        _check_huge,
    ),
    (
        "lone surrogates",
        '{"triggers": {"t": {"type": "Request", "conditions": [{"expression": '
        '"@equals(1, \\ud800)"}]}}, "actions": {"A\\udfff": {"type": "Compose"}}}',
        _check_surrogates,
    ),
    ("nesting 100 deep", _nested(100), _check_deep_but_parsable),
    (
        "odd containers",
        _definition(
            _MANUAL,
            {
                "S": {
                    "type": "Switch",
                    "cases": {
                        "Case_1": {"actions": {"Inside": {"type": "Compose"}}},
                        "Case_2": None,
                        "Case_3": {"actions": [1]},
                    },
                    "default": "x",
                    "else": {"actions": {}},
                },
            },
        ),
        _check_odd_containers,
    ),
    (
        "odd conditions",
        _definition(
            {
                "t": {
                    "type": "Recurrence",
                    "conditions": [
                        {"expression": "@true"},
                        {"expression": {"and": [1]}},
                        {"expression": ""},
                        "@bare",
                        None,
                        {"noexpression": 1},
                    ],
                }
            }
        ),
        _check_odd_conditions,
    ),
    (
        "odd runAfter",
        _definition(
            _MANUAL,
            {
                "A": {"type": "Compose", "runAfter": {}},
                "B": {"type": "Compose", "runAfter": {"A": "FAILED"}},
                "C": {"type": "Compose", "runAfter": ["A"]},
            },
        ),
        _check_odd_run_after,
    ),
    (
        "NaN and Infinity literals",
        '{"triggers": {"t": {"type": "Recurrence", "recurrence": {"interval": NaN}}},'
        ' "actions": {"A": {"type": "Foreach", "runtimeConfiguration": {"concurrency": '
        '{"repetitions": Infinity}}}}}',
        _expect_actions(1),
    ),
]


def test_the_malformed_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 25
    assert sum(isinstance(expected, str) for _, _, expected in MALFORMED) >= 20


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in MALFORMED], ids=[case for case, _, _ in MALFORMED]
)
def test_malformed_definition_gives_an_error_or_a_parse(text: Any, expected: str | Check) -> None:
    parsed = _parse(text)
    if isinstance(expected, str):
        assert parsed.error is not None
        assert parsed.error.startswith(expected), parsed.error
        assert (parsed.trigger, parsed.actions) == (None, [])
    else:
        assert parsed.error is None, parsed.error
        expected(parsed)


def test_definition_frames_on_the_malformed_corpus_keeps_columns_and_dtypes() -> None:
    flows = pd.DataFrame(
        {
            "environment_id": "env-1",
            "flow_id": [f"flow-{i}" for i in range(len(MALFORMED))],
            "definition_text": pd.Series([t for _, t, _ in MALFORMED], dtype=object),
        }
    )
    triggers, actions, errors = definition_frames(flows)
    assert tuple(triggers.columns) == TRIGGER_COLUMNS
    assert tuple(actions.columns) == ACTION_COLUMNS
    assert tuple(errors.columns) == ERROR_COLUMNS
    broken = {f"flow-{i}" for i, (_, _, e) in enumerate(MALFORMED) if isinstance(e, str)}
    assert set(errors["flow_id"]) == broken
    assert errors["error"].notna().all()
    assert str(actions["depth"].dtype) == "int64"
    assert str(actions["retry_count"].dtype) == "Int64"
    assert str(triggers["dataverse_message"].dtype) == "Int64"
    assert actions["is_effect"].dtype == bool


def _mutations(text: str, rng: random.Random) -> Iterator[str]:
    """Damaged copies of a real-shaped export: cuts, nulls and type swaps at random places."""
    for _ in range(40):
        cut = rng.randrange(len(text))
        yield text[:cut]
        yield text[:cut] + text[cut + 1 :]
    document = json.loads(text)
    paths: list[tuple[Any, Any]] = []
    todo = [document]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            paths.append((node, key))
            if isinstance(value, dict | list):
                todo.append(value)
    for node, key in rng.sample(paths, min(60, len(paths))):
        original = node[key]
        for replacement in (None, 0, "", [], {}, "x" * 10, True):
            node[key] = replacement
            yield json.dumps(document)
        node[key] = original


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_damaged_exports_never_raise(name: str) -> None:
    rng = random.Random(name)
    texts = list(_mutations(_text(name), rng))
    frames = definition_frames(
        pd.DataFrame(
            {
                "environment_id": "env-1",
                "flow_id": [f"f{i}" for i in range(len(texts))],
                "definition_text": texts,
            }
        )
    )
    assert sum(len(f) for f in frames) > 0
    for text in texts:
        parsed = _parse(text)
        assert parsed.error is None or parsed.error.startswith(
            ("clientdata", "no `definition`", "`")
        )


# definition_frames ------------------------------------------------------------------------


def test_definition_frames_mixes_good_and_broken_rows() -> None:
    flows = pd.DataFrame(
        {
            "environment_id": ["env-1", "env-1", "env-2", "env-2"],
            "flow_id": ["good-1", "broken", "good-2", "missing"],
            "definition_text": [
                _text("BACoreApprovalTime-out-A696980C-5FD0-EC11-A7B5-0022486DABEE.json"),
                '{"properties": {"definition": {"triggers": 5}}}',
                _text("controls.bare-definition.json"),
                None,
            ],
        }
    )
    triggers, actions, errors = definition_frames(flows)
    assert tuple(triggers.columns) == TRIGGER_COLUMNS
    assert tuple(actions.columns) == ACTION_COLUMNS
    assert tuple(errors.columns) == ERROR_COLUMNS
    assert triggers["flow_id"].tolist() == ["good-1", "good-2"]
    assert triggers["dataverse_message"].tolist()[0] == 3
    assert pd.isna(triggers["dataverse_message"].tolist()[1])
    assert actions.groupby("flow_id").size().to_dict() == {"good-1": 7, "good-2": 14}
    assert errors.to_dict("records") == [
        {
            "environment_id": "env-1",
            "flow_id": "broken",
            "error": "`triggers` is not an object (it is a number)",
        },
        {"environment_id": "env-2", "flow_id": "missing", "error": "clientdata is empty"},
    ]
    assert actions.loc[actions["depth"] == 1, "parent"].isna().all()
    assert (actions.loc[actions["depth"] == 1, "scope_path"] == "").all()


def test_a_bug_on_one_definition_costs_that_flow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.analysis.definitions as definitions

    def broken(*args: Any) -> list[dict[str, Any]]:
        raise KeyError("boom")

    monkeypatch.setattr(definitions, "action_rows", broken)
    parsed = _parse(_text("Try-Catch-Finally.definition.json"))
    assert parsed.error == "definition not analysed: KeyError: 'boom'"
    assert (parsed.trigger, parsed.actions) == (None, [])


def test_definition_frames_on_nothing_and_missing_columns() -> None:
    empty = pd.DataFrame({"environment_id": [], "flow_id": [], "definition_text": []})
    triggers, actions, errors = definition_frames(empty)
    assert (len(triggers), len(actions), len(errors)) == (0, 0, 0)
    assert tuple(actions.columns) == ACTION_COLUMNS
    assert str(actions["order"].dtype) == "int64"
    with pytest.raises(ValueError, match="definition_text"):
        definition_frames(pd.DataFrame({"environment_id": [], "flow_id": []}))


# Repeated blocks --------------------------------------------------------------------------


def _block_flow(names: list[str], ops: list[tuple[str, str, str]], prefix: str = "") -> str:
    """A flow whose top level is `Init` followed by the given actions, chained by runAfter."""
    actions: dict[str, Any] = {"Init": {"type": "InitializeVariable", "runAfter": {}}}
    previous = "Init"
    for name, (typ, api, op) in zip(names, ops, strict=True):
        action: dict[str, Any] = {"type": typ, "runAfter": {previous: ["Succeeded"]}}
        if api:
            action["inputs"] = {
                "host": {"apiId": f"/providers/Microsoft.PowerApps/apis/{api}", "operationId": op}
            }
        elif op:
            action["inputs"] = {"method": op, "uri": "https://example.test"}
        actions[prefix + name] = action
        previous = prefix + name
    # Written in reverse order: the order comes from runAfter, not from the document.
    return json.dumps({"triggers": _MANUAL, "actions": dict(reversed(actions.items()))})


_BLOCK = [
    ("OpenApiConnection", "shared_sharepointonline", "GetItem"),
    ("ParseJson", "", ""),
    ("Compose", "", ""),
    ("OpenApiConnection", "shared_commondataserviceforapps", "UpdateRecord"),
    ("Http", "", "POST"),
]


def test_block_signatures_find_a_block_copied_into_three_flows_under_other_names() -> None:
    texts = {
        "f1": _block_flow(["Get_item", "Parse", "Compose", "Update", "Notify"], _BLOCK),
        "f2": _block_flow(["A", "B", "C", "D", "E"], _BLOCK, prefix="copy_"),
        "f3": _block_flow(["Get_details", "Parse_2", "Compose_2", "Update_2", "HTTP"], _BLOCK),
        "shuffled": _block_flow(["a", "b", "c", "d", "e"], [_BLOCK[i] for i in (0, 2, 1, 3, 4)]),
    }
    flows = pd.DataFrame(
        {"environment_id": "env-1", "flow_id": list(texts), "definition_text": list(texts.values())}
    )
    _, actions, errors = definition_frames(flows)
    assert errors.empty
    blocks = block_signatures(actions, min_length=5)
    assert tuple(blocks.columns) == BLOCK_COLUMNS
    five = blocks[blocks["length"] == 5]
    # Init + 5 actions: windows start at Init and at the first block action.
    starts = five[five["start_action"] != "Init"]
    shared = starts.groupby("signature")["flow_id"].apply(set)
    assert {"f1", "f2", "f3"} in shared.tolist()
    assert not any("shuffled" in flows_ for flows_ in shared.tolist() if len(flows_) > 1)
    row = starts[starts["flow_id"] == "f2"].iloc[0]
    assert (row["start_action"], row["scope_path"]) == ("copy_A", "")
    assert set(blocks["length"]) == {5, 6}
    # Same input, same signatures: a stable hash, not Python's randomised hash().
    assert block_signatures(actions, min_length=5).equals(blocks)


def test_block_signatures_are_equal_exactly_when_sequences_are_equal() -> None:
    rng = np.random.default_rng(3)
    kinds = ["Compose", "ParseJson", "Http", "OpenApiConnection"]
    rows = []
    sequences: dict[tuple[str, str], list[str]] = {}
    for flow in range(30):
        size = int(rng.integers(0, 9))
        for scope in ("", "Try"):
            seq = [kinds[int(k)] for k in rng.integers(0, 2, size)]
            sequences[(f"f{flow}", scope)] = seq
            for order, typ in enumerate(seq, start=1):
                rows.append(
                    {
                        "environment_id": "e",
                        "flow_id": f"f{flow}",
                        "scope_path": scope,
                        "order": order,
                        "action_name": f"n{order}",
                        "type": typ,
                        "connector": None,
                        "operation": None,
                        "method": None,
                    }
                )
    blocks = block_signatures(pd.DataFrame(rows), min_length=3, max_length=6)
    expected = 0
    by_signature: dict[str, tuple[str, ...]] = {}
    by_sequence: dict[tuple[str, ...], str] = {}
    for seq in sequences.values():
        for length in range(3, 7):
            expected += max(0, len(seq) - length + 1)
    assert len(blocks) == expected
    for row in blocks.itertuples():
        start = int(row.start_action[1:]) - 1
        seq = tuple(sequences[(row.flow_id, row.scope_path)][start : start + row.length])
        assert len(seq) == row.length
        assert by_signature.setdefault(row.signature, seq) == seq
        assert by_sequence.setdefault(seq, row.signature) == row.signature
    assert len(by_sequence) > 50  # enough distinct sequences for the check to mean something


def test_block_signatures_on_small_and_empty_frames() -> None:
    _, actions, _ = definition_frames(
        pd.DataFrame(
            {
                "environment_id": ["env-1"],
                "flow_id": ["f"],
                "definition_text": [_text("Try-Catch-Finally.definition.json")],
            }
        )
    )
    assert block_signatures(actions, min_length=5).empty  # no scope has 5 actions
    assert tuple(block_signatures(actions.iloc[0:0]).columns) == BLOCK_COLUMNS
    with pytest.raises(ValueError, match="min_length"):
        block_signatures(actions, min_length=6, max_length=5)
