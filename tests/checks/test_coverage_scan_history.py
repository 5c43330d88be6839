"""coverage-scan-history: fewer than 3 completed or partial scans whose window ended in the
30 days up to the analysis window's end leave performance without a trend."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import END, ENV, environment, frames, run, statuses

CHECK = "coverage-scan-history"


def scan(scan_id: int, days_before_end: float, status: str = "completed") -> dict[str, Any]:
    """A scan whose window ended `days_before_end` days before the analysis window's end."""
    end = END - timedelta(days=days_before_end)
    return {
        "scan_id": scan_id,
        "status": status,
        "started": end,
        "ended": end + timedelta(minutes=5),
        "window_start": end - timedelta(days=7),
        "window_end": end,
    }


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_three_recent_scans_pass_and_two_are_not_assessed() -> None:
    three = run(CHECK, frames(scans=[scan(1, 20), scan(2, 10, "partial"), scan(3, 0)]))
    assert statuses(three) == {ENV: "pass"}
    assert three[0].values == {"scans_30d": 3, "min_scans_30d": 3}
    two = run(CHECK, frames(scans=[scan(1, 10), scan(2, 0)]))
    assert statuses(two) == {ENV: "not-assessed"}
    assert two[0].values == {"scans_30d": 2, "min_scans_30d": 3}
    assert two[0].severity == "low"


def test_the_default_single_scan_is_not_assessed() -> None:
    """One first scan can show durations but not a trend."""
    found = run(CHECK, frames())
    assert statuses(found) == {ENV: "not-assessed"}
    assert found[0].values["scans_30d"] == 1


def test_only_completed_or_partial_scans_within_30_days_count() -> None:
    """Exactly 30 days before the end still counts; a day more, a failed or running scan
    does not."""
    found = run(
        CHECK,
        frames(
            scans=[
                scan(1, 30),
                scan(2, 31),
                scan(3, 5, "failed"),
                scan(4, 2, "running"),
                scan(5, 1),
            ]
        ),
    )
    assert statuses(found) == {ENV: "not-assessed"}
    assert found[0].values["scans_30d"] == 2
    found = run(CHECK, frames(scans=[scan(1, 30), scan(2, 29.9), scan(3, 0)]))
    assert statuses(found) == {ENV: "pass"}


def test_min_scans_from_settings_flips_the_verdict() -> None:
    data = frames(scans=[scan(1, 10), scan(2, 0)])
    assert statuses(run(CHECK, data)) == {ENV: "not-assessed"}
    assert statuses(run(CHECK, data, Settings(thresholds={CHECK: {"min_scans_30d": 2}}))) == {
        ENV: "pass"
    }
    strict = Settings(thresholds={CHECK: {"min_scans_30d": 4}})
    three = frames(scans=[scan(1, 20), scan(2, 10), scan(3, 0)])
    assert statuses(run(CHECK, three, strict)) == {ENV: "not-assessed"}


def test_the_store_count_applies_to_every_environment() -> None:
    """A scan covers every environment it was asked for: each gets the same verdict."""
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                scans=[scan(1, 20), scan(2, 10), scan(3, 0)],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "pass", "env-2": "pass"}
