"""flow-unnecessary-runs: a flow whose runs mostly change nothing needs a trigger condition.

A run is unnecessary when every effect action of the definition was Skipped or never
appears in the run's action results; the rule is estimated unnecessary runs / runs above
`unnecessary_run_rate`, for flows with at least `min_runs` runs in the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    WINDOW,
    connector_action,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-unnecessary-runs"
Z95 = 1.959963984540054


def conditional(effect: Mapping[str, Any]) -> dict[str, Any]:
    """A read, then an If whose only branch holds the effect action `Act`."""
    return {
        "Get_row": connector_action("GetItem"),
        "Condition": {
            "type": "If",
            "expression": {"equals": ["@body('Get_row')?['statecode']", 0]},
            "actions": {"Act": dict(effect)},
            "runAfter": {"Get_row": ["Succeeded"]},
        },
    }


UPDATE = conditional(connector_action("UpdateRecord"))


def history(
    flow_id: str,
    outcomes: Sequence[str],
    *,
    effect_name: str = "Act",
    sampled: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Runs of one flow inside the window, with their action results.

    Each outcome is "ran" (the effect ran), "skipped" (the effect was Skipped), "absent"
    (the effect never appears: the run ended before it) or "running" (not finished yet,
    the effect not reached). Only the first `sampled` runs (all by default) get action rows.
    """
    runs: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for i, outcome in enumerate(outcomes):
        name = f"{flow_id}-run-{i:03d}"
        start = END - timedelta(minutes=30 * (i + 1))
        assert WINDOW.start < start < END
        finished = outcome != "running"
        runs.append(
            {
                "environment_id": ENV,
                "flow_name": flow_id,
                "run_name": name,
                "start_time": start,
                "end_time": start + timedelta(minutes=1) if finished else None,
                "status": "Succeeded" if finished else "Running",
            }
        )
        if sampled is not None and i >= sampled:
            continue
        results = {"Get_row": "Succeeded", "Condition": "Succeeded"}
        if outcome == "ran":
            results[effect_name] = "Succeeded"
        elif outcome == "skipped":
            results[effect_name] = "Skipped"
        actions.extend(
            {
                "environment_id": ENV,
                "flow_name": flow_id,
                "run_name": name,
                "action_name": action,
                "status": status,
            }
            for action, status in results.items()
        )
    return {"flow_api_runs": runs, "flow_run_actions": actions}


def merged(*parts: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of several `history` results, table by table."""
    out: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for table, rows in part.items():
            out.setdefault(table, []).extend(rows)
    return out


def mix(unnecessary: int, total: int, how: str = "skipped") -> list[str]:
    """`unnecessary` runs whose effect did not run (`how`), the rest ran it."""
    return [how] * unnecessary + ["ran"] * (total - unnecessary)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson 95 % score interval, written out independently of the analysis."""
    p = successes / trials
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z95 / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def test_just_above_the_rate_fails_at_the_rate_passes() -> None:
    """The rule is "above": 10 of 20 unnecessary passes, 11 of 20 fails."""
    found = run(
        CHECK,
        frames(
            flows=[flow("at", UPDATE), flow("above", UPDATE)],
            **merged(history("at", mix(10, 20)), history("above", mix(11, 20))),
        ),
    )
    assert statuses(found) == {"at": "pass", "above": "fail"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["at"].values["unnecessary_share"] == 0.5
    above = by_id["above"].values
    assert above["runs"] == 20
    assert above["sampled"] == 20
    assert above["unnecessary_sampled"] == 11
    assert above["estimated_unnecessary"] == 11.0
    assert above["unnecessary_share"] == pytest.approx(0.55)
    low, high = wilson(11, 20)
    assert above["rate_low"] == pytest.approx(low, abs=1e-6)
    assert above["rate_high"] == pytest.approx(high, abs=1e-6)


def test_effect_never_reached_counts_as_unnecessary() -> None:
    """An effect absent from the results (the run stopped before it) changed nothing."""
    found = run(CHECK, frames(flows=[flow("f", UPDATE)], **history("f", mix(11, 20, "absent"))))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["unnecessary_sampled"] == 11


def test_fewer_than_min_runs_pass_however_noisy() -> None:
    """19 runs, all unnecessary, are too few to judge; 20 are enough."""
    found = run(
        CHECK,
        frames(
            flows=[flow("few", UPDATE), flow("enough", UPDATE)],
            **merged(history("few", mix(19, 19)), history("enough", mix(20, 20))),
        ),
    )
    assert statuses(found) == {"few": "pass", "enough": "fail"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["few"].values["runs"] == 19
    assert by_id["enough"].values["unnecessary_share"] == 1.0


def test_min_runs_from_settings_flips_the_verdict() -> None:
    """`[checks.flow-unnecessary-runs] min_runs` lowered: 19 noisy runs are enough."""
    data = frames(flows=[flow("few", UPDATE)], **history("few", mix(19, 19)))
    assert statuses(run(CHECK, data)) == {"few": "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"min_runs": 19}}))
    assert statuses(found) == {"few": "fail"}
    assert found[0].values["unnecessary_share"] == 1.0


def test_rate_from_settings_flips_the_verdict() -> None:
    """`[checks.flow-unnecessary-runs] unnecessary_run_rate` lowered: half is too many."""
    data = frames(flows=[flow("half", UPDATE)], **history("half", mix(10, 20)))
    assert statuses(run(CHECK, data)) == {"half": "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"unnecessary_run_rate": 0.45}}))
    assert statuses(found) == {"half": "fail"}
    assert found[0].values["threshold"] == 0.45


@pytest.mark.parametrize(
    "effect",
    [
        connector_action("UpdateRecord"),
        connector_action("SendEmailV2", api="shared_office365"),
        {"type": "Http", "inputs": {"method": "POST", "uri": "https://example.com"}},
        {"type": "Response", "kind": "Http", "inputs": {"statusCode": 200}},
        {
            "type": "Workflow",
            "inputs": {"host": {"workflowReferenceName": "6f0c6c62-0000-0000-0000-000000000001"}},
        },
    ],
    ids=["connector-write", "send-email", "http-post", "response", "child-flow"],
)
def test_a_run_whose_effect_ran_is_necessary(effect: dict[str, Any]) -> None:
    """Writes, non-GET calls, responses and child flows are effects: running one counts."""
    found = run(CHECK, frames(flows=[flow("f", conditional(effect))], **history("f", mix(0, 20))))
    assert statuses(found) == {"f": "pass"}
    assert found[0].values["unnecessary_sampled"] == 0


@pytest.mark.parametrize(
    "action",
    [
        connector_action("ListRecords"),
        connector_action("GetItem", api="shared_sharepointonline"),
        {"type": "Http", "inputs": {"method": "GET", "uri": "https://example.com"}},
        {"type": "Compose", "inputs": "@triggerBody()"},
        {"type": "Terminate", "inputs": {"runStatus": "Succeeded"}},
    ],
    ids=["list", "get", "http-get", "compose", "terminate"],
)
def test_runs_doing_only_reads_and_control_are_unnecessary(action: dict[str, Any]) -> None:
    """A run that only read, computed or stopped changed nothing, though every action ran."""
    found = run(CHECK, frames(flows=[flow("f", conditional(action))], **history("f", mix(0, 20))))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["unnecessary_sampled"] == 20


def test_rate_of_a_sample_is_extrapolated_to_all_runs() -> None:
    """With 20 of 40 runs read, the sample's rate applies to the 40 runs."""
    found = run(
        CHECK,
        frames(
            flows=[flow("at", UPDATE), flow("above", UPDATE)],
            **merged(
                history("at", [*mix(10, 20), *mix(20, 20)], sampled=20),
                history("above", [*mix(11, 20), *mix(0, 20)], sampled=20),
            ),
        ),
    )
    assert statuses(found) == {"at": "pass", "above": "fail"}
    above = next(f for f in found if f.resource_id == "above").values
    assert (above["runs"], above["sampled"]) == (40, 20)
    assert above["estimated_unnecessary"] == 22.0
    assert above["unnecessary_share"] == pytest.approx(0.55)


def test_unfinished_runs_count_as_runs_but_have_no_outcome() -> None:
    """A running run has not reached its effect yet: it is not an unnecessary one.

    20 listed runs, 4 still running, 10 of the 16 finished changed nothing: 10 / 20 = 0.5,
    a pass. Counting the running ones as unnecessary would give 14 / 20 of the sample.
    """
    outcomes = [*mix(10, 16), *["running"] * 4]
    found = run(CHECK, frames(flows=[flow("f", UPDATE)], **history("f", outcomes)))
    assert statuses(found) == {"f": "pass"}
    values = found[0].values
    assert values["runs"] == 20
    assert values["sampled"] == 16
    assert values["estimated_unnecessary"] == 10.0
    assert values["unnecessary_share"] == 0.5


def test_runs_without_action_detail_are_not_assessed() -> None:
    """Enough runs but no action results: unknown, not a pass."""
    found = run(CHECK, frames(flows=[flow("f", UPDATE)], **history("f", mix(0, 20), sampled=0)))
    assert statuses(found) == {"f": "not-assessed"}
    assert found[0].values["runs"] == 20


def test_a_stopped_flow_is_judged_on_its_runs_in_the_window() -> None:
    """Runs are facts of the window: a flow stopped since then still ran them."""
    found = run(
        CHECK,
        frames(flows=[flow("f", UPDATE, state="Stopped")], **history("f", mix(11, 20))),
    )
    assert statuses(found) == {"f": "fail"}


def test_flow_without_runs_gets_no_finding() -> None:
    """No run in the window: nothing to judge (the run-ingestion coverage check covers it)."""
    assert run(CHECK, frames(flows=[flow("idle", UPDATE)])) == []
