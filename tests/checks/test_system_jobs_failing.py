"""system-jobs-failing: a step or workflow with >= 20 system jobs and failed / jobs > 0.2."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import END, ENV, QUERY_IDS, frames, query_outcomes, run, statuses

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


def test_jobs_not_collected_make_passes_not_assessed_and_keep_fails() -> None:
    kept = [q for q in QUERY_IDS if q != "asyncoperations"]
    data = frames(
        scan_queries=[
            *query_outcomes(queries=kept),
            *query_outcomes(status="partial", queries=["asyncoperations"], reason="timed out"),
        ],
        asyncoperations=[*jobs("step-above", 5, 15), *jobs("step-ok", 0, 20)],
    )
    assert statuses(run(CHECK, data)) == {"step-above": "fail", ENV: "not-assessed"}


def test_jobs_with_an_undocumented_or_missing_statuscode_are_named() -> None:
    """A statuscode that is not documented counts as a job, not a failure: the message says
    so, or 20 jobs of unknown outcome would read as a clean pass."""
    odd = [j | {"statuscode": 999 if i % 2 else None} for i, j in enumerate(jobs("odd", 0, 20))]
    found = run(CHECK, frames(asyncoperations=odd))
    assert statuses(found) == {"odd": "pass"}
    assert "0 of 20 async plug-in jobs failed" in found[0].message
    assert "20 with a missing or undocumented statuscode" in found[0].message
