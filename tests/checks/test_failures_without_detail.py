"""failures-without-detail: failed runs and failed system jobs must carry a message.

Per environment, two findings: failed flow runs (finished, status Failed) without an error
message, and failed system jobs (statuscode 31, operationtype 1 / 10 / 79) without a
message; each fails when that share is above `missing_error_share`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    environment,
    frames,
    run,
    statuses,
)

CHECK = "failures-without-detail"
RUNS = f"{ENV}/flow-runs"
JOBS = f"{ENV}/system-jobs"


def flow_runs(
    failed: int,
    bare: int,
    *,
    status: str = "Failed",
    finished: bool = True,
    env: str = ENV,
    prefix: str = "run",
) -> list[dict[str, Any]]:
    """`failed` runs of status `status`, the first `bare` of them without an error message."""
    out = []
    for i in range(failed):
        start = END - timedelta(hours=i + 1)
        out.append(
            {
                "environment_id": env,
                "flow_name": "flow-1",
                "run_name": f"{prefix}-{i:03d}",
                "start_time": start,
                "end_time": start + timedelta(minutes=2) if finished else None,
                "status": status,
                "error_code": "ActionFailed",
                "error_message": None if i < bare else "The action 'Update_row' failed.",
            }
        )
    return out


def jobs(
    failed: int,
    bare: int,
    *,
    operationtype: int = 1,
    statuscode: int = 31,
    env: str = ENV,
    prefix: str = "job",
) -> list[dict[str, Any]]:
    """`failed` system jobs, the first `bare` of them without a message."""
    return [
        {
            "environment_id": env,
            "asyncoperationid": f"{prefix}-{operationtype}-{i:03d}",
            "name": "Contoso.Plugins.Sync",
            "operationtype": operationtype,
            "statecode": 3,
            "statuscode": statuscode,
            "message": None if i < bare else "Object reference not set to an instance.",
            "createdon": END - timedelta(hours=i + 1),
            "owningextensionid": "step-1",
        }
        for i in range(failed)
    ]


def by_id(found: list[Any]) -> dict[str | None, Any]:
    return {f.resource_id: f for f in found}


def test_share_at_the_threshold_passes_above_it_fails() -> None:
    """The rule is "above": 2 of 10 bare runs (0.2) pass, 3 of 10 jobs (0.3) fail."""
    found = run(CHECK, frames(flow_api_runs=flow_runs(10, 2), asyncoperations=jobs(10, 3)))
    assert statuses(found) == {RUNS: "pass", JOBS: "fail"}
    found_by = by_id(found)
    assert found_by[RUNS].values == {"failed": 10, "without_message": 2, "share": 0.2}
    assert found_by[JOBS].values == {"failed": 10, "without_message": 3, "share": 0.3}


def test_just_above_the_threshold_fails_for_runs() -> None:
    """3 of 14 (0.214) is above 0.2."""
    found = run(CHECK, frames(flow_api_runs=flow_runs(14, 3), asyncoperations=jobs(5, 1)))
    assert statuses(found) == {RUNS: "fail", JOBS: "pass"}
    assert by_id(found)[RUNS].values["share"] == pytest.approx(3 / 14, abs=1e-6)


def test_threshold_from_settings_flips_the_verdict() -> None:
    """`[checks.failures-without-detail] missing_error_share` is honoured."""
    data = frames(flow_api_runs=flow_runs(10, 2), asyncoperations=jobs(10, 2))
    assert statuses(run(CHECK, data)) == {RUNS: "pass", JOBS: "pass"}
    strict = Settings(thresholds={CHECK: {"missing_error_share": 0.1}})
    assert statuses(run(CHECK, data, strict)) == {RUNS: "fail", JOBS: "fail"}


def test_only_finished_failed_runs_count() -> None:
    """Succeeded runs and runs with no end yet are not failures without detail."""
    runs = [
        *flow_runs(4, 0),
        *flow_runs(6, 6, status="Succeeded", prefix="ok"),
        *flow_runs(6, 6, finished=False, prefix="open"),
    ]
    found = run(CHECK, frames(flow_api_runs=runs))
    assert statuses(found) == {RUNS: "pass", JOBS: "pass"}
    assert by_id(found)[RUNS].values == {"failed": 4, "without_message": 0, "share": 0.0}


@pytest.mark.parametrize("operationtype", [1, 10, 79])
def test_failed_jobs_of_each_audited_type_count(operationtype: int) -> None:
    """Async plug-ins, workflows and flow triggers are the audited job types."""
    found = run(CHECK, frames(asyncoperations=jobs(4, 1, operationtype=operationtype)))
    assert statuses(found)[JOBS] == "fail"
    assert by_id(found)[JOBS].values["failed"] == 4


def test_other_job_types_and_outcomes_do_not_count() -> None:
    """Other operation types and jobs that did not fail are outside the rule."""
    rows = [
        *jobs(5, 5, operationtype=2, prefix="other-type"),
        *jobs(5, 5, statuscode=30, prefix="succeeded"),
        *jobs(5, 5, statuscode=32, prefix="canceled"),
        *jobs(5, 0),
    ]
    found = run(CHECK, frames(asyncoperations=rows))
    assert statuses(found) == {RUNS: "pass", JOBS: "pass"}
    assert by_id(found)[JOBS].values == {"failed": 5, "without_message": 0, "share": 0.0}


def test_blank_job_message_is_no_message() -> None:
    """A message of blanks says nothing."""
    rows = jobs(4, 0)
    rows[0]["message"] = "   "
    found = run(CHECK, frames(asyncoperations=rows))
    assert by_id(found)[JOBS].values["without_message"] == 1
    assert statuses(found)[JOBS] == "fail"


def test_no_failures_passes_with_no_share() -> None:
    """Nothing failed: nothing lacks detail."""
    found = run(CHECK, frames())
    assert statuses(found) == {RUNS: "pass", JOBS: "pass"}
    assert by_id(found)[RUNS].values == {"failed": 0, "without_message": 0, "share": None}


def test_each_environment_is_judged_on_its_own_failures() -> None:
    """Bare failures in one environment do not spill into another's verdict."""
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment("env-2", "Fabrikam")],
            flow_api_runs=[*flow_runs(5, 5), *flow_runs(5, 0, env="env-2")],
            asyncoperations=[*jobs(5, 0), *jobs(5, 5, env="env-2")],
        ),
    )
    assert statuses(found) == {
        RUNS: "fail",
        JOBS: "pass",
        "env-2/flow-runs": "pass",
        "env-2/system-jobs": "fail",
    }
