"""Must-show 1 for flows: unnecessary and failed runs per flow equal the ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulated import collect_tenant

from auditor.analysis import actions, runs
from auditor.frames import flow_definitions, load_frames
from auditor.store import Store

pytestmark = pytest.mark.slow


def collect(seed: int, folder: Path) -> tuple[Path, dict[str, object]]:
    """Collects the tiny tenant of a seed with every run's actions; returns store and truth."""
    return collect_tenant(seed, "tiny", folder, action_sample=1000)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_unnecessary_and_failed_runs_per_flow_equal_the_truth(seed: int, tmp_path: Path) -> None:
    path, truth = collect(seed, tmp_path)
    with Store.open(path, read_only=True) as store:
        frames = load_frames(store)
    all_runs = runs.runs_from_frames(frames)
    summary = runs.run_summary(
        all_runs, window_days=frames.window.days, flows=flow_definitions(frames)
    )
    unnecessary = actions.action_frames(frames, all_runs, summary)["unnecessary"]
    by_flow = summary.set_index(["environment_id", "flow_id"])
    by_flow_u = unnecessary.set_index(["environment_id", "flow_id"])
    compared = 0
    environments = truth["environments"]
    assert isinstance(environments, list)
    for env in environments:
        for flow, expected in env["metrics"]["flows"].items():
            key = (env["id"], flow)
            got_failed = int(by_flow.loc[key, "failed"]) if key in by_flow.index else 0
            got_runs = int(by_flow.loc[key, "runs"]) if key in by_flow.index else 0
            got_unnecessary = (
                int(by_flow_u.loc[key, "unnecessary"]) if key in by_flow_u.index else 0
            )
            where = f"seed {seed} {env['name']} {expected['display_name']}"
            assert got_failed == expected["failed_runs"], where
            assert got_runs == expected["runs"], where
            assert got_unnecessary == expected["unnecessary_runs"], where
            compared += 1
    assert compared >= 15
    # The tenant has both kinds of run, so the comparison can fail.
    assert int(summary["failed"].sum()) > 0
    assert int(unnecessary["unnecessary"].sum()) > 0
