"""Global options before or after the command: `auditor scan --quiet --config
x.toml` is `auditor --quiet --config x.toml scan`; given in both places, the one after the
command wins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.cli.global_options import hoist
from auditor.sim.launch import client_environment, serve_process, stopped_after

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["scan", "--quiet"], ["--quiet", "scan"]),
        (
            ["collect", "--config", "x.toml", "-e", "dev"],
            ["--config", "x.toml", "collect", "-e", "dev"],
        ),
        (["-q", "report", "--config=b.toml", "-vv"], ["-q", "--config=b.toml", "-vv", "report"]),
        (["sim", "serve", "-cx.toml", "--debug"], ["-cx.toml", "--debug", "sim", "serve"]),
        (["lint", "--", "--quiet"], ["lint", "--", "--quiet"]),  # after --, a path
        (["config", "--json"], ["config", "--json"]),
    ],
)
def test_hoist_moves_global_options_to_the_front_in_their_order(
    args: list[str], expected: list[str]
) -> None:
    assert hoist(args) == expected


def write_config(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    """A configuration every command refuses with exit 2, naming the key."""
    return write_config(tmp_path, "bad.toml", "[http]\nmax_concurrency = 99\n")


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_config(tmp_path, "good.toml", 'tenant_id = "t-after"\n')


@pytest.mark.parametrize(
    "command",
    [
        ["collect"],
        ["scan", "--all-environments"],
        ["report"],
        ["config"],
        ["analyze"],
        ["checks", "list"],
        ["lint", "."],
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_read_before_or_after_the_command(
    command: list[str], where: str, bad: Path
) -> None:
    args = (
        ["--config", str(bad), *command] if where == "before" else [*command, "--config", str(bad)]
    )
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2, result.output
    assert "No such option" not in result.output
    assert "http.max_concurrency" in result.output


def tenant_id(result_output: str) -> str:
    rows = {row["key"]: row for row in json.loads(result_output)["settings"]}
    return str(rows["tenant_id"]["value"])


def test_an_option_given_twice_the_one_after_the_command_wins(bad: Path, good: Path) -> None:
    result = runner.invoke(app, ["--config", str(bad), "config", "--json", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert tenant_id(result.output) == "t-after"
    result = runner.invoke(app, ["--config", str(good), "config", "--config", str(bad)])
    assert result.exit_code == 2
    assert "http.max_concurrency" in result.output


def test_debug_after_the_command_shows_the_traceback(bad: Path) -> None:
    result = runner.invoke(app, ["config", "--config", str(bad), "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_help_names_the_global_options_and_where_they_go() -> None:
    root = runner.invoke(app, ["--help"], env=WIDE)
    assert root.exit_code == 0
    for option in ("--config", "--verbose", "--quiet", "--debug", "--version"):
        assert option in root.output
    for args in (["--help"], ["scan", "--help"], ["sim", "serve", "--help"]):
        text = " ".join(runner.invoke(app, args, env=WIDE).output.split())
        assert "the one after the command wins" in text, args


@pytest.mark.slow
def test_scan_quiet_config_all_environments_after_the_command(tmp_path: Path) -> None:
    """`auditor scan --quiet --config x.toml --all-environments` on the simulated tenant: the
    scan runs, and --quiet after the command leaves out the tables and the file list."""
    folder = tmp_path / "sim"
    process, _url = serve_process(folder, seed=7, scale="tiny")
    with stopped_after(process):
        secret = client_environment(folder)["AZURE_CLIENT_SECRET"]
        args = ["scan", "--quiet", "--config", str(folder / "auditor.toml"), "--all-environments"]
        args += ["--store", str(tmp_path / "store.duckdb"), "--out", str(tmp_path / "report")]
        result = runner.invoke(app, args, env={**WIDE, "AZURE_CLIENT_SECRET": secret})
    assert result.exit_code == 0, result.output
    assert re.search(r"^Scan 1 (completed|partial)", result.output, re.MULTILINE), result.output
    assert "analysed:" in result.output
    assert "Findings" not in result.output  # the per-check table: not with --quiet
    assert "Reports:" not in result.output
    assert (tmp_path / "report" / "report.html").is_file()
