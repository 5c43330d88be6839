"""The Markdown report: verdicts first, every tenant text inert, long lists capped."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from auditor.report.markdown import MAX_ROWS, render
from auditor.report.markdown_text import clean, md
from tests.report.sample import HOSTILE, hostile_report, report, tiny_model, tiny_report

ANSWERS = (
    "trigger-conditions",
    "return-results",
    "decomposed-steps",
    "reliable-service",
    "sufficient-performance",
)
STATUS = re.compile(r"\| (fail|error|not-assessed) \(")


def tables(text: str) -> list[list[str]]:
    """The GFM tables of a document: runs of lines starting with a pipe."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def unescaped_pipes(line: str) -> int:
    """Pipes that delimit cells: a backslash escapes the character after it."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


def to_html(text: str) -> str:
    """GFM-like rendering, with raw HTML allowed: it must be the escaping that stops it."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def test_verdict_table_comes_first_with_every_answer() -> None:
    tiny = tiny_report()
    first = tables(render(tiny))[0]
    assert first[0].startswith("| Answer | Verdict |")
    rows = first[2:]
    assert len(rows) == len(ANSWERS)
    for row, answer in zip(rows, tiny.answers, strict=True):
        assert answer.id in row
        assert f"**{answer.judgement.verdict}**" in row
    assert [a.id for a in tiny.answers] == list(ANSWERS)


def test_verdict_table_shows_a_reason_and_coverage() -> None:
    tiny = tiny_report()
    row = tables(render(tiny))[0][2]
    answer = tiny.answers[0]
    assert f"(+{len(answer.judgement.reasons) - 1} more)" in row
    assert "flow 21/21" in row


def test_environment_matrix_has_a_row_per_environment() -> None:
    tiny = tiny_report()
    matrix = tables(render(tiny))[1]
    assert all(a in matrix[0] for a in ANSWERS)
    for env, row in zip(tiny.scan.environments, matrix[2:], strict=True):
        assert row.startswith(f"| {env.name} |")
        verdicts = [
            next(e.judgement.verdict for e in a.environments if e.environment_id == env.id)
            for a in tiny.answers
        ]
        assert [c.strip() for c in row.strip("|").split("|")[1:]] == verdicts


def test_each_answer_lists_its_failures_first() -> None:
    tiny = tiny_report()
    text = render(tiny)
    section = text.split("## 1. ")[1].split("## 2. ")[0]
    assert tiny.answers[0].paraphrase in section
    offenders = tables(section)[0][2:]
    statuses = [m.group(1) for r in offenders if (m := STATUS.search(r))]
    assert len(statuses) == len(offenders)
    assert statuses == sorted(statuses, key=["fail", "error", "not-assessed"].index)
    assert statuses[0] == "fail"


def test_uncollected_queries_are_listed_with_reason_and_hint() -> None:
    tiny = tiny_report()
    text = render(tiny)
    section = text.split("## Coverage: queries not collected")[1]
    rows = tables(section)[0][2:]
    missing = [q for q in tiny.coverage.queries if q.status != "collected"]
    assert len(rows) == len(missing) > 0
    assert "the environment has no Dataverse database" in rows[0]
    assert "Nothing to do unless Dataverse is added" in rows[0]


def test_long_lists_are_capped_and_say_how_many_were_left_out() -> None:
    model = tiny_model()
    template = model["findings"][0]
    extra = 3 * MAX_ROWS
    for k in range(extra):
        model["findings"].append(
            template | {"index": len(model["findings"]), "resource_id": str(k)}
        )
    text = render(report(model))
    section = text.split("## 1. ")[1].split("## 2. ")[0]
    assert len(tables(section)[0]) == 2 + MAX_ROWS
    assert re.search(r"\*\d+ more findings not shown", section)


def test_hostile_text_has_no_raw_html_or_links() -> None:
    text = render(hostile_report())
    assert "<script" not in text
    assert "<img" not in text
    assert "](javascript:" not in text
    rendered = to_html(text)
    assert "<script" not in rendered
    assert "<img" not in rendered
    assert "<svg" not in rendered
    links = re.findall(r'href="([^"]*)"', rendered)
    assert links
    assert all(link.startswith("https://learn.microsoft.com/") for link in links)
    assert "<em>stars</em>" not in rendered
    assert "*stars*" in rendered


def test_hostile_text_cannot_break_a_table() -> None:
    text = render(hostile_report())
    for table in tables(text):
        header = unescaped_pipes(table[0])
        assert [unescaped_pipes(row) for row in table] == [header] * len(table), table[0]
    rendered = to_html(text)
    for body in re.findall(r"<table>(.*?)</table>", rendered, flags=re.S):
        widths = {
            len(re.findall(r"<t[hd]>", row))
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
        }
        assert len(widths) == 1


def test_hostile_text_reads_as_itself() -> None:
    rendered = to_html(render(hostile_report()))
    items = [html.unescape(i) for i in re.findall(r"<li>(.*?)</li>", rendered)]
    for hostile in HOSTILE:
        assert f"{clean(hostile)} reason" in items


def test_md_makes_one_inert_line() -> None:
    assert md("a\r\nb\tc\x00\x1b[0m") == "a b c&#91;0m"
    assert md("x | y") == "x \\| y"
    assert md("*a* _b_ `c` ~d~ #e") == "\\*a\\* \\_b\\_ \\`c\\` \\~d\\~ \\#e"
    assert md("<b>&amp;</b>") == "&lt;b&gt;&amp;amp;&lt;/b&gt;"
    assert md("x" * 1000).endswith("…")


def test_muted_findings_are_marked_and_listed_with_their_reason() -> None:
    model = tiny_model()
    model["findings"][0] |= {"suppressed": True, "suppression_reason": "ADO 1234 | until Q3"}
    text = render(report(model))
    section = text.split("## 1. ")[1].split("## 2. ")[0]
    offenders = tables(section)[0][2:]
    assert "muted: ADO 1234 \\| until Q3" in offenders[-1]  # muted sorts last
    muted = tables(text.split("## Muted findings")[1])[0]
    assert len(muted) == 3
    assert "ADO 1234 \\| until Q3" in muted[2]
