"""flow-failure-rate: failed runs / all listed runs above 0.2, for flows with >= 20 runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-failure-rate"


def runs(
    flow_id: str, failed: int, succeeded: int, running: int = 0, *, env: str = ENV
) -> list[dict[str, Any]]:
    """`failed` Failed runs interleaved with Succeeded ones, then `running` unfinished runs."""
    statuses_ = ["Failed"] * failed + ["Succeeded"] * succeeded
    statuses_ = statuses_[::2] + statuses_[1::2]  # no long streak: only the rate matters
    out = []
    for i, status in enumerate([*statuses_, *["Running"] * running]):
        start = END - timedelta(hours=100 - i)
        out.append(
            {
                "environment_id": env,
                "flow_name": flow_id,
                "run_name": f"{flow_id}-run-{i:03d}",
                "start_time": start,
                "end_time": None if status == "Running" else start + timedelta(seconds=30),
                "status": status,
                "error_message": "The record 'a1b2' was not found" if status == "Failed" else None,
            }
        )
    return out


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_rate_exactly_at_the_threshold_passes_and_above_it_fails() -> None:
    """The rule is "above": 4 of 20 (0.2) passes, 5 of 20 fails."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[flow("at"), flow("above")],
                flow_api_runs=[*runs("at", 4, 16), *runs("above", 5, 15)],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"at": "pass", "above": "fail"}
    assert found["at"].values["failure_rate"] == pytest.approx(0.2)
    assert found["above"].values["failure_rate"] == pytest.approx(0.25)
    assert (found["above"].values["runs"], found["above"].values["failed"]) == (20, 5)
    assert found["above"].resource_name == "Flow above"
    assert found["above"].severity == "high"
    # The commonest error, with its varying parts masked, names the cause to fix.
    assert found["above"].values["top_error_count"] == 5
    assert "not found" in found["above"].message


def test_a_flow_with_fewer_runs_than_min_runs_is_not_judged() -> None:
    """19 runs, all failed, is too few to judge a rate: pass, saying so."""
    found = run(CHECK, frames(flow_api_runs=runs("few", 19, 0)))
    assert statuses(found) == {"few": "pass"}
    assert found[0].values["runs"] == 19
    assert found[0].values["failure_rate"] == 1.0
    assert "not judged" in found[0].message


def test_runs_count_every_listed_run_including_unfinished_ones() -> None:
    """5 failed of 25 listed runs (5 still running) is 0.2, not 5 / 20 finished: a pass."""
    found = run(CHECK, frames(flow_api_runs=runs("busy", 5, 15, running=5)))
    assert statuses(found) == {"busy": "pass"}
    assert found[0].values["runs"] == 25
    assert found[0].values["failure_rate"] == pytest.approx(0.2)


def test_thresholds_from_settings_flip_the_verdict() -> None:
    """A higher failure_rate lets 5 of 20 pass; a lower min_runs judges a 10-run flow."""
    data = frames(flow_api_runs=[*runs("above", 5, 15), *runs("small", 5, 5)])
    assert statuses(run(CHECK, data)) == {"above": "fail", "small": "pass"}
    lenient = Settings(thresholds={CHECK: {"failure_rate": 0.3}})
    assert statuses(run(CHECK, data, lenient)) == {"above": "pass", "small": "pass"}
    strict = Settings(thresholds={CHECK: {"min_runs": 10}})
    found = by_id(run(CHECK, data, strict))
    assert found["small"].status == "fail"
    assert found["small"].values["failure_rate"] == pytest.approx(0.5)


def test_a_flow_without_runs_gets_no_finding() -> None:
    """A silent flow has no rate to judge (other checks report it)."""
    assert run(CHECK, frames(flows=[flow("quiet")])) == []


def test_runs_of_a_flow_without_a_definition_are_still_judged() -> None:
    """Runs of a flow the definitions lack (an orphan workflow's flowruns, a flow missing
    from the list) still count: dropping them would hide their failures."""
    found = run(CHECK, frames(flows=[flow("listed")], flow_api_runs=runs("unlisted", 10, 10)))
    assert statuses(found) == {"unlisted": "fail"}
    assert found[0].resource_name == "unlisted"


def test_runs_with_an_undocumented_status_are_counted_and_named() -> None:
    """A status that is not a WorkflowStatus is neither a failure nor silently a success."""
    odd = [r | {"status": "Exploded"} for r in runs("odd", 0, 20)]
    found = run(CHECK, frames(flow_api_runs=odd))
    assert statuses(found) == {"odd": "pass"}
    assert "0 of 20 runs failed" in found[0].message
    assert "20 with a missing or undocumented status" in found[0].message
