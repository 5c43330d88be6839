"""What `report.html` lays out: the view its template reads, built from the `Report`.

The decisions are made here, in Python, not in the template: which findings are listed under
an answer and in the appendix, how many, in what order, and how measured values read. Apart
from the page (`auditor.report.html`: the Jinja environment, links and escaping) so that each
can be read on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from auditor.report import svg
from auditor.report.document import (
    Answer,
    EnvironmentAnswer,
    QueryCoverage,
    Report,
    ReportFinding,
    Row,
    TraceCoverage,
)
from auditor.report.html_text import format_ms, number
from auditor.report.markdown import left_out, where

ROWS_PER_CHECK = 200  # findings listed per check in the appendix; the rest are counted
ROWS_PER_ANSWER = 200  # findings listed under an answer
EVIDENCE_ROWS = 20  # evidence rows shown per finding; the CSV files carry all of them
REASON_CHARS = 220  # the verdict table's one-line reason is cut here

STATUS_ORDER = {"fail": 0, "error": 1, "not-assessed": 2, "pass": 3}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True, slots=True)
class EvidenceTable:
    """The first evidence rows of a finding: the union of their columns, the cells as text,
    and how many rows are not shown."""

    columns: list[str]
    rows: list[list[str]]
    omitted: int


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding as a table row: its place in the files linted, its values and evidence."""

    finding: ReportFinding
    where: str | None
    values_text: list[tuple[str, str]]
    evidence_table: EvidenceTable


@dataclass(frozen=True, slots=True)
class AnswerView:
    """An answer with its one-line reason, coverage and the findings listed under it."""

    answer: Answer
    anchor: str
    one_line: str
    coverage_text: str
    behind: list[FindingView]
    behind_omitted: int
    other: list[FindingView]
    other_omitted: int
    by_env: dict[str, EnvironmentAnswer]


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """An environment's row of the verdict matrix: its verdict per answer (None: none)."""

    name: str
    has_dataverse: bool
    cells: list[EnvironmentAnswer | None]


@dataclass(frozen=True, slots=True)
class CheckGroup:
    """A check's findings in the appendix: counts per status, passes per environment, and
    the non-passing rows up to a cap."""

    check_id: str
    anchor: str
    title: str
    answers: tuple[str, ...]
    learn_url: str | None
    remediation: str | None
    total: int
    counts: list[tuple[str, int]]
    suppressed: int
    passes: list[tuple[str, int]]
    rows: list[FindingView]
    omitted: int
    left_out: int


@dataclass(frozen=True, slots=True)
class ChartsView:
    """The charts, drawn (`auditor.report.svg`)."""

    runs_per_day: Markup
    slowest_steps: Markup
    slowest_flows: Markup
    noisy_flows: Markup
    queue_latency: Markup


@dataclass(frozen=True, slots=True)
class PageView:
    """Everything the template lays out besides the report itself."""

    answers: list[AnswerView]
    matrix: list[MatrixRow]
    charts: ChartsView
    missing_queries: list[tuple[str, QueryCoverage]]  # (environment name, query)
    collected_queries: int
    trace_logging: list[tuple[str, TraceCoverage]]  # (environment name, setting)
    groups: list[CheckGroup]
    status_counts: Counter[str]
    left_out: int
    suppressed: int


def anchor(value: object) -> str:
    """An id attribute (and `#` link target) made of lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-") or "x"


def coverage_text(coverage: Mapping[str, Mapping[str, int]]) -> str:
    """Coverage as a reviewer reads it: `flow 21 of 21 audited; query 0 of 2 audited (2 not
    assessed)`. Resources not assessed are what keeps an answer from `check`."""
    parts = []
    for kind, counts in coverage.items():
        audited = counts.get("audited", 0)
        missing = counts.get("not_assessed", 0)
        part = f"{kind} {audited:,} of {audited + missing:,} audited"
        if missing:
            part += f" ({missing:,} not assessed)"
        parts.append(part)
    return "; ".join(parts) if parts else "nothing audited"


def value_text(key: str, value: Any) -> str:
    """A measured value as text: durations in readable units, lists joined, floats short."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_ms") and number(value) is not None:
        return format_ms(value)
    if isinstance(value, float):
        return f"{value:.4g}" if number(value) is not None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return "; ".join(value_text("", v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={value_text(str(k), v)}" for k, v in value.items())
    return str(value)


def one_line(reasons: Sequence[str]) -> str:
    """The first reason, shortened, and how many more there are."""
    if not reasons:
        return "–"
    first = svg.shorten(reasons[0], REASON_CHARS)
    more = len(reasons) - 1
    return f"{first} (+{more} more)" if more else first


def _sort_key(finding: ReportFinding) -> tuple[int, int, int, str, int]:
    return (
        1 if finding.suppressed else 0,
        STATUS_ORDER.get(finding.status, 9),
        SEVERITY_ORDER.get(finding.severity, 9),
        finding.environment or "",
        finding.index,
    )


def _evidence(rows: Sequence[Row]) -> EvidenceTable:
    """The first evidence rows as a table: the union of their columns, in first-seen order."""
    shown = rows[:EVIDENCE_ROWS]
    columns: dict[str, None] = {}
    for row in shown:
        columns.update(dict.fromkeys(row))
    return EvidenceTable(
        columns=list(columns),
        rows=[[value_text(c, row.get(c)) for c in columns] for row in shown],
        omitted=len(rows) - len(shown),
    )


def _finding_view(finding: ReportFinding) -> FindingView:
    place = finding.location
    return FindingView(
        finding=finding,
        where=where(place) if place is not None and place.file else None,
        values_text=[(k, value_text(k, v)) for k, v in finding.values.items()],
        evidence_table=_evidence(finding.evidence),
    )


def _answer_findings(
    answer: Answer, findings: Sequence[ReportFinding]
) -> tuple[list[FindingView], list[FindingView]]:
    """The findings behind an answer's verdicts (scope and every environment), and the other
    findings of its checks a reviewer should see: failures below the violation severity
    (advice) and suppressed findings."""
    behind = set(answer.judgement.findings)
    for env in answer.environments:
        behind.update(env.judgement.findings)
    listed = sorted((findings[i] for i in behind if 0 <= i < len(findings)), key=_sort_key)
    other = sorted(
        (
            f
            for f in findings
            if f.index not in behind
            and answer.id in f.answers
            and (f.status == "fail" or (f.suppressed and f.status != "pass"))
        ),
        key=_sort_key,
    )
    return [_finding_view(f) for f in listed], [_finding_view(f) for f in other]


def _check_groups(report: Report) -> list[CheckGroup]:
    """Findings grouped by check, in the order the answers list their checks: counts per
    status, passes counted per environment, and the non-passing rows up to a cap."""
    by_check: dict[str, list[ReportFinding]] = {}
    for finding in report.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    order: dict[str, None] = {}
    for answer in report.answers:
        order.update(dict.fromkeys(c for c in answer.checks if c in by_check))
    order.update(dict.fromkeys(sorted(by_check)))
    cut: Counter[str] = Counter()
    for count in left_out(report):
        cut[count.check_id] += count.left_out
    groups = []
    for check_id in order:
        found = by_check[check_id]
        first = found[0]
        statuses = Counter(f.status for f in found if not f.suppressed)
        passes = Counter(
            f.environment or f.environment_id or "tenant"
            for f in found
            if f.status == "pass" and not f.suppressed
        )
        listed = sorted((f for f in found if f.status != "pass" or f.suppressed), key=_sort_key)
        groups.append(
            CheckGroup(
                check_id=check_id,
                anchor=anchor(f"check-{check_id}"),
                title=first.title,
                answers=first.answers,
                learn_url=first.learn_url,
                remediation=first.remediation,
                total=len(found),
                counts=[
                    (s, statuses[s]) for s in sorted(statuses, key=lambda s: STATUS_ORDER.get(s, 9))
                ],
                suppressed=sum(1 for f in found if f.suppressed),
                passes=sorted(passes.items()),
                rows=[_finding_view(f) for f in listed[:ROWS_PER_CHECK]],
                omitted=max(0, len(listed) - ROWS_PER_CHECK),
                left_out=cut[check_id],
            )
        )
    return groups


def _answer_view(answer: Answer, findings: Sequence[ReportFinding]) -> AnswerView:
    behind, other = _answer_findings(answer, findings)
    return AnswerView(
        answer=answer,
        anchor=anchor(f"answer-{answer.id}"),
        one_line=one_line(answer.judgement.reasons),
        coverage_text=coverage_text(answer.judgement.coverage),
        behind=behind[:ROWS_PER_ANSWER],
        behind_omitted=max(0, len(behind) - ROWS_PER_ANSWER),
        other=other[:ROWS_PER_ANSWER],
        other_omitted=max(0, len(other) - ROWS_PER_ANSWER),
        by_env={e.environment_id: e for e in answer.environments},
    )


def page_view(report: Report) -> PageView:
    """Everything the template lays out, derived from the report."""
    environments = report.scan.environments
    names = {e.id: e.name for e in environments}
    answers = [_answer_view(answer, report.findings) for answer in report.answers]
    matrix = [
        MatrixRow(
            name=env.name,
            has_dataverse=env.has_dataverse,
            cells=[a.by_env.get(env.id) for a in answers],
        )
        for env in environments
    ]
    charts = report.charts
    queries = report.coverage.queries
    return PageView(
        answers=answers,
        matrix=matrix,
        charts=ChartsView(
            runs_per_day=svg.runs_per_day(charts.runs_per_day),
            slowest_steps=svg.duration_percentiles(charts.slowest_steps, what="plug-in steps"),
            slowest_flows=svg.duration_percentiles(charts.slowest_flows, what="flows"),
            noisy_flows=svg.noisy_flows(charts.noisy_flows),
            queue_latency=svg.queue_latency(charts.queue_latency),
        ),
        missing_queries=[
            (names.get(q.environment_id, q.environment_id), q)
            for q in queries
            if q.status != "collected"
        ],
        collected_queries=sum(1 for q in queries if q.status == "collected"),
        trace_logging=[
            (names.get(t.environment_id, t.environment_id), t)
            for t in report.coverage.trace_logging
        ],
        groups=_check_groups(report),
        status_counts=Counter(f.status for f in report.findings),
        # Findings the report left out (it keeps so many per check and status): counted here.
        left_out=sum(c.left_out for c in left_out(report)),
        suppressed=sum(1 for f in report.findings if f.suppressed),
    )


__all__ = [
    "ROWS_PER_ANSWER",
    "ROWS_PER_CHECK",
    "AnswerView",
    "CheckGroup",
    "FindingView",
    "PageView",
    "anchor",
    "coverage_text",
    "one_line",
    "page_view",
    "value_text",
]
