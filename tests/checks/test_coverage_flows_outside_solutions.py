"""coverage-flows-outside-solutions: flows outside solutions are seen only when the flow
API's flow list (query `flows`) was collected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor.checks import Finding
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

CHECK = "coverage-flows-outside-solutions"


def without_flows(env: str = ENV) -> list[dict[str, Any]]:
    kept = [q for q in QUERY_IDS if q != "flows"]
    return [
        *query_outcomes(env, queries=kept),
        *query_outcomes(env, "not-collected", ["flows"], reason="flow API off"),
    ]


def workflow(workflow_id: str, env: str = ENV) -> dict[str, Any]:
    """A solution flow as Dataverse's workflow table lists it (category 5)."""
    return {
        "environment_id": env,
        "workflowid": workflow_id,
        "name": f"Solution flow {workflow_id}",
        "category": 5,
        "statecode": 1,
    }


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_flow_list_collected_passes_and_not_collected_is_not_assessed() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                scan_queries=[*query_outcomes(), *without_flows("env-2")],
                flows=[flow("a", workflowid="wf-a"), flow("b"), flow("c")],
                workflows=[workflow("wf-a"), workflow("wf-x", env="env-2")],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "pass", "env-2": "not-assessed"}
    assert found[ENV].values == {"flows": 3, "solution_flows": 1, "listed_by_flow_api": 3}
    assert found[ENV].message == "the flow API listed 3 flows (1 in solutions)"
    # Only the solution flow Dataverse holds is visible in env-2.
    assert found["env-2"].values == {"flows": 1, "solution_flows": 1, "listed_by_flow_api": 0}
    assert "flows not-collected: flow API off" in found["env-2"].message


def test_a_partial_flow_list_is_not_assessed() -> None:
    kept = [q for q in QUERY_IDS if q != "flows"]
    data = frames(
        scan_queries=[
            *query_outcomes(queries=kept),
            *query_outcomes(status="partial", queries=["flows"], reason="timed out"),
        ],
        flows=[flow("a")],
    )
    assert statuses(run(CHECK, data)) == {ENV: "not-assessed"}


def test_an_environment_without_flows_passes_when_the_list_was_read() -> None:
    """An empty list that was read is a fact: no flow outside solutions was missed."""
    found = run(CHECK, frames())
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values == {"flows": 0, "solution_flows": 0, "listed_by_flow_api": 0}


def test_an_empty_list_while_dataverse_holds_cloud_flows_is_not_assessed() -> None:
    """The maker route lists only the caller's flows (none for an app): a list that was read
    but holds none of Dataverse's cloud flows says nothing about flows outside solutions."""
    found = run(CHECK, frames(workflows=[workflow("wf-a"), workflow("wf-b")]))
    assert statuses(found) == {ENV: "not-assessed"}
    assert found[0].message.startswith(
        "the flow API returned no flows of the 2 cloud flows Dataverse holds: check the app "
        "registration"
    )
    # A list without solution flows (no include=includeSolutionCloudFlows) is no better.
    found = run(CHECK, frames(flows=[flow("a")], workflows=[workflow("wf-a")]))
    assert statuses(found) == {ENV: "not-assessed"}
    assert "returned 1 flows and none of them" in found[0].message
    # Once the list holds them, it passes.
    found = run(
        CHECK, frames(flows=[flow("a"), flow("b", workflowid="wf-a")], workflows=[workflow("wf-a")])
    )
    assert statuses(found) == {ENV: "pass"}
