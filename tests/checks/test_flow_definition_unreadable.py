"""flow-definition-unreadable: a definition that cannot be parsed is an `error` finding for
that flow, so an unaudited flow is never mistaken for a pass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    environment,
    flow,
    frames,
    query_outcomes,
    run,
    statuses,
)

CHECK = "flow-definition-unreadable"


def by_id(found: list[Any]) -> dict[str | None, Any]:
    return {f.resource_id: f for f in found}


def test_invalid_json_is_an_error_naming_the_flow_and_a_good_one_passes() -> None:
    """The finding says which flow and why, so its owner can fix it."""
    found = run(CHECK, frames(flows=[flow("broken", text='{"properties": {'), flow("good")]))
    assert statuses(found) == {"broken": "error", "good": "pass"}
    broken = by_id(found)["broken"]
    assert broken.resource_name == "Flow broken"
    assert broken.environment_id == ENV
    assert "not valid JSON" in broken.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"properties": {"definition": "oops"}}), "`definition` is not an object"),
        (json.dumps({"properties": {"definition": {"actions": []}}}), "`actions` is not an object"),
        (json.dumps({"name": "no definition"}), "no `definition` object"),
        ("", "empty"),
    ],
    ids=["list", "definition-text", "actions-list", "no-definition", "empty"],
)
def test_json_that_is_not_a_definition_is_an_error(text: str, reason: str) -> None:
    """Parsing as JSON is not enough: the document must hold a definition object."""
    found = run(CHECK, frames(flows=[flow("odd", text=text)]))
    assert statuses(found) == {"odd": "error"}
    assert reason in found[0].message


def test_flow_without_a_definition_is_an_error() -> None:
    """A listed flow whose definition was not collected is unaudited too."""
    row = flow("missing")
    row["definition"] = None
    found = run(CHECK, frames(flows=[row, flow("good")]))
    assert statuses(found) == {"missing": "error", "good": "pass"}
    assert "no definition was collected" in by_id(found)["missing"].message


def test_bare_and_solution_shaped_definitions_pass() -> None:
    """clientdata shapes: {"properties": {"definition"}}, {"definition"} and a bare one."""
    inner = {"triggers": {"manual": {"type": "Request", "kind": "Button"}}, "actions": {}}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("wrapped", text=json.dumps({"definition": inner})),
                flow("bare", text=json.dumps(inner)),
                flow("bom", text="\ufeff" + json.dumps({"properties": {"definition": inner}})),
            ]
        ),
    )
    assert statuses(found) == {"wrapped": "pass", "bare": "pass", "bom": "pass"}


def test_stopped_flows_are_reported_too() -> None:
    """A stopped flow may be started again: its definition still has to be readable."""
    found = run(CHECK, frames(flows=[flow("stopped", text="{", state="Stopped")]))
    assert statuses(found) == {"stopped": "error"}


def test_each_environment_keeps_its_own_flows() -> None:
    """Flows of the same name in two environments are two findings."""
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment("env-2", "Fabrikam")],
            flows=[flow("same", text="{"), flow("same", env="env-2")],
        ),
    )
    assert sorted((f.environment_id, f.status) for f in found) == [
        (ENV, "error"),
        ("env-2", "pass"),
    ]


def test_needs_nothing_so_a_query_gap_changes_nothing() -> None:
    """The check reads what was collected; coverage checks report what was not."""
    outcomes = query_outcomes(status="not-collected", queries=QUERY_IDS, reason="skipped")
    found = run(
        CHECK, frames(flows=[flow("good"), flow("broken", text="{")], scan_queries=outcomes)
    )
    assert statuses(found) == {"good": "pass", "broken": "error"}
