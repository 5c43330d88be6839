"""system-jobs-stuck: jobs held waiting for resources, in progress or overdue past the
threshold; Waiting jobs (postponed retries, workflows waiting on a condition) are not stuck."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    environment,
    frames,
    run,
    statuses,
)

CHECK = "system-jobs-stuck"
ZERO = {"waiting_for_resources": 0, "in_progress": 0, "overdue": 0, "waiting": 0}


def job(
    job_id: str,
    statecode: int,
    statuscode: int,
    hours_before_end: float,
    *,
    env: str = ENV,
    started_hours_before_end: float | None = None,
    postpone_hours_before_end: float | None = None,
) -> dict[str, Any]:
    started = (
        None
        if started_hours_before_end is None
        else END - timedelta(hours=started_hours_before_end)
    )
    postpone = (
        None
        if postpone_hours_before_end is None
        else END - timedelta(hours=postpone_hours_before_end)
    )
    return {
        "environment_id": env,
        "asyncoperationid": job_id,
        "name": f"Job {job_id}",
        "operationtype": 1,
        "statecode": statecode,
        "statuscode": statuscode,
        "message": "Plug-in assembly not found" if statuscode == 0 else None,
        "createdon": END - timedelta(hours=hours_before_end),
        "modifiedon": started or END - timedelta(hours=hours_before_end),
        "startedon": started,
        "postponeuntil": postpone,
    }


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_waiting_and_postponed_jobs_are_not_stuck() -> None:
    """Statecode 1 has one status, 10 Waiting: a retry postponed to a later time, or a
    background workflow waiting on a condition (no postponeuntil), however old."""
    found = run(
        CHECK,
        frames(
            asyncoperations=[
                job("retry", 1, 10, 3, started_hours_before_end=3, postpone_hours_before_end=-1),
                job("timeout", 1, 10, 200, started_hours_before_end=200),
                job("recently-due", 1, 10, 50, postpone_hours_before_end=2),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values == {**ZERO, "waiting": 3}
    assert "3 waiting (postponed or on a condition), not stuck" in found[0].message


def test_a_job_waiting_for_resources_beyond_the_threshold_is_stuck() -> None:
    """The rule is "more than" 24 h: created exactly at the cutoff is not stuck yet."""
    at = run(CHECK, frames(asyncoperations=[job("j1", 0, 0, 24), job("j2", 0, 0, 2)]))
    assert statuses(at) == {ENV: "pass"}
    assert at[0].values == ZERO
    above = run(CHECK, frames(asyncoperations=[job("j1", 0, 0, 24.01), job("j2", 0, 0, 30)]))
    assert statuses(above) == {ENV: "fail"}
    assert above[0].values == {**ZERO, "waiting_for_resources": 2}
    assert [row["asyncoperationid"] for row in above[0].evidence] == ["j2", "j1"]  # oldest first
    assert above[0].evidence[0]["message"] == "Plug-in assembly not found"
    assert above[0].severity == "low"


def test_in_progress_past_the_threshold_and_overdue_postponements_are_stuck() -> None:
    found = run(
        CHECK,
        frames(
            asyncoperations=[
                job("running-long", 2, 20, 40, started_hours_before_end=30),
                job("running-now", 2, 20, 40, started_hours_before_end=1),
                job("overdue", 1, 10, 90, postpone_hours_before_end=48),
                job("done", 3, 31, 100),
            ]
        ),
    )
    assert statuses(found) == {ENV: "fail"}
    assert found[0].values == {**ZERO, "in_progress": 1, "overdue": 1}
    assert sorted(row["asyncoperationid"] for row in found[0].evidence) == [
        "overdue",
        "running-long",
    ]


def test_waiting_hours_from_settings_flips_the_verdict() -> None:
    data = frames(asyncoperations=[job("j1", 0, 0, 30)])
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
                asyncoperations=[job("q1", 0, 0, 30), job("ok", 3, 30, 1, env="env-2")],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "fail", "env-2": "pass"}
    assert found["env-2"].values == ZERO
    assert found["env-2"].resource_name == "Fabrikam"
