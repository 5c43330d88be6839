"""`auditor lint` end to end: the four input shapes through the checks, the verdicts from
static evidence, SARIF with file and line, broken files as error findings, the command."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.lint.run import NEEDS_SCAN, lint
from auditor.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SARIF_SCHEMA = Path(__file__).parents[1] / "schemas" / "sarif-schema-2.1.0.json"  # vendored
STATIC_ANSWERS = {"trigger-conditions", "return-results", "decomposed-steps"}
runner = CliRunner()


def _rel(path: Path) -> Path:
    """The fixture path as a user gives it: relative to the working directory when below it
    (tests run in a temporary directory, so usually absolute)."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _zip(folder: Path, target: Path, skip: tuple[str, ...] = ()) -> Path:
    """A solution zip of a fixture folder, built at test time (no binary fixture)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in skip:
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def _findings(model: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [f for f in model["findings"] if all(f.get(k) == v for k, v in match.items())]


def _one(model: dict[str, Any], check: str, name: str) -> dict[str, Any]:
    found = _findings(model, check_id=check, resource_name=name)
    assert len(found) == 1, (
        check,
        name,
        [f["resource_name"] for f in _findings(model, check_id=check)],
    )
    return found[0]


def _line_text(place: dict[str, Any]) -> str:
    lines = Path(place["file"]).read_text(encoding="utf-8").splitlines()
    return lines[int(place["line"]) - 1]


@pytest.fixture(scope="module")
def unpacked() -> dict[str, Any]:
    return lint([_rel(FIXTURES / "unpacked")], Settings()).model.to_json()


def test_an_unpacked_solution_gets_every_static_check(unpacked: dict[str, Any]) -> None:
    model = unpacked
    # A Dataverse update trigger without any filter fails; one with filtering attributes
    # and a trigger condition passes.
    assert _one(model, "flow-update-trigger-unfiltered", "Contoso Account Sync")["status"] == "fail"
    filtered = _one(model, "flow-update-trigger-unfiltered", "Contoso Contact Filtered Sync")
    assert filtered["status"] == "pass"
    assert "filtering attributes" in filtered["message"]
    assert "trigger conditions" in filtered["message"]
    # The child flow answers nobody on its failure path (reached through "FAILED").
    child = "Contoso Child - Log Error"
    assert _one(model, "flow-invoked-no-response", child)["status"] == "fail"
    assert _one(model, "flow-handled-failure-succeeds", child)["status"] == "fail"
    # Try/Catch: the catch scope runs after Failed/TimedOut and ends the run Failed.
    order = "Contoso Order Processing"
    assert _one(model, "flow-handled-failure-succeeds", order)["status"] == "pass"
    assert _one(model, "flow-no-error-handling", order)["status"] == "pass"
    # Update steps from per-step XML: without filtering attributes fails, with them passes.
    unfiltered = _one(
        model, "plugin-update-unfiltered", "Contoso.Plugins.AccountPlugin: Update of account"
    )
    assert unfiltered["status"] == "fail"
    assert "every update of the table runs it" in unfiltered["message"]
    filtered_step = _one(
        model, "plugin-update-unfiltered", "Contoso.Plugins.ContactPlugin: Update of contact"
    )
    assert filtered_step["status"] == "pass"
    # Classic workflows: an empty TriggerOnUpdateAttributeList fails, a real list passes.
    assert (
        _one(model, "workflow-update-unfiltered", "Contoso - Case escalation")["status"] == "fail"
    )
    listed = _one(model, "workflow-update-unfiltered", "Contoso - Notify on account status change")
    assert listed["status"] == "pass"


def test_verdicts_come_from_static_evidence_and_telemetry_needs_a_scan(
    unpacked: dict[str, Any],
) -> None:
    verdicts = {a["id"]: a for a in unpacked["answers"]}
    assert verdicts["trigger-conditions"]["verdict"] == "do-not-check"
    assert verdicts["return-results"]["verdict"] == "do-not-check"
    assert verdicts["decomposed-steps"]["verdict"] == "check"
    for answer in ("reliable-service", "sufficient-performance"):
        assert verdicts[answer]["verdict"] == "needs-review"
        assert any(NEEDS_SCAN in reason for reason in verdicts[answer]["reasons"])
    telemetry = _findings(unpacked, status="not-assessed")
    assert telemetry
    assert all(
        NEEDS_SCAN in f["message"] for f in telemetry if f["check_id"] != "coverage-scan-history"
    )
    assert unpacked["scan"]["kind"] == "lint"


def test_a_solution_zip_with_the_step_in_customizations_xml(tmp_path: Path) -> None:
    archive = _zip(FIXTURES / "solution_zip", tmp_path / "ContosoInvoices_1_0_0_1.zip")
    model = lint([archive], Settings()).model.to_json()
    steps = _findings(model, check_id="plugin-update-unfiltered", status="fail")
    assert steps, "the Update step without FilteringAttributes in customizations.xml"
    assert steps[0]["location"]["file"] == archive.as_posix()
    assert steps[0]["location"]["member"] == "customizations.xml"
    flows = _findings(model, check_id="flow-definition-unreadable", status="pass")
    assert flows
    assert all(f["location"]["member"].startswith("Workflows/") for f in flows)
    assert not list(tmp_path.glob("Workflows"))  # read in memory, never unpacked


def test_a_legacy_package_and_single_definition_files() -> None:
    legacy = lint([_rel(FIXTURES / "legacy_package")], Settings()).model.to_json()
    assert _findings(
        legacy,
        check_id="flow-definition-unreadable",
        resource_name="Notify on flagged email",
        status="pass",
    )
    singles = lint(
        [
            _rel(FIXTURES / "single" / "clientdata_flow.json"),
            _rel(FIXTURES / "single" / "bare_definition.json"),
        ],
        Settings(),
    ).model.to_json()
    parsed = _findings(singles, check_id="flow-definition-unreadable", status="pass")
    assert len(parsed) == 2
    assert {Path(f["location"]["file"]).name for f in parsed} == {
        "clientdata_flow.json",
        "bare_definition.json",
    }


@pytest.mark.parametrize(
    ("make", "check", "names"),
    [
        (
            lambda tmp: _rel(FIXTURES / "broken" / "invalid_json"),
            "flow-definition-unreadable",
            "ContosoBroken",
        ),
        (
            lambda tmp: _rel(FIXTURES / "broken" / "bad_step_xml"),
            "plugin-update-unfiltered",
            ".xml",
        ),
        (
            lambda tmp: _zip(FIXTURES / "broken" / "zip_missing_member", tmp / "broken.zip"),
            "flow-definition-unreadable",
            "which is not in the zip",
        ),
    ],
    ids=["invalid-json", "xml-does-not-parse", "zip-missing-member"],
)
def test_a_broken_file_is_an_error_finding_naming_it(
    tmp_path: Path, make: Any, check: str, names: str
) -> None:
    path = make(tmp_path)
    result = lint([path], Settings())
    document = result.model.to_json()
    errors = _findings(document, check_id=check, status="error")
    assert len(errors) == 1, [f["message"] for f in document["findings"] if f["status"] == "error"]
    error = errors[0]
    assert names in error["message"]
    assert error["location"]["file"].startswith(path.as_posix())
    assert result.model.verdict != "check"


def test_sarif_validates_and_every_result_points_at_its_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["lint", str(_rel(FIXTURES / "unpacked")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "report.md",
        "report.html",
        "report.json",
        "report.sarif",
    }
    log = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
    results = log["runs"][0]["results"]
    assert results
    for found in results:
        physical = found["locations"][0]["physicalLocation"]
        assert Path(urllib.parse.unquote(physical["artifactLocation"]["uri"])).exists(), physical
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for found in results:
        by_rule.setdefault(found["ruleId"], []).append(found)
    # The trigger's line for a trigger finding, the catch action's line for a catch finding,
    # the step's start tag for a step.
    model = json.loads((out / "report.json").read_text(encoding="utf-8"))
    trigger = _one(model, "flow-update-trigger-unfiltered", "Contoso Account Sync")["location"]
    assert '"When_an_account_is_modified": {' in _line_text(trigger)
    catch = _one(model, "flow-handled-failure-succeeds", "Contoso Child - Log Error")
    action = catch["evidence"][0]["catch_action"]
    assert f'"{action}": {{' in _line_text(catch["location"])
    step = _one(
        model, "plugin-update-unfiltered", "Contoso.Plugins.AccountPlugin: Update of account"
    )
    assert "<SdkMessageProcessingStep " in _line_text(step["location"])
    lines = {
        (r["ruleId"], r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"))
        for r in results
    }
    assert ("flow-update-trigger-unfiltered", trigger["line"]) in lines


def test_sarif_to_stdout_without_out_and_fail_on(tmp_path: Path) -> None:
    path = str(_rel(FIXTURES / "unpacked"))
    result = runner.invoke(app, ["--quiet", "lint", path])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "2.1.0"
    failing = runner.invoke(app, ["--quiet", "lint", path, "--fail-on", "do-not-check"])
    assert failing.exit_code == 1
    assert json.loads(failing.stdout)["runs"][0]["results"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lint", "no/such/solution"], "no/such/solution"),
        (["lint", str(FIXTURES / "unpacked"), "--format", "md,sarif"], "one format"),
        (["lint", str(FIXTURES / "unpacked"), "--format", "csv", "--out", "x"], "csv"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_copy_of_the_solution_elsewhere_gives_the_same_findings(
    unpacked: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(FIXTURES / "unpacked", copy)
    again = lint([copy], Settings()).model.to_json()

    def summary(model: dict[str, Any]) -> list[tuple[str, str, str, int | None]]:
        return sorted(
            (f["check_id"], f["resource_name"], f["status"], f["location"]["line"])
            for f in model["findings"]
            if f["resource_kind"] not in ("environment", "query")  # named after the path
        )

    assert summary(again) == summary(unpacked)


def test_a_sequential_loop_is_reported_on_the_loop_line(tmp_path: Path) -> None:
    definition = {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "triggers": {"Recurrence": {"type": "Recurrence", "recurrence": {"frequency": "Day"}}},
        "actions": {
            "Each_row": {
                "type": "Foreach",
                "foreach": "@outputs('List_rows')?['body/value']",
                "actions": {
                    "Update_a_row": {
                        "type": "OpenApiConnection",
                        "inputs": {
                            "host": {
                                "apiId": "/providers/Microsoft.PowerApps/apis/"
                                "shared_commondataserviceforapps",
                                "operationId": "UpdateRecord",
                            }
                        },
                        "runAfter": {},
                    }
                },
                "runAfter": {},
            }
        },
    }
    path = tmp_path / "nightly.json"
    path.write_text(json.dumps(definition, indent=2), encoding="utf-8")
    model = lint([path], Settings()).model.to_json()
    (loop,) = _findings(model, check_id="flow-sequential-loop")
    assert (loop["status"], loop["severity"]) == ("fail", "low")
    assert '"Each_row": {' in _line_text(loop["location"])
