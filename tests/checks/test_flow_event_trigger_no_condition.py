"""flow-event-trigger-no-condition: an event trigger filtered by the flow's first Condition
(a gate on trigger data) instead of a trigger condition (R-EVENT, tests/corpus/README.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.checks.builders import (
    connector_action,
    corpus_flow,
    dataverse_trigger,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-event-trigger-no-condition"
CONDITION = {"expression": "@contains(triggerOutputs()?['body/subject'], 'Invoice')"}
ON_TRIGGER = {"and": [{"contains": ["@triggerOutputs()?['body/subject']", "Invoice"]}]}
TERMINATE = {"type": "Terminate", "inputs": {"runStatus": "Succeeded"}}


def email_trigger(
    conditions: list[dict[str, Any]] | None = None,
    kind: str = "OpenApiConnectionNotification",
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Office 365 Outlook 'When a new email arrives (V3)'."""
    trigger: dict[str, Any] = {
        "type": kind,
        "inputs": {
            "host": {
                "apiId": "/providers/Microsoft.PowerApps/apis/shared_office365",
                "connectionName": "shared_office365",
                "operationId": "OnNewEmailV3",
            },
            "parameters": {"folderPath": "Inbox"} if parameters is None else parameters,
        },
    }
    if conditions is not None:
        trigger["conditions"] = conditions
    return trigger


def condition(
    expression: Any = None,
    yes: dict[str, Any] | None = None,
    no: dict[str, Any] | None = None,
    run_after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Condition (If) with its two branches."""
    action: dict[str, Any] = {
        "type": "If",
        "expression": ON_TRIGGER if expression is None else expression,
        "actions": dict(yes or {}),
        "runAfter": dict(run_after or {}),
    }
    if no is not None:
        action["else"] = {"actions": no}
    return action


def mail(run_after: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send an email (V2): an effect."""
    return connector_action("SendEmailV2", "shared_office365", run_after=run_after)


def gate_flow(**actions: Any) -> dict[str, Any]:
    """A mail-triggered flow with the given actions."""
    return flow("f", actions=actions, trigger=email_trigger())


# Gates ----------------------------------------------------------------------------------------


def test_first_condition_on_trigger_data_ending_the_run_fails() -> None:
    """A Terminate on one branch: every event taking it is a run that does nothing."""
    found = run(
        CHECK,
        frames(
            flows=[
                gate_flow(
                    Check_subject=condition(no={"Stop": TERMINATE}, yes={"Send": mail()}),
                    After=mail({"Check_subject": ["Succeeded"]}),
                )
            ]
        ),
    )
    assert statuses(found) == {"f": "fail"}
    finding = found[0]
    assert finding.message == (
        "'Check subject' checks trigger data and ends the run on one branch: move its "
        "expression to a trigger condition of 'manual'"
    )
    values = finding.values
    assert values["gate"] == "Check_subject"
    assert values["gate_branch"] == "else"
    assert values["gate_ends_with"] == "terminate"
    assert "triggerOutputs()?['body/subject']" in values["expression"]
    assert values["trigger_condition"] == (
        "@contains(triggerOutputs()?['body/subject'], 'Invoice')"
    )
    assert values["operation"] == "OnNewEmailV3"
    assert values["connector"] == "shared_office365"
    assert finding.evidence[0]["action_name"] == "Check_subject"


def test_empty_branch_with_nothing_after_the_condition_fails() -> None:
    """An empty else, the Condition last: the events taking else change nothing."""
    found = run(CHECK, frames(flows=[gate_flow(Check=condition(yes={"Send": mail()}))]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["gate_branch"] == "else"
    assert found[0].values["gate_ends_with"] == "nothing"


def test_branch_of_data_actions_only_counts_as_empty() -> None:
    """Setting a variable on the way out is still a run that does nothing."""
    branch = {"Note": {"type": "Compose", "inputs": "skipped", "runAfter": {}}}
    found = run(CHECK, frames(flows=[gate_flow(Check=condition(yes={"Send": mail()}, no=branch))]))
    assert statuses(found) == {"f": "fail"}


def test_empty_branch_followed_by_an_effect_passes() -> None:
    """The run goes on after the Condition: an empty branch does not make it do nothing."""
    found = run(
        CHECK,
        frames(
            flows=[
                gate_flow(
                    Check=condition(yes={"Note": {"type": "Compose", "inputs": 1}}),
                    Send=mail({"Check": ["Succeeded"]}),
                )
            ]
        ),
    )
    assert statuses(found) == {"f": "pass"}


def test_terminate_after_an_effect_is_not_a_gate() -> None:
    """A branch that notifies someone and then stops does something: it stays in the flow."""
    branch = {"Notify": mail(), "Stop": {**TERMINATE, "runAfter": {"Notify": ["Succeeded"]}}}
    found = run(CHECK, frames(flows=[gate_flow(Check=condition(yes={"Send": mail()}, no=branch))]))
    assert statuses(found) == {"f": "pass"}


def test_variable_initialisations_and_composes_before_the_gate_are_skipped() -> None:
    """Preparing values first does not hide the gate."""
    found = run(
        CHECK,
        frames(
            flows=[
                gate_flow(
                    Init={
                        "type": "InitializeVariable",
                        "inputs": {"variables": [{"name": "n", "type": "integer", "value": 0}]},
                        "runAfter": {},
                    },
                    Shape={"type": "Compose", "inputs": "x", "runAfter": {"Init": ["Succeeded"]}},
                    Check=condition(
                        no={"Stop": TERMINATE},
                        yes={"Send": mail()},
                        run_after={"Shape": ["Succeeded"]},
                    ),
                )
            ]
        ),
    )
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["gate"] == "Check"


def test_condition_after_another_action_is_not_the_first_action() -> None:
    """A Condition after a connector read is not a gate: the read ran for every event."""
    read = connector_action("GetItem", "shared_sharepointonline")
    found = run(
        CHECK,
        frames(
            flows=[
                gate_flow(
                    Read=read,
                    Check=condition(no={"Stop": TERMINATE}, run_after={"Read": ["Succeeded"]}),
                )
            ]
        ),
    )
    assert statuses(found) == {"f": "pass"}


@pytest.mark.parametrize(
    "expression",
    [
        {"equals": ["@outputs('Get_item')?['body/Status']", "Open"]},
        {"equals": ["@variables('status')", "@triggerBody()?['Status']"]},
        {"equals": ["@utcNow('yyyy')", "2026"]},
    ],
    ids=["action-output", "variable", "no-trigger-data"],
)
def test_condition_on_more_than_trigger_data_is_not_a_gate(expression: Any) -> None:
    """What a trigger condition cannot see (actions, variables) must stay in the flow."""
    found = run(
        CHECK,
        frames(flows=[gate_flow(Check=condition(expression, no={"Stop": TERMINATE}))]),
    )
    assert statuses(found) == {"f": "pass"}


def test_expression_string_condition_is_kept_as_the_trigger_condition() -> None:
    """A Condition written in the expression editor converts as is."""
    text = "@equals(triggerBody()?['importance'], 'high')"
    found = run(CHECK, frames(flows=[gate_flow(Check=condition(text, no={"Stop": TERMINATE}))]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["trigger_condition"] == text


def test_dataverse_trigger_is_judged_too() -> None:
    """The Dataverse trigger is an event trigger: a gate there belongs in Filter rows or a
    trigger condition."""
    gate = condition({"equals": ["@triggerOutputs()?['body/statecode']", 0]})
    found = run(
        CHECK,
        frames(
            flows=[
                flow("gated", actions={"Check": gate}, trigger=dataverse_trigger(3)),
                flow("plain", actions={"Send": mail()}, trigger=dataverse_trigger(1)),
            ]
        ),
    )
    assert statuses(found) == {"gated": "fail", "plain": "pass"}
    assert found[0].values["operation"] == "SubscribeWebhookTrigger"


# Passes ---------------------------------------------------------------------------------------


def test_pass_names_the_filters_that_narrow_the_trigger() -> None:
    """Parameters and trigger conditions narrow the events; the message says which."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("filtered", actions={"Send": mail()}, trigger=email_trigger([CONDITION])),
                flow("bare", actions={"Send": mail()}, trigger=email_trigger(parameters={})),
            ]
        ),
    )
    assert statuses(found) == {"filtered": "pass", "bare": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["filtered"].message.startswith(
        "'manual' is narrowed by its parameters folderPath and 1 trigger condition(s)"
    )
    assert by_id["filtered"].values["filter_parameters"] == "folderPath"
    assert by_id["filtered"].values["conditions"] == 1
    assert by_id["bare"].message.endswith("the flow acts on every event it receives")
    assert by_id["bare"].values["filter_parameters"] is None


@pytest.mark.parametrize(
    "kind",
    ["OpenApiConnection", "OpenApiConnectionWebhook", "OpenApiConnectionNotification"],
)
def test_every_connector_trigger_type_is_an_event(kind: str) -> None:
    """Polling, webhook and notification triggers all start a run per event."""
    gated = {"Check": condition(no={"Stop": TERMINATE}, yes={"Send": mail()})}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("gated", actions=gated, trigger=email_trigger(kind=kind)),
                flow("plain", actions={"Send": mail()}, trigger=email_trigger(kind=kind)),
            ]
        ),
    )
    assert statuses(found) == {"gated": "fail", "plain": "pass"}
    assert {f.values["trigger_type"] for f in found} == {kind}


def test_request_and_recurrence_triggers_are_not_judged() -> None:
    """Called and scheduled flows are not events, whatever their first Condition."""
    gated = {"Check": condition(no={"Stop": TERMINATE})}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("button", actions=gated),
                flow("http", actions=gated, trigger={"type": "Request", "kind": "Http"}),
                flow(
                    "schedule",
                    actions=gated,
                    trigger={"type": "recurrence", "recurrence": {"frequency": "Day"}},
                ),
            ]
        ),
    )
    assert found == []


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow receives no events."""
    gated = {"Check": condition(no={"Stop": TERMINATE})}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", actions=gated, trigger=email_trigger(), state="Stopped"),
                flow("started", actions=gated, trigger=email_trigger()),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}


# Real flows of tests/corpus ---------------------------------------------------------------------


def test_corpus_dataverse_flow_gated_on_the_flow_category_fails() -> None:
    """microsoft__powercat-automation-kit/AutomationKitControlCenter/SolutionPackage/src/
    Workflows/SyncAutomationScheduleCloudFlows-86FC9CEF-DD21-EF11-840A-6045BD579533.json:
    its first action, Check_for_Automated_Flow, tests triggerOutputs() category and
    clientdata; else is empty and only Parse_JSON (no effect) follows."""
    path = (
        "microsoft__powercat-automation-kit/AutomationKitControlCenter/SolutionPackage/src/"
        "Workflows/SyncAutomationScheduleCloudFlows-86FC9CEF-DD21-EF11-840A-6045BD579533.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("sync", path)]))
    assert statuses(found) == {"sync": "fail"}
    assert found[0].message.startswith("'Check for Automated Flow' checks trigger data")
    assert found[0].message.endswith("of 'When a row is added, modified or deleted'")
    assert (
        found[0]
        .values["trigger_condition"]
        .startswith("@and(equals(triggerOutputs()['body/category'], 5), contains(")
    )


def test_corpus_sharepoint_flow_gated_on_the_page_version_fails() -> None:
    """pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/
    Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json: after three
    Initialize variable actions, Check_page_version_number tests the trigger's
    {VersionNumber}; its else branch is empty and it is the last action."""
    path = (
        "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
        "Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("links", path)]))
    assert statuses(found) == {"links": "fail"}
    values = found[0].values
    assert values["gate"] == "Check_page_version_number"
    assert values["operation"] == "GetOnUpdatedFileItems"
    assert values["trigger"] == "When a file is created or modified (properties only)"
    assert values["trigger_condition"] == (
        "@endsWith(triggerOutputs()?['body/{VersionNumber}'], '.0')"
    )


def test_corpus_mail_trigger_narrowed_by_its_subject_filter_passes() -> None:
    """pnp__powerplatform-samples/samples/ai-driven-expense-report-processing/sourcecode/src/
    Workflows/AnalyzeIncomingExpenseReports-48145D99-32F9-EF11-9340-7C1E521A0E3F.json: the
    trigger When_a_new_Expense_Report_email_arrives sets subjectFilter, and the first action
    is Get_user_profile_of_the_sender, not a Condition."""
    path = (
        "pnp__powerplatform-samples/samples/ai-driven-expense-report-processing/sourcecode/src/"
        "Workflows/AnalyzeIncomingExpenseReports-48145D99-32F9-EF11-9340-7C1E521A0E3F.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("expenses", path)]))
    assert statuses(found) == {"expenses": "pass"}
    assert found[0].message.startswith(
        "'When a new Expense Report email arrives' is narrowed by its parameters subjectFilter"
    )
    assert found[0].values["operation"] == "OnNewEmailV3"


def test_corpus_condition_on_trigger_data_followed_by_the_work_passes() -> None:
    """microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/
    Workflows/BACoreRuntime-UpdateStageInstance-0D3A2E2C-A78D-EC11-8D20-000D3A09D351.json:
    Check_if_Go_To_Stage_rule_exists reads only trigger data and its else is empty, but the
    Switch Check_Instance_Status (with updates) runs after it on every event: no gate."""
    path = (
        "microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/"
        "Workflows/BACoreRuntime-UpdateStageInstance-0D3A2E2C-A78D-EC11-8D20-000D3A09D351.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("stage", path)]))
    assert statuses(found) == {"stage": "pass"}
    assert "filteringattributes" in found[0].message


def test_corpus_legacy_flagged_mail_trigger_acts_on_every_event() -> None:
    """pnp__powerautomate-samples/samples/planner-task-from-flagged-email/sourcecode/
    Microsoft.Flow/flows/d6e47e17-ac6c-4273-93e0-8da48178f6b4/definition.json: a legacy
    ApiConnectionNotification 'When an email is flagged (V2)' with no parameters or
    conditions, and no gate."""
    path = (
        "pnp__powerautomate-samples/samples/planner-task-from-flagged-email/sourcecode/"
        "Microsoft.Flow/flows/d6e47e17-ac6c-4273-93e0-8da48178f6b4/definition.json"
    )
    found = run(CHECK, frames(flows=[corpus_flow("flagged", path)]))
    assert statuses(found) == {"flagged": "pass"}
    assert found[0].message == (
        "'When an email is flagged (V2)' has no filter parameters or trigger conditions and "
        "no first Condition on trigger data ends runs: the flow acts on every event it receives"
    )
