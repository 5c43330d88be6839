"""system-jobs-failing: a step or workflow with >= 20 system jobs and failed / jobs > 0.2."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import END, ENV, frames, run, statuses

CHECK = "system-jobs-failing"


def jobs(
    owner: str, failed: int, succeeded: int, *, operationtype: int = 1
) -> list[dict[str, Any]]:
    """Completed jobs of a step (operationtype 1) or another owner, failed ones first."""
    out = []
    for i in range(failed + succeeded):
        created = END - timedelta(hours=i + 1)
        bad = i < failed
        out.append(
            {
                "environment_id": ENV,
                "asyncoperationid": f"{owner}-{i:03d}",
                "name": f"Job of {owner}",
                "operationtype": operationtype,
                "statecode": 3,
                "statuscode": 31 if bad else 30,
                "message": f"Timeout after {i} s" if bad else None,
                "createdon": created,
                "startedon": created + timedelta(seconds=2),
                "completedon": created + timedelta(seconds=4),
                "owningextensionid": owner if operationtype == 1 else None,
                "workflowactivationid": None if operationtype == 1 else owner,
            }
        )
    return out


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_failure_rate_exactly_at_the_threshold_passes_and_above_it_fails() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                asyncoperations=[
                    *jobs("step-at", 4, 16),
                    *jobs("step-above", 5, 15),
                    *jobs("wf-above", 6, 14, operationtype=10),
                    *jobs("expander", 20, 0, operationtype=79),
                ]
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {
        "step-at": "pass",
        "step-above": "fail",
        "wf-above": "fail",
    }
    above = found["step-above"]
    assert above.resource_kind == "step"
    assert (above.values["jobs"], above.values["failed"]) == (20, 5)
    assert above.values["failure_rate"] == pytest.approx(0.25)
    # Numbers are masked, so "Timeout after 0 s" .. "after 4 s" are one recurring error.
    assert "(5x)" in above.message
    assert found["step-at"].values["failure_rate"] == pytest.approx(0.2)
    assert found["wf-above"].resource_kind == "workflow"


def test_an_owner_with_fewer_than_min_jobs_is_not_judged() -> None:
    found = run(CHECK, frames(asyncoperations=jobs("step-few", 19, 0)))
    assert statuses(found) == {"step-few": "pass"}
    assert found[0].values["failure_rate"] == 1.0
    assert "not judged" in found[0].message


def test_thresholds_from_settings_flip_the_verdict() -> None:
    data = frames(asyncoperations=[*jobs("step-above", 5, 15), *jobs("step-few", 5, 5)])
    assert statuses(run(CHECK, data)) == {"step-above": "fail", "step-few": "pass"}
    lenient = Settings(thresholds={CHECK: {"async_failure_rate": 0.25}})
    assert statuses(run(CHECK, data, lenient)) == {"step-above": "pass", "step-few": "pass"}
    lower = Settings(thresholds={CHECK: {"min_jobs": 10}})
    assert statuses(run(CHECK, data, lower))["step-few"] == "fail"


def test_jobs_with_an_undocumented_or_missing_statuscode_are_named() -> None:
    """A statuscode that is not documented counts as a job, not a failure: the message says
    so, or 20 jobs of unknown outcome would read as a clean pass."""
    odd = [j | {"statuscode": 999 if i % 2 else None} for i, j in enumerate(jobs("odd", 0, 20))]
    found = run(CHECK, frames(asyncoperations=odd))
    assert statuses(found) == {"odd": "pass"}
    assert "0 of 20 finished async plug-in jobs failed" in found[0].message
    assert "20 with a missing or undocumented statuscode" in found[0].message


def autodeleting_step(owner: str) -> dict[str, Any]:
    """An async step that deletes its successful system jobs on completion."""
    return {
        "environment_id": ENV,
        "stepid": owner,
        "name": f"Step {owner}",
        "mode": 1,
        "asyncautodelete": True,
        "statecode": 0,
        "customizationlevel": 1,
    }


def traces(owner: str, executions: int, failed_every: int) -> list[dict[str, Any]]:
    """Trace rows of an async step: every `failed_every`-th execution has exception details."""
    return [
        {
            "environment_id": ENV,
            "plugintracelogid": f"{owner}-t{i:04d}",
            "pluginstepid": owner,
            "mode": 1,
            "performanceexecutionstarttime": END - timedelta(minutes=executions - i),
            "createdon": END - timedelta(minutes=executions - i),
            "performanceexecutionduration": 40,
            "exceptiondetails": "Timeout" if i % failed_every == 0 else None,
        }
        for i in range(executions)
    ]


def test_a_step_with_auto_delete_is_measured_from_its_trace_logs() -> None:
    """Its successful jobs are deleted at once, so its 2 remaining jobs are its 2 failures:
    100 % from jobs, 2 % from the 100 executions trace logging All shows."""
    data = frames(
        plugin_steps=[autodeleting_step("auto")],
        plugintracelogs=traces("auto", 100, 50),
        asyncoperations=jobs("auto", 2, 0),
    )
    found = by_id(run(CHECK, data))
    assert found["auto"].status == "pass"
    assert found["auto"].message.startswith("2 of 100 executions failed (2.0 %) (from trace logs")
    assert found["auto"].values["measured_by"] == "trace logs"
    streak = by_id(run("operation-continually-failing", data))["auto"]
    assert streak.status == "pass"
    assert streak.values["failure_streak"] == 1


def test_a_step_with_auto_delete_and_no_full_trace_is_not_assessed() -> None:
    for setting in (0, 1):
        data = frames(
            organizations=[{"environment_id": ENV, "plugintracelogsetting": setting}],
            plugin_steps=[autodeleting_step("auto")],
            plugintracelogs=traces("auto", 100, 50) if setting else [],
            asyncoperations=jobs("auto", 25, 0),
        )
        found = by_id(run(CHECK, data))["auto"]
        assert found.status == "not-assessed"
        assert found.message == (
            "not assessed: successes are auto-deleted; enable trace logging All or turn off "
            "auto-delete to measure (25 failed async plug-in jobs remain)"
        )
        streak = by_id(run("operation-continually-failing", data))["auto"]
        assert streak.status == "not-assessed"  # 25 failed in a row means nothing here


def test_queued_and_running_jobs_are_not_failures() -> None:
    """Outcomes are per completed job: 5 failed of 20 completed, whatever is still queued."""
    waiting = [
        j | {"statecode": 0, "statuscode": 0, "startedon": None, "completedon": None}
        for j in jobs("busy", 0, 30)[:30]
    ]
    rows = jobs("busy", 5, 15) + [j | {"asyncoperationid": f"q{i}"} for i, j in enumerate(waiting)]
    found = by_id(run(CHECK, frames(asyncoperations=rows)))["busy"]
    assert found.status == "fail"
    assert found.message.startswith("5 of 20 finished async plug-in jobs failed (25.0 %)")
    assert "30 not finished yet" in found.message
