"""System jobs change state; the store keeps each job's latest, read by `modifiedon`.

A job queued or in progress at one scan is finished at the next: the second scan re-reads it
(its `modifiedon` moved) and the figures use its final state, so it is never left looking
stuck. The simulator serves each job as it is at its clock (`auditor.sim.jobs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from auditor.analyze import analyze
from auditor.collect import collect
from auditor.collect_types import CollectOptions
from auditor.settings import Settings, load_settings
from auditor.sim.model import SimOptions, SimTenant
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimTenant, Path]]:
    tenant = generate(7, "tiny")
    server = SimServer(tenant, SimOptions(seed=7, scale="tiny", max_requests=1_000_000))
    server.start()
    folder = tmp_path / "sim"
    server.write_client_files(folder)
    yield tenant, folder
    server.stop()


def scan(
    tenant: SimTenant,
    folder: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    since: timedelta | None = None,
) -> Settings:
    """One collection; without `since`, an incremental one from the last scan's end."""
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
    settings = load_settings(
        {"config": folder / "auditor.toml", "store_path": store},
        environ={"AZURE_CLIENT_SECRET": tenant.client_secret},
        cwd=folder,
    )
    options = CollectOptions(since=since, action_sample=0)
    summary = asyncio.run(collect(settings, options))
    assert summary.status in ("completed", "partial")
    return settings


def test_jobs_unfinished_at_one_scan_are_finished_after_the_next(
    served: tuple[SimTenant, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, folder = served
    end = pd.Timestamp(tenant.now)
    env = next(e for e in tenant.environments if not e.job_plan.empty)
    plan = env.job_plan
    # A moment an hour before the end at which jobs were queued: the midpoint of the longest
    # queue wait among jobs that finish before the end.
    waits = plan[
        (plan["operationtype"] == 1)
        & plan["_sim_started"].notna()
        & (plan["_sim_ended"] < end)
        & (plan["createdon"] < end - pd.Timedelta(hours=1))
    ]
    slowest = waits.loc[(waits["_sim_started"] - waits["createdon"]).idxmax()]
    first = (slowest["createdon"] + (slowest["_sim_started"] - slowest["createdon"]) / 2).floor("s")
    tenant.now = first.to_pydatetime()
    tenant.advance(timedelta(0))  # serve the jobs as they were then
    store = tmp_path / "s.duckdb"
    scan(tenant, folder, store, monkeypatch, since=timedelta(days=3))
    with Store.open(store, read_only=True) as opened:
        before = opened._frame(
            "SELECT asyncoperationid, statecode, statuscode FROM asyncoperations"
            " WHERE environment_id = ?",
            [env.env_id],
        )
    unfinished = before[before["statecode"] != 3]
    assert str(slowest["asyncoperationid"]) in set(unfinished["asyncoperationid"])
    assert len(unfinished) > 0

    tenant.advance(end.to_pydatetime() - first.to_pydatetime())
    settings = scan(tenant, folder, store, monkeypatch)
    with Store.open(store, read_only=True) as opened:
        after = opened._frame(
            "SELECT asyncoperationid, statecode, statuscode, startedon, completedon"
            " FROM asyncoperations WHERE environment_id = ?",
            [env.env_id],
        ).set_index("asyncoperationid")
    served_now = env.tables["asyncoperations"].set_index("asyncoperationid")
    print(
        f"{len(unfinished)} jobs unfinished at scan 1; after scan 2: "
        f"{int((after.loc[unfinished['asyncoperationid'], 'statecode'] == 3).sum())} finished"
    )
    for job in unfinished["asyncoperationid"]:
        if job in served_now.index:  # still there (a success of an auto-deleting step is not)
            assert after.loc[job, "statecode"] == served_now.loc[job, "statecode"]
            assert after.loc[job, "statuscode"] == served_now.loc[job, "statuscode"]
    assert after.loc[str(slowest["asyncoperationid"]), "statecode"] == 3
    assert pd.notna(after.loc[str(slowest["asyncoperationid"]), "completedon"])
    # The figures use the final states: no stuck job, and the queue wait is measured.
    findings = analyze(settings).findings
    stuck = next(
        f for f in findings if f.check_id == "system-jobs-stuck" and f.environment_id == env.env_id
    )
    assert stuck.status == "pass", stuck.message
    assert stuck.values["waiting_for_resources"] == 0
    assert stuck.values["in_progress"] == 0
