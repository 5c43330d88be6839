"""Reports bounded per check: the model keeps at most `MAX_FINDINGS_PER_CHECK` findings per
check and status, counts every finding in `finding_counts`, and each format says how many
it left out (a lint of files anyone can commit can hold 200,000 plug-in steps)."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.checks.base import make
from auditor.checks.plugin_update_unfiltered import META
from auditor.lint.run import lint
from auditor.report import html, markdown, model, sarif
from auditor.report.document import FindingCount
from auditor.report.model import bounded
from auditor.resources import data_dir
from auditor.settings import Settings
from tests.report.sample import report as typed
from tests.report.sample import tiny_model, tiny_report

UPDATE = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
CHECK = "plugin-update-unfiltered"


def steps_zip(path: Path, unfiltered: int, filtered: int = 0) -> Path:
    """A solution zip whose customizations.xml registers Update steps on account."""
    records = "".join(
        f'<SdkMessageProcessingStep Name="P.Step{n}: Update of account" '
        f'SdkMessageProcessingStepId="{{{uuid.UUID(int=n + 1)}}}"><SdkMessageId>{UPDATE}'
        "</SdkMessageId><PrimaryEntity>account</PrimaryEntity><Mode>0</Mode><Stage>40</Stage>"
        f"<FilteringAttributes>{'name' if n >= unfiltered else ''}</FilteringAttributes>"
        "</SdkMessageProcessingStep>"
        for n in range(unfiltered + filtered)
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "customizations.xml",
            f"<ImportExportXml><SdkMessageProcessingSteps>{records}"
            "</SdkMessageProcessingSteps></ImportExportXml>",
        )
        archive.writestr("solution.xml", "<ImportExportXml><SolutionManifest/></ImportExportXml>")
    return path


def with_left_out(report: dict[str, Any], check: str, status: str, left: int) -> dict[str, Any]:
    """The tiny model as if `left` more findings of a check and status had been left out."""
    kept = sum(1 for f in report["findings"] if (f["check_id"], f["status"]) == (check, status))
    report["finding_counts"] = [
        {"check_id": check, "status": status, "findings": kept + left, "left_out": left}
    ]
    return report


def test_bounded_keeps_the_first_findings_of_each_check_and_status() -> None:
    found = [
        *(make(META, "fail", f"fail {n}", resource_id=f"f{n}") for n in range(5)),
        *(make(META, "pass", f"pass {n}", resource_id=f"p{n}") for n in range(2)),
        make(META, "fail", "fail 5", resource_id="f5"),
    ]
    kept, counts = bounded(found, limit=3)
    assert kept == {0: 0, 1: 1, 2: 2, 5: 3, 6: 4}
    assert counts == (
        FindingCount(check_id=CHECK, status="fail", findings=6, left_out=3),
        FindingCount(check_id=CHECK, status="pass", findings=2, left_out=0),
    )


def test_a_lint_model_keeps_so_many_findings_per_check_and_counts_every_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 unfiltered and 4 filtered steps at a bound of 10: 10 fails and 4 passes listed; the
    verdict, the coverage and the counts are judged on all 34."""
    monkeypatch.setattr(model, "MAX_FINDINGS_PER_CHECK", 10)
    source = steps_zip(tmp_path / "steps.zip", unfiltered=30, filtered=4)
    report = lint([source], Settings()).model.to_json()
    mine = [f for f in report["findings"] if f["check_id"] == CHECK]
    assert [f["status"] for f in mine].count("fail") == 10
    assert [f["status"] for f in mine].count("pass") == 4
    counts = {(c["check_id"], c["status"]): c for c in report["finding_counts"]}
    assert counts[(CHECK, "fail")] == {
        "check_id": CHECK,
        "status": "fail",
        "findings": 30,
        "left_out": 20,
    }
    assert counts[(CHECK, "pass")]["left_out"] == 0
    assert [f["index"] for f in report["findings"]] == list(range(len(report["findings"])))
    answer = next(a for a in report["answers"] if a["id"] == "trigger-conditions")
    assert answer["verdict"] == "do-not-check"
    assert answer["coverage"]["step"] == {"audited": 34, "not_assessed": 0}
    behind = [report["findings"][i] for i in answer["findings"]]
    assert len(behind) == 10  # the kept ones: indexes into the report's findings
    assert all(f["check_id"] == CHECK and f["status"] == "fail" for f in behind)
    assert "(and 29 more)" in answer["reasons"][0]
    schema = json.loads((data_dir("reports") / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(report)))


def test_markdown_says_how_many_findings_were_left_out() -> None:
    text = markdown.render(typed(with_left_out(tiny_model(), "flow-monolithic", "fail", 1234)))
    section = text.split("## Findings left out")[1].split("\n## ")[0]
    assert "*1,234 more findings left out of this report.*" in section
    assert "| `flow-monolithic` | fail |" in section
    assert "more findings of these checks left out of this report" in text


def test_markdown_without_left_out_findings_has_no_such_section() -> None:
    assert "left out of this report" not in markdown.render(tiny_report())


def test_html_says_how_many_findings_were_left_out() -> None:
    page = html.render(typed(with_left_out(tiny_model(), "flow-monolithic", "fail", 1234)))
    assert "1,234 more findings left out of this report" in page
    assert "1,234 more findings of this check left out of this report" in page
    assert "left out of this report" not in html.render(tiny_report())


def test_sarif_keeps_so_many_results_per_rule_and_notes_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = tiny_model()
    failing = [f for f in typed(document).findings if f.status in sarif.RESULT_STATUSES]
    per_rule: dict[str, int] = {}
    for f in failing:
        per_rule[f.check_id] = per_rule.get(f.check_id, 0) + 1
    busiest = max(per_rule, key=lambda rule: per_rule[rule])
    assert per_rule[busiest] > 1
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RULE", 1)
    left_out = typed(with_left_out(document, busiest, "fail", 500))
    run = json.loads(sarif.render(left_out))["runs"][0]
    rules = [r["ruleId"] for r in run["results"]]
    assert sorted(rules) == sorted(per_rule)  # one result per rule
    left = run["properties"]["resultsLeftOut"]
    assert left[busiest] == per_rule[busiest] - 1 + 500
    notes = [n for n in run["invocations"][0]["toolExecutionNotifications"] if n["level"] == "note"]
    assert {n["associatedRule"]["id"] for n in notes} == set(left)
    note = next(n for n in notes if n["associatedRule"]["id"] == busiest)
    assert (
        f"{left[busiest]:,} more results of {busiest} left out of this report"
        in (note["message"]["text"])
    )


def test_sarif_without_left_out_results_has_no_note() -> None:
    run = json.loads(sarif.render(tiny_report()))["runs"][0]
    assert "resultsLeftOut" not in run["properties"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert all(n["level"] != "note" for n in notes)


def test_the_evidence_csvs_list_what_the_report_left_out(tmp_path: Path) -> None:
    from auditor.report import csv_evidence, write_reports

    report = typed(with_left_out(tiny_model(), "flow-monolithic", "fail", 1234))
    names = [name for name, _, _ in csv_evidence.plan(report)]
    assert names[-2:] == ["findings.csv", "left_out.csv"]
    written = write_reports(report, tmp_path, ("csv",))[-1].read_text(encoding="utf-8-sig")
    assert written.splitlines()[1].split(",")[:2] == ["flow-monolithic", "fail"]
    assert written.splitlines()[1].endswith(",1234")
    assert "left_out.csv" not in [name for name, _, _ in csv_evidence.plan(tiny_report())]
