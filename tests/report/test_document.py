"""The typed report model: one serialisation, read back whole, and the schema's shape."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from auditor.cli.render_verdicts import TerminalVerdicts
from auditor.report import FORMATS, render_json, renderer
from auditor.report.document import Report, ReportDataError, ReportFinding, Scan
from tests.report.sample import tiny_model, tiny_report

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text(encoding="utf-8"))
GOLDEN = ROOT / "tests" / "golden" / "report.json"


def test_the_golden_document_reads_back_to_the_same_bytes() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    assert render_json(Report.from_json(json.loads(text))) == text


def test_the_model_has_the_schemas_fields() -> None:
    """A field added to the model and not to `reports/report.schema.json` (or the other way
    round) fails here, not in a user's validator."""
    props = SCHEMA["properties"]
    assert {f.name for f in dataclasses.fields(Report)} == set(props)
    assert {f.name for f in dataclasses.fields(ReportFinding)} == set(
        props["findings"]["items"]["properties"]
    )
    assert {f.name for f in dataclasses.fields(Scan)} == set(props["scan"]["properties"])


def test_the_model_is_frozen() -> None:
    report = tiny_report()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.verdict = "check"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.findings[0].message = "changed"  # type: ignore[misc]


def test_only_lint_fields_are_left_out_when_empty() -> None:
    document = tiny_report().to_json()
    assert "inputs" not in document["scan"]
    assert all("location" not in f for f in document["findings"])
    assert "verdict" in document["answers"][0]  # a judgement is written into its answer
    assert "judgement" not in document["answers"][0]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d["findings"][0].pop("check_id"), "report.findings[0]: `check_id` is missing"),
        (lambda d: d.update(answers={}), "report.answers: expected a list"),
        (lambda d: d["scan"].update(window=[]), "report.scan.window: expected an object"),
    ],
)
def test_a_document_of_the_wrong_shape_names_what_is_wrong(edit: Any, named: str) -> None:
    document = tiny_model()
    edit(document)
    with pytest.raises(ReportDataError) as raised:
        Report.from_json(document)
    assert named in str(raised.value)


def test_every_format_has_one_renderer_of_its_name() -> None:
    report = tiny_report()
    for fmt in FORMATS:
        made = renderer(fmt)
        assert made.format == fmt
        outputs = made.render(report)
        assert outputs
        assert all(o.text for o in outputs)
    names = [o.name for o in renderer("csv").render(report)]
    assert names[-1] == "evidence/findings.csv"
    assert all(name.startswith("evidence/") for name in names)


def test_the_terminal_renders_through_the_same_interface() -> None:
    report = tiny_report()
    console = Console(width=200, color_system=None, force_terminal=False)
    [made] = TerminalVerdicts(console).render(report)
    assert report.question.title in made.text
    for answer in report.answers:
        assert answer.id in made.text
    for env in report.scan.environments:
        assert env.name[:20] in made.text
