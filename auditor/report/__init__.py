"""The report writers: one typed model (`model.build_report`, `document.Report`), five
formats, each a `renderer.Renderer` (docs/how-a-scan-runs.md, "Report").

`write_reports` renders the chosen formats into an output folder: `report.md`,
`report.html`, `report.json`, `report.sarif` and `evidence/*.csv`. Each renderer escapes
tenant text for its own format; the model holds it raw.

The files hold tenant telemetry and `--out` may be a folder of a pull request's checkout, so
they are written through `auditor.files`: owner-only, never through a link, and all or
nothing. Every file is written in full to a temporary name first and the set is renamed into
place only once all of them are complete, so a failure (a full disk, a link where the
evidence folder should be) leaves the previous reports as they were, and a reader never sees
new reports beside old ones.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from auditor.errors import UsageError
from auditor.files import atomic_open, private_dir, write_error
from auditor.report.document import Report
from auditor.report.renderer import Document, Renderer

FORMATS = ("md", "html", "json", "sarif", "csv")


def parse_formats(text: str) -> tuple[str, ...]:
    """`md,html` -> ("md", "html"); "all" or empty = every format; unknown ones refused."""
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not wanted or wanted == ["all"]:
        return FORMATS
    unknown = [w for w in wanted if w not in FORMATS]
    if unknown:
        raise UsageError(
            f"unknown report format(s): {', '.join(unknown)}",
            hint=f"--format takes a comma-separated list of {', '.join(FORMATS)}.",
        )
    return tuple(f for f in FORMATS if f in wanted)


def render_json(report: Report) -> str:
    """`report.json`: the model's one serialisation (schema: reports/report.schema.json)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def renderer(fmt: str) -> Renderer:
    """The renderer of one `--format` (md, html, json, sarif or csv)."""
    from auditor.report import csv_evidence, html, markdown, sarif

    renderers: dict[str, Renderer] = {
        "md": Document("md", "report.md", markdown.render),
        "html": Document("html", "report.html", html.render),
        "json": Document("json", "report.json", render_json),
        "sarif": Document("sarif", "report.sarif", sarif.render),
        "csv": csv_evidence.CsvEvidence(),
    }
    return renderers[fmt]


def render_format(report: Report, fmt: str) -> str:
    """One single-file report (md, html, json or sarif) as text."""
    (only,) = renderer(fmt).render(report)
    return only.text


def write_reports(report: Report, out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Writes each format into `out` (created owner-only), all or nothing; returns the files
    written. Everything is rendered before the first file is opened."""
    outputs = [made for fmt in formats for made in renderer(fmt).render(report)]
    out = Path(out)
    private_dir(out)
    written: list[Path] = []
    # Each temporary is renamed into place when the stack closes, once every file is
    # complete; an error on the way discards them all and leaves the files as they were.
    with contextlib.ExitStack() as stack:
        for made in outputs:
            path = out / made.name
            private_dir(path.parent)
            with _complete(stack, path, newline=made.newline) as handle:
                handle.write(made.text)
            written.append(path)
    return written


@contextlib.contextmanager
def _complete(
    stack: contextlib.ExitStack[bool | None], path: Path, newline: str | None = None
) -> Iterator[IO[str]]:
    """A handle on the temporary of `path`, flushed and synced when the block ends, so a full
    disk shows here and not while the set is renamed; the rename waits for `stack`."""
    handle = stack.enter_context(atomic_open(path, newline=newline))
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise write_error(path, exc) from exc


__all__ = [
    "FORMATS",
    "parse_formats",
    "render_format",
    "render_json",
    "renderer",
    "write_reports",
]
