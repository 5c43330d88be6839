"""system-jobs-stuck: suspended jobs, or jobs waiting since more than 24 h before the end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
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

CHECK = "system-jobs-stuck"


def job(
    job_id: str, statecode: int, statuscode: int, hours_before_end: float, *, env: str = ENV
) -> dict[str, Any]:
    return {
        "environment_id": env,
        "asyncoperationid": job_id,
        "name": f"Job {job_id}",
        "operationtype": 1,
        "statecode": statecode,
        "statuscode": statuscode,
        "message": "Plug-in assembly not found" if statecode == 1 else None,
        "createdon": END - timedelta(hours=hours_before_end),
    }


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_waiting_exactly_24_hours_passes_and_longer_fails() -> None:
    """The rule is "more than" 24 h: created exactly at the cutoff is not stuck yet."""
    at = run(CHECK, frames(asyncoperations=[job("j1", 0, 0, 24), job("j2", 0, 10, 2)]))
    assert statuses(at) == {ENV: "pass"}
    assert at[0].values == {"suspended": 0, "waiting": 0}
    above = run(CHECK, frames(asyncoperations=[job("j1", 0, 0, 24.01), job("j2", 0, 10, 30)]))
    assert statuses(above) == {ENV: "fail"}
    assert above[0].values == {"suspended": 0, "waiting": 2}
    assert [row["asyncoperationid"] for row in above[0].evidence] == ["j2", "j1"]  # oldest first


def test_a_suspended_job_is_stuck_whatever_its_age_and_counts_once() -> None:
    """Suspended (statecode 1) has statuscode 10 Waiting: one stuck job, not two."""
    found = run(
        CHECK,
        frames(asyncoperations=[job("s1", 1, 10, 1), job("done", 3, 30, 100)]),
    )
    assert statuses(found) == {ENV: "fail"}
    assert found[0].values == {"suspended": 1, "waiting": 0}
    assert found[0].evidence[0]["message"] == "Plug-in assembly not found"
    assert found[0].severity == "low"


def test_completed_and_running_old_jobs_are_not_stuck() -> None:
    found = run(
        CHECK,
        frames(asyncoperations=[job("done", 3, 31, 100), job("running", 2, 20, 100)]),
    )
    assert statuses(found) == {ENV: "pass"}


def test_waiting_hours_from_settings_flips_the_verdict() -> None:
    data = frames(asyncoperations=[job("j1", 0, 10, 30)])
    assert statuses(run(CHECK, data)) == {ENV: "fail"}
    lenient = Settings(thresholds={CHECK: {"waiting_hours": 48}})
    assert statuses(run(CHECK, data, lenient)) == {ENV: "pass"}
    strict = Settings(thresholds={CHECK: {"waiting_hours": 1}})
    assert statuses(run(CHECK, frames(asyncoperations=[job("j1", 0, 0, 2)]), strict)) == {
        ENV: "fail"
    }


def test_one_finding_per_environment() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                asyncoperations=[job("s1", 1, 10, 1), job("ok", 3, 30, 1, env="env-2")],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "fail", "env-2": "pass"}
    assert found["env-2"].values == {"suspended": 0, "waiting": 0}
    assert found["env-2"].resource_name == "Fabrikam"


def test_jobs_not_collected_give_not_assessed_but_a_stuck_job_seen_still_fails() -> None:
    kept = [q for q in QUERY_IDS if q != "asyncoperations"]
    missing = [
        *query_outcomes(queries=kept),
        *query_outcomes(status="not-collected", queries=["asyncoperations"], reason="denied"),
    ]
    quiet = run(CHECK, frames(scan_queries=missing))
    assert statuses(quiet) == {ENV: "not-assessed"}
    assert quiet[0].values["missing"] == ["asyncoperations not-collected: denied"]
    seen = run(CHECK, frames(scan_queries=missing, asyncoperations=[job("s1", 1, 10, 1)]))
    assert sorted(f.status for f in seen) == ["fail", "not-assessed"]
