"""Reports from collected simulated tenants: verdicts equal the ground truth, golden files,
coverage gaps, mutelists and exit codes, all through the CLI as a user runs it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from simulated import collected_copy
from typer.testing import CliRunner

from auditor.cli import app
from auditor.report import render_json
from auditor.report.markdown import render as render_markdown
from auditor.report.model import build_report
from auditor.report.sarif import render as render_sarif
from auditor.resources import data_dir
from auditor.sim.scenario import generate
from auditor.store import Store

pytestmark = pytest.mark.slow

runner = CliRunner()
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
_FIXED_TIME = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)  # the golden files' "generated"


def _analyse_and_report(store: Path, out: Path, *extra: str) -> tuple[int, str]:
    analysed = runner.invoke(app, ["--quiet", "analyze", "--store", str(store)])
    assert analysed.exit_code == 0, analysed.output
    result = runner.invoke(
        app,
        ["report", "--store", str(store), "--out", str(out), *extra],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def _verdicts(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    names = {e["id"]: e["name"] for e in report["scan"]["environments"]}
    out: dict[str, dict[str, str]] = {}
    for answer in report["answers"]:
        for env in answer["environments"]:
            out.setdefault(names[env["environment_id"]], {})[answer["id"]] = env["verdict"]
    return out


@pytest.mark.parametrize(("scale", "seed"), [("small", 7), ("small", 8), ("small", 9)])
def test_the_verdicts_in_report_json_equal_the_ground_truth(
    scale: str, seed: int, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    store, truth = collected_copy(seed, scale, tmp_path_factory)
    code, output = _analyse_and_report(store, tmp_path, "--format", "json")
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    schema = json.loads((data_dir("reports") / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    expected = {env["name"]: env["verdicts"] for env in truth["environments"]}
    assert _verdicts(report) == expected
    # Every kind of verdict occurs, so the comparison can fail.
    kinds = {v for env in expected.values() for v in env.values()}
    assert kinds == {"check", "do-not-check", "needs-review"}


def test_trace_logging_off_gives_needs_review_with_the_fix(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    store, truth = collected_copy(7, "small", tmp_path_factory)
    code, output = _analyse_and_report(store, tmp_path, "--format", "json")
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    off = next(e for e in truth["environments"] if e["trace_setting"] == 0)
    answer = next(a for a in report["answers"] if a["id"] == "return-results")
    env = next(e for e in answer["environments"] if e["environment_id"] == off["id"])
    assert env["verdict"] == "needs-review"
    assert any("trace logging is Off" in r for r in env["reasons"])
    assert any("trace logging to All" in f for f in env["fixes"])


def test_a_denied_table_gives_needs_review_with_the_reason_and_the_fix(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    tenant = generate(7, "tiny")
    clean = next(e for e in tenant.environments if e.display_name == "Fabrikam Operations")
    store, _ = collected_copy(7, "tiny", tmp_path_factory, deny=[(clean.slug, "asyncoperations")])
    code, output = _analyse_and_report(store, tmp_path, "--format", "json")
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    verdicts = _verdicts(report)["Fabrikam Operations"]
    assert verdicts["reliable-service"] == "needs-review"
    assert verdicts["sufficient-performance"] == "needs-review"
    assert "check" not in {verdicts["reliable-service"], verdicts["return-results"]}
    answer = next(a for a in report["answers"] if a["id"] == "reliable-service")
    env = next(e for e in answer["environments"] if e["environment_id"] == clean.env_id)
    assert any("asyncoperations not-collected" in r for r in env["reasons"])
    assert any("prvReadAsyncOperation" in f or "Grant" in f for f in env["fixes"]), env["fixes"]


def test_golden_reports_of_the_tiny_tenant(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Rewrite with `pytest tests/report/test_end_to_end.py --update-golden`."""
    store, _ = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    analysed = runner.invoke(app, ["--quiet", "analyze", "--store", str(store)])
    assert analysed.exit_code == 0, analysed.output
    with Store.open(store, read_only=True) as opened:
        model = build_report(opened, generated=_FIXED_TIME, version="0.0.0-golden")
    outputs = {
        "report.json": render_json(model),
        "report.md": render_markdown(model),
        "report.sarif": render_sarif(model),
    }
    update = bool(request.config.getoption("--update-golden"))
    for name, text in outputs.items():
        golden = GOLDEN / name
        if update:
            GOLDEN.mkdir(exist_ok=True)
            golden.write_text(text, encoding="utf-8")
            continue
        assert golden.exists(), f"{golden} is missing: run pytest with --update-golden"
        assert text == golden.read_text(encoding="utf-8"), (
            f"{name} differs from {golden}; if the change is intended, run "
            "`pytest tests/report/test_end_to_end.py --update-golden` and review the diff"
        )


def test_mutelist_suppresses_a_finding_and_ignores_an_expired_entry(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    _analyse_and_report(store, tmp_path / "before", "--format", "json")
    before = json.loads((tmp_path / "before" / "report.json").read_text(encoding="utf-8"))
    target = next(
        f
        for f in before["findings"]
        if f["check_id"] == "flow-monolithic" and f["status"] == "fail"
    )
    mutelist = tmp_path / "mute.yaml"
    mutelist.write_text(
        "mute:\n"
        "  - check: flow-monolithic\n"
        f"    resource: {json.dumps(target['resource_name'])}\n"
        "    reason: Being split into child flows, ADO 1234\n"
        "    expires: 2099-12-31\n"
        "  - check: flow-failure-rate\n"
        "    resource: '*'\n"
        "    reason: old\n"
        "    expires: 2020-01-01\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(
            app,
            [
                "report",
                "--store",
                str(store),
                "--out",
                str(tmp_path / "after"),
                "--format",
                "json",
                "--mutelist",
                str(mutelist),
            ],
        )
    assert result.exit_code == 0, result.output
    after = json.loads((tmp_path / "after" / "report.json").read_text(encoding="utf-8"))
    muted = [f for f in after["findings"] if f["suppressed"]]
    assert [f["resource_id"] for f in muted] == [target["resource_id"]]
    assert muted[0]["suppression_reason"] == "Being split into child flows, ADO 1234"
    assert "expired on 2020-01-01 and is ignored" in result.output
    # The expired entry suppressed nothing.
    assert not any(
        f["suppressed"] for f in after["findings"] if f["check_id"] == "flow-failure-rate"
    )


def test_exit_codes_of_report_and_scan(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    store, _ = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    code, output = _analyse_and_report(store, tmp_path / "a", "--fail-on", "do-not-check")
    assert code == 1, output  # the tiny tenant has violations
    code, output = _analyse_and_report(store, tmp_path / "b")
    assert code == 0, output
    for name in ("report.md", "report.html", "report.json", "report.sarif"):
        assert (tmp_path / "b" / name).is_file(), name
    assert list((tmp_path / "b" / "evidence").glob("*.csv"))
    bad = runner.invoke(app, ["report", "--store", str(store), "--fail-on", "sometimes"])
    assert bad.exit_code == 2
    config = tmp_path / "auditor.toml"
    config.write_text("[http]\nmax_concurrency = 500\n", encoding="utf-8")
    bad_config = runner.invoke(app, ["--config", str(config), "report", "--store", str(store)])
    assert bad_config.exit_code == 2
    assert "max_concurrency" in bad_config.output


def test_demo_scans_the_simulated_tenant_and_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--scale", "tiny", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.html", "report.json", "report.sarif", "store.duckdb"):
        assert (out / name).is_file(), name
    assert list((out / "evidence").glob("*.csv"))
    assert "trigger-conditions" in result.output  # the verdict table
    assert "do-not-check" in result.output


def test_scan_exits_3_when_sign_in_fails(tmp_path: Path) -> None:
    from auditor.sim.model import SimOptions
    from auditor.sim.server import SimServer

    server = SimServer(generate(7, "tiny"), SimOptions(seed=7, scale="tiny"))
    server.start()
    try:
        server.write_client_files(tmp_path)
        result = runner.invoke(
            app,
            [
                "--config",
                str(tmp_path / "auditor.toml"),
                "scan",
                "--all-environments",
                "--store",
                str(tmp_path / "s.duckdb"),
                "--out",
                str(tmp_path / "r"),
            ],
            env={"AZURE_CLIENT_SECRET": "not-the-secret"},
        )
    finally:
        server.stop()
    assert result.exit_code == 3, result.output
    assert "not-the-secret" not in result.output
    assert "Traceback" not in result.output
