"""`report.md`: the report as GitHub-flavoured Markdown.

The verdict table comes first, so the answer to "can I tick these boxes?" is the first thing
a reader (or a pull-request comment) shows; then the verdicts per environment, each answer's
evidence and worst offenders, and what could not be seen.

Every text from the report goes through `md()` (`auditor.report.markdown_text`): flow, step
and environment names and trace messages are tenant input, and Markdown renders raw HTML
and links. Plain Python rather than a template: the escaping is the point, and here every
value visibly passes through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from auditor.report.document import (
    Answer,
    FindingCount,
    Location,
    Report,
    ReportFinding,
)
from auditor.report.markdown_text import bullets, code, link, md, md_line, more, table

MAX_ROWS = 20  # table rows per list before "N more": the worst first, the rest in the CSVs
REASON_TEXT = 160  # characters of the one-line reason in the verdict table

STATUS_ORDER = {"fail": 0, "error": 1, "not-assessed": 2, "pass": 3}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def coverage_text(coverage: Mapping[str, Mapping[str, int]]) -> str:
    """`flow 21/21, step 6/6`: audited of all, per resource kind."""
    parts = []
    for kind, counts in coverage.items():
        audited = counts.get("audited", 0)
        total = audited + counts.get("not_assessed", 0)
        parts.append(f"{md(kind)} {audited}/{total}")
    return ", ".join(parts) or "nothing audited"


def one_line_reason(reasons: Sequence[str]) -> str:
    """The first reason, cut short, and how many others there are."""
    if not reasons:
        return ""
    first = md(reasons[0], REASON_TEXT)
    return first + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


def _env_names(report: Report) -> dict[str, str]:
    return {e.id: e.name for e in report.scan.environments}


def _environment(finding: ReportFinding, names: Mapping[str, str]) -> str:
    env_id = finding.environment_id
    if env_id is None:
        return "tenant"
    return md(finding.environment or names.get(env_id) or env_id)


def _resource(finding: ReportFinding) -> str:
    name = finding.resource_name or finding.resource_id or "—"
    text = f"{md(finding.resource_kind)}: {md(name)}"
    place = finding.location
    if place is not None and place.file:
        text += f" ({code(where(place))})"
    return text


def where(place: Location) -> str:
    """`file:line`, or `file!member` inside a zip: a finding's place in the files linted."""
    text = place.file
    if place.member:
        text += f"!{place.member}"
    if place.line:
        text += f":{place.line}"
    return text


def _status(finding: ReportFinding) -> str:
    text = f"{md(finding.status)} ({md(finding.severity)})"
    if finding.suppressed:
        text += f", muted: {md(finding.suppression_reason or 'mutelist', 120)}"
    return text


def _offender_order(finding: ReportFinding) -> tuple[int, int, int, int]:
    return (
        1 if finding.suppressed else 0,
        STATUS_ORDER.get(finding.status, 9),
        SEVERITY_ORDER.get(finding.severity, 9),
        finding.index,
    )


def offenders(report: Report, answer: Answer) -> list[ReportFinding]:
    """The answer's findings that did not pass: failures first, by severity; muted last."""
    by_index = {f.index: f for f in report.findings}
    chosen = {i for i in answer.judgement.findings if i in by_index}
    chosen.update(i for i, f in by_index.items() if answer.id in f.answers and f.status != "pass")
    return sorted((by_index[i] for i in chosen), key=_offender_order)


def _header(report: Report) -> list[str]:
    scan = report.scan
    envs = len(scan.environments)
    if scan.kind == "lint":
        inputs = ", ".join(code(path) for path in scan.inputs or ())
        what = f" Lint of exported solution files ({md(scan.status)}): {inputs}."
    else:
        what = (
            f" Scan {md(scan.id)} ({md(scan.status)}),"
            f" window {md(scan.window.start)} to {md(scan.window.end)},"
            f" {envs} environment{'s' if envs != 1 else ''}."
        )
    title = md(report.question.title)
    return [f"# {title}", "", f"Overall verdict: **{md(report.verdict)}**.{what}"]


def _verdict_table(report: Report) -> list[str]:
    rows = [
        (
            f"{code(a.id)}: {md(a.title)}",
            f"**{md(a.judgement.verdict)}**",
            one_line_reason(a.judgement.reasons),
            coverage_text(a.judgement.coverage),
        )
        for a in report.answers
    ]
    return [
        "",
        "## Verdicts",
        "",
        *table(("Answer", "Verdict", "Reason", "Coverage (audited/all)"), rows),
        "",
        "`check`: the evidence supports ticking the answer; `do-not-check`: a condition of the"
        " answer is violated; `needs-review`: nothing is violated, but some of what decides it"
        " could not be seen.",
    ]


def _about(report: Report) -> list[str]:
    question = report.question
    generator = report.generator
    return [
        "",
        f"{md(question.summary)} Source: {link(question.url)}.",
        "",
        f"Generated {md(report.generated)} by {md(generator.name)}"
        f" {md(generator.version)}. The rows behind each finding are in `evidence/*.csv`.",
    ]


def left_out(report: Report) -> list[FindingCount]:
    """The checks and statuses with findings left out of the report (`finding_counts`)."""
    return [c for c in report.finding_counts if c.left_out > 0]


def _left_out(report: Report) -> list[str]:
    """What the report does not list: at most so many findings per check and status are
    kept; the verdicts above were judged on every one."""
    cut = left_out(report)
    if not cut:
        return []
    total = sum(c.left_out for c in cut)
    rows = (
        (
            code(c.check_id),
            md(c.status),
            f"{c.findings:,}",
            f"{c.findings - c.left_out:,}",
            f"{c.left_out:,}",
        )
        for c in cut[:MAX_ROWS]
    )
    return [
        "",
        "## Findings left out",
        "",
        f"*{total:,} more findings left out of this report.* The verdicts are judged on every"
        " finding; the report lists the first of each check and status.",
        "",
        *table(("Check", "Status", "Findings", "Listed", "Left out"), rows),
        *more(len(cut) - MAX_ROWS, "checks with findings left out"),
    ]


def _environment_matrix(report: Report) -> list[str]:
    answers = report.answers
    names = _env_names(report)
    order = [*names, *(e.environment_id for a in answers for e in a.environments)]
    rows = []
    for env_id in dict.fromkeys(order):
        per_answer = [
            next((e for e in a.environments if e.environment_id == env_id), None) for a in answers
        ]
        name = names.get(env_id) or next(
            (e.environment for e in per_answer if e is not None), env_id
        )
        verdicts = (md(e.judgement.verdict) if e is not None else "—" for e in per_answer)
        rows.append((md(name), *verdicts))
    return [
        "",
        "## Verdicts per environment",
        "",
        *table(("Environment", *(code(a.id) for a in answers)), rows),
    ]


def _answer(report: Report, number: int, answer: Answer) -> list[str]:
    names = _env_names(report)
    judgement = answer.judgement
    refs = ", ".join(link(url) for url in answer.references) or "none"
    checks = ", ".join(code(c) for c in answer.checks) or "none"
    lines = [
        "",
        f"## {number}. {md(answer.title)}",
        "",
        f"Answer {code(answer.id)}: **{md(judgement.verdict)}**",
        "",
        md_line(answer.paraphrase, 2000),
        "",
        f"Condition: {md(answer.condition, 2000)}",
        "",
        f"References: {refs}",
        "",
        f"Checks: {checks}",
        "",
        "### Reasons",
        "",
        *bullets(judgement.reasons, "reasons", "No reasons recorded."),
        "",
        "### Fixes",
        "",
        *bullets(judgement.fixes, "fixes", "Nothing to fix."),
        "",
        "### Worst offenders",
        "",
    ]
    worst = offenders(report, answer)
    if worst:
        lines += table(
            ("Resource", "Environment", "Check", "Status", "Message"),
            (
                (
                    _resource(f),
                    _environment(f, names),
                    code(f.check_id),
                    _status(f),
                    md(f.message),
                )
                for f in worst[:MAX_ROWS]
            ),
        )
        lines += more(len(worst) - MAX_ROWS, "findings", " (see `evidence/findings.csv`)")
        cut = sum(
            c.left_out
            for c in left_out(report)
            if c.check_id in answer.checks and c.status != "pass"
        )
        if cut:
            lines += ["", f"*{cut:,} more findings of these checks left out of this report.*"]
    else:
        lines.append("*Every audited resource passed.*")
    envs = answer.environments
    lines += ["", "### Per environment", ""]
    lines += table(
        ("Environment", "Verdict", "Reason", "Coverage (audited/all)"),
        (
            (
                md(names.get(e.environment_id) or e.environment),
                md(e.judgement.verdict),
                one_line_reason(e.judgement.reasons),
                coverage_text(e.judgement.coverage),
            )
            for e in envs[:MAX_ROWS]
        ),
    )
    lines += more(len(envs) - MAX_ROWS, "environments")
    lines += ["", "### Coverage", ""]
    coverage = judgement.coverage
    if coverage:
        lines += table(
            ("Resource kind", "Audited", "Not assessed"),
            (
                (md(kind), str(c.get("audited", 0)), str(c.get("not_assessed", 0)))
                for kind, c in coverage.items()
            ),
        )
    else:
        lines.append("*Nothing was audited for this answer.*")
    return lines


def _queries(report: Report) -> list[str]:
    names = _env_names(report)
    queries = report.coverage.queries
    missing = [q for q in queries if q.status != "collected"]
    lines = ["", "## Coverage: queries not collected", ""]
    if not missing:
        return [*lines, f"*All {len(queries)} queries were collected.*"]
    lines += table(
        ("Environment", "Query", "Status", "Reason", "Hint"),
        (
            (
                md(names.get(q.environment_id, q.environment_id)),
                code(q.query_id),
                md(q.status),
                md(q.reason or ""),
                md(q.hint or ""),
            )
            for q in missing[:MAX_ROWS]
        ),
    )
    return lines + more(len(missing) - MAX_ROWS, "queries")


def _trace_logging(report: Report) -> list[str]:
    names = _env_names(report)
    rows = report.coverage.trace_logging
    if not rows:
        return []
    lines = ["", "## Coverage: plug-in trace logging", ""]
    lines += table(
        ("Environment", "Setting", "What it shows"),
        (
            (
                md(names.get(r.environment_id, r.environment_id)),
                md(r.setting),
                md(r.evidence),
            )
            for r in rows[:MAX_ROWS]
        ),
    )
    return lines + more(len(rows) - MAX_ROWS, "environments")


def _muted(report: Report) -> list[str]:
    names = _env_names(report)
    muted = [f for f in report.findings if f.suppressed]
    if not muted:
        return []
    lines = ["", "## Muted findings", ""]
    lines += table(
        ("Resource", "Environment", "Check", "Status", "Reason"),
        (
            (
                _resource(f),
                _environment(f, names),
                code(f.check_id),
                md(f.status),
                md(f.suppression_reason or "mutelist"),
            )
            for f in muted[:MAX_ROWS]
        ),
    )
    return lines + more(len(muted) - MAX_ROWS, "muted findings")


def render(report: Report) -> str:
    """The Markdown report of a `Report` (`auditor.report.model.build_report`)."""
    lines = _header(report) + _verdict_table(report) + _about(report) + _left_out(report)
    lines += _environment_matrix(report)
    for number, answer in enumerate(report.answers, start=1):
        lines += _answer(report, number, answer)
    lines += _queries(report) + _trace_logging(report) + _muted(report)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["left_out", "render", "where"]
