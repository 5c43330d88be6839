"""flow-sequential-loop: an Apply to each without concurrency that calls a connector per
item is reported (low severity); parallel loops, loops without calls and loops that set
variables are not."""

from __future__ import annotations

from typing import Any

from tests.checks.builders import connector_action, flow, frames, run, statuses

CHECK = "flow-sequential-loop"


def loop(body: dict[str, Any], repetitions: int | None = None) -> dict[str, Any]:
    """An Apply to each over a list of rows, with concurrency control when given."""
    action: dict[str, Any] = {
        "type": "Foreach",
        "foreach": "@outputs('List_rows')?['body/value']",
        "actions": body,
        "runAfter": {},
    }
    if repetitions is not None:
        action["runtimeConfiguration"] = {"concurrency": {"repetitions": repetitions}}
    return action


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
                flow("sequential", {"Each_row": loop(update)}),
                flow("nested-call", {"Each_row": loop(nested, repetitions=1)}),
                flow("parallel", {"Each_row": loop(update, repetitions=20)}),
                flow("no-call", {"Each_row": loop({"Note": {"type": "Compose", "inputs": 1}})}),
                flow("variables", {"Each_row": loop(variable)}),
                flow("no-loop", {"Update_a_row": connector_action()}),
            ]
        ),
    )
    assert statuses(found) == {
        "sequential": "fail",
        "nested-call": "fail",
        "parallel": "pass",
        "no-call": "pass",
        "variables": "pass",
    }
    failing = next(f for f in found if f.resource_id == "sequential")
    assert failing.severity == "low"
    assert "Each_row" in failing.message
    assert failing.evidence[0]["calls"] == 1
