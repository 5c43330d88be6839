"""The terminal's rendering of a report: the verdict per answer, then per environment.

It implements the report's one renderer interface (`auditor.report.renderer.Renderer`),
rendering through the console it will be printed on, so colour and width follow that
console (`NO_COLOR`, a pipe, `--no-color`)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from auditor.cli.output import VERDICT_STYLE
from auditor.report.document import Report
from auditor.report.renderer import Rendered
from auditor.terminal import markup


@dataclass(frozen=True)
class TerminalVerdicts:
    """The `terminal` format: two tables, as text styled for `console`."""

    console: Console
    format: str = "terminal"

    def render(self, report: Report) -> list[Rendered]:
        with self.console.capture() as captured:
            self.console.print(_answers(report))
            self.console.print(_environments(report))
        return [Rendered("-", captured.get())]


def _verdict(verdict: str) -> str:
    return f"[{VERDICT_STYLE[verdict]}]{verdict}[/]"


def _answers(report: Report) -> Table:
    table = Table("answer", "verdict", "why", title=markup(report.question.title))
    table.columns[0].no_wrap = True
    for answer in report.answers:
        judged = answer.judgement
        reason = judged.reasons[0] if judged.reasons else ""
        table.add_row(answer.id, _verdict(judged.verdict), markup(reason, 110))
    return table


def _environments(report: Report) -> Table:
    answers = report.answers
    table = Table("environment", *[a.id for a in answers], title="Per environment")
    for k, env in enumerate(report.scan.environments):
        cells = [_verdict(answer.environments[k].judgement.verdict) for answer in answers]
        table.add_row(markup(env.name, 40), *cells)
    return table


def print_verdicts(report: Report, console: Console) -> None:
    """The verdict tables on `console`."""
    for made in TerminalVerdicts(console).render(report):
        console.file.write(made.text)
        console.file.flush()


__all__ = ["TerminalVerdicts", "print_verdicts"]
