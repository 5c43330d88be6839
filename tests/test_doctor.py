"""`auditor doctor` against the simulated tenant: what is there, what is missing, exit codes."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from auditor import doctor
from auditor.cli import app
from auditor.queries import load_catalog
from auditor.resources import data_dir
from auditor.settings import load_settings
from auditor.sim.model import SimOptions, SimTenant
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer

runner = CliRunner()
DATAVERSE_QUERIES = (
    "organizations",
    "workflows",
    "callbackregistrations",
    "sdkmessageprocessingsteps",
    "plugintracelogs",
    "asyncoperations",
    "flowruns",
    "flowevents",
)
DATAVERSE_ENVIRONMENTS = ("Contoso Production", "Fabrikam Operations")


class Simulator:
    """A tiny simulated tenant served in this process, with its client files."""

    def __init__(self, folder: Path, options: SimOptions, tenant: SimTenant | None = None) -> None:
        self.tenant = tenant or generate(7, "tiny")
        self.server = SimServer(self.tenant, options)
        self.server.start()
        self.folder = folder
        self.server.write_client_files(folder)
        self.config = folder / "auditor.toml"

    def env(self) -> dict[str, str]:
        return {
            "AZURE_CLIENT_SECRET": self.tenant.client_secret,
            "SSL_CERT_FILE": str(self.folder / "ca.pem"),
            "COLUMNS": "200",  # table cells on one line
        }

    def configured(self, extra: str = "") -> Path:
        """An auditor.toml naming the Dataverse environments instead of discovering them."""
        text = self.config.read_text(encoding="utf-8").replace('environments = "all"\n', "")
        for env in self.tenant.environments:
            if env.has_dataverse:
                text += (
                    f'\n[[environments]]\nname = "{env.display_name}"\nid = "{env.env_id}"\n'
                    f'dataverse_url = "{self.server.base_url}/dv/{env.slug}"\n'
                )
        path = self.folder / "configured.toml"
        path.write_text(text.replace("[apis]\n", f"[apis]\n{extra}"), encoding="utf-8")
        return path

    def doctor(self, *args: str, config: Path | None = None, **env: str) -> Result:
        return runner.invoke(
            app,
            ["--config", str(config or self.config), "doctor", *args],
            env={**self.env(), **env},
        )

    def rows(self, *args: str, config: Path | None = None, **env: str) -> tuple[int, Any]:
        result = self.doctor("--json", *args, config=config, **env)
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(tenant: SimTenant | None = None, **options: Any) -> Simulator:
        sim = Simulator(
            tmp_path / f"sim{len(started)}", SimOptions(seed=7, scale="tiny", **options), tenant
        )
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.server.stop()


def by_key(document: Any) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["environment"], row["api"]): row for row in document["rows"]}


def test_a_default_tenant_is_ready_to_scan(simulator: Callable[..., Simulator]) -> None:
    sim = simulator()
    code, document = sim.rows()
    assert code == 0
    assert document["ok"] is True
    rows = by_key(document)
    assert {row["status"] for row in rows.values()} <= {"OK", "OFF"}
    assert rows[("tenant", "admin API")]["detail"] == "3 environments listed"
    for env in DATAVERSE_ENVIRONMENTS:
        for api in ("sign-in: Dataverse", "WhoAmI", *DATAVERSE_QUERIES, "flow API"):
            assert rows[(env, api)]["status"] == "OK", (env, api)
        assert rows[(env, "plug-in trace logging")]["detail"] == "All"
    assert rows[("Contoso Teams", "Dataverse")]["status"] == "OFF"
    assert rows[("Contoso Teams", "flow API")]["status"] == "OK"
    assert set(document["rows"][0]) == {"environment", "api", "status", "missing", "fix", "detail"}

    table = sim.doctor()
    assert table.exit_code == 0, table.output
    assert "Ready to scan" in table.stdout
    assert "Contoso Production" in table.stdout


def test_doctor_never_creates_the_store(
    simulator: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = simulator()
    store = load_settings({"config": sim.config}, environ={}, cwd=tmp_path).store_path
    assert sim.doctor().exit_code == 0
    assert sim.doctor("--json").exit_code == 0
    assert not store.exists()
    assert not store.parent.exists()


def test_a_denied_table_names_its_privilege(simulator: Callable[..., Simulator]) -> None:
    sim = simulator(deny=frozenset({("contoso-production", "plugintracelogs")}))
    code, document = sim.rows()
    assert code == 3
    assert document["ok"] is False
    missing = [row for row in document["rows"] if row["status"] == "MISSING"]
    assert len(missing) == 1
    row = missing[0]
    assert (row["environment"], row["api"]) == ("Contoso Production", "plugintracelogs")
    assert row["missing"] == "prvReadPluginTraceLog"
    assert "security role" in row["fix"]
    assert "https://learn.microsoft.com/" in row["fix"]
    assert by_key(document)[("Fabrikam Operations", "plugintracelogs")]["status"] == "OK"

    table = sim.doctor()
    assert table.exit_code == 3
    line = next(x for x in table.stdout.splitlines() if "plugintracelogs" in x and "MISSING" in x)
    assert "Contoso Production" in line
    assert "prvReadPluginTraceLog" in line


def test_an_unregistered_app_is_told_to_register_as_a_management_app(
    simulator: Callable[..., Simulator],
) -> None:
    sim = simulator(management_app=False)
    code, document = sim.rows()  # environments discovered: the admin API is refused
    assert code == 3
    admin = by_key(document)[("tenant", "admin API")]
    assert admin["status"] == "MISSING"
    assert admin["missing"] == "management-app registration"
    assert "New-PowerAppManagementApp" in admin["fix"]
    table = sim.doctor()
    assert table.exit_code == 3
    assert "New-PowerAppManagementApp" in table.stdout

    code, document = sim.rows(config=sim.configured())  # environments named in auditor.toml
    assert code == 3
    rows = by_key(document)
    assert rows[("tenant", "admin API")]["status"] == "OK"
    assert "named in auditor.toml" in rows[("tenant", "admin API")]["detail"]
    for env in DATAVERSE_ENVIRONMENTS:
        for api in ("WhoAmI", *DATAVERSE_QUERIES):
            assert rows[(env, api)]["status"] == "OK", (env, api)
        flow = rows[(env, "flow API")]
        assert flow["status"] == "MISSING"
        assert flow["missing"] == "management-app registration"
        assert "New-PowerAppManagementApp" in flow["fix"]


def test_a_wrong_secret_fails_at_sign_in(simulator: Callable[..., Simulator]) -> None:
    sim = simulator()
    code, document = sim.rows(AZURE_CLIENT_SECRET="not-the-secret")
    assert code == 3
    assert document["rows"]
    assert all(row["api"].startswith("sign-in") for row in document["rows"])
    assert all(row["status"] == "MISSING" for row in document["rows"])
    assert "AZURE_CLIENT_SECRET" in document["rows"][0]["fix"]
    table = sim.doctor(AZURE_CLIENT_SECRET="not-the-secret")
    assert table.exit_code == 3
    assert "sign-in" in table.stdout


def test_no_secret_is_a_sign_in_row(simulator: Callable[..., Simulator]) -> None:
    sim = simulator()
    code, document = sim.rows(AZURE_CLIENT_SECRET="")
    assert code == 3
    [row] = document["rows"]
    assert (row["api"], row["status"]) == ("sign-in", "MISSING")
    assert "AZURE_CLIENT_SECRET is not set" in row["missing"]


def test_environments_are_chosen_like_collect(simulator: Callable[..., Simulator]) -> None:
    sim = simulator()
    code, document = sim.rows("-e", "Fabrikam Operations", "--all-environments")
    assert code == 0
    assert {row["environment"] for row in document["rows"]} == {"tenant", "Fabrikam Operations"}
    unknown = sim.doctor("-e", "Nowhere")
    assert unknown.exit_code == 2
    assert "No environment 'Nowhere'" in unknown.output


def test_trace_logging_off_and_flow_api_off_do_not_fail(
    simulator: Callable[..., Simulator],
) -> None:
    tenant = generate(7, "tiny")
    tenant.environments[0].tables["organizations"]["plugintracelogsetting"] = 0
    sim = simulator(tenant)
    code, document = sim.rows(config=sim.configured("flow_enabled = false\n"))
    assert code == 0
    assert document["ok"] is True
    rows = by_key(document)
    trace = rows[("Contoso Production", "plug-in trace logging")]
    assert (trace["status"], trace["missing"]) == ("WARN", "plug-in trace logging is Off")
    assert "logging-tracing" in trace["fix"]
    assert rows[("Fabrikam Operations", "plug-in trace logging")]["status"] == "OK"
    for env in DATAVERSE_ENVIRONMENTS:
        flow = rows[(env, "flow API")]
        assert (flow["status"], flow["missing"]) == ("OFF", "flow API disabled in auditor.toml")
    assert not any(row["api"] == "sign-in: flow API" for row in document["rows"])


def test_a_failing_service_is_missing_with_its_message(
    simulator: Callable[..., Simulator],
) -> None:
    sim = simulator(faults={"503": 1.0})
    code, document = sim.rows(AUDITOR_MAX_RETRIES="0")
    assert code == 3
    admin = by_key(document)[("tenant", "admin API")]
    assert admin["status"] == "MISSING"
    assert "503" in admin["missing"]
    assert admin["fix"]


def _catalog(folder: Path, edit: Callable[[Path], None]) -> Any:
    shutil.copytree(data_dir("queries"), folder)
    edit(folder)
    return load_catalog(folder)


def _check(sim: Simulator, catalog: Any, monkeypatch: pytest.MonkeyPatch) -> doctor.Report:
    monkeypatch.setenv("SSL_CERT_FILE", str(sim.folder / "ca.pem"))
    settings = load_settings(
        {"config": sim.config},
        environ={"AZURE_CLIENT_SECRET": sim.tenant.client_secret},
        cwd=sim.folder,
    )
    return asyncio.run(doctor.check(settings, catalog=catalog))


def test_an_unknown_column_is_missing_with_dataverse_message(
    simulator: Callable[..., Simulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def add_column(folder: Path) -> None:
        query = folder / "dataverse" / "flowevents.odata"
        text = query.read_text(encoding="utf-8")
        query.write_text(text.replace("?$select=", "?$select=nosuchcolumn,"), encoding="utf-8")

    sim = simulator()
    report = _check(sim, _catalog(tmp_path / "queries", add_column), monkeypatch)
    assert not report.ok
    missing = [c for c in report.checks if c.status == "MISSING"]
    assert {(c.environment, c.api) for c in missing} == {
        (env, "flowevents") for env in DATAVERSE_ENVIRONMENTS
    }
    assert "nosuchcolumn" in missing[0].missing
    assert "flowevents.odata" in missing[0].fix


def test_an_empty_flow_list_beside_dataverse_flows_warns(
    simulator: Callable[..., Simulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def maker_route(folder: Path) -> None:  # lists only the caller's own flows: none
        query = folder / "flow_api" / "flows.odata"
        text = query.read_text(encoding="utf-8")
        query.write_text(text.replace("scopes/admin/", "").replace("/v2/", "/"), "utf-8")

    sim = simulator()
    report = _check(sim, _catalog(tmp_path / "queries", maker_route), monkeypatch)
    assert report.ok
    rows = {(c.environment, c.api): c for c in report.checks}
    for env in DATAVERSE_ENVIRONMENTS:
        flow = rows[(env, "flow API")]
        assert flow.status == "WARN"
        assert "none of the cloud flows" in flow.missing
        assert "admin route" in flow.fix
        assert "New-PowerAppManagementApp" in flow.fix
    assert rows[("Contoso Teams", "flow API")].status == "OK"  # no Dataverse to compare with
