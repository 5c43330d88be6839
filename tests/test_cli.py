"""The command line as a user meets it: help, one-line errors with hints, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app

runner = CliRunner()


def test_help_lists_only_built_command_groups() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    commands = set(re.findall(r"^│ ([a-z]+)  ", result.output, re.MULTILINE))
    assert commands == {
        "collect",
        "scan",
        "demo",
        "environments",
        "doctor",
        "analyze",
        "report",
        "lint",
        "checks",
        "login",
        "config",
        "sim",
        "flows",
        "flow",
        "plugins",
        "plugin",
        "trace",
        "history",
        "diff",
        "export",
    }
    for panel in ("Scan", "Analyse", "Investigate", "Set up", "Simulated tenant"):
        assert f"─ {panel} ─" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("auditor ")


def test_a_config_error_is_one_line_a_hint_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[http]\nmax_concurrency = 99\n")
    result = runner.invoke(app, ["--config", str(config), "config"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:")
    assert "http.max_concurrency" in lines[0]
    assert "from 1 to 50" in lines[0]
    assert lines[1].startswith("hint:")
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[http]\nmax_concurrency = 99\n")
    result = runner.invoke(app, ["--debug", "--config", str(config), "config"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_config_shows_values_sources_and_never_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text('tenant_id = "t-1"\n[auth]\nclient_id = "c-1"\n')
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "very-secret-value")
    monkeypatch.setenv("AUDITOR_MAX_CONCURRENCY", "9")
    result = runner.invoke(app, ["--config", str(config), "config", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    rows = {row["key"]: row for row in document["settings"]}
    assert rows["tenant_id"] == {"key": "tenant_id", "value": "t-1", "source": f"file {config}"}
    assert rows["max_concurrency"]["source"] == "env AUDITOR_MAX_CONCURRENCY"
    assert rows["authority_host"]["source"] == "default"
    assert document["secrets"]["AZURE_CLIENT_SECRET"] == "set"
    assert "very-secret-value" not in result.output


def test_login_without_configuration_says_what_to_set() -> None:
    result = runner.invoke(app, ["login"])
    assert result.exit_code == 2
    assert "`auth.client_id` is required" in result.output
    # The hint names the TOML table literally: it is not swallowed as markup.
    assert "under [auth] in auditor.toml, or AZURE_CLIENT_ID" in result.output
