"""`report.html`: the report as one self-contained, printable page.

The page must open offline and be safe to attach to an assessment, so it has no script and
loads nothing: CSS is inline, charts are inline SVG (`auditor.report.svg`), and the only
links are to Microsoft Learn pages named by the assessment or the check catalog. Tenant text
(flow, step and environment names, messages) is untrusted: Jinja autoescaping escapes it and
a `finalize` hook makes control characters visible, so a name can neither add markup nor
hide text. The template (`reports/templates/report.html.j2`) only lays out the report and the
view built from it (`auditor.report.html_view`), where the decisions (which findings to list,
how many, in what order) are made in Python.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from auditor.report.document import Report
from auditor.report.html_text import clean, format_count, format_ms, format_rate, text
from auditor.report.html_view import anchor, coverage_text, page_view
from auditor.resources import data_dir

TEMPLATE = "report.html.j2"

VERDICT_LABELS = {
    "check": "Check",
    "do-not-check": "Do not check",
    "needs-review": "Needs review",
}

# Only Microsoft Learn pages from the assessment data and the check catalog become links;
# the pattern also refuses quotes, spaces and controls, so an href can never break out.
_LEARN = re.compile(r"https://learn\.microsoft\.com/[^\s\"'<>\\`\x00-\x1f\x7f]*")


def learn_url(url: str | None) -> str | None:
    """`url` if it may be a link (a Microsoft Learn page), else None."""
    if url is not None and _LEARN.fullmatch(url):
        return url
    return None


def link(url: str | None, label: object = None) -> Markup:
    """An anchor to a Microsoft Learn page, or the escaped text of anything else."""
    safe = learn_url(url)
    shown = text(url if label is None else label)
    if safe is None:
        return shown
    return Markup('<a href="{}" rel="noopener noreferrer">{}</a>').format(safe, shown)


def _finalize(value: Any) -> Any:
    """Every `{{ }}` output passes here before escaping: strings lose control characters;
    `None` prints as a dash instead of the word None."""
    if value is None:
        return "–"
    if isinstance(value, str) and not isinstance(value, Markup):
        return clean(value)
    return value


def when(value: str) -> str:
    """An ISO timestamp as `2026-11-08 12:00 UTC`; anything else as given."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return clean(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir("reports") / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a renamed attribute fails loudly, not blank
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        link=link,
        when=when,
        coverage=coverage_text,
        ms=format_ms,
        count=format_count,
        rate=format_rate,
        anchor=anchor,
    )
    env.globals.update(verdict_labels=VERDICT_LABELS, learn_url=learn_url, link=link)
    return env


def render(report: Report) -> str:
    """The HTML page of a `Report`."""
    template = _environment().get_template(TEMPLATE)
    return template.render(m=report, v=page_view(report))


__all__ = ["VERDICT_LABELS", "render"]
