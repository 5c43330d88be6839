"""flow-retry-none-unhandled: an external call (connector, HTTP, child flow) with retry policy
none in an enabled flow, whose failure nothing reacts to: no failure branch or tolerating
run-after on the call or on a container holding it (R-RETRY in tests/corpus/README.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from auditor.checks import Finding
from tests.checks.builders import (
    connector_action,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-retry-none-unhandled"
NONE = {"type": "none"}


def http(method: str = "POST", **extra: Any) -> dict[str, Any]:
    """An HTTP action; `retryPolicy` goes into its inputs."""
    inputs: dict[str, Any] = {"method": method, "uri": "https://api.example.com/orders"}
    if "retryPolicy" in extra:
        inputs["retryPolicy"] = extra.pop("retryPolicy")
    return {"type": "Http", "inputs": inputs, "runAfter": {}, **extra}


def child_flow(**extra: Any) -> dict[str, Any]:
    """Run a Child Flow; `retryPolicy` goes into its inputs."""
    inputs: dict[str, Any] = {
        "host": {"workflowReferenceName": "6f0c6c62-1111-2222-3333-444455556666"}
    }
    if "retryPolicy" in extra:
        inputs["retryPolicy"] = extra.pop("retryPolicy")
    return {"type": "Workflow", "inputs": inputs, "runAfter": {}, **extra}


def catch(after: str, *statuses_: str) -> dict[str, Any]:
    """A Compose action that runs after `after` ends in one of `statuses_`."""
    return {"type": "Compose", "inputs": "failed", "runAfter": {after: list(statuses_)}}


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_retry_none_without_a_failure_path_fails_and_with_one_passes() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[
                    flow("fragile", {"Update": connector_action(retryPolicy=NONE)}),
                    flow(
                        "handled",
                        {
                            "Update": connector_action(retryPolicy=NONE),
                            "Log": catch("Update", "Failed", "TimedOut"),
                        },
                    ),
                    flow("retrying", {"Update": connector_action()}),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {
        "fragile": "fail",
        "handled": "pass",
        "retrying": "pass",
    }
    assert found["fragile"].values == {"retry_none_external": 1, "retry_none_unreacted": 1}
    assert found["fragile"].evidence[0]["action_name"] == "Update"
    assert found["fragile"].severity == "high"
    assert found["handled"].values == {"retry_none_external": 1, "retry_none_unreacted": 0}
    assert found["retrying"].values == {"retry_none_external": 0, "retry_none_unreacted": 0}


def test_http_calls_and_any_case_of_none_count() -> None:
    """An HTTP action is an external call too; "None" is the same policy as "none"."""
    found = run(
        CHECK,
        frames(flows=[flow("post", {"Call": http(retryPolicy={"type": "None"})})]),
    )
    assert statuses(found) == {"post": "fail"}
    assert found[0].values["retry_none_external"] == 1


def test_child_flow_calls_with_retry_none_count() -> None:
    """Run a Child Flow goes over HTTP and takes a retry policy like a connector."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[
                    flow("child-none", {"Run_child": child_flow(retryPolicy=NONE)}),
                    flow("child-default", {"Run_child": child_flow()}),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {
        "child-none": "fail",
        "child-default": "pass",
    }
    assert found["child-none"].values == {"retry_none_external": 1, "retry_none_unreacted": 1}
    assert found["child-none"].evidence[0]["type"] == "Workflow"


@pytest.mark.parametrize(
    "statuses_",
    [("TimedOut",), ("TIMEDOUT",), ("FAILED",), ("Succeeded", "Failed"), ("SUCCEEDED", "FAILED")],
)
def test_failure_and_tolerating_edges_react_in_any_case(statuses_: tuple[str, ...]) -> None:
    """An edge listing Failed or TimedOut reacts to the failure, in any case; one that also
    lists Succeeded tolerates it, which is a reaction too."""
    actions = {"Call": http(retryPolicy=NONE), "Next": catch("Call", *statuses_)}
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "pass"}


@pytest.mark.parametrize("statuses_", [("Succeeded",), ("SKIPPED",), ("Succeeded", "Skipped")])
def test_edges_without_a_failure_status_do_not_react(statuses_: tuple[str, ...]) -> None:
    actions = {"Call": http(retryPolicy=NONE), "Next": catch("Call", *statuses_)}
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}


def test_a_call_inside_a_caught_scope_is_covered_one_outside_is_not() -> None:
    """A failure inside Try makes Try Failed, which its Catch reacts to; the call after the
    Catch has no reaction of its own."""
    actions = {
        "Try": {
            "type": "Scope",
            "actions": {
                "Inner": {
                    "type": "Scope",
                    "actions": {"Covered": connector_action(retryPolicy=NONE)},
                    "runAfter": {},
                }
            },
            "runAfter": {},
        },
        "Catch": catch("Try", "Failed", "TimedOut"),
        "Outside": connector_action(
            "CreateRecord", run_after={"Catch": ["Succeeded", "Skipped"]}, retryPolicy=NONE
        ),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"retry_none_external": 2, "retry_none_unreacted": 1}
    assert found[0].message.startswith("1 external call(s) with retry policy none")


def test_disabled_flows_and_flows_without_external_calls_are_not_judged() -> None:
    found = run(
        CHECK,
        frames(
            flows=[
                flow("off", {"Update": connector_action(retryPolicy=NONE)}, state="Stopped"),
                flow("local", {"Compose": {"type": "Compose", "inputs": 1, "runAfter": {}}}),
            ]
        ),
    )
    assert found == []


def test_the_finding_names_only_the_unreacted_calls() -> None:
    actions = {
        "Try": {
            "type": "Scope",
            "actions": {"Covered": connector_action(retryPolicy=NONE)},
            "runAfter": {},
        },
        "Catch": catch("Try", "Failed"),
        "Outside": connector_action(
            "CreateRecord", run_after={"Catch": ["Succeeded", "Skipped"]}, retryPolicy=NONE
        ),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert "('Outside')" in found[0].message
    assert [row["action_name"] for row in found[0].evidence] == ["Outside"]


def test_a_real_child_flow_call_with_retry_none_fails() -> None:
    """tests/corpus/microsoft__powercat-business-approvals-kit/BusinessApprovalKit/
    SolutionPackage/src/Workflows/BACoreRuntime-StartWorkflow-65045BB1-F682-EC11-8D20-
    0022486DA35F.json: 'Log History' runs the child flow BACore | Child | Log Runs with
    `retryPolicy: none`, and no failure branch or tolerating run-after reacts to it (R-RETRY).
    Child-flow calls used to be left out, and the message then said every call retries."""
    from pathlib import Path

    from auditor.lint.run import lint
    from auditor.settings import Settings

    path = (
        Path(__file__).parents[1]
        / "corpus/microsoft__powercat-business-approvals-kit/BusinessApprovalKit"
        / "SolutionPackage/src/Workflows"
        / "BACoreRuntime-StartWorkflow-65045BB1-F682-EC11-8D20-0022486DA35F.json"
    )
    model = lint([path], Settings()).model.to_json()
    [finding] = [f for f in model["findings"] if f["check_id"] == CHECK]
    assert finding["status"] == "fail"
    assert "'Log History'" in finding["message"]
    assert finding["evidence"][0]["type"] == "Workflow"
    assert finding["evidence"][0]["action_name"] == "Log_History"
