"""Collection against the simulated tenant: counts, denied tables, increments, usage errors.

Faults, crashes, token expiry and throttling are in the reliability suite (tests/reliability).
"""

from __future__ import annotations

import gc
import json
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.sim.launch import serve_process
from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.sim.truth import compute_truth
from auditor.sources import dataverse as dataverse_queries
from auditor.store import Store

pytestmark = pytest.mark.slow
runner = CliRunner()

# Truth counts are per Dataverse entity set / flow API resource; the store names its tables.
TRUTH_TABLES = {
    "organizations": "organizations",
    "workflows": "workflows",
    "callbackregistrations": "callbackregistrations",
    "sdkmessageprocessingsteps": "plugin_steps",
    "plugintracelogs": "plugintracelogs",
    "asyncoperations": "asyncoperations",
    "flowruns": "flowruns",
    "flowevents": "flowevents",
    "flows": "flows",
    "flow_runs": "flow_api_runs",
}


class Simulator:
    """A simulated tenant served in this process, with its client files."""

    def __init__(self, folder: Path, scale: str, options: SimOptions) -> None:
        self.tenant = generate(options.seed, scale)
        self.server = SimServer(self.tenant, options)
        self.server.start()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.server.write_client_files(folder)
        self.config = folder / "auditor.toml"
        self.secret = self.tenant.client_secret

    def env(self) -> dict[str, str]:
        return {"AZURE_CLIENT_SECRET": self.secret, "SSL_CERT_FILE": str(self.folder / "ca.pem")}

    def collect(self, store: Path, *args: str) -> Any:
        result = runner.invoke(
            app,
            [
                "--config",
                str(self.config),
                "collect",
                "--all-environments",
                "--store",
                str(store),
                *args,
            ],
            env=self.env(),
        )
        return result

    def stop(self) -> None:
        self.server.stop()


class SimulatorProcess(Simulator):
    """The same, served by `auditor sim serve` in its own process (so it has its own core).

    The local tenant is generated from the same seed and advanced in step, for the truth.
    """

    def __init__(self, folder: Path, scale: str, options: SimOptions) -> None:
        self.tenant = generate(options.seed, scale)
        self.folder = folder
        self.process, self.base_url = serve_process(folder, seed=options.seed, scale=scale)
        self.config = folder / "auditor.toml"
        self.secret = self.tenant.client_secret

    def advance(self, minutes: float) -> None:
        httpx.post(
            f"{self.base_url}/_sim/clock",
            params={"advance_minutes": minutes},
            verify=ssl.create_default_context(cafile=str(self.folder / "ca.pem")),
        ).raise_for_status()
        self.tenant.advance(timedelta(minutes=minutes))

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(tmp_path / "sim", "small", SimOptions(seed=7, scale="small"))
    yield sim
    sim.stop()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    started: list[Simulator] = []

    def start(scale: str = "tiny", **options: Any) -> Simulator:
        sim = Simulator(
            tmp_path / f"sim{len(started)}", scale, SimOptions(seed=7, scale=scale, **options)
        )
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def store_counts(path: Path) -> dict[str, dict[str, int]]:
    with Store.open(path, read_only=True) as store:
        return store.table_counts()


def assert_counts_equal_truth(path: Path, truth: dict[str, Any]) -> None:
    counts = store_counts(path)
    compared = 0
    for env in truth["environments"]:
        for key, expected in env["row_counts"].items():
            table = TRUTH_TABLES[key]
            got = counts.get(table, {}).get(env["id"], 0)
            assert got == expected, f"{env['name']} {table}: {got} != {expected}"
            compared += expected
    assert compared > 0


def test_collect_matches_the_ground_truth_and_rescans_incrementally(
    simulator_process: SimulatorProcess, tmp_path: Path
) -> None:
    """Must-show 1 and 4 share the first scan of the small tenant (default sampling)."""
    sim = simulator_process
    path = tmp_path / "s.duckdb"
    first = sim.collect(path)
    assert first.exit_code == 0, first.output
    assert_counts_equal_truth(path, compute_truth(sim.tenant))
    # The environment without Dataverse is reported as such, and the scan says what it did.
    assert "no Dataverse database" in first.output
    assert " requests, " in first.output
    # Dataverse's server-affinity cookie is never sent back (Learn: send-parallel-requests).
    trust = ssl.create_default_context(cafile=str(sim.folder / "ca.pem"))
    stats = httpx.get(f"{sim.base_url}/_sim/stats", verify=trust).json()
    assert stats["affinity_cookies"] == 0

    sim.advance(100)  # about 1 % new data
    second = sim.collect(path)
    assert second.exit_code == 0, second.output
    assert_counts_equal_truth(path, compute_truth(sim.tenant))  # exactly the new rows, no more
    with Store.open(path, read_only=True) as store:
        first_requests = int(store.scan_queries(1)["requests"].sum())
        second_requests = int(store.scan_queries(2)["requests"].sum())
        duplicates = store._frame(
            "SELECT count(*) - count(DISTINCT (environment_id, flow_name, run_name)) AS n"
            " FROM flow_api_runs"
        )
    print(f"first scan {first_requests} requests, second {second_requests}")
    assert second_requests <= 0.05 * first_requests
    assert int(duplicates["n"].iloc[0]) == 0


def test_a_denied_table_is_not_collected_with_its_reason_and_everything_else_is(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("tiny", deny=frozenset({("contoso-production", "plugintracelogs")}))
    result = sim.collect(tmp_path / "d.duckdb")
    assert result.exit_code == 0, result.output
    assert "prvReadPluginTraceLog" in result.output
    with Store.open(tmp_path / "d.duckdb", read_only=True) as store:
        queries = store.scan_queries(1)
        scan = store.scan(1)
    prod = next(e.env_id for e in sim.tenant.environments if e.slug == "contoso-production")
    denied = queries[(queries.environment_id == prod) & (queries.query_id == "plugintracelogs")]
    assert denied.iloc[0]["status"] == "not-collected"
    assert "Permission denied" in denied.iloc[0]["reason"]
    assert "prvReadPluginTraceLog" in denied.iloc[0]["hint"]
    others = queries.drop(denied.index)
    dataverse_envs = {e.env_id for e in sim.tenant.environments if e.has_dataverse}
    assert set(others[others.environment_id.isin(dataverse_envs)]["status"]) == {"collected"}
    assert scan.status == "partial"


def test_a_wrong_secret_is_exit_3_with_the_entra_error_and_a_hint(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("tiny")
    sim.secret = "not-the-secret"
    result = sim.collect(tmp_path / "w.duckdb")
    assert result.exit_code == 3
    assert "AADSTS7000215" in result.output
    assert "AZURE_CLIENT_SECRET" in result.output
    assert "Traceback" not in result.output
    assert "not-the-secret" not in result.output


def test_nothing_collected_is_exit_3(
    simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = simulator("tiny")
    monkeypatch.setenv("AUDITOR_FLOW_API_ENABLED", "false")
    teams = next(e.display_name for e in sim.tenant.environments if not e.has_dataverse)
    result = sim.collect(tmp_path / "n.duckdb", "--environment", teams)
    assert result.exit_code == 3, result.output
    assert "no Dataverse database" in result.output
    assert "flow API is turned off" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--environment", "Contoso Prodution"], "Did you mean 'Contoso Production'"),
        (["--since", "a week"], "--since takes a duration"),
    ],
)
def test_usage_errors_are_exit_2(
    simulator: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    sim = simulator("tiny")
    result = sim.collect(tmp_path / "u.duckdb", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_no_application_user_says_how_to_create_one(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("tiny", deny=frozenset({("contoso-production", "organizations")}))
    result = sim.collect(tmp_path / "a.duckdb")
    assert result.exit_code == 0, result.output  # the other environments were collected
    assert "no access to the environment" in result.output
    assert "Application users" in result.output
    with Store.open(tmp_path / "a.duckdb", read_only=True) as store:
        queries = store.scan_queries(1)
    prod = next(e.env_id for e in sim.tenant.environments if e.slug == "contoso-production")
    dataverse = queries[
        (queries.environment_id == prod) & queries.query_id.isin(dataverse_queries.QUERIES)
    ]
    assert set(dataverse["status"]) == {"not-collected"}
    assert len(dataverse) == len(dataverse_queries.QUERIES)


def test_a_wrong_dataverse_url_is_reported_for_that_environment(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("tiny")
    base = sim.server.base_url
    good = next(e for e in sim.tenant.environments if e.has_dataverse)
    config = tmp_path / "configured.toml"
    config.write_text(
        sim.config.read_text().replace('environments = "all"\n', "")
        + f"""
[[environments]]
name = "Good"
id = "{good.env_id}"
dataverse_url = "{base}/dv/{good.slug}"

[[environments]]
name = "Typo"
id = "typo"
dataverse_url = "{base}/dv/contoso-prodution"
"""
    )
    result = runner.invoke(
        app,
        ["--config", str(config), "collect", "--store", str(tmp_path / "c.duckdb")],
        env=sim.env(),
    )
    assert result.exit_code == 0, result.output
    assert "Typo" in result.output
    assert "Dataverse URL" in result.output
    with Store.open(tmp_path / "c.duckdb", read_only=True) as store:
        queries = store.scan_queries(1)
    typo = queries[(queries.environment_id == "typo") & (queries.query_id == "organizations")]
    assert typo.iloc[0]["status"] == "not-collected"
    assert set(queries[queries.environment_id == good.env_id]["status"]) == {"collected"}


def configured_environments(sim: Simulator) -> Path:
    """The simulator's auditor.toml with its Dataverse environments listed, not discovered."""
    text = sim.config.read_text(encoding="utf-8").replace('environments = "all"\n', "")
    head, _, rest = text.partition("\n[auth]")
    listed = "".join(
        f'\n[[environments]]\nname = "{e.display_name}"\nid = "{e.env_id}"\n'
        f'dataverse_url = "{sim.server.base_url}/dv/{e.slug}"\n'
        for e in sim.tenant.environments
        if e.has_dataverse
    )
    config = sim.folder / "configured.toml"
    config.write_text(head + "\n[auth]" + rest + listed, encoding="utf-8")
    return config


def test_an_app_not_registered_as_management_app_gets_a_report_saying_what_was_not_read(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("tiny", management_app=False)
    # Discovering environments needs the admin API: the scan stops with the registration step.
    discovered = sim.collect(tmp_path / "a.duckdb")
    assert discovered.exit_code == 3
    assert "does not have permission to access the path" in discovered.output
    assert "New-PowerAppManagementApp" in discovered.output
    # With the environments listed, Dataverse is read and the flow API is reported unread.
    sim.config = configured_environments(sim)
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            *("--config", str(sim.config), "scan", "--store", str(tmp_path / "b.duckdb")),
            *("--out", str(out), "--format", "md,json"),
        ],
        env=sim.env(),
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    unread = [
        f
        for f in report["findings"]
        if f["check_id"] == "coverage-query-not-collected" and f["status"] == "not-assessed"
    ]
    assert {f["values"]["query"] for f in unread} == {"flows", "flow_runs", "flow_run_actions"}
    for finding in unread:
        assert "does not have permission to access the path" in finding["message"]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "New-PowerAppManagementApp" in markdown
    assert "| `flow_runs` | not-collected | not attempted: Permission denied" in markdown


def test_a_store_that_cannot_be_written_stops_the_scan_and_the_next_run_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tenant in its own process: the connections the stop cuts end there, not here.
    sim = SimulatorProcess(tmp_path / "sim", "tiny", SimOptions(seed=7, scale="tiny"))
    try:
        stopped_and_resumed(sim, tmp_path / "full.duckdb", monkeypatch)
    finally:
        sim.stop()


def stopped_and_resumed(sim: Simulator, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection whose store is full after five pages, then one with room."""
    written = Store.write_page

    def disk_full_after_a_few_pages(store: Store, **page: Any) -> int:
        if store.count("checkpoints") >= 5:
            with store._guard():  # where DuckDB's error meets the store
                raise duckdb.IOException(
                    f'IO Error: Could not write file "{path}.wal": No space left on device'
                )
        return written(store, **page)

    monkeypatch.setattr(Store, "write_page", disk_full_after_a_few_pages)
    stopped = sim.collect(path)
    # The stop cancels the requests in flight, as Ctrl-C does, some of them mid-handshake:
    # each connection must be closed, not left to the garbage collector, which would warn.
    gc.collect()
    assert stopped.exit_code == 3, stopped.output
    errors = [line for line in stopped.output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the store {path} cannot be written (No space left on device); the "
        "collection stopped"
    ]
    assert "Traceback" not in stopped.output
    assert "Scan 1" not in stopped.output  # no summary of a scan that did not end
    with Store.open(path, read_only=True) as store:
        scan = store.unfinished_scan()
        assert scan is not None
        kept = store.count("checkpoints")
    assert kept >= 5

    monkeypatch.undo()
    resumed = sim.collect(path)
    assert resumed.exit_code == 0, resumed.output
    assert "(resumed)" in resumed.output
    with Store.open(path, read_only=True) as store:
        assert store.unfinished_scan() is None
        assert store.scan(1).status in ("completed", "partial")


def test_the_flow_api_is_read_beside_dataverse_and_a_rescan_waits_for_the_run_history(
    simulator: Any, tmp_path: Path
) -> None:
    # Each environment's Dataverse and flow API have budgets of their own, so a first scan
    # reads them side by side; a later scan chooses the flows to page from this scan's
    # Dataverse `flowruns`, so it lists no flow's runs before those are read.
    sim = simulator("tiny", latency_ms=10)
    served: list[tuple[float, str, str, str]] = []
    handle = sim.server.app._handle

    def recording(request: Any, api: Any, caller: Any) -> Any:
        served.append((time.monotonic(), api.family, api.env_key, api.rest))
        return handle(request, api, caller)

    sim.server.app._handle = recording
    store = tmp_path / "store.duckdb"
    assert sim.collect(store).exit_code == 0, "first scan"
    with_dataverse = [env.env_id for env in sim.tenant.environments if env.has_dataverse]
    assert with_dataverse
    for env in with_dataverse:
        dataverse = [t for t, family, key, _ in served if family == "dataverse" and key == env]
        flows = [t for t, family, key, _ in served if family == "flow" and key == env]
        assert min(flows) < max(dataverse), f"{env}: the flow API waited for Dataverse"

    served.clear()
    sim.tenant.advance(timedelta(minutes=100))
    assert sim.collect(store).exit_code == 0, "second scan"
    for env in with_dataverse:
        history = [
            t
            for t, family, key, rest in served
            if family == "dataverse" and key == env and rest.startswith("flowruns")
        ]
        listings = [
            t
            for t, family, key, rest in served
            if family == "flow" and key == env and rest.endswith("/runs")
        ]
        assert history, f"{env}: no Dataverse run history read"
        assert listings, f"{env}: no flow's runs listed"
        assert min(listings) > max(history), f"{env}: runs listed before the run history"
