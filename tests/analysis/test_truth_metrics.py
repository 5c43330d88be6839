"""Must-show 1: the analysis of a collected store reproduces the ground truth's key metrics.

Each tenant (scales tiny and small, three seeds each) is served in-process and collected
through the CLI with every run's actions, then analysed from the store alone through
`Evidence`, the path `auditor analyze` takes. Compared with the truth computed from the
generated tenant: per flow runs, failed and unnecessary runs exactly; per plug-in step
executions exactly and p95 within 1 %; queue-latency p95 per environment within 1 %; and the
facts the checks build on (unfiltered Update steps, steps with a failure streak).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from simulated import collected_copy

from auditor.checks.evidence import Evidence
from auditor.frames import load_frames
from auditor.sim.truth import THRESHOLDS
from auditor.store import Store

pytestmark = pytest.mark.slow

CASES = [("tiny", 7), ("tiny", 8), ("tiny", 9), ("small", 7), ("small", 8), ("small", 9)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{n}" for s, n in CASES])
def analysed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, int, Evidence, dict[str, Any]]:
    """One collection per case, shared by the tests below."""
    scale, seed = request.param
    store, truth = collected_copy(seed, scale, tmp_path_factory)
    with Store.open(store, read_only=True) as opened:
        frames = load_frames(opened)
    return scale, seed, Evidence(frames), truth


def test_runs_failures_and_unnecessary_runs_per_flow(
    analysed: tuple[str, int, Evidence, dict[str, Any]],
) -> None:
    scale, seed, evidence, truth = analysed
    summary = evidence.run_summary.set_index(["environment_id", "flow_id"])
    unnecessary = evidence.action_results["unnecessary"].set_index(["environment_id", "flow_id"])
    compared = 0
    for env in truth["environments"]:
        for flow, expected in env["metrics"]["flows"].items():
            key = (env["id"], flow)
            where = f"{scale} seed {seed} {env['name']} {expected['display_name']}"
            got = summary.loc[key] if key in summary.index else None
            assert (0 if got is None else int(got["runs"])) == expected["runs"], where
            assert (0 if got is None else int(got["failed"])) == expected["failed_runs"], where
            got_u = int(unnecessary.loc[key, "unnecessary"]) if key in unnecessary.index else 0
            assert got_u == expected["unnecessary_runs"], where
            compared += 1
    assert compared >= 15
    # Both kinds of run exist, so the comparison can fail.
    assert int(evidence.run_summary["failed"].sum()) > 0
    assert int(evidence.action_results["unnecessary"]["unnecessary"].sum()) > 0


def test_step_executions_p95_and_queue_latency(
    analysed: tuple[str, int, Evidence, dict[str, Any]],
) -> None:
    scale, seed, evidence, truth = analysed
    by_step = evidence.steps.set_index(["environment_id", "stepid"])
    unfiltered = evidence.unfiltered_steps
    owners = evidence.job_owners
    queue = evidence.queue_latency
    steps_compared = executions_compared = queues_compared = 0
    for env in truth["environments"]:
        where = f"{scale} seed {seed} {env['name']}"
        for stepid, expected in env["metrics"]["steps"].items():
            row = by_step.loc[(env["id"], stepid)]
            assert row["executions"] == expected["executions"], f"{where} {expected['name']}"
            if expected["p95_ms"] is None:
                assert pd.isna(row["p95_ms"]), f"{where} {expected['name']}"
            else:
                assert row["p95_ms"] == pytest.approx(expected["p95_ms"], rel=0.01), where
            steps_compared += 1
            executions_compared += expected["executions"]
        expected_queue = env["metrics"]["queue_latency_p95_ms"]
        if expected_queue is None:
            assert env["id"] not in queue.index, where
        else:
            assert queue[env["id"]] == pytest.approx(expected_queue, rel=0.01), where
            queues_compared += 1
        mine = unfiltered[unfiltered["environment_id"] == env["id"]]
        assert sorted(mine["stepid"]) == env["facts"]["unfiltered_update_steps"], where
        streaky = owners[
            (owners["environment_id"] == env["id"])
            & (owners["operationtype"] == 1)
            & (owners["max_failure_streak"] >= THRESHOLDS["failure_streak"])
            # A step whose successes are auto-deleted and not traced has no streak to judge.
            & (owners["measured_by"] != "not measurable")
        ]
        assert sorted(streaky["owner_id"]) == env["facts"]["failure_streak_steps"], where
        # Failing async steps: completed jobs, or trace rows for a step that auto-deletes its
        # successful jobs (trace logging All); with no full trace such a step is unmeasured.
        steps_only = owners[
            (owners["environment_id"] == env["id"]) & (owners["operationtype"] == 1)
        ]
        failing = steps_only[
            (steps_only["completed"] >= THRESHOLDS["min_jobs"])
            & (steps_only["failure_rate"] > THRESHOLDS["async_failure_rate"])
        ]
        assert sorted(failing["owner_id"]) == env["facts"]["failing_async_steps"], where
        unmeasured = steps_only[steps_only["measured_by"] == "not measurable"]
        assert sorted(unmeasured["owner_id"]) == env["facts"]["unmeasured_autodelete_steps"], where
    assert steps_compared > 10
    assert executions_compared > 100
    # An environment whose async steps all auto-delete keeps no successful job to time.
    assert queues_compared >= 1
