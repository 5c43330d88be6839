"""The one interface every format implements: the files it makes of a report.

Markdown, HTML, JSON and SARIF make one file each (`Document`); CSV makes one per check
with evidence plus a summary; the terminal's verdict tables (`auditor.cli.render_verdicts`)
make the text printed after a scan. Writing them is `auditor.report.write_reports`' job, so
no renderer opens a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from auditor.report.document import Report


@dataclass(frozen=True, slots=True)
class Rendered:
    """One output: its path below the output folder, its text, and how lines end on disk
    (`None`: the platform's; `""`: as written, for CSV's RFC 4180 CRLF)."""

    name: str
    text: str
    newline: str | None = None


class Renderer(Protocol):
    """A report format: `format` is its `--format` name."""

    @property
    def format(self) -> str: ...

    def render(self, report: Report) -> list[Rendered]: ...


@dataclass(frozen=True, slots=True)
class Document:
    """A format that is one file: `report.md`, `report.html`, `report.json`, `report.sarif`."""

    format: str
    name: str
    text: Callable[[Report], str]

    def render(self, report: Report) -> list[Rendered]:
        return [Rendered(self.name, self.text(report))]


__all__ = ["Document", "Rendered", "Renderer"]
