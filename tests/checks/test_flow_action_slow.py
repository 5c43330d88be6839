"""flow-action-slow: an action whose p95 duration (end - start, runs where it ran) is above
600,000 ms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

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

CHECK = "flow-action-slow"

# 20 durations whose linear p95 is v[18] + 0.05 * (v[19] - v[18]).
AT_LIMIT = [1000.0] * 18 + [600_000.0, 600_000.0]
ABOVE = [1000.0] * 18 + [600_000.0, 600_020.0]


def runs(flow_id: str, count: int) -> list[dict[str, Any]]:
    """`count` finished runs in the window, one hour apart."""
    return [
        {
            "environment_id": ENV,
            "flow_name": flow_id,
            "run_name": f"{flow_id}-run-{i:03d}",
            "start_time": END - timedelta(hours=i + 1),
            "end_time": END - timedelta(hours=i + 1) + timedelta(minutes=30),
            "status": "Succeeded",
        }
        for i in range(count)
    ]


def results(
    flow_id: str, action: str, durations_ms: Sequence[float], *, status: str = "Succeeded"
) -> list[dict[str, Any]]:
    """The action's result in runs 0, 1, ... of `runs(flow_id, ...)`, one per duration."""
    out = []
    for i, ms in enumerate(durations_ms):
        start = END - timedelta(hours=i + 1)
        out.append(
            {
                "environment_id": ENV,
                "flow_name": flow_id,
                "run_name": f"{flow_id}-run-{i:03d}",
                "action_name": action,
                "status": status,
                "start_time": start,
                "end_time": start + timedelta(milliseconds=ms),
            }
        )
    return out


def flows(*ids: str) -> list[dict[str, Any]]:
    return [
        flow(i, {"List": connector_action("ListRecords"), "Update": connector_action()})
        for i in ids
    ]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_p95_exactly_at_the_limit_passes_and_above_it_fails() -> None:
    """A fail names the action; a flow with no slow action passes with its slowest one."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=flows("at", "above"),
                flow_api_runs=[*runs("at", 20), *runs("above", 20)],
                flow_run_actions=[
                    *results("at", "List", AT_LIMIT),
                    *results("at", "Update", [10.0] * 20),
                    *results("above", "List", ABOVE),
                    *results("above", "Update", [10.0] * 20),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"at": "pass", "above/List": "fail"}
    slow = found["above/List"]
    expected = float(np.percentile(ABOVE, 95, method="linear"))
    assert slow.values["p95_ms"] == pytest.approx(expected) == pytest.approx(600_001)
    assert (slow.values["action"], slow.values["flow_id"]) == ("List", "above")
    assert (slow.values["executions"], slow.values["max_ms"]) == (20, 600_020)
    assert slow.resource_kind == "action"
    assert slow.resource_name == "Flow above / List"
    assert slow.severity == "medium"
    at = found["at"]
    assert at.resource_kind == "flow"
    assert at.values == {"slowest_action": "List", "p95_ms": 600_000}


def test_skipped_actions_do_not_count() -> None:
    """A Skipped action did not run: its (bogus) times are no duration."""
    found = run(
        CHECK,
        frames(
            flows=flows("f"),
            flow_api_runs=runs("f", 20),
            flow_run_actions=[
                *results("f", "List", [5000.0] * 20),
                *results("f", "Update", [3_600_000.0] * 20, status="Skipped"),
            ],
        ),
    )
    assert statuses(found) == {"f": "pass"}
    assert found[0].values == {"slowest_action": "List", "p95_ms": 5000}


def test_the_limit_from_settings_flips_the_verdict() -> None:
    data = frames(
        flows=flows("f"), flow_api_runs=runs("f", 20), flow_run_actions=results("f", "List", ABOVE)
    )
    assert statuses(run(CHECK, data)) == {"f/List": "fail"}
    lenient = Settings(thresholds={CHECK: {"action_p95_ms": 600_001}})
    assert statuses(run(CHECK, data, lenient)) == {"f": "pass"}
    strict = Settings(thresholds={CHECK: {"action_p95_ms": 500}})
    found = run(CHECK, data, strict)
    assert statuses(found) == {"f/List": "fail"}
    assert found[0].values["threshold_ms"] == 500
