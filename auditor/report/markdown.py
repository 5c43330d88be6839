"""`report.md`: the report model as GitHub-flavoured Markdown.

The verdict table comes first, so the answer to "can I tick these boxes?" is the first thing
a reader (or a pull-request comment) shows; then the verdicts per environment, each answer's
evidence and worst offenders, and what could not be seen.

Every text from the model goes through `md()`: flow, step and environment names and trace
messages are tenant input, and Markdown renders raw HTML and links. `md()` makes a text one
inert line: no HTML (`<`, `>`, `&` become entities), no emphasis, code, link or table syntax
(backslash escapes, https://spec.commonmark.org/0.31.2/#backslash-escapes, and `\\|` inside
table cells, https://github.github.com/gfm/#tables-extension-), no line breaks or control
characters. Plain Python rather than a template: the escaping is the point, and here every
value visibly passes through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_ROWS = 20  # table rows per list before "N more": the worst first, the rest in the CSVs
MAX_ITEMS = 12  # bullets (reasons, fixes) per list
MAX_TEXT = 300  # characters of one text before it is cut
REASON_TEXT = 160  # characters of the one-line reason in the verdict table

STATUS_ORDER = {"fail": 0, "error": 1, "not-assessed": 2, "pass": 3}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

# Line and paragraph breaks become spaces; other control and invisible formatting characters
# (including the bidirectional overrides of "Trojan Source", CVE-2021-42574) are dropped.
_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACES = re.compile(r" {2,}")
# Inline Markdown syntax, escaped with a backslash wherever it appears.
_SYNTAX = re.compile(r"([\\`*_|~#])")
# Entities, so HTML never forms; brackets too, so no link text can be followed by "(url)".
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;"}
_ENTITY = re.compile("[&<>\\[\\]]")
# At the start of a list item a text could open a block (list, quote, heading, setext rule).
_BLOCK_START = re.compile(r"^([-+=]|\d+[.)])")
_SAFE_URL = re.compile(r"https://[^\s<>()\[\]`|\\\"']+")
_CODE = re.compile(r"[A-Za-z0-9._:/-]+")


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """A text on one line, without control characters, cut to `limit` characters."""
    text = "" if value is None else str(value)
    text = _INVISIBLE.sub("", _BREAKS.sub(" ", text))
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def md(value: object, limit: int = MAX_TEXT) -> str:
    """A text escaped for Markdown: it reads as itself, in a paragraph or a table cell."""
    text = _SYNTAX.sub(r"\\\1", clean(value, limit))
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def md_line(value: object, limit: int = MAX_TEXT) -> str:
    """`md`, for a text that starts a line or a list item, where it could open a block."""
    text = md(value, limit)
    start = _BLOCK_START.match(text)
    if start:  # escape the character that would open a list or a setext rule: "\-", "1\."
        cut = start.end() - 1
        text = text[:cut] + "\\" + text[cut:]
    return text


def code(value: object) -> str:
    """An identifier as inline code when it is plainly one, else escaped text."""
    text = clean(value)
    return f"`{text}`" if _CODE.fullmatch(text) else md(text)


def link(url: object) -> str:
    """An autolink when `url` is a plain https URL, else the URL as escaped text."""
    text = clean(url, 2000)
    return f"<{text}>" if _SAFE_URL.fullmatch(text) else md(text)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GFM table; cells are already escaped (by `md` and friends)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell or " " for cell in row) + " |" for row in rows)
    return lines


def more(left: int, what: str, where: str = "") -> list[str]:
    """The line that says how many items a capped list left out."""
    if left <= 0:
        return []
    return ["", f"*{left} more {what} not shown{where}.*"]


def bullets(items: Sequence[Any], what: str, empty: str) -> list[str]:
    """A capped bullet list of escaped texts."""
    if not items:
        return [f"*{empty}*"]
    lines = [f"- {md_line(item)}" for item in items[:MAX_ITEMS]]
    return lines + more(len(items) - MAX_ITEMS, what)


def coverage_text(coverage: Mapping[str, Any]) -> str:
    """`flow 21/21, step 6/6`: audited of all, per resource kind."""
    parts = []
    for kind, counts in coverage.items():
        audited = int(counts.get("audited", 0))
        total = audited + int(counts.get("not_assessed", 0))
        parts.append(f"{md(kind)} {audited}/{total}")
    return ", ".join(parts) or "nothing audited"


def one_line_reason(reasons: Sequence[Any]) -> str:
    """The first reason, cut short, and how many others there are."""
    if not reasons:
        return ""
    first = md(reasons[0], REASON_TEXT)
    return first + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


def _env_names(model: Mapping[str, Any]) -> dict[str, str]:
    return {str(e["id"]): str(e["name"]) for e in model["scan"]["environments"]}


def _environment(finding: Mapping[str, Any], names: Mapping[str, str]) -> str:
    env_id = finding.get("environment_id")
    if env_id is None:
        return "tenant"
    return md(finding.get("environment") or names.get(str(env_id)) or env_id)


def _resource(finding: Mapping[str, Any]) -> str:
    name = finding.get("resource_name") or finding.get("resource_id") or "—"
    text = f"{md(finding.get('resource_kind'))}: {md(name)}"
    place = finding.get("location")
    if isinstance(place, Mapping) and place.get("file"):
        text += f" ({code(where(place))})"
    return text


def where(place: Mapping[str, Any]) -> str:
    """`file:line`, or `file!member` inside a zip: a finding's place in the files linted."""
    text = str(place["file"])
    if place.get("member"):
        text += f"!{place['member']}"
    if place.get("line"):
        text += f":{place['line']}"
    return text


def _status(finding: Mapping[str, Any]) -> str:
    text = f"{md(finding['status'])} ({md(finding['severity'])})"
    if finding.get("suppressed"):
        text += f", muted: {md(finding.get('suppression_reason') or 'mutelist', 120)}"
    return text


def _offender_order(finding: Mapping[str, Any]) -> tuple[int, int, int, int]:
    return (
        1 if finding.get("suppressed") else 0,
        STATUS_ORDER.get(str(finding["status"]), 9),
        SEVERITY_ORDER.get(str(finding["severity"]), 9),
        int(finding["index"]),
    )


def offenders(model: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The answer's findings that did not pass: failures first, by severity; muted last."""
    by_index = {int(f["index"]): f for f in model["findings"]}
    chosen = {int(i) for i in answer["findings"] if int(i) in by_index}
    chosen.update(
        i for i, f in by_index.items() if answer["id"] in f["answers"] and f["status"] != "pass"
    )
    return sorted((by_index[i] for i in chosen), key=_offender_order)


def _header(model: Mapping[str, Any]) -> list[str]:
    question = model["question"]
    scan = model["scan"]
    envs = len(scan["environments"])
    if scan.get("kind") == "lint":
        inputs = ", ".join(code(str(path)) for path in scan.get("inputs") or [])
        what = f" Lint of exported solution files ({md(scan['status'])}): {inputs}."
    else:
        what = (
            f" Scan {md(scan['id'])} ({md(scan['status'])}),"
            f" window {md(scan['window']['start'])} to {md(scan['window']['end'])},"
            f" {envs} environment{'s' if envs != 1 else ''}."
        )
    return [f"# {md(question['title'])}", "", f"Overall verdict: **{md(model['verdict'])}**.{what}"]


def _verdict_table(model: Mapping[str, Any]) -> list[str]:
    rows = [
        (
            f"{code(a['id'])}: {md(a['title'])}",
            f"**{md(a['verdict'])}**",
            one_line_reason(a["reasons"]),
            coverage_text(a["coverage"]),
        )
        for a in model["answers"]
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


def _about(model: Mapping[str, Any]) -> list[str]:
    question = model["question"]
    generator = model["generator"]
    return [
        "",
        f"{md(question['summary'])} Source: {link(question['url'])}.",
        "",
        f"Generated {md(model['generated'])} by {md(generator['name'])}"
        f" {md(generator['version'])}. The rows behind each finding are in `evidence/*.csv`.",
    ]


def left_out(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The checks and statuses with findings left out of the model (`finding_counts`)."""
    return [c for c in model.get("finding_counts") or [] if int(c.get("left_out", 0)) > 0]


def _left_out(model: Mapping[str, Any]) -> list[str]:
    """What the report does not list: at most so many findings per check and status are
    kept; the verdicts above were judged on every one."""
    cut = left_out(model)
    if not cut:
        return []
    total = sum(int(c["left_out"]) for c in cut)
    rows = (
        (
            code(c["check_id"]),
            md(c["status"]),
            f"{int(c['findings']):,}",
            f"{int(c['findings']) - int(c['left_out']):,}",
            f"{int(c['left_out']):,}",
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


def _environment_matrix(model: Mapping[str, Any]) -> list[str]:
    answers = model["answers"]
    names = _env_names(model)
    order = [*names, *(e["environment_id"] for a in answers for e in a["environments"])]
    rows = []
    for env_id in dict.fromkeys(order):
        per_answer = [
            next((e for e in a["environments"] if e["environment_id"] == env_id), None)
            for a in answers
        ]
        name = names.get(env_id) or next(
            (e["environment"] for e in per_answer if e is not None), env_id
        )
        rows.append((md(name), *(md(e["verdict"]) if e is not None else "—" for e in per_answer)))
    return [
        "",
        "## Verdicts per environment",
        "",
        *table(("Environment", *(code(a["id"]) for a in answers)), rows),
    ]


def _answer(model: Mapping[str, Any], number: int, answer: Mapping[str, Any]) -> list[str]:
    names = _env_names(model)
    refs = ", ".join(link(url) for url in answer["references"]) or "none"
    checks = ", ".join(code(c) for c in answer["checks"]) or "none"
    lines = [
        "",
        f"## {number}. {md(answer['title'])}",
        "",
        f"Answer {code(answer['id'])}: **{md(answer['verdict'])}**",
        "",
        md_line(answer["paraphrase"], 2000),
        "",
        f"Condition: {md(answer['condition'], 2000)}",
        "",
        f"References: {refs}",
        "",
        f"Checks: {checks}",
        "",
        "### Reasons",
        "",
        *bullets(answer["reasons"], "reasons", "No reasons recorded."),
        "",
        "### Fixes",
        "",
        *bullets(answer["fixes"], "fixes", "Nothing to fix."),
        "",
        "### Worst offenders",
        "",
    ]
    worst = offenders(model, answer)
    if worst:
        lines += table(
            ("Resource", "Environment", "Check", "Status", "Message"),
            (
                (
                    _resource(f),
                    _environment(f, names),
                    code(f["check_id"]),
                    _status(f),
                    md(f["message"]),
                )
                for f in worst[:MAX_ROWS]
            ),
        )
        lines += more(len(worst) - MAX_ROWS, "findings", " (see `evidence/findings.csv`)")
        cut = sum(
            int(c["left_out"])
            for c in left_out(model)
            if c["check_id"] in answer["checks"] and c["status"] != "pass"
        )
        if cut:
            lines += ["", f"*{cut:,} more findings of these checks left out of this report.*"]
    else:
        lines.append("*Every audited resource passed.*")
    envs = answer["environments"]
    lines += ["", "### Per environment", ""]
    lines += table(
        ("Environment", "Verdict", "Reason", "Coverage (audited/all)"),
        (
            (
                md(names.get(e["environment_id"]) or e["environment"]),
                md(e["verdict"]),
                one_line_reason(e["reasons"]),
                coverage_text(e["coverage"]),
            )
            for e in envs[:MAX_ROWS]
        ),
    )
    lines += more(len(envs) - MAX_ROWS, "environments")
    lines += ["", "### Coverage", ""]
    coverage = answer["coverage"]
    if coverage:
        lines += table(
            ("Resource kind", "Audited", "Not assessed"),
            (
                (md(kind), str(int(c.get("audited", 0))), str(int(c.get("not_assessed", 0))))
                for kind, c in coverage.items()
            ),
        )
    else:
        lines.append("*Nothing was audited for this answer.*")
    return lines


def _queries(model: Mapping[str, Any]) -> list[str]:
    names = _env_names(model)
    queries = model["coverage"]["queries"]
    missing = [q for q in queries if q["status"] != "collected"]
    lines = ["", "## Coverage: queries not collected", ""]
    if not missing:
        return [*lines, f"*All {len(queries)} queries were collected.*"]
    lines += table(
        ("Environment", "Query", "Status", "Reason", "Hint"),
        (
            (
                md(names.get(q["environment_id"], q["environment_id"])),
                code(q["query_id"]),
                md(q["status"]),
                md(q.get("reason") or ""),
                md(q.get("hint") or ""),
            )
            for q in missing[:MAX_ROWS]
        ),
    )
    return lines + more(len(missing) - MAX_ROWS, "queries")


def _trace_logging(model: Mapping[str, Any]) -> list[str]:
    names = _env_names(model)
    rows = model["coverage"].get("trace_logging", [])
    if not rows:
        return []
    lines = ["", "## Coverage: plug-in trace logging", ""]
    lines += table(
        ("Environment", "Setting", "What it shows"),
        (
            (
                md(names.get(r["environment_id"], r["environment_id"])),
                md(r["setting"]),
                md(r["evidence"]),
            )
            for r in rows[:MAX_ROWS]
        ),
    )
    return lines + more(len(rows) - MAX_ROWS, "environments")


def _muted(model: Mapping[str, Any]) -> list[str]:
    names = _env_names(model)
    muted = [f for f in model["findings"] if f.get("suppressed")]
    if not muted:
        return []
    lines = ["", "## Muted findings", ""]
    lines += table(
        ("Resource", "Environment", "Check", "Status", "Reason"),
        (
            (
                _resource(f),
                _environment(f, names),
                code(f["check_id"]),
                md(f["status"]),
                md(f.get("suppression_reason") or "mutelist"),
            )
            for f in muted[:MAX_ROWS]
        ),
    )
    return lines + more(len(muted) - MAX_ROWS, "muted findings")


def render(model: Mapping[str, Any]) -> str:
    """The Markdown report of a report model (`auditor.report.model.build_report`)."""
    lines = _header(model) + _verdict_table(model) + _about(model) + _left_out(model)
    lines += _environment_matrix(model)
    for number, answer in enumerate(model["answers"], start=1):
        lines += _answer(model, number, answer)
    lines += _queries(model) + _trace_logging(model) + _muted(model)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["clean", "left_out", "md", "md_line", "render"]
