"""Must-show 1 for plug-ins and system jobs: per step executions and p95, queue-latency p95.

Each tenant is served in-process and collected through the CLI into a store (as
tests/test_collect.py does), then analysed from the store alone and compared with the ground
truth computed from the generated tenant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from simulated import collect_tenant

from auditor.analysis.jobs import job_stats_by_owner, queue_latency_p95
from auditor.analysis.plugins import step_stats, unfiltered_update_steps
from auditor.sim.truth import THRESHOLDS
from auditor.store import Store

pytestmark = pytest.mark.slow


def collect(seed: int, scale: str, folder: Path) -> tuple[dict[str, pd.DataFrame], Any]:
    """The store's plug-in and job tables after one scan, and the tenant's truth."""
    # Flow actions are not compared here.
    store, truth = collect_tenant(seed, scale, folder, action_sample=0)
    with Store.open(store, read_only=True) as opened:
        tables = {
            name: opened.frame(f"SELECT * FROM {name}")  # noqa: S608 - fixed names
            for name in ("plugin_steps", "plugintracelogs", "asyncoperations")
        }
    return tables, truth


@pytest.mark.parametrize(("scale", "seed"), [("tiny", 7), ("tiny", 8), ("tiny", 9), ("small", 7)])
def test_step_and_queue_metrics_equal_the_truth(scale: str, seed: int, tmp_path: Path) -> None:
    tables, truth = collect(seed, scale, tmp_path)
    stats = step_stats(tables["plugin_steps"], tables["plugintracelogs"])
    by_step = stats.set_index(["environment_id", "stepid"])
    unfiltered = unfiltered_update_steps(tables["plugin_steps"], stats)
    owners = job_stats_by_owner(tables["asyncoperations"])
    queue = queue_latency_p95(tables["asyncoperations"])
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
        # The facts the checks build on agree too.
        mine = unfiltered[unfiltered["environment_id"] == env["id"]]
        assert sorted(mine["stepid"]) == env["facts"]["unfiltered_update_steps"], where
        streaky = owners[
            (owners["environment_id"] == env["id"])
            & (owners["operationtype"] == 1)
            & (owners["max_failure_streak"] >= THRESHOLDS["failure_streak"])
        ]
        assert sorted(streaky["owner_id"]) == env["facts"]["failure_streak_steps"], where
    assert steps_compared > 10
    assert executions_compared > 100
    assert queues_compared >= 2
