"""`evidence/*.csv`: the rows behind each finding, for a spreadsheet (docs/how-a-scan-runs.md,
"Report").

`evidence/<check id>.csv` holds one row per evidence row of each of the check's findings
(every status), led by the finding's columns; a finding without evidence rows gives one row
of its measured values instead. `evidence/findings.csv` holds one row per finding, its
values as one JSON column.

The files are written for Excel first, as that is where auditors open them:
- UTF-8 with a byte-order mark: without it Excel reads a CSV in the legacy code page and
  mangles non-English flow names; every other CSV reader skips the BOM (read them with
  encoding="utf-8-sig"). Comma separated, fields quoted when needed, CRLF line ends
  (RFC 4180, https://www.rfc-editor.org/rfc/rfc4180).
- Formula injection is neutralised: tenant text such as a flow named `=HYPERLINK(...)`
  would run as a formula when opened. A text cell that starts with `=`, `+`, `-`, `@`, a
  tab or a carriage return gets a leading apostrophe, which spreadsheets take as "this is
  text" (https://owasp.org/www-community/attacks/CSV_Injection). Only text is treated:
  a number from the model (a negative delta, -5) stays a number.
- Control characters other than tab and newline are dropped, as are the bidirectional
  overrides that reorder what a cell shows ("Trojan Source") and lone surrogates, which UTF-8
  cannot hold.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from auditor.report.document import Report, ReportFinding
from auditor.report.renderer import Rendered

ENCODING = "utf-8-sig"  # how the files read back: UTF-8 after a byte-order mark
FINDING_COLUMNS = (
    "finding",
    "check_id",
    "status",
    "severity",
    "environment_id",
    "environment",
    "resource_kind",
    "resource_id",
    "resource_name",
    "message",
    "suppressed",
    "suppression_reason",
)
SUMMARY_COLUMNS = (*FINDING_COLUMNS, "title", "answers", "learn_url", "evidence_rows", "values")

# OWASP's list, plus their full-width forms, which some spreadsheet locales also accept.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def neutralise(text: str) -> str:
    """A text cell a spreadsheet shows as text: no control characters, no formula."""
    cleaned = _CONTROL.sub("", text)
    # Decided on the raw text too: "\r=..." loses its CR here but was a formula trigger.
    if text.startswith(FORMULA_START) or cleaned.lstrip(" ").startswith(FORMULA_START):
        return "'" + cleaned
    return cleaned


def cell(value: Any) -> str | int | float:
    """One cell: numbers as numbers, booleans and empties spelled out, the rest neutral text.

    Lists and mappings (a finding's measured values can hold them) become JSON text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ""
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(json.dumps(value, ensure_ascii=False, default=str))


def file_name(check_id: object) -> str:
    """`<check id>.csv`, with anything but letters, digits, `.`, `_`, `-` replaced."""
    name = _UNSAFE_NAME.sub("_", str(check_id)).lstrip(".") or "_"
    return f"{name}.csv"


def _finding_cells(finding: ReportFinding) -> dict[str, Any]:
    out = {column: getattr(finding, column) for column in FINDING_COLUMNS[1:]}
    return {"finding": finding.index, **out}


def _extra(key: object, prefix: str) -> str:
    """An evidence or value column's name, prefixed where it would hide a finding column."""
    name = str(key)
    return f"{prefix}_{name}" if name in FINDING_COLUMNS else name


def evidence_rows(findings: Sequence[ReportFinding]) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and rows of one check's evidence file."""
    rows: list[dict[str, Any]] = []
    extra: dict[str, None] = {}  # an ordered set: columns in the order they first appear
    for finding in findings:
        base = _finding_cells(finding)
        if finding.evidence:
            for row in finding.evidence:
                named = {_extra(k, "evidence"): v for k, v in row.items()}
                extra.update(dict.fromkeys(named))
                rows.append({**base, **named})
        else:
            named = {_extra(k, "value"): v for k, v in finding.values.items()}
            extra.update(dict.fromkeys(named))
            rows.append({**base, **named})
    return [*FINDING_COLUMNS, *extra], rows


def summary_row(finding: ReportFinding) -> dict[str, Any]:
    """A finding's row in `findings.csv`."""
    return {
        **_finding_cells(finding),
        "title": finding.title,
        "answers": ";".join(finding.answers),
        "learn_url": finding.learn_url,
        "evidence_rows": len(finding.evidence),
        "values": json.dumps(dict(finding.values), ensure_ascii=False, default=str),
    }


def write_rows(handle: IO[str], header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """One CSV into an open text handle (opened with `newline=""`), every cell through `cell`.

    The byte-order mark is written as a character: the handle encodes UTF-8, so it becomes
    the same three bytes `utf-8-sig` would write."""
    handle.write("\ufeff")
    writer = csv.writer(handle)  # excel dialect: comma, minimal quoting, CRLF
    writer.writerow([cell(name) for name in header])
    writer.writerows([cell(row.get(name)) for name in header] for row in rows)


def csv_text(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """One CSV as text, lines ended CRLF (write it with `newline=""`)."""
    buffer = io.StringIO(newline="")
    write_rows(buffer, header, rows)
    return buffer.getvalue()


Planned = tuple[str, list[str], list[dict[str, Any]]]


LEFT_OUT_COLUMNS = ("check_id", "status", "findings", "left_out")


def plan(report: Report) -> list[Planned]:
    """The evidence files of `model` as (file name, header, rows): one per check with
    findings, in the order they first appear, then `findings.csv`, then `left_out.csv` when
    the report left findings out (per check and status: how many there were, how many
    left out)."""
    by_check: dict[str, list[ReportFinding]] = {}
    for finding in report.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    planned: list[Planned] = []
    used = {"findings.csv"}
    for check_id, findings in by_check.items():
        name = file_name(check_id)
        while name in used:  # ids that sanitise alike must not overwrite each other
            name = name.removesuffix(".csv") + "_.csv"
        used.add(name)
        header, rows = evidence_rows(findings)
        planned.append((name, header, rows))
    summary = [summary_row(f) for f in report.findings]
    planned.append(("findings.csv", list(SUMMARY_COLUMNS), summary))
    # The report keeps at most 1,000 findings per check and status: say what it left out.
    left_out = [asdict(c) for c in report.finding_counts if c.left_out]
    if left_out:
        used.add("left_out.csv")
        planned.append(("left_out.csv", list(LEFT_OUT_COLUMNS), left_out))
    return planned


@dataclass(frozen=True, slots=True)
class CsvEvidence:
    """The `csv` format: `evidence/<check id>.csv` per check with findings, then
    `evidence/findings.csv` (and `evidence/left_out.csv`), in `plan`'s order."""

    format: str = "csv"

    def render(self, report: Report) -> list[Rendered]:
        return [
            Rendered(f"evidence/{name}", csv_text(header, rows), newline="")
            for name, header, rows in plan(report)
        ]


__all__ = [
    "ENCODING",
    "FINDING_COLUMNS",
    "CsvEvidence",
    "cell",
    "csv_text",
    "neutralise",
    "plan",
    "write_rows",
]
