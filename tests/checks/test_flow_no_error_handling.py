"""flow-no-error-handling: an enabled flow with an external call needs a catch that reports.

A failure branch (`analysis.failure_paths`, R-BRANCH in tests/corpus/README.md) is what runs
only because an action failed or timed out; it handles the failure when it is a catch that
reports it (R-REPORT): Terminate Failed or Cancelled, an error Response, or an effect such as
a notification or a log record. An empty catch, failure used as data, a tolerating run-after
([Succeeded, Failed]) or Terminate Succeeded is not handling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from auditor.checks import Finding
from tests.checks.builders import (
    catching,
    connector_action,
    flow,
    frames,
    read_as_data,
    run,
    statuses,
)

CHECK = "flow-no-error-handling"
NOTIFY = connector_action("SendEmailV2", api="shared_office365")


def compose(**run_after: list[str]) -> dict[str, Any]:
    return {"type": "Compose", "inputs": "x", "runAfter": dict(run_after)}


def terminate(status: str) -> dict[str, Any]:
    return {"type": "Terminate", "inputs": {"runStatus": status}}


def try_catch(
    catch: Mapping[str, Any], *, catch_on: Sequence[str] = ("Failed", "TimedOut")
) -> dict[str, Any]:
    """A Try scope making an external call and a Catch scope, run after it failed, holding
    `catch`."""
    return {
        "Try": {"type": "Scope", "actions": {"Put": connector_action()}, "runAfter": {}},
        "Catch": {"type": "Scope", "actions": dict(catch), "runAfter": {"Try": list(catch_on)}},
    }


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_a_flow_without_a_failure_branch_fails_with_low_severity() -> None:
    """Low severity: advice, not a violation of its own."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[
                    flow("bare", {"Get": connector_action("GetItem"), "Put": connector_action()}),
                    flow("guarded", try_catch({"Stop": terminate("Failed")})),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"bare": "fail", "guarded": "pass"}
    assert found["bare"].severity == "low"
    assert found["bare"].values == {
        "reporting_paths": 0,
        "failure_branches": 0,
        "external_calls": 2,
    }
    assert "a failed call stops the run" in found["bare"].message
    assert found["guarded"].values == {
        "reporting_paths": 1,
        "failure_branches": 1,
        "external_calls": 1,
    }


@pytest.mark.parametrize(
    ("actions", "kinds"),
    [
        pytest.param(try_catch({"Note": compose()}), ["catch"], id="unread-compose"),
        pytest.param(try_catch({}), ["empty"], id="empty-catch"),
        pytest.param(read_as_data(), ["data"], id="failure-as-data"),
        pytest.param(try_catch({"Stop": terminate("Succeeded")}), ["catch"], id="terminate-ok"),
        pytest.param(
            try_catch({"Answer": {"type": "Response", "inputs": {"statusCode": 200}}}),
            ["catch"],
            id="response-200",
        ),
    ],
)
def test_failure_branches_that_do_not_report_are_not_handling(
    actions: dict[str, Any], kinds: list[str]
) -> None:
    """A catch that only composes, an empty catch, a flag the flow reads on (data),
    Terminate Succeeded and a plain 200 answer all leave the failure unreported."""
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["reporting_paths"] == 0
    assert found[0].values["failure_branches"] == 1
    assert [row["kind"] for row in found[0].evidence] == kinds
    assert "do not report the failure" in found[0].message


@pytest.mark.parametrize(
    "catch",
    [
        pytest.param({"Stop": terminate("Failed")}, id="terminate-failed"),
        pytest.param({"Stop": terminate("Cancelled")}, id="terminate-cancelled"),
        pytest.param({"Notify": NOTIFY}, id="notification"),
        pytest.param({"Answer": {"type": "Response", "inputs": {"statusCode": 500}}}, id="500"),
        pytest.param(
            {
                "Answer": {
                    "type": "Response",
                    "inputs": {"statusCode": 200, "body": {"status": "failed"}},
                }
            },
            id="200-with-status-field",
        ),
    ],
)
def test_a_catch_that_reports_the_failure_passes(catch: dict[str, Any]) -> None:
    """Ending the run Failed or Cancelled, answering a failure or notifying reports it."""
    found = run(CHECK, frames(flows=[flow("f", try_catch(catch))]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["reporting_paths"] == 1


def test_a_tolerating_run_after_starts_no_branch() -> None:
    """[Succeeded, Failed] runs the next step either way: an optional step, not a catch."""
    found = run(CHECK, frames(flows=[flow("f", catching(["Succeeded", "Failed"]))]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["failure_branches"] == 0


def test_run_after_statuses_are_compared_case_insensitively() -> None:
    """ "FAILED" starts a branch as "Failed" does; Succeeded and Skipped do not, and
    "SUCCEEDED" with "FAILED" tolerates the failure."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("upper", catching(["FAILED"])),
                flow("both", catching(["FAILED", "TIMEDOUT"])),
                flow("skipped", catching(["SUCCEEDED", "SKIPPED"])),
                flow("tolerates", catching(["SUCCEEDED", "FAILED"])),
            ]
        ),
    )
    assert statuses(found) == {
        "upper": "pass",
        "both": "pass",
        "skipped": "fail",
        "tolerates": "fail",
    }


@pytest.mark.parametrize("timed_out", ["TimedOut", "TIMEDOUT"])
def test_a_timed_out_only_catch_reports(timed_out: str) -> None:
    """R-BRANCH: an edge listing TimedOut and not Succeeded starts a failure branch."""
    found = run(CHECK, frames(flows=[flow("f", catching([timed_out]))]))
    assert statuses(found) == {"f": "pass"}


def test_a_child_flow_call_is_an_external_call() -> None:
    """Run a Child Flow can fail like a connector call; a flow of data actions cannot."""
    child = {
        "type": "Workflow",
        "inputs": {"host": {"workflowReferenceName": "6f0c6c62-1111-2222-3333-444455556666"}},
        "runAfter": {},
    }
    found = run(
        CHECK,
        frames(flows=[flow("parent", {"Run_child": child}), flow("local", {"A": compose()})]),
    )
    assert statuses(found) == {"parent": "fail"}
    assert found[0].values["external_calls"] == 1


def test_disabled_empty_local_and_unreadable_flows_are_not_judged() -> None:
    """A stopped flow, one with no action, one with no external call and one whose
    definition does not parse."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("off", {"Put": connector_action()}, state="Stopped"),
                flow("empty", {}),
                flow("local", {"A": compose(), "B": compose(A=["Failed"])}),
                flow("broken", text="{not json"),
            ]
        ),
    )
    assert found == []
