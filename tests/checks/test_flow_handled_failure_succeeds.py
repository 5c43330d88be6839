"""flow-handled-failure-succeeds: a catch must report the failure, never as a success.

A failure branch (`analysis.failure_paths`, R-BRANCH in tests/corpus/README.md) is what runs
only because an action failed or timed out: the actions on edges listing Failed or TimedOut
but not Succeeded, what they contain and what runs only after them. Catches and empty catches
are judged; failure used as data (data actions whose result the flow reads on) is not. A
catch reports (R-REPORT) with Terminate Failed or Cancelled, a failure Response or an effect
(a notification, a log record); Terminate Succeeded and a 2xx Response with no status field
report success on failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.checks.builders import (
    after,
    connector_action,
    flow,
    frames,
    read_as_data,
    run,
    statuses,
)

CHECK = "flow-handled-failure-succeeds"
RESPONSE = {"type": "Response", "kind": "Http", "inputs": {"statusCode": 500}}
TERMINATE_FAILED = {
    "type": "Terminate",
    "inputs": {"runStatus": "Failed", "runError": {"code": "500", "message": "failed"}},
}
NOTIFY = connector_action("SendEmailV2", api="shared_office365")
NOTE = {"type": "Compose", "inputs": "@result('Try')"}


def try_catch(catch: Mapping[str, Any], *, catch_on: Sequence[str] = ("FAILED",)) -> dict[str, Any]:
    """A Try scope and a Catch scope, run after it failed, holding `catch`."""
    return {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Catch": {"type": "Scope", "actions": dict(catch), "runAfter": {"Try": list(catch_on)}},
    }


def response(status: Any = None, body: Any = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if status is not None:
        inputs["statusCode"] = status
    if body is not None:
        inputs["body"] = body
    return {"type": "Response", "kind": "Http", "inputs": inputs}


def test_catch_that_reports_nothing_fails_reporting_catches_pass() -> None:
    """A Compose nobody reads reports nothing: the run ends Succeeded. A notification (an
    effect), Terminate Failed or an error Response reports the failure."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("silent", try_catch({"Note": NOTE})),
                flow("notifies", try_catch({"Notify": NOTIFY})),
                flow("terminates", try_catch({"Note": NOTE, "Stop": TERMINATE_FAILED})),
                flow("responds", try_catch({"Respond_error": RESPONSE})),
            ]
        ),
    )
    assert statuses(found) == {
        "silent": "fail",
        "notifies": "pass",
        "terminates": "pass",
        "responds": "pass",
    }
    by_id = {f.resource_id: f for f in found}
    assert by_id["silent"].values == {"catch_paths": 1, "silent_catch_paths": 1}
    assert by_id["silent"].message.endswith("'Catch' (after 'Try' fails) reports nothing")
    assert by_id["silent"].evidence[0]["catch_action"] == "Catch"
    assert by_id["silent"].evidence[0]["kind"] == "catch"
    assert by_id["terminates"].values == {"catch_paths": 1, "silent_catch_paths": 0}


def test_empty_catch_fails() -> None:
    """An empty catch swallows the failure: the run ends Succeeded."""
    found = run(CHECK, frames(flows=[flow("f", try_catch({}))]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"catch_paths": 1, "silent_catch_paths": 1}
    assert found[0].message.endswith("is empty")
    assert found[0].evidence[0]["kind"] == "empty"


def test_failure_used_as_data_is_not_judged() -> None:
    """A failure branch of data actions whose result the flow reads later (a lookup that
    sets a flag) is a result, not a catch; an unread Compose beside it is still judged."""
    lookup = read_as_data()
    unread = {
        **lookup,
        "Update_row": after(connector_action(), {"Use_flag": ["Succeeded"]}),
        "Note": after(NOTE, {"Update_row": ["Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("data", lookup), flow("mixed", unread)]))
    assert statuses(found) == {"mixed": "fail"}
    assert found[0].values == {"catch_paths": 1, "silent_catch_paths": 1}
    assert [row["catch_action"] for row in found[0].evidence] == ["Note"]


@pytest.mark.parametrize(
    ("status", "verdict"), [("Failed", "pass"), ("Cancelled", "pass"), ("Succeeded", "fail")]
)
def test_terminate_must_end_the_run_not_succeeded(status: str, verdict: str) -> None:
    """Terminate Failed or Cancelled ends the run as not Succeeded; Terminate Succeeded
    reports the handled failure as a success."""
    stop = {"type": "Terminate", "inputs": {"runStatus": status}}
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Stop": stop}))]))
    assert statuses(found) == {"f": verdict}
    if verdict == "fail":
        assert "reports success (Terminate Succeeded)" in found[0].message


def test_terminate_succeeded_after_a_notification_still_fails() -> None:
    """The notification reports the failure, but the run then ends Succeeded on purpose."""
    stop = after(
        {"type": "Terminate", "inputs": {"runStatus": "Succeeded"}}, {"Notify": ["Succeeded"]}
    )
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Notify": NOTIFY, "Stop": stop}))]))
    assert statuses(found) == {"f": "fail"}
    assert "reports success" in found[0].message


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        pytest.param(response(200), "fail", id="200"),
        pytest.param(response("202"), "fail", id="202-as-text"),
        pytest.param(response(), "fail", id="no-status-code"),
        pytest.param(response(200, {"orderId": "@{variables('id')}"}), "fail", id="200-data"),
        pytest.param(response(500), "pass", id="500"),
        pytest.param(response(200, {"status": "failed"}), "pass", id="200-status-field"),
        pytest.param(response(200, {"Success": False}), "pass", id="200-success-field"),
        pytest.param(response("@{variables('code')}"), "pass", id="expression"),
    ],
)
def test_a_response_in_a_catch_must_answer_a_failure(answer: dict[str, Any], verdict: str) -> None:
    """A literal 2xx (or no statusCode: 200) with no status field in the body tells the
    caller the work succeeded; a non-2xx status, an expression or a status field does not."""
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Answer": answer}))]))
    assert statuses(found) == {"f": verdict}


def test_a_tolerating_run_after_is_not_a_catch() -> None:
    """[Succeeded, Failed] runs the next step whatever happened: no branch, nothing judged."""
    actions = {
        "Update_row": connector_action(),
        "Next": after(NOTE, {"Update_row": ["Succeeded", "Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert found == []


def test_one_silent_branch_among_several_fails() -> None:
    """Every catch must report: one that does not is enough to hide a failure."""
    actions = {
        **try_catch({"Stop": TERMINATE_FAILED}),
        "Second": after({"type": "Scope", "actions": {"Post": NOTIFY}}, {"Catch": ["Skipped"]}),
        "Second_catch": after(NOTE, {"Second": ["TimedOut", "Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"catch_paths": 2, "silent_catch_paths": 1}
    assert [row["catch_action"] for row in found[0].evidence] == ["Second_catch"]


def test_uppercase_run_after_statuses_make_failure_branches() -> None:
    """ "FAILED" in an export is Failed; "SKIPPED" alone starts no branch."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("failed", try_catch({"Note": NOTE}, catch_on=["FAILED"])),
                flow("both", try_catch({"Note": NOTE}, catch_on=["FAILED", "TIMEDOUT"])),
                flow("skipped", try_catch({"Note": NOTE}, catch_on=["SKIPPED"])),
            ]
        ),
    )
    assert statuses(found) == {"failed": "fail", "both": "fail"}


def test_a_timed_out_only_catch_is_judged() -> None:
    """R-BRANCH: an edge listing TimedOut and not Succeeded starts a failure branch."""
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Note": NOTE}, catch_on=["TIMEDOUT"]))]))
    assert statuses(found) == {"f": "fail"}


def test_report_nested_in_the_catch_action_counts() -> None:
    """Everything nested in the catch action (If branches, inner scopes) is on its branch."""
    catch = {
        "Note": NOTE,
        "Which": after(
            {
                "type": "If",
                "expression": {"equals": [1, 1]},
                "actions": {"Inner": {"type": "Scope", "actions": {"Stop": TERMINATE_FAILED}}},
            },
            {"Note": ["Succeeded"]},
        ),
    }
    found = run(CHECK, frames(flows=[flow("f", try_catch(catch))]))
    assert statuses(found) == {"f": "pass"}


def test_report_running_transitively_after_the_catch_counts() -> None:
    """A Terminate Failed two steps after the catch action, run only after it, is on the
    branch."""
    actions = {
        "Update_row": connector_action(),
        "Note": after(NOTE, {"Update_row": ["Failed", "TimedOut"]}),
        "Log": after({"type": "Compose", "inputs": "@outputs('Note')"}, {"Note": ["Succeeded"]}),
        "Stop": after(TERMINATE_FAILED, {"Log": ["Succeeded"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["catch_paths"] == 1


def test_report_that_also_runs_without_the_failure_does_not_count() -> None:
    """A Terminate after [Succeeded, Skipped] of the catch runs whether or not the catch
    ran: it is not the branch's, so the branch reports nothing."""
    actions = {
        "Update_row": connector_action(),
        "Note": after(NOTE, {"Update_row": ["Failed"]}),
        "Stop": after(TERMINATE_FAILED, {"Note": ["Succeeded", "Skipped"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}


def test_report_before_or_beside_the_catch_does_not_count() -> None:
    """Actions that run after the Try succeeded are not on its failure branch."""
    actions = {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Stop_on_success": after(TERMINATE_FAILED, {"Try": ["Succeeded"]}),
        "Catch": after({"type": "Scope", "actions": {"Note": NOTE}}, {"Try": ["Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}


def test_report_in_an_outer_container_does_not_count() -> None:
    """A catch inside a scope only reaches the actions of that scope: a notification after
    the scope on [Succeeded, Failed] runs either way and reports no failure."""
    actions = {
        "Outer": {
            "type": "Scope",
            "actions": {
                "Inner": {"type": "Scope", "actions": {"Update_row": connector_action()}},
                "Inner_catch": after(NOTE, {"Inner": ["Failed"]}),
            },
        },
        "Notify_done": after(NOTIFY, {"Outer": ["Succeeded", "Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"catch_paths": 1, "silent_catch_paths": 1}
    assert [row["catch_action"] for row in found[0].evidence] == ["Inner_catch"]


def test_a_silent_inner_catch_under_an_outer_catch_that_reports_passes() -> None:
    """R-SCOPE: a scope is Failed when an action in it fails, even one an inner catch
    handled, so `Outer_catch` (Terminate Failed after `Outer` fails) runs and the run ends
    Failed: the Compose-only `Inner_catch` hides nothing."""
    actions = {
        "Outer": {
            "type": "Scope",
            "actions": {
                "Inner": {"type": "Scope", "actions": {"Update_row": connector_action()}},
                "Inner_catch": after(NOTE, {"Inner": ["Failed"]}),
            },
        },
        "Outer_catch": {
            "type": "Terminate",
            "inputs": {"runStatus": "Failed"},
            "runAfter": {"Outer": ["Failed", "TimedOut"]},
        },
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values == {"catch_paths": 1, "silent_catch_paths": 0}


def test_flow_without_a_failure_branch_is_not_judged() -> None:
    """No branch: nothing handled, so nothing reported as success (other checks)."""
    found = run(CHECK, frames(flows=[flow("f", {"Update_row": connector_action()})]))
    assert found == []


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow's branches do not run."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", try_catch({"Note": NOTE}), state="Stopped"),
                flow("started", try_catch({"Note": NOTE})),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}
