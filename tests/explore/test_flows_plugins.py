"""`flows top`, `flow show`, `plugins top`, `plugin show` as a user runs them.

The small simulated tenant (seed 7) is collected with every run's actions and analysed once
for the module; the rankings are compared with the ground truth computed from the generated
tenant, and the error paths are tried as a new user would (no store, an empty one, one not
analysed, a misspelt name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from simulated import collected_copy
from typer.testing import CliRunner

from auditor.cli import app as auditor_app
from auditor.cli.render_flows import sparkline
from auditor.store import Store

pytestmark = pytest.mark.slow

runner = CliRunner()
# The machine's AUDITOR_* / AZURE_* settings must not reach the module-scoped runs.
CLEAN_ENV: dict[str, str | None] = {
    name: None for name in os.environ if name.startswith(("AUDITOR_", "AZURE_"))
}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """The `auditor` app, with the investigation commands as `auditor.cli` registers them."""
    return auditor_app


@pytest.fixture(scope="module")
def analysed(
    app: typer.Typer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The small tenant's store after `auditor analyze`, and the tenant's ground truth."""
    store, truth = collected_copy(7, "small", tmp_path_factory)
    result = runner.invoke(app, ["analyze", "--store", str(store)], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    return store, truth


def run(app: typer.Typer, *args: str, width: int = 160) -> Any:
    return runner.invoke(app, list(args), env={**CLEAN_ENV, "COLUMNS": str(width)})


def as_json(app: typer.Typer, *args: str) -> Any:
    result = run(app, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_flows_top_by_noise_lists_the_truths_noisiest_flows_first_with_their_counts(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, truth = analysed
    rows = as_json(app, "flows", "top", "--by", "noise", "--limit", "1000", "--store", str(store))
    compared = 0
    for env in truth["environments"]:
        noisiest = env["metrics"]["noisiest_flows"]
        mine = [r for r in rows if r["environment_id"] == env["id"]]
        assert [r["flow_id"] for r in mine[: len(noisiest)]] == noisiest, env["name"]
        for row, flow_id in zip(mine, noisiest, strict=False):
            expected = env["metrics"]["flows"][flow_id]["unnecessary_runs"]
            assert row["unnecessary_sampled"] == expected, row["name"]
            # Every run was sampled, so the estimate is the count itself.
            assert row["estimated_unnecessary_runs"] == pytest.approx(expected)
            assert row["unnecessary_rate_low"] <= row["unnecessary_rate"]
            assert row["unnecessary_rate"] <= row["unnecessary_rate_high"]
            compared += 1
    assert compared >= 20
    # Across environments the noisiest of all comes first; flows with none are not listed.
    best = max(
        (f["unnecessary_runs"], fid)
        for env in truth["environments"]
        for fid, f in env["metrics"]["flows"].items()
    )
    assert rows[0]["flow_id"] == best[1]
    assert all(r["estimated_unnecessary_runs"] > 0 for r in rows)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    # The checks that fail for the noisiest flow are named: it runs for nothing.
    assert "flow-unnecessary-runs" in rows[0]["failing_checks"]


def test_flows_top_table_for_one_environment_shows_intervals_and_failing_checks(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, truth = analysed
    env = truth["environments"][0]
    result = run(
        app, "flows", "top", "--by", "noise", "--env", env["name"], "--limit", "3",
        "--store", str(store),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = env["metrics"]["flows"][env["metrics"]["noisiest_flows"][0]]
    assert "Flows by noise" in result.output
    assert "<script>alert(1)</script>" in first["display_name"]  # tenant text, shown as text
    assert "Sync accounts to ERP" in result.output
    assert f"{first['unnecessary_runs']}" in result.output
    assert "95 % interval" in result.output
    assert "flow-unnecessary-runs" in result.output
    # Only the one environment: no other environment's flow is listed.
    others = [e["name"] for e in truth["environments"][1:]]
    assert not any(name in result.output for name in others)


def test_plugins_top_unfiltered_lists_the_truths_unfiltered_update_steps_busiest_first(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, truth = analysed
    rows = as_json(app, "plugins", "top", "--by", "unfiltered", "--store", str(store))
    expected = {
        (env["id"], step): env["metrics"]["steps"][step]["executions"]
        for env in truth["environments"]
        for step in env["facts"]["unfiltered_update_steps"]
    }
    assert len(expected) >= 2
    assert {(r["environment_id"], r["stepid"]): r["executions"] for r in rows} == expected
    executions = [r["executions"] for r in rows]
    assert executions == sorted(executions, reverse=True)
    for row in rows:
        assert row["message"] == "Update"
        assert row["filtering_attributes"] is None
        assert "plugin-update-unfiltered" in row["failing_checks"]


def test_flow_show_gives_the_trigger_runs_unnecessary_runs_findings_and_the_fix(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, truth = analysed
    env = truth["environments"][0]
    flow_id = env["metrics"]["noisiest_flows"][0]
    flow = env["metrics"]["flows"][flow_id]
    assert flow_id in env["facts"]["unfiltered_dataverse_update_triggers"]
    # By display name, in another case than the tenant's.
    data = as_json(app, "flow", "show", flow["display_name"].upper(), "--store", str(store))
    assert data["flow"]["flow_id"] == flow_id
    trigger = data["trigger"]
    assert trigger["connector"] == "shared_commondataserviceforapps"
    assert trigger["dataverse"]["message_name"] == "Update"
    assert trigger["dataverse"]["filtering_attributes"] is None
    assert trigger["conditions"] == []
    assert data["runs"]["runs"] == flow["runs"]
    assert data["runs"]["failed"] == flow["failed_runs"]
    assert sum(data["runs"]["daily"]["runs"]) == flow["runs"]
    assert data["unnecessary"]["unnecessary"] == flow["unnecessary_runs"]
    examples = [r["run_name"] for r in data["unnecessary"]["example_runs"]]
    assert len(examples) == 5
    with Store.open(store, read_only=True) as opened:
        known = opened._frame("SELECT run_name FROM flow_api_runs WHERE flow_name = ?", [flow_id])[
            "run_name"
        ]
    assert set(examples) <= set(known)
    failing = {f["check_id"] for f in data["findings"] if f["status"] == "fail"}
    assert {"flow-unnecessary-runs", "flow-update-trigger-unfiltered"} <= failing
    assert {c["check_id"] for c in data["to_change"]} == failing
    assert all(c["learn_url"].startswith("https://learn.microsoft.com/") for c in data["to_change"])

    table = run(app, "flow", "show", flow_id, "--store", str(store))
    assert table.exit_code == 0, table.output
    text = table.output
    assert "Update of account" in text
    assert "filtering attributes" in text
    assert any(block in text for block in "▁▂▃▄▅▆▇█")
    assert examples[0] in text
    assert "What to change" in text
    assert (
        "https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger" in text
    )


def test_plugin_show_gives_the_registration_executions_and_system_jobs(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, _truth = analysed
    rows = as_json(
        app, "plugins", "top", "--by", "failures", "--limit", "50", "--store", str(store)
    )
    failing = [r for r in rows if r["jobs_failed"] > 0]
    assert failing, "an asynchronous step with failed jobs"
    step = failing[0]
    data = as_json(app, "plugin", "show", step["stepid"], "--store", str(store))
    assert data["step"]["stepid"] == step["stepid"]
    assert data["step"]["mode_name"] == "Asynchronous"
    assert data["executions"]["executions"] == step["executions"]
    jobs = data["system_jobs"]
    assert sum(j["failed"] for j in jobs) == step["jobs_failed"]
    assert data["job_errors"], "the failed jobs' commonest errors"
    found = {f["check_id"] for f in data["findings"] if f["status"] == "fail"}
    assert found == set(step["failing_checks"])

    table = run(app, "plugin", "show", step["name"].lower(), "--store", str(store))
    assert table.exit_code == 0, table.output
    assert "System jobs" in table.output
    assert "trace logging" in table.output


def test_a_misspelt_name_is_one_line_with_the_closest_names_and_exit_2(
    app: typer.Typer, analysed: tuple[Path, dict[str, Any]]
) -> None:
    store, _truth = analysed
    result = run(app, "flow", "show", "Sync acounts to ERP", "--store", str(store), width=80)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 2, result.output
    assert lines[0].startswith("error: no flow 'Sync acounts to ERP'")
    assert "did you mean 'Sync accounts to ERP" in lines[0]
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in result.output

    step = run(app, "plugin", "show", "Contoso.Plugins.AcountValidation", "--store", str(store))
    assert step.exit_code == 2
    assert "did you mean 'Contoso.Plugins.AccountValidation" in step.output

    by = run(app, "flows", "top", "--by", "nosie", "--store", str(store))
    assert by.exit_code == 2
    assert "--by takes one of noise, failures, retries, duration, runs" in by.output


@pytest.mark.parametrize(
    ("command", "state", "message", "hint"),
    [
        (("flows", "top"), "missing", "no store at", "auditor collect"),
        (("flow", "show", "x"), "empty", "holds no scan yet", "auditor collect"),
        (("plugins", "top"), "empty", "holds no scan yet", "auditor collect"),
        (("plugin", "show", "x"), "not analysed", "has not been analysed", "auditor analyze"),
    ],
)
def test_without_a_store_scans_or_analysis_the_command_says_what_to_run(
    app: typer.Typer,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    command: tuple[str, ...],
    state: str,
    message: str,
    hint: str,
) -> None:
    path = tmp_path / "store.duckdb"
    if state == "empty":
        Store.open(path).close()
    elif state == "not analysed":
        path, _truth = collected_copy(7, "small", tmp_path_factory)
    result = run(app, *command, "--store", str(path), width=80)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2, result.output
    assert message in lines[0]
    assert hint in lines[1]
    assert "Traceback" not in result.output


def test_sparkline_scales_to_the_busiest_day_and_keeps_quiet_days_visible() -> None:
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""
    assert sparkline([1, 100])[0] == "▂"  # a day with runs is never drawn as an idle one
