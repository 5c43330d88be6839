"""flow-retry-none-unhandled: an external call with retry policy none in an enabled flow
that has no action running after Failed or TimedOut."""

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

CHECK = "flow-retry-none-unhandled"
NONE = {"type": "none"}


def http(method: str = "POST", **extra: Any) -> dict[str, Any]:
    """An HTTP action; `retryPolicy` goes into its inputs."""
    inputs: dict[str, Any] = {"method": method, "uri": "https://api.example.com/orders"}
    if "retryPolicy" in extra:
        inputs["retryPolicy"] = extra.pop("retryPolicy")
    return {"type": "Http", "inputs": inputs, "runAfter": {}, **extra}


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
    assert found["fragile"].values == {"retry_none_external": 1, "catch_paths": 0}
    assert found["fragile"].evidence[0]["action_name"] == "Update"
    assert found["fragile"].severity == "high"
    assert found["handled"].values == {"retry_none_external": 1, "catch_paths": 1}
    assert found["retrying"].values["retry_none_external"] == 0


def test_http_calls_and_any_case_of_none_count() -> None:
    """An HTTP action is an external call too; "None" is the same policy as "none"."""
    found = run(
        CHECK,
        frames(flows=[flow("post", {"Call": http(retryPolicy={"type": "None"})})]),
    )
    assert statuses(found) == {"post": "fail"}
    assert found[0].values["retry_none_external"] == 1


def test_a_timed_out_only_catch_is_a_failure_path() -> None:
    found = run(
        CHECK,
        frames(
            flows=[
                flow(
                    "timeout",
                    {"Call": http(retryPolicy=NONE), "Alert": catch("Call", "TIMEDOUT")},
                )
            ]
        ),
    )
    assert statuses(found) == {"timeout": "pass"}


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


def test_definitions_not_collected_make_passes_not_assessed_and_keep_fails() -> None:
    kept = [q for q in QUERY_IDS if q != "workflows"]
    data = frames(
        scan_queries=[
            *query_outcomes(queries=kept),
            *query_outcomes(status="not-collected", queries=["workflows"], reason="denied"),
        ],
        flows=[
            flow("fragile", {"Update": connector_action(retryPolicy=NONE)}),
            flow("retrying", {"Update": connector_action()}),
        ],
    )
    assert statuses(run(CHECK, data)) == {"fragile": "fail", ENV: "not-assessed"}
