"""End to end: run figures read from Dataverse `flowruns` alone, with Dataverse's status words.

With the flow API turned off (`[apis] flow_enabled = false`), every solution flow's runs come
from `flowruns`, whose status is Success, Failed or Cancelled
(https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata). The analysis
must count none of them as an undocumented status, and its failed-run figures must be the
ones the served table holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from auditor.analyze import Analysis, analyze
from auditor.checks.evidence import Evidence
from auditor.collect import collect
from auditor.collect_types import CollectOptions
from auditor.frames import load_frames
from auditor.queries import default_catalog
from auditor.settings import Settings, load_settings
from auditor.sim.model import SimEnvironment, SimOptions, SimTenant
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.store import Store

pytestmark = pytest.mark.slow

# The wording flow-failure-rate (and system-jobs-failing) use for statuses outside their
# source's vocabulary: auditor/checks/flow_failure_rate.py, system_jobs_failing.py.
UNKNOWN_STATUS_TEXT = "missing or undocumented status"


@dataclass(frozen=True)
class Analysed:
    tenant: SimTenant
    settings: Settings
    analysis: Analysis
    summary: pd.DataFrame  # Evidence.run_summary of the analysed window


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Analysed]:
    """The tiny tenant served in process, collected without the flow API, then analysed."""
    tenant = generate(7, "tiny")
    server = SimServer(tenant, SimOptions(seed=7, scale="tiny", max_requests=1_000_000))
    server.start()
    try:
        folder = tmp_path_factory.mktemp("sim")
        server.write_client_files(folder)
        config = folder / "auditor.toml"
        text = config.read_text(encoding="utf-8")
        assert "[apis]\n" in text
        config.write_text(text.replace("[apis]\n", "[apis]\nflow_enabled = false\n"), "utf-8")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
            settings = load_settings(
                {"config": config, "store_path": folder / "store.duckdb"},
                environ={"AZURE_CLIENT_SECRET": tenant.client_secret},
                cwd=folder,
            )
            assert settings.flow_api_enabled is False
            asyncio.run(collect(settings, CollectOptions(), catalog=default_catalog()))
        analysis = analyze(settings)
        with Store.open(settings.store_path, read_only=True) as store:
            frames = load_frames(store, window=analysis.window)
        summary = Evidence(frames).run_summary
        yield Analysed(tenant, settings, analysis, summary)
    finally:
        server.stop()


def served_flowruns(tenant: SimTenant, env: SimEnvironment, analysis: Analysis) -> pd.DataFrame:
    """The `flowruns` rows the simulator serves (created by `now`) that start in the window."""
    table = env.tables["flowruns"]
    now = pd.Timestamp(tenant.now)
    start, end = pd.Timestamp(analysis.window.start), pd.Timestamp(analysis.window.end)
    visible = table["createdon"] <= now
    inside = (table["starttime"] >= start) & (table["starttime"] <= end)
    return table[visible & inside]


def test_the_simulator_writes_dataverse_words_in_flowruns(analysed: Analysed) -> None:
    for env in analysed.tenant.environments:
        if "flowruns" in env.tables:
            assert set(env.tables["flowruns"]["status"]) <= {"Success", "Failed", "Cancelled"}


def test_no_run_is_counted_with_an_undocumented_status(analysed: Analysed) -> None:
    summary = analysed.summary
    assert len(summary) > 0
    assert set(summary.loc[summary["runs"] > 0, "source"]) == {"dataverse"}
    assert int(summary["unknown_status"].sum()) == 0
    messages = [f.message for f in analysed.analysis.findings]
    assert messages
    assert not [m for m in messages if "undocumented" in m]
    assert not [m for m in messages if UNKNOWN_STATUS_TEXT in m]


def test_failed_runs_and_rates_equal_the_served_flowruns(analysed: Analysed) -> None:
    tenant, analysis = analysed.tenant, analysed.analysis
    env = next(e for e in tenant.environments if e.slug == "contoso-production")
    served = served_flowruns(tenant, env, analysis)
    summary = analysed.summary[analysed.summary["environment_id"] == env.env_id]
    by_flow = {str(row.flow_id).lower(): row for row in summary.itertuples()}
    findings = {
        str(f.resource_id).lower(): f
        for f in analysis.findings
        if f.check_id == "flow-failure-rate" and f.environment_id == env.env_id
    }
    solution = [str(w) for w in env.flows["workflowid"].dropna()]
    assert solution
    compared = failing = reported = 0
    for workflowid in solution:
        rows = served[served["workflowid"] == workflowid]
        expected_runs = len(rows)
        expected_failed = int((rows["status"] == "Failed").sum())
        got = by_flow.get(workflowid.lower())
        if expected_runs == 0:
            assert got is None or got.runs == 0, workflowid
            continue
        assert got is not None, workflowid
        assert got.source == "dataverse"
        assert (got.runs, got.failed, got.finished) == (
            expected_runs,
            expected_failed,
            expected_runs,
        )
        assert got.failure_rate == pytest.approx(expected_failed / expected_runs)
        compared += 1
        failing += expected_failed > 0
        # With the flow API off the environment is partly assessed, and the check reports
        # its failing flows only; those must state the same figures.
        finding = findings.pop(workflowid.lower(), None)
        if finding is not None:
            assert finding.values["failed"] == expected_failed
            assert finding.values["runs"] == expected_runs
            assert finding.values["failure_rate"] == pytest.approx(expected_failed / expected_runs)
            reported += 1
    print(f"{compared} solution flows compared, {failing} with failed runs, {reported} reported")
    assert compared > 0
    assert failing > 0  # the comparison covers failures, not only successes
    assert reported > 0
    # What is left is the environment's own "not assessed" finding, not another flow.
    assert {f.status for f in findings.values()} <= {"not-assessed"}
