"""flow-retries-exhausted: one action retried and still Failed in >= 5 sampled runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    connector_action,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-retries-exhausted"


def runs(flow_id: str, count: int) -> list[dict[str, Any]]:
    """`count` finished runs in the window (actions belong to runs the window holds)."""
    return [
        {
            "environment_id": ENV,
            "flow_name": flow_id,
            "run_name": f"{flow_id}-run-{i:03d}",
            "start_time": END - timedelta(hours=i + 1),
            "end_time": END - timedelta(hours=i + 1) + timedelta(minutes=5),
            "status": "Failed",
        }
        for i in range(count)
    ]


def results(
    flow_id: str,
    action: str,
    count: int,
    *,
    status: str = "Failed",
    retries: int = 2,
    codes: str | None = "429,429",
    first: int = 0,
) -> list[dict[str, Any]]:
    """The action's result in runs `first` .. `first + count - 1` of `runs(flow_id, ...)`."""
    return [
        {
            "environment_id": ENV,
            "flow_name": flow_id,
            "run_name": f"{flow_id}-run-{i:03d}",
            "action_name": action,
            "status": status,
            "start_time": END - timedelta(hours=i + 1),
            "end_time": END - timedelta(hours=i + 1) + timedelta(minutes=1),
            "retry_count": retries,
            "retry_codes": codes,
        }
        for i in range(first, first + count)
    ]


def flows(*ids: str) -> list[dict[str, Any]]:
    return [
        flow(i, {"Update": connector_action(), "Notify": connector_action("Post")}) for i in ids
    ]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_exhausted_in_five_runs_fails_and_in_four_passes() -> None:
    """At least 5 runs fails; the values carry the throttling behind it."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=flows("hot", "warm"),
                flow_api_runs=[*runs("hot", 6), *runs("warm", 6)],
                flow_run_actions=[
                    *results("hot", "Update", 5),
                    *results("hot", "Notify", 1, status="Succeeded", retries=0, codes=None),
                    *results("warm", "Update", 4, codes="503"),
                    *results("warm", "Update", 2, status="Succeeded", retries=1, first=4),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"hot/Update": "fail", "warm": "pass"}
    hot = found["hot/Update"]
    assert hot.resource_kind == "action"
    assert hot.resource_name == "Flow hot / Update"
    assert (hot.values["exhausted"], hot.values["executions"]) == (5, 5)
    assert hot.values["throttled"] == 10  # two 429 retries in each of 5 runs
    assert hot.values["server_errors"] == 0
    warm = found["warm"]
    assert warm.resource_kind == "flow"
    assert (warm.values["exhausted"], warm.values["recovered"]) == (4, 2)
    assert warm.values["throttled"] == 4  # "429,429" in each of the 2 recovered runs
    assert warm.evidence[0]["action_name"] == "Update"


def test_failures_without_retries_are_not_exhausted_retries() -> None:
    """A Failed action that never retried (retry policy none, or a 400) is not this check."""
    found = run(
        CHECK,
        frames(
            flows=flows("plain"),
            flow_api_runs=runs("plain", 8),
            flow_run_actions=results("plain", "Update", 8, retries=0, codes=None),
        ),
    )
    assert statuses(found) == {"plain": "pass"}
    assert found[0].values["exhausted"] == 0


def test_exhausted_retry_runs_from_settings_flips_the_verdict() -> None:
    data = frames(
        flows=flows("warm"),
        flow_api_runs=runs("warm", 4),
        flow_run_actions=results("warm", "Update", 4),
    )
    assert statuses(run(CHECK, data)) == {"warm": "pass"}
    strict = Settings(thresholds={CHECK: {"exhausted_retry_runs": 4}})
    assert statuses(run(CHECK, data, strict)) == {"warm/Update": "fail"}


def test_no_action_results_no_finding() -> None:
    """Without any action result, nothing was sampled: no verdict of the check's own."""
    assert run(CHECK, frames(flows=flows("idle"), flow_api_runs=runs("idle", 3))) == []
