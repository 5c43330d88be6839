"""`report.html`: the report model as one self-contained, printable page.

The page must open offline and be safe to attach to an assessment, so it has no script and
loads nothing: CSS is inline, charts are inline SVG (`auditor.report.svg`), and the only
links are to Microsoft Learn pages named by the assessment or the check catalog. Tenant text
(flow, step and environment names, messages) is untrusted: Jinja autoescaping escapes it and
a `finalize` hook makes control characters visible, so a name can neither add markup nor
hide text. The template (`reports/templates/report.html.j2`) only lays out the view built
here; the decisions (which findings to list, how many, in what order) are made in Python.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from auditor.report import svg
from auditor.report.markdown import left_out, where
from auditor.resources import data_dir

TEMPLATE = "report.html.j2"
ROWS_PER_CHECK = 200  # findings listed per check in the appendix; the rest are counted
ROWS_PER_ANSWER = 200  # findings listed under an answer
EVIDENCE_ROWS = 20  # evidence rows shown per finding; the CSV files carry all of them
REASON_CHARS = 220  # the verdict table's one-line reason is cut here

VERDICT_LABELS = {
    "check": "Check",
    "do-not-check": "Do not check",
    "needs-review": "Needs review",
}
STATUS_ORDER = {"fail": 0, "error": 1, "not-assessed": 2, "pass": 3}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

# Only Microsoft Learn pages from the assessment data and the check catalog become links;
# the pattern also refuses quotes, spaces and controls, so an href can never break out.
_LEARN = re.compile(r"https://learn\.microsoft\.com/[^\s\"'<>\\`\x00-\x1f\x7f]*")


def learn_url(url: object) -> str | None:
    """`url` if it may be a link (a Microsoft Learn page), else None."""
    if isinstance(url, str) and _LEARN.fullmatch(url):
        return url
    return None


def link(url: object, label: object = None) -> Markup:
    """An anchor to a Microsoft Learn page, or the escaped text of anything else."""
    safe = learn_url(url)
    shown = svg.text(url if label is None else label)
    if safe is None:
        return shown
    return Markup('<a href="{}" rel="noopener noreferrer">{}</a>').format(safe, shown)


def _finalize(value: Any) -> Any:
    """Every `{{ }}` output passes here before escaping: strings lose control characters;
    `None` prints as a dash instead of the word None."""
    if value is None:
        return "–"
    if isinstance(value, str) and not isinstance(value, Markup):
        return svg.clean(value)
    return value


def anchor(value: object) -> str:
    """An id attribute (and `#` link target) made of lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-") or "x"


def when(value: object) -> str:
    """An ISO timestamp as `2026-11-08 12:00 UTC`; anything else as given."""
    if not isinstance(value, str):
        return svg.clean(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return svg.clean(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def coverage_text(coverage: Mapping[str, Any]) -> str:
    """Coverage as a reviewer reads it: `flow 21 of 21 audited; query 0 of 2 audited (2 not
    assessed)`. Resources not assessed are what keeps an answer from `check`."""
    parts = []
    for kind, counts in coverage.items():
        audited = int(counts.get("audited", 0) or 0)
        missing = int(counts.get("not_assessed", 0) or 0)
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
    if key.endswith("_ms") and svg.number(value) is not None:
        return svg.format_ms(value)
    if isinstance(value, float):
        return f"{value:.4g}" if svg.number(value) is not None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return "; ".join(value_text("", v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={value_text(str(k), v)}" for k, v in value.items())
    return str(value)


def one_line(reasons: Sequence[Any]) -> str:
    """The first reason, shortened, and how many more there are."""
    if not reasons:
        return "–"
    first = svg.shorten(reasons[0], REASON_CHARS)
    more = len(reasons) - 1
    return f"{first} (+{more} more)" if more else first


def _sort_key(finding: Mapping[str, Any]) -> tuple[int, int, int, str, int]:
    return (
        1 if finding.get("suppressed") else 0,
        STATUS_ORDER.get(str(finding.get("status")), 9),
        SEVERITY_ORDER.get(str(finding.get("severity")), 9),
        str(finding.get("environment") or ""),
        int(finding.get("index", 0)),
    )


def _evidence(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The first evidence rows as a table: the union of their columns, in first-seen order."""
    rows = [r for r in finding.get("evidence") or [] if isinstance(r, Mapping)]
    shown = rows[:EVIDENCE_ROWS]
    columns: dict[str, None] = {}
    for row in shown:
        columns.update(dict.fromkeys(str(k) for k in row))
    return {
        "columns": list(columns),
        "rows": [[value_text(c, row.get(c)) for c in columns] for row in shown],
        "omitted": len(rows) - len(shown),
    }


def _finding_view(finding: Mapping[str, Any]) -> dict[str, Any]:
    place = finding.get("location")
    return {
        **finding,
        "where": where(place) if isinstance(place, Mapping) and place.get("file") else None,
        "values_text": [(str(k), value_text(str(k), v)) for k, v in finding["values"].items()],
        "evidence_table": _evidence(finding),
    }


def _answer_findings(
    answer: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The findings behind an answer's verdicts (scope and every environment), and the other
    findings of its checks a reviewer should see: failures below the violation severity
    (advice) and suppressed findings."""
    behind = set(answer["findings"])
    for env in answer["environments"]:
        behind.update(env["findings"])
    listed = sorted((findings[i] for i in behind if 0 <= i < len(findings)), key=_sort_key)
    other = sorted(
        (
            f
            for f in findings
            if f["index"] not in behind
            and answer["id"] in f["answers"]
            and (f["status"] == "fail" or (f["suppressed"] and f["status"] != "pass"))
        ),
        key=_sort_key,
    )
    return [_finding_view(f) for f in listed], [_finding_view(f) for f in other]


def _check_groups(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Findings grouped by check, in the order the answers list their checks: counts per
    status, passes counted per environment, and the non-passing rows up to a cap."""
    by_check: dict[str, list[Mapping[str, Any]]] = {}
    for finding in model["findings"]:
        by_check.setdefault(str(finding["check_id"]), []).append(finding)
    order: dict[str, None] = {}
    for answer in model["answers"]:
        order.update(dict.fromkeys(str(c) for c in answer["checks"] if c in by_check))
    order.update(dict.fromkeys(sorted(by_check)))
    cut: Counter[str] = Counter()
    for count in left_out(model):
        cut[str(count["check_id"])] += int(count["left_out"])
    groups = []
    for check_id in order:
        found = by_check[check_id]
        first = found[0]
        statuses = Counter(str(f["status"]) for f in found if not f["suppressed"])
        passes = Counter(
            str(f.get("environment") or f.get("environment_id") or "tenant")
            for f in found
            if f["status"] == "pass" and not f["suppressed"]
        )
        listed = sorted(
            (f for f in found if f["status"] != "pass" or f["suppressed"]), key=_sort_key
        )
        groups.append(
            {
                "check_id": check_id,
                "anchor": anchor(f"check-{check_id}"),
                "title": first["title"],
                "answers": first["answers"],
                "learn_url": first["learn_url"],
                "remediation": first["remediation"],
                "total": len(found),
                "counts": [
                    (s, statuses[s]) for s in sorted(statuses, key=lambda s: STATUS_ORDER.get(s, 9))
                ],
                "suppressed": sum(1 for f in found if f["suppressed"]),
                "passes": sorted(passes.items()),
                "rows": [_finding_view(f) for f in listed[:ROWS_PER_CHECK]],
                "omitted": max(0, len(listed) - ROWS_PER_CHECK),
                "left_out": cut[check_id],
            }
        )
    return groups


def _view(model: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template lays out, derived from the model."""
    environments = model["scan"]["environments"]
    names = {str(e["id"]): e["name"] for e in environments}
    answers = []
    for answer in model["answers"]:
        behind, other = _answer_findings(answer, model["findings"])
        answers.append(
            {
                **answer,
                "anchor": anchor(f"answer-{answer['id']}"),
                "one_line": one_line(answer["reasons"]),
                "coverage_text": coverage_text(answer["coverage"]),
                "behind": behind[:ROWS_PER_ANSWER],
                "behind_omitted": max(0, len(behind) - ROWS_PER_ANSWER),
                "other": other[:ROWS_PER_ANSWER],
                "other_omitted": max(0, len(other) - ROWS_PER_ANSWER),
                "by_env": {str(e["environment_id"]): e for e in answer["environments"]},
            }
        )
    matrix = [
        {
            "name": env["name"],
            "has_dataverse": env["has_dataverse"],
            "cells": [a["by_env"].get(str(env["id"])) for a in answers],
        }
        for env in environments
    ]
    charts = model["charts"]
    queries = model["coverage"]["queries"]
    return {
        "answers": answers,
        "matrix": matrix,
        "charts": {
            "runs_per_day": svg.runs_per_day(charts["runs_per_day"]),
            "slowest_steps": svg.duration_percentiles(
                charts["slowest_steps"], what="plug-in steps"
            ),
            "slowest_flows": svg.duration_percentiles(charts["slowest_flows"], what="flows"),
            "noisy_flows": svg.noisy_flows(charts["noisy_flows"]),
            "queue_latency": svg.queue_latency(charts["queue_latency"]),
        },
        "missing_queries": [
            {**q, "environment": names.get(str(q["environment_id"]), q["environment_id"])}
            for q in queries
            if q["status"] != "collected"
        ],
        "collected_queries": sum(1 for q in queries if q["status"] == "collected"),
        "trace_logging": [
            {**t, "environment": names.get(str(t["environment_id"]), t["environment_id"])}
            for t in model["coverage"]["trace_logging"]
        ],
        "groups": _check_groups(model),
        "status_counts": Counter(str(f["status"]) for f in model["findings"]),
        # Findings the model left out (it keeps so many per check and status): counted here.
        "left_out": sum(int(c["left_out"]) for c in left_out(model)),
        "suppressed": sum(1 for f in model["findings"] if f["suppressed"]),
    }


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir("reports") / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a renamed model key fails loudly, not blank
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        link=link,
        when=when,
        coverage=coverage_text,
        ms=svg.format_ms,
        count=svg.format_count,
        rate=svg.format_rate,
        anchor=anchor,
    )
    env.globals.update(verdict_labels=VERDICT_LABELS, learn_url=learn_url, link=link)
    return env


def render(model: dict[str, Any]) -> str:
    """The HTML page of a report model."""
    template = _environment().get_template(TEMPLATE)
    return template.render(m=model, v=_view(model))


__all__ = ["render"]
