"""flow-invoked-no-response: a flow its caller waits on must answer, on failure too.

Invoked: a Request trigger of kind Http, PowerApp or PowerAppV2, or a flow some enabled flow
of the environment calls with a `Workflow` action (R-INVOKED in tests/corpus/README.md).
Every path that ends the run Succeeded needs a Response; a path that ends Failed or
Cancelled is seen as a failure by the caller. A catch that ends the run Succeeded without a
Response, and a success answered after a failure, both fail (`analysis.response_paths`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.checks.builders import (
    after,
    connector_action,
    environment,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-invoked-no-response"
CHILD_ID = "6f0c6c62-1111-2222-3333-444455556666"
HTTP = {"type": "Request", "kind": "Http", "inputs": {"schema": {}}}
RESPONSE = {"type": "Response", "kind": "Http", "inputs": {"statusCode": 200}}
RESPONSE_ERROR = {"type": "Response", "kind": "Http", "inputs": {"statusCode": 500}}
TERMINATE_FAILED = {
    "type": "Terminate",
    "inputs": {"runStatus": "Failed", "runError": {"code": "500", "message": "failed"}},
}
NOTE = {"type": "Compose", "inputs": "@result('Try')"}


def try_catch(
    catch: Mapping[str, Any] | None = None,
    *,
    respond: bool = True,
    catch_on: Sequence[str] = ("FAILED", "TIMEDOUT"),
) -> dict[str, Any]:
    """A Try scope, a Response after it succeeded, and a Catch scope run after it failed
    holding `catch` (nothing when None: no failure branch at all)."""
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


def test_answers_on_every_path_pass_a_silent_path_fails() -> None:
    """A Response when the work succeeds and an error Response when it fails pass; without
    any catch a failure ends the run Failed, which the caller sees as a failure. A flow with
    no Response, or a catch that ends the run Succeeded without answering, fails."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("good", try_catch({"Respond_error": RESPONSE_ERROR}), HTTP),
                flow("no-catch", try_catch(None), HTTP),
                flow("no-response", try_catch({"Stop": TERMINATE_FAILED}, respond=False), HTTP),
                flow("silent-catch", try_catch({"Note": NOTE}), HTTP),
            ]
        ),
    )
    assert statuses(found) == {
        "good": "pass",
        "no-catch": "pass",
        "no-response": "fail",
        "silent-catch": "fail",
    }
    by_id = {f.resource_id: f for f in found}
    assert by_id["good"].values["response_actions"] == 2
    assert by_id["good"].values["paths_without_response"] == 0
    assert by_id["no-response"].values["response_actions"] == 0
    assert "has no Response" in by_id["no-response"].message
    assert by_id["silent-catch"].values["paths_without_response"] == 1
    assert (
        "a catch ends the run Succeeded without a Response: 'Catch' (after 'Try' fails)"
        in by_id["silent-catch"].message
    )


@pytest.mark.parametrize(
    ("kind", "gets"),
    [
        ("Http", "202 Accepted at once and no result"),
        ("PowerApp", "no outputs"),
        ("PowerAppV2", "no outputs"),
    ],
)
def test_no_response_at_all_tells_what_the_caller_gets(kind: str, gets: str) -> None:
    """An HTTP caller gets 202 Accepted at once; an app gets no outputs."""
    trigger = {"type": "Request", "kind": kind}
    found = run(CHECK, frames(flows=[flow("f", {"Compose": {"type": "Compose"}}, trigger)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["trigger_kind"] == kind
    assert found[0].values["response_actions"] == 0
    assert f"has no Response: the caller gets {gets}" in found[0].message


def test_button_flow_is_not_invoked() -> None:
    """A manually triggered flow answers nobody: outside the rule."""
    found = run(CHECK, frames(flows=[flow("button", {"Compose": {"type": "Compose"}})]))
    assert found == []


@pytest.mark.parametrize(
    ("status", "verdict"), [("Failed", "pass"), ("Cancelled", "pass"), ("Succeeded", "fail")]
)
def test_terminate_on_the_failure_branch(status: str, verdict: str) -> None:
    """Terminate Failed or Cancelled ends the run not Succeeded: the caller sees a failure.
    Terminate Succeeded ends it Succeeded without an answer: success on failure."""
    stop = {"type": "Terminate", "inputs": {"runStatus": status}}
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Stop": stop}), HTTP)]))
    assert statuses(found) == {"f": verdict}
    assert found[0].values["success_on_failure"] == (1 if verdict == "fail" else 0)
    if verdict == "fail":
        assert "answers success after a failure (after 'Try' fails)" in found[0].message


def test_a_tolerating_edge_starts_no_failure_branch() -> None:
    """[Succeeded, Failed] tolerates the failure: the Response answers either way and the
    Terminate Succeeded after it is no success on failure."""
    actions = {
        "Update_row": connector_action(),
        "Respond": after(RESPONSE, {"Update_row": ["Succeeded", "Failed"]}),
        "Stop": after(
            {"type": "Terminate", "inputs": {"runStatus": "Succeeded"}}, {"Respond": ["Succeeded"]}
        ),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["success_on_failure"] == 0


@pytest.mark.parametrize(
    ("catch_on", "is_branch"),
    [
        (["FAILED"], True),
        (["Failed", "TIMEDOUT"], True),
        (["failed", "Skipped"], True),
        (["Skipped"], False),
        (["SUCCEEDED"], False),
        (["SUCCEEDED", "FAILED"], False),
    ],
)
def test_catch_statuses_are_compared_case_insensitively(
    catch_on: list[str], is_branch: bool
) -> None:
    """Exports hold "FAILED" as often as "Failed"; Skipped or Succeeded start no branch, and
    Succeeded with Failed tolerates the failure. A Compose-only catch answers nobody."""
    found = run(
        CHECK,
        frames(flows=[flow("f", try_catch({"Note": NOTE}, catch_on=catch_on), HTTP)]),
    )
    assert statuses(found) == {"f": "fail" if is_branch else "pass"}
    assert found[0].values["paths_without_response"] == int(is_branch)


def test_a_response_on_one_branch_of_a_condition_leaves_the_other_unanswered() -> None:
    """Then answers, else (empty) ends the run Succeeded with the caller still waiting."""

    def condition(else_actions: dict[str, Any]) -> dict[str, Any]:
        return {
            "Check": {
                "type": "If",
                "expression": {"equals": ["@triggerBody()?['ok']", True]},
                "actions": {"Respond": dict(RESPONSE, runAfter={})},
                "else": {"actions": else_actions},
                "runAfter": {},
            }
        }

    found = run(
        CHECK,
        frames(
            flows=[
                flow("then-only", condition({}), HTTP),
                flow("both", condition({"Respond_no": dict(RESPONSE_ERROR, runAfter={})}), HTTP),
                flow("else-fails", condition({"Stop": dict(TERMINATE_FAILED, runAfter={})}), HTTP),
            ]
        ),
    )
    assert statuses(found) == {"then-only": "fail", "both": "pass", "else-fails": "pass"}
    failing = next(f for f in found if f.resource_id == "then-only")
    assert "ends Succeeded without a Response at 'Check' (else)" in failing.message
    assert failing.values["paths_without_response"] == 1


@pytest.mark.parametrize(
    ("inputs", "verdict"),
    [
        pytest.param({"statusCode": 200}, "fail", id="200"),
        pytest.param({"statusCode": 200, "body": {"id": "@{guid()}"}}, "fail", id="200-data"),
        pytest.param({"statusCode": 200, "body": {"status": "failed"}}, "pass", id="status"),
        pytest.param({"statusCode": 500}, "pass", id="500"),
    ],
)
def test_a_success_answered_in_a_catch_hides_the_failure(
    inputs: dict[str, Any], verdict: str
) -> None:
    """A 2xx with no status field in the body, answered after a failure, is success on
    failure; a status field or an error status tells the caller."""
    answer = {"type": "Response", "kind": "Http", "inputs": inputs}
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Answer": answer}), HTTP)]))
    assert statuses(found) == {"f": verdict}
    assert found[0].values["success_on_failure"] == (1 if verdict == "fail" else 0)


def test_report_nested_deep_in_the_catch_scope_counts() -> None:
    """Everything nested in the catch action belongs to its branch."""
    catch = {
        "Check_error": {
            "type": "If",
            "expression": {"equals": [1, 1]},
            "actions": {"Stop": TERMINATE_FAILED},
            "else": {"actions": {"Respond_error": RESPONSE_ERROR}},
        }
    }
    found = run(CHECK, frames(flows=[flow("f", try_catch(catch), HTTP)]))
    assert statuses(found) == {"f": "pass"}


def test_an_answer_running_after_the_catch_action_counts() -> None:
    """Later actions of the catch action's container that run only after it belong to its
    branch: the data it composes reaches the caller in an error Response."""
    actions = {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Respond": after(RESPONSE, {"Try": ["Succeeded"]}),
        "Note_error": after(NOTE, {"Try": ["Failed"]}),
        "Log_error": after(connector_action("CreateRecord"), {"Note_error": ["Succeeded"]}),
        "Respond_error": after(RESPONSE_ERROR, {"Log_error": ["Succeeded"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["paths_without_response"] == 0


def test_a_nested_catch_is_answered_by_a_response_after_its_container() -> None:
    """A failure inside Outer makes Outer Failed (R-SCOPE): an error Response that runs after
    Outer [Failed] answers the caller, even though the inner catch only composes."""
    actions = {
        "Outer": {
            "type": "Scope",
            "actions": {
                "Inner": {"type": "Scope", "actions": {"Update_row": connector_action()}},
                "Inner_catch": after(NOTE, {"Inner": ["Failed"]}),
            },
        },
        "Respond": after(RESPONSE, {"Outer": ["Succeeded"]}),
        "Respond_error": after(RESPONSE_ERROR, {"Outer": ["Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["paths_without_response"] == 0


def test_a_terminate_failed_beside_the_failure_branch_does_not_count() -> None:
    """A Terminate Failed that runs after the Try succeeded is not on the catch's branch:
    the catch still ends the run Succeeded without a Response."""
    actions = {
        **try_catch({"Note": NOTE}),
        "Stop": after(TERMINATE_FAILED, {"Respond": ["Succeeded"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions, HTTP)]))
    assert statuses(found) == {"f": "fail"}
    assert "'Catch' (after 'Try' fails)" in found[0].message


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
    assert "invoked by 1 parent flow(s); has no Response: the caller gets no outputs" in (
        found[0].message
    )


def test_child_flow_answering_on_both_paths_passes() -> None:
    """The child ends with 'Respond to a PowerApp or flow' on success and on failure."""
    failed = {"type": "Response", "kind": "PowerApp", "inputs": {"body": {"success": False}}}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("parent-1", call_child()),
                flow("parent-2", call_child(CHILD_ID.upper())),
                flow("child", try_catch({"Respond_error": failed}), workflowid=CHILD_ID),
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
                flow("stopped", try_catch(None, respond=False), HTTP, state="Stopped"),
                flow("parent", call_child()),
                flow("stopped-child", try_catch(None), state="Stopped", workflowid=CHILD_ID),
            ]
        ),
    )
    assert found == []
