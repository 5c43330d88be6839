"""coverage-flow-run-ingestion: Dataverse lost flow runs (flowevents IngestionRateDataLoss);
only the flow API's run history, when collected, makes up for them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from tests.checks.builders import (
    END,
    ENV,
    QUERY_IDS,
    environment,
    frames,
    query_outcomes,
    run,
    statuses,
)

CHECK = "coverage-flow-run-ingestion"


def event(
    event_id: str, content: str = '{"lostRunCount": 3}', code: str = "IngestionRateDataLoss"
) -> dict[str, Any]:
    return {
        "environment_id": ENV,
        "floweventid": event_id,
        "eventcode": code,
        "eventcontent": content,
        "parentobjectid": "wf-1",
        "createdon": END - timedelta(hours=2),
    }


def without_flow_runs(env: str = ENV) -> list[dict[str, Any]]:
    """Every query collected except the flow API's runs."""
    kept = [q for q in QUERY_IDS if q != "flow_runs"]
    return [
        *query_outcomes(env, queries=kept),
        *query_outcomes(env, "not-collected", ["flow_runs"], reason="flow API off"),
    ]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_losses_with_flow_api_runs_pass_and_without_them_are_not_assessed() -> None:
    """Two environments with the same losses; only one read the flow API."""
    losses = [event("e1"), event("e2", '{"lostRunCount": 4}')]
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                scan_queries=[*query_outcomes(), *without_flow_runs("env-2")],
                flowevents=[*losses, *[{**e, "environment_id": "env-2"} for e in losses]],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "pass", "env-2": "not-assessed"}
    assert found[ENV].values == {"events": 2, "lost_runs": 7, "flow_api_runs": True}
    assert found["env-2"].values == {"events": 2, "lost_runs": 7, "flow_api_runs": False}
    assert "7 runs are missing" in found["env-2"].message
    assert found["env-2"].evidence[0]["eventcode"] == "IngestionRateDataLoss"


def test_no_loss_passes_even_without_the_flow_api() -> None:
    """Other flow events are not losses; nothing was lost, so nothing is missing."""
    found = run(
        CHECK,
        frames(scan_queries=without_flow_runs(), flowevents=[event("e1", code="FlowSuspended")]),
    )
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values == {"events": 0, "lost_runs": 0, "flow_api_runs": False}


def test_unreadable_event_content_counts_the_event_but_no_runs() -> None:
    found = run(
        CHECK,
        frames(
            scan_queries=without_flow_runs(),
            flowevents=[event("e1", "not json"), event("e2", '{"lostRunCount": "many"}')],
        ),
    )
    assert statuses(found) == {ENV: "not-assessed"}
    assert (found[0].values["events"], found[0].values["lost_runs"]) == (2, 0)
