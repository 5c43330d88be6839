"""flow-no-error-handling: an enabled flow with actions and none running after a failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor.checks import Finding
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

CHECK = "flow-no-error-handling"


def compose(**run_after: list[str]) -> dict[str, Any]:
    return {"type": "Compose", "inputs": "x", "runAfter": dict(run_after)}


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_a_flow_without_a_catch_path_fails_with_low_severity() -> None:
    """Low severity: advice, not a violation of its own."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[
                    flow("bare", {"Get": connector_action("GetItem"), "Put": connector_action()}),
                    flow(
                        "guarded",
                        {
                            "Try": {
                                "type": "Scope",
                                "actions": {"Put": connector_action()},
                                "runAfter": {},
                            },
                            "Catch": compose(Try=["Failed", "TimedOut"]),
                        },
                    ),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"bare": "fail", "guarded": "pass"}
    assert found["bare"].severity == "low"
    assert found["bare"].values == {"catch_paths": 0, "actions": 2}
    assert found["guarded"].values == {"catch_paths": 1, "actions": 3}


def test_run_after_statuses_are_compared_case_insensitively() -> None:
    """ "FAILED" and "TimedOut" alone are failure paths; Succeeded/Skipped are not."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[
                    flow("upper", {"A": compose(), "B": compose(A=["FAILED"])}),
                    flow("timeout", {"A": compose(), "B": compose(A=["TimedOut"])}),
                    flow("skipped", {"A": compose(), "B": compose(A=["Succeeded", "Skipped"])}),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {
        "upper": "pass",
        "timeout": "pass",
        "skipped": "fail",
    }


def test_disabled_empty_and_unreadable_flows_are_not_judged() -> None:
    """A stopped flow, one with no action and one whose definition does not parse."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("off", {"A": compose()}, state="Stopped"),
                flow("empty", {}),
                flow("broken", text="{not json"),
            ]
        ),
    )
    assert found == []


def test_definitions_not_collected_make_passes_not_assessed_and_keep_fails() -> None:
    kept = [q for q in QUERY_IDS if q != "flows"]
    data = frames(
        scan_queries=[
            *query_outcomes(queries=kept),
            *query_outcomes(status="not-collected", queries=["flows"], reason="API off"),
        ],
        flows=[
            flow("bare", {"A": compose()}),
            flow("guarded", {"A": compose(), "B": compose(A=["Failed"])}),
        ],
    )
    found = run(CHECK, data)
    assert statuses(found) == {"bare": "fail", ENV: "not-assessed"}
    assert "flows not-collected: API off" in by_id(found)[ENV].message
