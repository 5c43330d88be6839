"""operation-continually-failing: >= 10 consecutive failed flow runs or async jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import END, ENV, flow, frames, run, statuses

CHECK = "operation-continually-failing"


def runs(flow_id: str, pattern: str, *, env: str = ENV) -> list[dict[str, Any]]:
    """One run per letter of `pattern` (F failed, S succeeded), in start-time order, listed
    newest first so the order must come from the start times, not the rows."""
    out = []
    for i, letter in enumerate(pattern):
        start = END - timedelta(hours=len(pattern) - i)
        out.append(
            {
                "environment_id": env,
                "flow_name": flow_id,
                # Names sort against time: "z..." first, so name order would break streaks.
                "run_name": f"{chr(ord('z') - i % 26)}-{i:03d}",
                "start_time": start,
                "end_time": start + timedelta(minutes=1),
                "status": "Failed" if letter == "F" else "Succeeded",
                "error_message": "Connection expired" if letter == "F" else None,
            }
        )
    return out[::-1]


def jobs(
    owner: str, pattern: str, *, operationtype: int = 1, env: str = ENV
) -> list[dict[str, Any]]:
    """One completed system job per letter of `pattern` (F failed 31, S succeeded 30) of a
    step (operationtype 1) or a workflow (10), listed newest first."""
    out = []
    for i, letter in enumerate(pattern):
        created = END - timedelta(hours=len(pattern) - i)
        out.append(
            {
                "environment_id": env,
                "asyncoperationid": f"{owner}-job-{i:03d}",
                "name": f"Job of {owner}",
                "operationtype": operationtype,
                "statecode": 3,
                "statuscode": 31 if letter == "F" else 30,
                "message": "Object reference not set" if letter == "F" else None,
                "createdon": created,
                "startedon": created + timedelta(seconds=5),
                "completedon": created + timedelta(seconds=10),
                "owningextensionid": owner if operationtype == 1 else None,
                "workflowactivationid": owner if operationtype != 1 else None,
            }
        )
    return out[::-1]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_ten_consecutive_failed_runs_fail_and_nine_pass() -> None:
    """The streak is counted in start-time order; two streaks of 9 are not one of 18."""
    found = by_id(
        run(
            CHECK,
            frames(
                flows=[flow("broken"), flow("flaky")],
                flow_api_runs=[
                    *runs("broken", "SS" + "F" * 10 + "S"),
                    *runs("flaky", "F" * 9 + "S" + "F" * 9),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"broken": "fail", "flaky": "pass"}
    assert found["broken"].values["failure_streak"] == 10
    assert "Connection expired" in found["broken"].message
    assert found["flaky"].values["failure_streak"] == 9
    assert found["flaky"].values["failed"] == 18
    assert found["broken"].resource_name == "Flow broken"


def test_consecutive_failed_async_jobs_of_a_step_or_workflow() -> None:
    """Jobs are ordered by createdon and grouped by owning step or workflow."""
    found = by_id(
        run(
            CHECK,
            frames(
                asyncoperations=[
                    *jobs("step-1", "S" + "F" * 10),
                    *jobs("wf-1", "F" * 9 + "S", operationtype=10),
                    *jobs("expander", "F" * 12, operationtype=79),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"step-1": "fail", "wf-1": "pass"}
    assert found["step-1"].resource_kind == "step"
    assert found["step-1"].values["failure_streak"] == 10
    assert found["step-1"].values["current_streak"] == 10
    assert found["wf-1"].resource_kind == "workflow"
    assert (found["wf-1"].values["failure_streak"], found["wf-1"].values["current_streak"]) == (
        9,
        0,
    )


def test_failure_streak_from_settings_flips_the_verdict() -> None:
    data = frames(
        flow_api_runs=runs("flaky", "F" * 9 + "S"),
        asyncoperations=jobs("step-1", "FFFFF"),
    )
    assert statuses(run(CHECK, data)) == {"flaky": "pass", "step-1": "pass"}
    strict = Settings(thresholds={CHECK: {"failure_streak": 5}})
    assert statuses(run(CHECK, data, strict)) == {"flaky": "fail", "step-1": "fail"}
    lenient = Settings(thresholds={CHECK: {"failure_streak": 11}})
    data = frames(flow_api_runs=runs("broken", "F" * 10))
    assert statuses(run(CHECK, data, lenient)) == {"broken": "pass"}
