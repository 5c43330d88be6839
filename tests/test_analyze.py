"""`auditor analyze` and `auditor checks list` as a user runs them, on a collected store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from simulated import collected_copy
from typer.testing import CliRunner

from auditor.checks import CHECKS, REGISTRY
from auditor.checks.base import ANSWERS
from auditor.cli import app
from auditor.store import SCHEMA_VERSION, Store

runner = CliRunner()


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the tiny tenant (seed 7), collected once for this module."""
    store, _truth = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    return store


@pytest.fixture
def store(collected: Path, tmp_path: Path) -> Path:
    """A private copy, so a test's findings do not leak into another's."""
    path = tmp_path / "store.duckdb"
    shutil.copy(collected, path)
    return path


def _findings(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT scan_id, check_id, status, resource_id FROM findings ORDER BY seq"
        ).fetchall()


def test_analyze_stores_the_findings_with_the_scan_and_prints_a_summary(store: Path) -> None:
    result = runner.invoke(app, ["analyze", "--store", str(store)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "Scan 1 analysed:" in result.output
    assert "plugin-update-unfiltered" in result.output
    found = _findings(store)
    assert {row[0] for row in found} == {1}
    assert {row[1] for row in found} == set(CHECKS)  # every check reported something
    statuses = {row[2] for row in found}
    assert {"pass", "fail", "not-assessed"} <= statuses
    # Analysing again replaces the scan's findings rather than adding to them.
    again = runner.invoke(app, ["--quiet", "analyze", "--store", str(store)])
    assert again.exit_code == 0, again.output
    assert _findings(store) == found
    with Store.open(store, read_only=True) as opened:
        stored = opened.findings(1)
    measured = json.loads(stored["measured"].iloc[0])
    assert isinstance(measured, dict)


def test_thresholds_from_auditor_toml_change_the_verdicts(store: Path, tmp_path: Path) -> None:
    def monolithic_fails(config: Path | None) -> int:
        args = ["--config", str(config)] if config else []
        result = runner.invoke(app, [*args, "--quiet", "analyze", "--store", str(store)])
        assert result.exit_code == 0, result.output
        return sum(1 for r in _findings(store) if r[1] == "flow-monolithic" and r[2] == "fail")

    assert monolithic_fails(None) >= 1
    config = tmp_path / "auditor.toml"
    config.write_text("[checks.flow-monolithic]\nmax_actions = 10000\nmax_depth = 100\n")
    assert monolithic_fails(config) == 0


def test_a_misspelt_check_id_or_threshold_in_the_config_is_a_clear_error(
    store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[checks.flow-monolitic]\nmax_actions = 10\n")
    result = runner.invoke(app, ["--config", str(config), "analyze", "--store", str(store)])
    assert result.exit_code == 2
    assert "did you mean flow-monolithic" in result.output
    assert "Traceback" not in result.output
    config.write_text("[checks.flow-monolithic]\nmax_action = 10\n")
    result = runner.invoke(app, ["--config", str(config), "analyze", "--store", str(store)])
    assert result.exit_code == 2
    assert "max_actions" in result.output  # the names it does have
    config.write_text('[checks.flow-monolithic]\nmax_actions = "many"\n')
    result = runner.invoke(app, ["--config", str(config), "checks", "list"])
    assert result.exit_code == 2
    assert "must be a number" in result.output


def test_analyze_without_a_store_or_with_an_unknown_environment_says_what_to_do(
    store: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["analyze", "--store", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 3
    assert "no store at" in result.output
    assert "auditor collect" in result.output
    result = runner.invoke(app, ["analyze", "--store", str(store), "-e", "Contoso Prodution"])
    assert result.exit_code == 2
    assert "did you mean contoso production" in result.output.lower()
    result = runner.invoke(app, ["analyze", "--store", str(store), "--window", "0d"])
    assert result.exit_code == 2
    assert "--window" in result.output


def test_analyze_one_environment_only(store: Path) -> None:
    result = runner.invoke(
        app, ["--quiet", "analyze", "--store", str(store), "-e", "Fabrikam Operations"]
    )
    assert result.exit_code == 0, result.output
    assert "over 1 environment(s)" in result.output
    with duckdb.connect(str(store), read_only=True) as con:
        envs = con.execute(
            "SELECT DISTINCT environment_id FROM findings WHERE environment_id IS NOT NULL"
        ).fetchall()
    assert len(envs) == 1


def test_checks_list_shows_every_check_with_answers_and_configured_thresholds(
    tmp_path: Path,
) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[checks.flow-failure-rate]\nfailure_rate = 0.35\n")
    result = runner.invoke(app, ["--config", str(config), "checks", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [c["id"] for c in listed] == [c.id for c in REGISTRY]
    rate = next(c for c in listed if c["id"] == "flow-failure-rate")
    values = {t["name"]: (t["value"], t["default"]) for t in rate["thresholds"]}
    assert values["failure_rate"] == (0.35, 0.2)
    table = runner.invoke(app, ["checks", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    for check in REGISTRY:
        assert check.id in table.output


def test_every_check_informs_an_answer_and_every_answer_has_checks() -> None:
    for check in REGISTRY:
        meta = check.meta
        assert meta.answers, meta.id
        assert set(meta.answers) <= set(ANSWERS), meta.id
        assert meta.learn_url.startswith("https://learn.microsoft.com/"), meta.id
        assert all((meta.rationale, meta.remediation, meta.title)), meta.id
    for answer in ANSWERS:
        assert any(answer in c.meta.answers and not c.meta.coverage for c in REGISTRY), answer


def test_a_store_of_schema_1_is_upgraded_with_the_findings_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with Store.open(path):
        pass
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE findings")
        con.execute("DROP TABLE analyses")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store.open(path) as upgraded:
        assert upgraded.findings(1).empty
        version = upgraded._frame("SELECT value FROM meta WHERE key = 'schema_version'")
    assert version["value"].tolist() == [str(SCHEMA_VERSION)]
