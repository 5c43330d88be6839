"""flow-invoked-no-response: a flow its caller waits on must answer, on failure too.

Invoked: a Request trigger of kind Http, PowerApp or PowerAppV2, or a flow some enabled flow
of the environment calls with a `Workflow` action. It needs a Response action and a catch
path (runAfter Failed / TimedOut) holding a Response or a Terminate with runStatus Failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    connector_action,
    environment,
    flow,
    frames,
    query_outcomes,
    run,
    statuses,
)

CHECK = "flow-invoked-no-response"
CHILD_ID = "6f0c6c62-1111-2222-3333-444455556666"
HTTP = {"type": "Request", "kind": "Http", "inputs": {"schema": {}}}
RESPONSE = {"type": "Response", "kind": "Http", "inputs": {"statusCode": 200}}
TERMINATE_FAILED = {
    "type": "Terminate",
    "inputs": {"runStatus": "Failed", "runError": {"code": "500", "message": "failed"}},
}


def after(action: Mapping[str, Any], run_after: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The action, run after the given predecessors and statuses."""
    return {**action, "runAfter": {k: list(v) for k, v in run_after.items()}}


def try_catch(
    catch: Mapping[str, Any] | None = None,
    *,
    respond: bool = True,
    catch_on: Sequence[str] = ("FAILED", "TIMEDOUT"),
) -> dict[str, Any]:
    """A Try scope, a Response after it succeeded, and a Catch scope run after it failed
    holding `catch` (nothing when None: no catch path at all)."""
    actions: dict[str, Any] = {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}, "runAfter": {}},
    }
    if respond:
        actions["Respond"] = after(RESPONSE, {"Try": ["Succeeded"]})
    if catch is not None:
        actions["Catch"] = {
            "type": "Scope",
            "actions": dict(catch),
            "runAfter": {"Try": list(catch_on)},
        }
    return actions


def call_child(workflowid: str = CHILD_ID) -> dict[str, Any]:
    """A parent's actions: run the child flow."""
    return {
        "Run_child": {
            "type": "Workflow",
            "inputs": {"host": {"workflowReferenceName": workflowid}},
            "runAfter": {},
        }
    }


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def test_response_and_reporting_catch_pass_missing_either_fails() -> None:
    """Both are needed: a Response for success, a reporting catch path for failure."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("good", try_catch({"Respond_error": RESPONSE}), HTTP),
                flow("no-catch", try_catch(None), HTTP),
                flow("no-response", try_catch({"Stop": TERMINATE_FAILED}, respond=False), HTTP),
            ]
        ),
    )
    assert statuses(found) == {"good": "pass", "no-catch": "fail", "no-response": "fail"}
    by_id = {f.resource_id: f.values for f in found}
    assert (by_id["good"]["response_actions"], by_id["good"]["reporting_catch_paths"]) == (2, 1)
    assert (by_id["no-catch"]["response_actions"], by_id["no-catch"]["catch_paths"]) == (1, 0)
    assert by_id["no-response"]["response_actions"] == 0
    assert by_id["no-response"]["reporting_catch_paths"] == 1


@pytest.mark.parametrize("kind", ["Http", "PowerApp", "PowerAppV2"])
def test_request_kinds_that_wait_for_an_answer_are_judged(kind: str) -> None:
    """HTTP callers and Power Apps wait for the flow's answer."""
    trigger = {"type": "Request", "kind": kind}
    found = run(CHECK, frames(flows=[flow("f", {"Compose": {"type": "Compose"}}, trigger)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["trigger_kind"] == kind


def test_button_flow_is_not_invoked() -> None:
    """A manually triggered flow answers nobody: outside the rule."""
    found = run(CHECK, frames(flows=[flow("button", {"Compose": {"type": "Compose"}})]))
    assert found == []


@pytest.mark.parametrize(
    ("status", "verdict"), [("Failed", "pass"), ("Succeeded", "fail"), ("Cancelled", "fail")]
)
def test_only_terminate_failed_reports_the_failure(status: str, verdict: str) -> None:
    """Terminate Succeeded or Cancelled on the failure path tells the caller nothing useful."""
    stop = {"type": "Terminate", "inputs": {"runStatus": status}}
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Stop": stop}), HTTP)]))
    assert statuses(found) == {"f": verdict}
    assert found[0].values["catch_paths"] == 1
    assert found[0].values["reporting_catch_paths"] == (1 if verdict == "pass" else 0)


@pytest.mark.parametrize(
    ("catch_on", "is_catch"),
    [
        (["FAILED"], True),
        (["TimedOut"], True),
        (["timedout", "Skipped"], True),
        (["Skipped"], False),
        (["SUCCEEDED"], False),
    ],
)
def test_catch_statuses_are_compared_case_insensitively(
    catch_on: list[str], is_catch: bool
) -> None:
    """Exports hold "FAILED" as often as "Failed"; Skipped or Succeeded catch nothing."""
    found = run(
        CHECK,
        frames(flows=[flow("f", try_catch({"Respond_error": RESPONSE}, catch_on=catch_on), HTTP)]),
    )
    assert statuses(found) == {"f": "pass" if is_catch else "fail"}
    assert found[0].values["catch_paths"] == int(is_catch)


def test_report_nested_deep_in_the_catch_scope_counts() -> None:
    """Everything nested in the catch action belongs to its path."""
    catch = {
        "Check_error": {
            "type": "If",
            "expression": {"equals": [1, 1]},
            "actions": {"Stop": TERMINATE_FAILED},
            "else": {"actions": {"Log": {"type": "Compose", "inputs": "x"}}},
        }
    }
    found = run(CHECK, frames(flows=[flow("f", try_catch(catch), HTTP)]))
    assert statuses(found) == {"f": "pass"}


def test_report_running_after_the_catch_action_counts() -> None:
    """Later actions of the catch action's container that run after it, transitively,
    belong to its path."""
    actions = {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Respond": after(RESPONSE, {"Try": ["Succeeded"]}),
        "Note_error": after({"type": "Compose", "inputs": "x"}, {"Try": ["Failed"]}),
        "Log_error": after(connector_action("CreateRecord"), {"Note_error": ["Succeeded"]}),
        "Respond_error": after(RESPONSE, {"Log_error": ["Succeeded"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["reporting_catch_paths"] == 1


def test_report_outside_the_catch_path_does_not_count() -> None:
    """A Terminate Failed in the outer container is not on a catch path nested in a scope."""
    actions = {
        "Outer": {
            "type": "Scope",
            "actions": {
                "Inner": {"type": "Scope", "actions": {"Update_row": connector_action()}},
                "Inner_catch": after({"type": "Compose", "inputs": "x"}, {"Inner": ["Failed"]}),
            },
        },
        "Respond": after(RESPONSE, {"Outer": ["Succeeded"]}),
        "Stop": after(TERMINATE_FAILED, {"Outer": ["Succeeded"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "fail"}
    assert (found[0].values["catch_paths"], found[0].values["reporting_catch_paths"]) == (1, 0)


def test_child_flow_called_by_an_enabled_flow_is_judged() -> None:
    """A parent's Run a Child Flow waits on the child: its trigger kind does not matter."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("parent", call_child()),
                flow("child", {"Compose": {"type": "Compose"}}, workflowid=CHILD_ID),
                flow("uncalled", workflowid="6f0c6c62-0000-0000-0000-000000000000"),
            ]
        ),
    )
    assert statuses(found) == {"child": "fail"}
    assert found[0].values["called_by"] == 1
    assert found[0].values["trigger_kind"] == "Button"


def test_child_flow_answering_on_both_paths_passes() -> None:
    """The child ends with 'Respond to a PowerApp or flow' on success and on failure."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("parent-1", call_child()),
                flow("parent-2", call_child(CHILD_ID.upper())),
                flow("child", try_catch({"Respond_error": RESPONSE}), workflowid=CHILD_ID),
            ]
        ),
    )
    assert statuses(found) == {"child": "pass"}
    assert found[0].values["called_by"] == 2


def test_callers_are_counted_once_and_within_their_environment() -> None:
    """Two calls from one parent are one caller; a flow of another environment with the
    same child id calls a different flow."""
    twice = {
        **call_child(),
        "Run_again": {
            "type": "Workflow",
            "inputs": {"host": {"workflowReferenceName": CHILD_ID}},
            "runAfter": {"Run_child": ["Succeeded"]},
        },
    }
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment("env-2", "Fabrikam")],
            flows=[
                flow("parent", twice),
                flow("child", {"Compose": {"type": "Compose"}}, workflowid=CHILD_ID),
                flow("other-parent", call_child(), env="env-2"),
            ],
        ),
    )
    assert statuses(found) == {"child": "fail"}
    assert found[0].values["called_by"] == 1


def test_child_flow_called_only_by_a_stopped_flow_is_not_invoked() -> None:
    """A stopped parent calls nobody: nothing waits on the child."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("parent", call_child(), state="Stopped"),
                flow("child", {"Compose": {"type": "Compose"}}, workflowid=CHILD_ID),
            ]
        ),
    )
    assert found == []


def test_disabled_invoked_flow_is_ignored() -> None:
    """A stopped flow answers no call."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", try_catch(None), HTTP, state="Stopped"),
                flow("parent", call_child()),
                flow("stopped-child", try_catch(None), state="Stopped", workflowid=CHILD_ID),
            ]
        ),
    )
    assert found == []


def test_flows_not_collected_is_not_assessed_not_pass() -> None:
    """A pass needs the definitions read; a fail seen anyway stays."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("good", try_catch({"Respond_error": RESPONSE}), HTTP),
                flow("bad", try_catch(None), HTTP),
            ],
            scan_queries=outcomes_without("flows"),
        ),
    )
    assert statuses(found) == {"bad": "fail", ENV: "not-assessed"}
