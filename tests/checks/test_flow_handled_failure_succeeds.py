"""flow-handled-failure-succeeds: every catch path must end the run Failed or respond.

A catch path: the catch action (runAfter lists Failed / TimedOut), everything nested in it,
and every later action of its container that runs after it, transitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    connector_action,
    flow,
    frames,
    query_outcomes,
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


def after(action: Mapping[str, Any], run_after: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The action, run after the given predecessors and statuses."""
    return {**action, "runAfter": {k: list(v) for k, v in run_after.items()}}


def try_catch(catch: Mapping[str, Any], *, catch_on: Sequence[str] = ("FAILED",)) -> dict[str, Any]:
    """A Try scope and a Catch scope, run after it failed, holding `catch`."""
    return {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Catch": {"type": "Scope", "actions": dict(catch), "runAfter": {"Try": list(catch_on)}},
    }


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def test_catch_that_only_notifies_fails_reporting_catches_pass() -> None:
    """An email in the catch handles the error, but the run still ends Succeeded."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("silent", try_catch({"Notify": NOTIFY})),
                flow("terminates", try_catch({"Notify": NOTIFY, "Stop": TERMINATE_FAILED})),
                flow("responds", try_catch({"Respond_error": RESPONSE})),
            ]
        ),
    )
    assert statuses(found) == {"silent": "fail", "terminates": "pass", "responds": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["silent"].values == {"catch_paths": 1, "silent_catch_paths": 1}
    assert by_id["terminates"].values == {"catch_paths": 1, "silent_catch_paths": 0}
    assert by_id["silent"].evidence[0]["catch_action"] == "Catch"


def test_one_silent_path_among_several_fails() -> None:
    """Every catch path must report: one that does not is enough to hide a failure."""
    actions = {
        **try_catch({"Stop": TERMINATE_FAILED}),
        "Second": after({"type": "Scope", "actions": {"Post": NOTIFY}}, {"Catch": ["Skipped"]}),
        "Second_catch": after({"type": "Compose", "inputs": "x"}, {"Second": ["TimedOut"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"catch_paths": 2, "silent_catch_paths": 1}
    assert [row["catch_action"] for row in found[0].evidence] == ["Second_catch"]


@pytest.mark.parametrize(("status", "verdict"), [("Failed", "pass"), ("Succeeded", "fail")])
def test_terminate_must_end_the_run_failed(status: str, verdict: str) -> None:
    """Terminate Succeeded ends a handled failure as a success."""
    stop = {"type": "Terminate", "inputs": {"runStatus": status}}
    found = run(CHECK, frames(flows=[flow("f", try_catch({"Stop": stop}))]))
    assert statuses(found) == {"f": verdict}


def test_uppercase_run_after_statuses_make_catch_paths() -> None:
    """ "FAILED" and "TIMEDOUT" in an export are Failed and TimedOut."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("failed", try_catch({"Notify": NOTIFY}, catch_on=["FAILED"])),
                flow("timedout", try_catch({"Notify": NOTIFY}, catch_on=["TIMEDOUT"])),
                flow("skipped", try_catch({"Notify": NOTIFY}, catch_on=["SKIPPED"])),
            ]
        ),
    )
    assert statuses(found) == {"failed": "fail", "timedout": "fail"}


def test_report_nested_in_the_catch_action_counts() -> None:
    """Everything nested in the catch action (If branches, inner scopes) is on its path."""
    catch = {
        "Notify": NOTIFY,
        "Which": after(
            {
                "type": "If",
                "expression": {"equals": [1, 1]},
                "actions": {"Inner": {"type": "Scope", "actions": {"Stop": TERMINATE_FAILED}}},
            },
            {"Notify": ["Succeeded"]},
        ),
    }
    found = run(CHECK, frames(flows=[flow("f", try_catch(catch))]))
    assert statuses(found) == {"f": "pass"}


def test_report_running_transitively_after_the_catch_counts() -> None:
    """A Terminate Failed two steps after the catch action, in its container, is on the path."""
    actions = {
        "Update_row": connector_action(),
        "Note": after({"type": "Compose", "inputs": "x"}, {"Update_row": ["Failed", "TimedOut"]}),
        "Notify": after(NOTIFY, {"Note": ["Succeeded"]}),
        "Stop": after(TERMINATE_FAILED, {"Notify": ["Succeeded", "Skipped"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["catch_paths"] == 1


def test_report_before_or_beside_the_catch_does_not_count() -> None:
    """Actions that precede the catch, or run after the Try succeeded, are not its path."""
    actions = {
        "Try": {"type": "Scope", "actions": {"Update_row": connector_action()}},
        "Stop_on_success": after(TERMINATE_FAILED, {"Try": ["Succeeded"]}),
        "Catch": after({"type": "Scope", "actions": {"Notify": NOTIFY}}, {"Try": ["Failed"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}


def test_report_in_an_outer_container_does_not_count() -> None:
    """A catch inside a scope only reaches the actions of that scope."""
    actions = {
        "Outer": {
            "type": "Scope",
            "actions": {
                "Inner": {"type": "Scope", "actions": {"Update_row": connector_action()}},
                "Inner_catch": after(NOTIFY, {"Inner": ["Failed"]}),
            },
        },
        "Stop": after(TERMINATE_FAILED, {"Outer": ["Succeeded", "Skipped"]}),
    }
    found = run(CHECK, frames(flows=[flow("f", actions)]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values == {"catch_paths": 1, "silent_catch_paths": 1}


def test_flow_without_catch_path_is_not_judged() -> None:
    """No catch path: nothing handled, so nothing reported as success (other checks)."""
    found = run(CHECK, frames(flows=[flow("f", {"Update_row": connector_action()})]))
    assert found == []


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow's paths do not run."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", try_catch({"Notify": NOTIFY}), state="Stopped"),
                flow("started", try_catch({"Notify": NOTIFY})),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}


@pytest.mark.parametrize("query", ["flows", "workflows"])
def test_definitions_not_collected_is_not_assessed_not_pass(query: str) -> None:
    """A pass needs the definitions read; a fail seen anyway stays."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("good", try_catch({"Stop": TERMINATE_FAILED})),
                flow("bad", try_catch({"Notify": NOTIFY})),
            ],
            scan_queries=outcomes_without(query),
        ),
    )
    assert statuses(found) == {"bad": "fail", ENV: "not-assessed"}
