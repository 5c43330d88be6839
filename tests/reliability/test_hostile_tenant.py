"""A hostile tenant through collect, analyze and report: no crash, no active markup, no
formula, and a clear finding for each broken record.

The corpus (`hostile_tenant.CASES`: definitions, runs, action results, trace logs, system
jobs, plug-in steps and names) is added to the `tiny` simulated tenant before it is served, so
every record crosses the real HTTPS APIs, the collector, the store, the analysis and every
renderer, as a user's `auditor collect`, `analyze` and `report` would carry it. The tenant is
collected once for the module; each case is then judged on its own, named after it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import Result
from typer.testing import CliRunner

from auditor.cli import app
from auditor.report.csv_evidence import ENCODING
from auditor.resources import data_dir
from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from tests.reliability.hostile_tenant import (
    CASES,
    ENVIRONMENT,
    FORMULAS,
    INJECTED_TAGS,
    Case,
    Expect,
    inject,
    render_actions,
    target,
)
from tests.report.test_html import ALLOWED_TAGS, Node, parse
from tests.report.test_sarif import SCHEMA as SARIF_SCHEMA

pytestmark = pytest.mark.reliability

COMMANDS = ("collect", "analyze", "report")
MAX_FINDING_JSON = 64 * 1024
EXCEL_CELL_CHARS = 32_767  # a longer cell is cut (or the file refused) by Excel
# OWASP's formula triggers, and their full-width forms that some spreadsheet locales accept.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Characters that hide or reorder text: C0/C1 controls (but tab, line feed and carriage return)
# and the bidirectional embeddings, overrides and isolates ("Trojan Source").
HIDING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Attributes that take a URL: none may point at script.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data"}


@dataclass(frozen=True)
class Audit:
    """What the three commands did with the hostile tenant."""

    environment_id: str
    results: dict[str, Result]
    out: Path
    report: dict[str, Any]  # report.json

    def findings(self, check_id: str, resource_id: str) -> list[dict[str, Any]]:
        """The report's findings of one check about one resource of the target environment."""
        wanted = self.environment_id if resource_id == ENVIRONMENT else resource_id
        return [
            f
            for f in self.report["findings"]
            if f["check_id"] == check_id
            and f["environment_id"] == self.environment_id
            and f["resource_id"] == wanted
        ]


def _invoke(config: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=env)


def _clean_environ(patch: pytest.MonkeyPatch, folder: Path) -> None:
    """What tests/conftest.py's `clean_environ` does per test, for this module's fixture: no
    AUDITOR_* / AZURE_* from the machine, a private cache and working directory."""
    for name in list(os.environ):
        if name.startswith(("AUDITOR_", "AZURE_")):
            patch.delenv(name)
    patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    patch.chdir(folder)


def _collect_analyze_report(folder: Path, secret: str) -> dict[str, Result]:
    """`auditor collect`, `analyze` and `report` against the tenant served for `folder`."""
    config, store, out = folder / "auditor.toml", folder / "store.duckdb", folder / "report"
    env = {"AZURE_CLIENT_SECRET": secret, "SSL_CERT_FILE": str(folder / "ca.pem")}
    return {
        "collect": _invoke(config, env, "collect", "--all-environments", "--store", str(store)),
        "analyze": _invoke(config, env, "analyze", "--store", str(store)),
        "report": _invoke(
            config,
            env,
            "report",
            *("--store", str(store), "--out", str(out)),
            *("--format", "html,md,json,sarif,csv"),
        ),
    }


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Audit:
    """The hostile tenant served, collected, analysed and reported once for the module."""
    folder = tmp_path_factory.mktemp("hostile-tenant")
    tenant = generate(7, "tiny")
    inject(tenant, CASES)
    options = SimOptions(seed=7, scale="tiny")
    with (
        SimServer(tenant, options, render_actions=render_actions(CASES)) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        _clean_environ(patch, folder)
        server.write_client_files(folder)
        results = _collect_analyze_report(folder, tenant.client_secret)
    # Without a report, the command's own test says why; the others fail on an empty one.
    written = folder / "report" / "report.json"
    report = json.loads(written.read_text(encoding="utf-8")) if written.exists() else {}
    return Audit(target(tenant).env_id, results, folder / "report", report or {"findings": []})


# No crash ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_exits_0_without_a_traceback(audit: Audit, command: str) -> None:
    result = audit.results[command]
    # A scan is "partial" (one environment has no Dataverse); `collect` still exits 0.
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output


def test_no_check_raised_on_the_hostile_records(audit: Audit) -> None:
    crashed = [f["message"] for f in audit.report["findings"] if f["resource_kind"] == "check"]
    assert crashed == []


def test_no_finding_carries_a_megabyte_of_tenant_text(audit: Audit) -> None:
    """Findings are read by people and stored with every scan: tenant text reaches them cut."""
    sizes = {
        f"{f['check_id']} {f['resource_id']}": len(json.dumps(f)) for f in audit.report["findings"]
    }
    assert {k: n for k, n in sizes.items() if n > MAX_FINDING_JSON} == {}


# A clear finding for each broken record ------------------------------------------------------


def _judge(audit: Audit, want: Expect) -> None:
    got = audit.findings(want.check_id, want.resource_id)
    assert len(got) == 1, f"{want.check_id} on {want.resource_id}: {[f['message'] for f in got]}"
    finding = got[0]
    assert finding["status"] in want.statuses, finding["message"]
    assert want.phrase.lower() in finding["message"].lower(), finding["message"]
    if want.name is not None:
        assert finding["resource_name"] == want.name
    if want.evidence is not None:
        values = [v for row in finding["evidence"] for v in row.values()]
        assert want.evidence in values, finding["evidence"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_hostile_record_has_a_clear_finding(audit: Audit, case: Case) -> None:
    assert case.expect, "every case says which finding it must produce"
    for want in case.expect:
        _judge(audit, want)
    # A flow reported unreadable is not judged on the definition it does not have.
    for want in case.expect:
        if want.check_id == "flow-definition-unreadable" and want.statuses == ("error",):
            others = [
                f
                for f in audit.report["findings"]
                if f["resource_id"] == want.resource_id and f["check_id"] != want.check_id
            ]
            assert all(f["status"] in ("error", "not-assessed") for f in others), others


def test_the_corpus_is_large_its_ids_unique_and_every_kind_covered() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    kinds = {case.kind for case in CASES}
    assert kinds == {"definition", "run", "action", "trace", "job", "step", "name"}


# No active markup, no formula ----------------------------------------------------------------


@pytest.fixture(scope="module")
def page(audit: Audit) -> Node:
    return parse((audit.out / "report.html").read_text(encoding="utf-8"))


def test_the_html_has_no_active_markup(page: Node) -> None:
    elements = page.walk()[1:]
    assert {node.tag for node in elements} <= ALLOWED_TAGS
    for node in elements:
        assert not [name for name in node.attrs if name.lower().startswith("on")], node.attrs
        for name, value in node.attrs.items():
            if name.lower() in URL_ATTRIBUTES and value:
                assert not re.match(r"\s*(javascript|vbscript|data):", value, re.I), value
    # The only links: Microsoft Learn pages and anchors within the page.
    hrefs = [node.attrs.get("href") or "" for node in elements if node.tag == "a"]
    assert all(h.startswith(("https://learn.microsoft.com/", "#")) for h in hrefs), hrefs


def test_the_hostile_text_shows_in_the_html_as_text(page: Node) -> None:
    """The escaping is seen working: injected markup is there, as text only."""
    text = page.all_text()
    for markup in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
        assert markup in text


def _cells(folder: Path) -> list[str]:
    """Every cell of every CSV in `folder` (read without the csv module's field limit, so an
    oversized cell is measured rather than refused)."""
    out: list[str] = []
    limit = csv.field_size_limit(1 << 30)
    try:
        for path in sorted(folder.glob("*.csv")):
            with path.open(encoding=ENCODING, newline="") as handle:
                for row in csv.reader(handle):
                    out.extend(row)
    finally:
        csv.field_size_limit(limit)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_no_evidence_csv_cell_starts_a_formula(audit: Audit) -> None:
    cells = _cells(audit.out / "evidence")
    assert cells
    formulas = [c for c in cells if c.lstrip(" ").startswith(FORMULA_START) and not _is_number(c)]
    assert formulas == []
    assert [c for c in cells if HIDING.search(c)] == []
    assert max(len(c) for c in cells) <= EXCEL_CELL_CHARS
    # The hostile formulas did reach the CSVs, neutralised.
    for formula in FORMULAS:
        assert any(c.startswith("'" + formula) for c in cells), formula


def test_the_markdown_has_no_raw_markup_or_script_links(audit: Audit) -> None:
    text = (audit.out / "report.md").read_text(encoding="utf-8")
    for tag in INJECTED_TAGS:
        assert not re.search(rf"<{tag}[\s>/]", text, re.I), tag
    assert "](javascript:" not in text
    assert "&lt;script&gt;" in text  # the hostile names are there, escaped


@pytest.mark.parametrize("name", ["report.html", "report.md", "report.sarif"])
def test_no_report_for_people_hides_or_reorders_text(audit: Audit, name: str) -> None:
    found = HIDING.findall((audit.out / name).read_text(encoding="utf-8"))
    assert found == [], f"{len(found)} hiding characters, e.g. {found[:5]}"


def test_the_json_and_sarif_reports_parse_and_follow_their_schemas(audit: Audit) -> None:
    schema = json.loads((data_dir("reports") / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(audit.report)
    assert audit.report["findings"]
    sarif = json.loads((audit.out / "report.sarif").read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"]
    if SARIF_SCHEMA.is_file():  # the OASIS SARIF 2.1.0 schema of tests.report.test_sarif
        oasis = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(oasis)(oasis).validate(sarif)
