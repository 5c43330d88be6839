"""queue-latency-high: p95 (startedon - createdon) of completed async plug-in jobs above
600,000 ms, per environment."""

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
    environment,
    frames,
    run,
    statuses,
)

CHECK = "queue-latency-high"


def jobs(
    waits_ms: Sequence[float],
    *,
    operationtype: int = 1,
    statecode: int = 3,
    env: str = ENV,
    prefix: str = "j",
) -> list[dict[str, Any]]:
    """One job per wait; jobs not completed (statecode != 3) have not started."""
    out = []
    for i, wait in enumerate(waits_ms):
        created = END - timedelta(hours=i + 1)
        started = created + timedelta(milliseconds=wait) if statecode == 3 else None
        out.append(
            {
                "environment_id": env,
                "asyncoperationid": f"{prefix}-{i:03d}",
                "operationtype": operationtype,
                "statecode": statecode,
                "statuscode": 30 if statecode == 3 else 0,
                "createdon": created,
                "startedon": started,
                "completedon": started,
            }
        )
    return out


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


# 20 waits whose linear p95 is v[18] + 0.05 * (v[19] - v[18]).
AT_LIMIT = [1000.0] * 18 + [600_000.0, 600_000.0]
ABOVE = [1000.0] * 18 + [600_000.0, 600_020.0]


def test_p95_exactly_at_the_limit_passes_and_above_it_fails() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                asyncoperations=[*jobs(AT_LIMIT), *jobs(ABOVE, env="env-2")],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "pass", "env-2": "fail"}
    assert found[ENV].values["queue_latency_p95_ms"] == 600_000
    # numpy's linear percentile, as the rules say.
    expected = float(np.percentile(ABOVE, 95, method="linear"))
    assert found["env-2"].values["queue_latency_p95_ms"] == pytest.approx(expected)
    assert expected == pytest.approx(600_001)


def test_only_completed_async_plugin_jobs_are_measured() -> None:
    """Slow workflows (operationtype 10) and unfinished jobs do not count."""
    found = run(
        CHECK,
        frames(
            asyncoperations=[
                *jobs([1000.0] * 5),
                *jobs([3_600_000.0] * 5, operationtype=10, prefix="wf"),
                *jobs([0.0] * 5, statecode=0, prefix="queued"),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values["queue_latency_p95_ms"] == 1000


def test_no_async_job_at_all_passes_and_jobs_none_completed_is_not_assessed() -> None:
    """Nothing queued means nothing waits; queued jobs that never completed are unknown."""
    found = by_id(
        run(
            CHECK,
            frames(
                environments=[environment(), environment("env-2", "Fabrikam")],
                asyncoperations=[
                    *jobs([5.0], operationtype=10, prefix="wf"),
                    *jobs([0.0, 0.0], statecode=0, env="env-2"),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {ENV: "pass", "env-2": "not-assessed"}
    assert found[ENV].values == {"async_plugin_jobs": 0}
    assert found["env-2"].values == {"async_plugin_jobs": 2}


def test_the_limit_from_settings_flips_the_verdict() -> None:
    data = frames(asyncoperations=jobs(ABOVE))
    assert statuses(run(CHECK, data)) == {ENV: "fail"}
    lenient = Settings(thresholds={CHECK: {"queue_latency_p95_ms": 700_000}})
    found = run(CHECK, data, lenient)
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values["threshold_ms"] == 700_000
    strict = Settings(thresholds={CHECK: {"queue_latency_p95_ms": 500}})
    assert statuses(run(CHECK, frames(asyncoperations=jobs([1000.0])), strict)) == {ENV: "fail"}
