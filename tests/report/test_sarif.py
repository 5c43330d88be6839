"""The SARIF log: valid SARIF 2.1.0, one rule per check, one result per failing finding."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.checks import REGISTRY
from auditor.report.document import Report, ReportFinding
from auditor.report.sarif import FINGERPRINT, render
from tests.report.sample import hostile_report, report, tiny_model, tiny_report

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "schemas" / "sarif-schema-2.1.0.json"  # vendored: see its README
GOLDEN_SARIF = REPO / "tests" / "golden" / "report.sarif"
LEVELS = {"high": "error", "medium": "warning", "low": "note"}


@pytest.fixture(scope="module")
def validator() -> Any:
    """A validator of the OASIS schema, of the draft its `$schema` names (draft-04)."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def run_of(typed: Report) -> dict[str, Any]:
    log = json.loads(render(typed))
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run: dict[str, Any] = log["runs"][0]
    return run


def failing(typed: Report) -> list[ReportFinding]:
    return [f for f in typed.findings if f.status in ("fail", "error")]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_tiny_model_validates(validator: Any) -> None:
    validator.validate(json.loads(render(tiny_report())))


def test_hostile_model_is_json_and_validates(validator: Any) -> None:
    log = json.loads(render(hostile_report()))
    validator.validate(log)
    run = log["runs"][0]
    tenant = strings(run["results"]) + strings(run["invocations"])
    assert any("<script>" in s for s in tenant)  # kept as text: escaping is the viewer's job
    assert [s for s in tenant if re.search(r"[\x00-\x1f\x7f]", s)] == []


def test_hostile_text_never_forms_an_embedded_link() -> None:
    # In a plain-text SARIF message "[text](target)" is a link (SARIF 3.11.6).
    run = run_of(hostile_report())
    texts = [r["message"]["text"] for r in run["results"]]
    texts += [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any("javascript:alert(1)" in t for t in texts)
    assert [t for t in texts if re.search(r"(?<!\\)\]\(", t)] == []


def test_one_rule_per_check_of_the_catalog() -> None:
    driver = run_of(tiny_report())["tool"]["driver"]
    assert driver["name"] == "auditor"
    assert driver["version"] == tiny_report().generator.version
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == [c.id for c in REGISTRY]
    for rule, check in zip(driver["rules"], REGISTRY, strict=True):
        meta = check.meta
        assert rule["shortDescription"]["text"] == meta.title
        assert rule["fullDescription"]["text"] == meta.rationale
        assert meta.remediation in rule["help"]["text"]
        assert meta.learn_url in rule["help"]["text"]
        assert rule["helpUri"] == meta.learn_url
        assert rule["properties"]["answers"] == list(meta.answers)
        assert rule["properties"]["severity"] == meta.severity


def test_one_result_per_failing_finding_with_rule_level_and_location() -> None:
    typed = tiny_report()
    run = run_of(typed)
    rules = run["tool"]["driver"]["rules"]
    expected = failing(typed)
    assert len(run["results"]) == len(expected) > 0
    for result, finding in zip(run["results"], expected, strict=True):
        assert result["ruleId"] == finding.check_id
        assert rules[result["ruleIndex"]]["id"] == finding.check_id
        assert result["level"] == LEVELS[finding.severity]
        (where,) = result["locations"][0]["logicalLocations"]
        resource = finding.resource_name or finding.resource_id
        assert where["name"] == resource
        assert where["fullyQualifiedName"] == f"{finding.environment}/{resource}"
        assert where["kind"] == finding.resource_kind
        assert finding.message in result["message"]["text"]
        assert "suppressions" not in result


def test_error_findings_are_errors_whatever_their_severity() -> None:
    model = tiny_model()
    model["findings"][1] |= {"status": "error", "severity": "low"}
    run = run_of(report(model))
    (result,) = [r for r in run["results"] if r["properties"]["status"] == "error"]
    assert result["level"] == "error"


def test_muted_findings_stay_as_suppressed_results() -> None:
    model = tiny_model()
    model["findings"][0] |= {"suppressed": True, "suppression_reason": "accepted until Q3"}
    typed = report(model)
    run = run_of(typed)
    assert len(run["results"]) == len(failing(typed))
    first = run["results"][0]
    assert first["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "accepted until Q3"}
    ]


def test_not_assessed_findings_are_warnings_of_the_invocation() -> None:
    typed = tiny_report()
    run = run_of(typed)
    invocation = run["invocations"][0]
    not_assessed = [f for f in typed.findings if f.status == "not-assessed"]
    notes = invocation["toolExecutionNotifications"]
    assert len(notes) == len(not_assessed) > 0
    assert {n["associatedRule"]["id"] for n in notes} == {f.check_id for f in not_assessed}
    assert all(n["level"] == "warning" for n in notes)
    assert invocation["executionSuccessful"] is True
    assert invocation["properties"]["scanId"] == typed.scan.id


def test_automation_details_name_the_question_and_the_scan() -> None:
    typed = tiny_report()
    details = run_of(typed)["automationDetails"]
    assert details["id"] == f"auditor/background-jobs/scan-{typed.scan.id}"


def test_fingerprints_follow_ids_not_names() -> None:
    model = tiny_model()
    before = run_of(report(model))["results"][0]["partialFingerprints"][FINGERPRINT]
    model["findings"][0]["resource_name"] = "renamed"
    model["findings"][0]["environment"] = "renamed too"
    assert run_of(report(model))["results"][0]["partialFingerprints"][FINGERPRINT] == before
    model["findings"][0]["environment_id"] = "another-environment"
    assert run_of(report(model))["results"][0]["partialFingerprints"][FINGERPRINT] != before
    prints = [r["partialFingerprints"][FINGERPRINT] for r in run_of(tiny_report())["results"]]
    assert len(set(prints)) == len(prints)


def test_the_tiny_model_renders_as_the_golden_sarif() -> None:
    """The fixture is the golden model (tests/golden/report.json), so rendering it must give
    the golden SARIF byte for byte: a change of the renderer shows here first."""
    assert render(tiny_report()) == GOLDEN_SARIF.read_text(encoding="utf-8")
